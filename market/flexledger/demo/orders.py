"""The demo's order-book step: prosumers sign offers in their wallets, aggregators relay them in
batches, the DSOs and the TSO post requests with money in escrow, and the book is read back."""

from __future__ import annotations

import random
import time
from dataclasses import replace
from typing import Any

from eth_account.signers.local import LocalAccount
from rich import box
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from flexledger.book.order_book import SignedOffer, read_book, relay_offers
from flexledger.chain import structs
from flexledger.chain.transactions import Signer
from flexledger.demo.bonds import bond_sellers
from flexledger.demo.households import KeptOffer, forecast_baseline
from flexledger.demo.metering import MODBUS_METERS
from flexledger.demo.money import eur
from flexledger.demo.portfolio import (
    AGGREGATOR,
    Portfolio,
    form_portfolio,
    pick_members,
    portfolio_offer,
)
from flexledger.deployment import Deployment
from flexledger.identity.eip712 import read_domain
from flexledger.rules.lights import Direction
from flexledger.rules.orders import (
    BaselineMethod,
    Mode,
    Offer,
    Product,
    Purpose,
    RequestParams,
    max_exposure,
)
from flexledger.settlement.offer import Baseline
from flexledger.times import iso

PEAK = range(68, 84)  # 17:00-21:00, the ISPs of the day the offers and requests are about
REPLACED_SHARE = 20  # one prosumer in 20 sends a newer, cheaper offer for the same window


def _offer(rng: random.Random, market: int, day: int, asset: int, kind: int, power: int, nonce: int,
           expiry: int) -> tuple[Offer, Baseline]:
    kind_of_offer = rng.random()
    q = rng.choice(PEAK[:-4])
    if kind_of_offer < 0.6:  # a single ISP, any part of it
        isps, mode, minimum = 1, Mode.DIVISIBLE, 0
    elif kind_of_offer < 0.8:  # a block of an hour, all or nothing
        isps, mode, minimum = 4, Mode.ALL_OR_NOTHING, power
    else:  # at least half of it, or nothing
        isps, mode, minimum = rng.choice((1, 2)), Mode.MIN_QUANTITY, power // 2
    # every offer commits to its seller's forecast of the meter: the standard ROLLING_AVERAGE needs
    # ten similar days of the meter's history in the oracle, which the demo's new meters lack
    start = day + q * 900
    commitment, baseline = forecast_baseline(asset, kind, start, isps, rng)
    direction = Direction.UP if rng.random() < 0.85 else Direction.DOWN
    return Offer(market, asset, 0, start, isps, int(direction), power, rng.randrange(8_000, 25_000, 100), int(mode),
                 minimum, int(BaselineMethod.COMMITTED), commitment, expiry, nonce), baseline


