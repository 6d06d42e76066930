"""The demo's portfolio: aggregator 1 pools three households of one feeder, each owner consenting
with a signature (EIP-712 ``PortfolioConsent``), and offers them as one, in an offer it signs
itself. Its baseline is the households' summed forecast; its delivery, at settlement, the sum of
their meters (those in the portfolio at the day's gate closure, ``DeliveryMeter.members``).

When the award comes due the aggregator splits it among the members by prequalified power. One
prosumer overrides the activation (40 % of its share arrives) and the aggregator dispatches the
other two for the rest: the portfolio offers only three quarters of its members' power, so that
the others have the headroom to make up for one that fails.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from eth_account.signers.local import LocalAccount

from flexledger.book.order_book import SignedOffer
from flexledger.chain.transactions import Signer
from flexledger.demo.households import Member, forecast_wh
from flexledger.deployment import Deployment
from flexledger.errors import FlexledgerError
from flexledger.identity.eip712 import Eip712Domain, read_domain
from flexledger.rules.assets import sign_consent
from flexledger.rules.baselines import baseline_commitment
from flexledger.rules.lights import Direction
from flexledger.rules.orders import BaselineMethod, Mode, Offer
from flexledger.settlement.offer import Baseline

AGGREGATOR = "aggregator 1"
SIZE = 3  # households in the portfolio
ISPS = range(72, 74)  # 18:00-18:30: inside the metered window, under the DSOs' and the TSO's requests
PRICE = 9_000  # 90 EUR/MWh: below every request's maximum and most offers, so that it clears
OFFERED = Fraction(3, 4)  # of the members' prequalified power: the rest is the headroom for a member that fails
OVERRIDE = Fraction(2, 5)  # what arrives of the overriding member's share

Holding = tuple[int, LocalAccount, int, int]  # the assets step's (asset, owner, zone, power)


@dataclass(frozen=True)
class Portfolio:
    portfolio_id: int
    zone: int
    aggregator: LocalAccount
    members: tuple[Member, ...]  # in the order the portfolio was founded with
    gas: int

    @property
    def power_w(self) -> int:
        """What the aggregator offers: three quarters of the members' prequalified power."""
        return int(sum(m.power_w for m in self.members) * OFFERED)


def overriding(members: tuple[Member, ...]) -> Member:
    """The member whose prosumer overrides: the smallest, so that the others' headroom covers it."""
    return min(members, key=lambda m: (m.power_w, m.asset))


def pick_members(holdings: list[Holding], preferred_zones: set[int], exclude: set[int]) -> list[Holding]:
    """Three households of one feeder, outside ``exclude``; a feeder in ``preferred_zones`` (under
    a DSO's request, which no traffic light limits) if one has three."""
    by_zone: dict[int, list[Holding]] = defaultdict(list)
    for holding in holdings:
        if holding[0] not in exclude:
            by_zone[holding[2]].append(holding)
    zones = [zone for zone, held in sorted(by_zone.items()) if len(held) >= SIZE]
    if not zones:
        raise FlexledgerError(f"no feeder has {SIZE} households for the demo's portfolio",
                              hint="run the demo with more assets")
    zone = next((z for z in zones if z in preferred_zones), zones[0])
    return by_zone[zone][:SIZE]


def form_portfolio(chain: Deployment, aggregator: LocalAccount, members: list[Holding],
                   meter_of: Mapping[int, str], kind_of: Mapping[int, int]) -> Portfolio:
    """Each owner signs its consent in its wallet; the aggregator creates the portfolio with them."""
    conn, assets = chain.conn, chain.assets
    domain = read_domain(conn, assets.address)
    deadline = conn.latest_timestamp() + 3600
    signatures = [sign_consent(owner, domain, aggregator.address, asset, assets.consent_nonce(asset), deadline)
                  for asset, owner, _zone, _power in members]
    zone = members[0][2]
    tx = assets.create_portfolio(zone, [m[0] for m in members], signatures, deadline, sender=Signer(aggregator, conn))
    created = tx.event("PortfolioCreated")
    return Portfolio(int(created.args["portfolioId"]), zone, aggregator,
                     tuple(Member(asset, meter_of[asset], kind_of[asset], power) for asset, _o, _z, power in members),
                     tx.gas_used or 0)


def portfolio_offer(portfolio: Portfolio, market: int, day: int, expiry: int, domain: Eip712Domain,
                    rng: random.Random) -> tuple[SignedOffer, Baseline]:
    """The aggregator's COMMITTED offer, a block all or nothing, and the baseline it keeps: the
    members' forecasts summed per ISP, committed for asset 0 (the portfolio's own)."""
    start = day + ISPS[0] * 900
    net = [sum(forecast_wh(m.asset, m.kind, start + k * 900) for m in portfolio.members) for k in range(len(ISPS))]
    baseline = Baseline(net, rng.randbytes(32))
    offer = Offer(market, 0, portfolio.portfolio_id, start, len(ISPS), int(Direction.UP), portfolio.power_w, PRICE,
                  int(Mode.ALL_OR_NOTHING), portfolio.power_w, int(BaselineMethod.COMMITTED),
                  baseline_commitment(0, start, net, baseline.salt), expiry, 1)
    return SignedOffer(offer, offer.sign(portfolio.aggregator, domain)), baseline


def member_shares(members: tuple[Member, ...]) -> dict[int, Fraction]:
    """Each member's share of the portfolio's activation: by prequalified power, the overriding
    member's shortfall moved to the others (in proportion to their power). The shares add up to 1."""
    total = sum(m.power_w for m in members)
    failing = overriding(members)
    missing = Fraction(failing.power_w, total) * (1 - OVERRIDE)
    others = total - failing.power_w
    return {m.asset: Fraction(m.power_w, total) * OVERRIDE if m is failing
            else Fraction(m.power_w, total) + missing * Fraction(m.power_w, others) for m in members}