def orders_step(
    chain: Deployment,
    accounts: dict[str, LocalAccount],
    grid: dict[str, Any],
    holdings: list[tuple[int, LocalAccount, int, int]],
    meters: list[tuple[int, LocalAccount, int]],
    console: Console,
) -> dict[str, Any]:
    """Aggregator 1 forms a portfolio of three households (``demo_portfolio``); every other
    prosumer signs one offer for the demo day's evening peak (some a newer, cheaper one as well);
    three aggregators relay them, aggregator 1 its portfolio's offer too; each DSO posts requests
    on its substations and the TSO one in its area; the book is then read back from events and
    checked against its digest.

    Each offer commits to its seller's baseline; the sellers keep the values and salts to reveal
    at settlement (``kept`` in the result: each offer in force by digest, with the aggregator that
    relayed it)."""
    rng = random.Random(23)
    started = time.perf_counter()
    market, day = grid["market"], grid["day"]
    conn, authority = chain.conn, chain.signer  # the market authority mints the buyers' tokens
    assert authority is not None
    book = chain.order_book
    domain = read_domain(conn, book.address)
    expiry = conn.latest_timestamp() + 2 * 86_400
    params = chain.params(market)

    signed: list[SignedOffer] = []
    baselines: dict[Offer, Baseline] = {}
    kind_of = {asset: kind for asset, _meter, kind in meters}
    meter_of = {asset: meter.address for asset, meter, _kind in meters}
    by_dso = {name: sorted({grid["substation_of"][f] for f in feeders}) for name, feeders in grid["feeders_of"].items()}
    requested = {f for f, sub in grid["substation_of"].items() if any(sub in subs[:2] for subs in by_dso.values())}
    # the SDM630 households stay out of the portfolio: their controllers follow their own asset's award
    modbus = {asset for asset, _meter, _kind in meters[:MODBUS_METERS]}
    portfolio = form_portfolio(chain, accounts[AGGREGATOR], pick_members(holdings, requested, modbus),
                               meter_of, kind_of)
    console.print(f"{AGGREGATOR} formed portfolio {portfolio.portfolio_id} of {len(portfolio.members)} households on "
                  f"feeder {portfolio.zone} (assets {', '.join(str(m.asset) for m in portfolio.members)}), each owner "
                  f"consenting with an EIP-712 PortfolioConsent signature ({portfolio.gas:,} gas); their owners no "
                  "longer offer them: the aggregator does")
    pooled = {m.asset for m in portfolio.members}
    holdings = [h for h in holdings if h[0] not in pooled]  # an asset in a portfolio is its aggregator's to offer
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("prosumers sign their offers (EIP-712, in their own wallets)", total=len(holdings))
        for asset, owner, _zone, power in holdings:
            offer, baselines[offer] = _offer(rng, market, day, asset, kind_of[asset], power, 1, expiry)
            signed.append(SignedOffer(offer, offer.sign(owner, domain)))
            progress.advance(task)
        for k in rng.sample(range(len(holdings)), max(1, len(holdings) // REPLACED_SHARE)):
            asset, owner, _zone, _power = holdings[k]
            newer = replace(signed[k].offer, price=max(signed[k].offer.price - 2_000, 100), nonce=2)
            baselines[newer] = baselines[signed[k].offer]  # the same window, the same forecast
            signed.append(SignedOffer(newer, newer.sign(owner, domain)))
        # two offers that must not enter the book: one above its asset's power, one signed by a stranger
        asset, owner, _zone, power = holdings[0]
        too_big = Offer(market, asset, 0, day + 70 * 900, 1, 0, power + 1, 9_000, 0, 0, 1, bytes(32), expiry, 3)
        signed.append(SignedOffer(too_big, too_big.sign(owner, domain)))
        stranger = holdings[1][1]
        forged = Offer(market, holdings[2][0], 0, day + 70 * 900, 1, 0, 1_000, 9_000, 0, 0, 1, bytes(32), expiry, 3)
        signed.append(SignedOffer(forged, forged.sign(stranger, domain)))

        aggregators = [Signer(accounts[f"aggregator {i}"], conn) for i in (1, 2, 3)]
        share = -(-len(signed) // len(aggregators))
        pooled_offer, baseline = portfolio_offer(portfolio, market, day, expiry, domain, rng)
        owner_of_asset = {asset: str(owner.address) for asset, owner, _zone, _power in holdings}
        relays = [(a, [(owner_of_asset[s.offer.asset], s.offer) for s in signed[i * share:(i + 1) * share]])
                  for i, a in enumerate(aggregators)]
        # one Signer per account: two would each count its nonces (the bonds are sent without waiting)
        pooler = next((a for a in aggregators if a.address == portfolio.aggregator.address),
                      Signer(portfolio.aggregator, conn))
        relays.append((pooler, [(str(portfolio.aggregator.address), pooled_offer.offer)]))
        bonds = bond_sellers(chain, authority, relays, params, console)
        task = progress.add_task("three aggregators relay them in batches of 200", total=len(signed))
        relayed = [relay_offers(book.with_signer(a), signed[i * share:(i + 1) * share],  # type: ignore[arg-type]
                                progress=lambda n: progress.advance(task, n))
                   for i, a in enumerate(aggregators)]
    baselines[pooled_offer.offer] = baseline
    own = relay_offers(book.with_signer(Signer(portfolio.aggregator, conn)), [pooled_offer])  # type: ignore[arg-type]
    _show_portfolio_offer(portfolio, pooled_offer.offer, own.accepted == 1, console)
    relayed.append(own)
    accepted = sum(r.accepted for r in relayed)
    skipped = [o for r in relayed for o in r.skipped]
    offer_gas = sum(r.gas_used for r in relayed)
    offers = len(signed) + 1  # the prosumers' and the portfolio's
    console.print(f"{offers} signed offers relayed by 3 aggregators in {sum(r.transactions for r in relayed)} "
                  f"transactions: {accepted} accepted, {len(skipped)} skipped ({offer_gas / offers:,.0f} gas per offer)")
    for o in skipped:
        subject = f"asset {o.offer.asset}" if o.offer.asset else f"portfolio {o.offer.portfolio}"
        console.print(f"  skipped {subject}: {o.reason.message if o.reason else '?'}")

    # requests: each DSO on two of its substations, the TSO in its whole area, money in escrow
    token = chain.token
    plans: list[tuple[str, RequestParams]] = []
    for name, subs in by_dso.items():
        for substation in subs[:2]:
            plans.append((name, RequestParams(market, substation, day + 68 * 900, 8, int(Direction.UP),
                                              rng.randrange(150_000, 400_000, 10_000), 30_000)))
    plans.append(("TSO", RequestParams(market, grid["area"], day + 72 * 900, 4, int(Direction.UP), 1_000_000, 25_000,
                                       int(Product.ACTIVATION), int(Purpose.BALANCING))))
    request_gas = 0
    for name, request in plans:
        buyer = Signer(accounts[name], conn)
        escrow = max_exposure(request.power_w, request.isps, params.isp_seconds, request.max_price)
        token.mint(buyer.address, escrow)
        token.approve(book.address, escrow, sender=buyer)
        request_gas += book.post_request(structs.RequestParams.like(request), sender=buyer).gas_used or 0

    owner_of = {asset: owner for asset, owner, _zone, _power in holdings}
    state = read_book(book, market, day)
    zone_of = {asset: zone for asset, _owner, zone, _power in holdings}
    zone_of[0] = portfolio.zone  # the demo's one portfolio offer (asset 0)
    table = Table(title="requests, and what was offered below them at their price", box=box.SIMPLE_HEAD)
    for column in ("request", "zone", "UTC", "kW", "€/MWh ≤", "escrow €", "offered"):
        table.add_column(column, no_wrap=True, justify="left" if column in ("request", "UTC") else "right")
    for request_id, info in sorted(state.requests.items()):
        p: RequestParams = info["params"]
        name = next(n for n, a in accounts.items() if a.address == info["buyer"])
        below = {z for z in zone_of.values() if p.zone in (z, grid["substation_of"].get(z), grid["area"])}
        window = range(p.start, p.start + p.isps * 900, 900)
        offered = max(sum(o.power_w for o in state.offers if zone_of.get(o.asset) in below and o.direction == p.direction
                          and o.start <= t < o.start + o.isps * 900 and o.price <= p.max_price) for t in window)
        table.add_row(f"{request_id} {name}", str(p.zone),
                      f"{iso(p.start)[11:16]}-{iso(p.start + p.isps * 900)[11:16]} {Direction(p.direction).name}",
                      f"{p.power_w / 1000:,.0f}", f"{eur(p.max_price, 0)}", f"{eur(info['escrow'])}",
                      f"{offered / 1000:,.0f}")
    console.print(table)
    console.print(f"the book of {iso(day)[:10]}: {len(state.requests)} requests, {len(state.offers)} offers in force "
                  f"({len(state.accepted) - len(state.offers)} replaced by newer ones), read from events and matching "
                  f"the contract's digest 0x{state.digest.hex()[:16]}…")
    escrowed = sum(i["escrow"] for i in state.requests.values())
    relayer = {s.offer: f"aggregator {i // share + 1}" for i, s in enumerate(signed)}
    kept = {state.digests[o]: KeptOffer(o, state.digests[o], baselines[o], owner_of[o.asset], meter_of[o.asset],
                                        kind_of[o.asset], relayer[o]) for o in state.offers if o.asset}
    kept.update({state.digests[o]: KeptOffer(o, state.digests[o], baselines[o], portfolio.aggregator, "", 0, AGGREGATOR,
                                             portfolio.members) for o in state.offers if o.portfolio})
    return {"bonds": bonds, "offers_signed": offers, "accepted": accepted, "skipped": len(skipped), "replaced": len(state.accepted) - len(state.offers),
            "offers_in_force": len(state.offers), "requests": len(state.requests), "escrow": escrowed,
            "gas_per_offer": round(offer_gas / offers), "gas_per_request": round(request_gas / len(plans)),
            "seconds": round(time.perf_counter() - started, 1),
            "portfolio": {"id": portfolio.portfolio_id, "zone": portfolio.zone, "aggregator": AGGREGATOR,
                          "members": [m.asset for m in portfolio.members], "power_w": pooled_offer.offer.power_w,
                          "price": pooled_offer.offer.price, "accepted": own.accepted == 1},
            "kept": kept}  # for the settlement: what each seller keeps of its offer in force


def _show_portfolio_offer(portfolio: Portfolio, offer: Offer, accepted: bool, console: Console) -> None:
    console.print(f"{AGGREGATOR} signed and relayed one offer for portfolio {portfolio.portfolio_id}: "
                  f"{iso(offer.start)[11:16]}-{iso(offer.start + offer.isps * 900)[11:16]} UP, "
                  f"{offer.power_w / 1000:,.1f} kW all or nothing (three quarters of its members' "
                  f"{sum(m.power_w for m in portfolio.members) / 1000:,.0f} kW: the rest is headroom) at "
                  f"{eur(offer.price, 0)} €/MWh, committing to its members' summed forecast: "
                  f"{'accepted' if accepted else 'SKIPPED'}")
