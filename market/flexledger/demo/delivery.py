"""The demo's deliveries: what each awarded asset does when its awards come due.

The awards are read from the final clearing result on chain (``award_proofs``), as a seller's
gateway would take its activation orders. Most awarded assets deliver their award in full; about
one in twelve falls short (its prosumer overrides the activation and only 40 % arrives); one
over-delivers (150 %). The meters then measure the household's own consumption shifted by that
activation: ``measured = baseline - delivered`` for an UP offer (the opposite for DOWN).

An asset whose meter is an SDM630 on Modbus TCP always delivers in full, so that the gateways'
path (registers, edge agent, broker, oracle) is shown settling cleanly. Its controller aims 10 %
above the award, as a real one keeps a margin: the edge agent reads the registers a moment after
each ISP boundary (on the demo's accelerated clock a few milliseconds are many simulated seconds:
up to half a minute was measured under load), so some of the activation is counted in the next
ISP, and without a margin a loaded machine could make a full delivery look short beyond the
tolerance.

The portfolio offer (:mod:`flexledger.demo.portfolio`) delivers in full as a whole: its award is
split among its members' meters, one of them falling short and the others making up for it.

One fully delivering offer is the demo's dispute: the oracle's store is corrupted for one of its
ISPs (see ``demo_metering``), so that the anchored value wrongly shows nothing delivered there.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass, field
from enum import StrEnum
from fractions import Fraction

from flexledger.clearing.commitment import AwardProof
from flexledger.demo.households import KeptOffer
from flexledger.demo.portfolio import member_shares
from flexledger.rules.lights import Direction

SHORT_EVERY = 12  # about one awarded offer in this many falls short
SHORT_AT_LEAST = 2


class Behaviour(StrEnum):
    FULL = "full"
    SHORT = "short"
    OVER = "over"


FACTOR = {Behaviour.FULL: Fraction(1), Behaviour.SHORT: Fraction(2, 5), Behaviour.OVER: Fraction(3, 2)}
GATEWAY_MARGIN = Fraction(11, 10)  # what the SDM630 assets' controllers aim at, of their award


@dataclass(frozen=True)
class Delivery:
    """One awarded offer's activation: its awarded power per ISP and how much of it arrives."""

    kept: KeptOffer
    behaviour: Behaviour
    levels: dict[int, int]  # ISP start -> the offer's power there over all its awards (W)
    factor: Fraction  # the share of the award that arrives
    shares: dict[int, Fraction] = field(default_factory=dict)  # a portfolio offer: each member's part of it

    @property
    def sign(self) -> int:
        """+1 when the activation raises the meter's net consumption (DOWN), -1 when it lowers it (UP)."""
        return -1 if self.kept.offer.direction == Direction.UP else 1

    @property
    def meters(self) -> dict[int, Fraction]:
        """The assets whose meters the activation moves, and each one's part of it."""
        return self.shares or {self.kept.offer.asset: Fraction(1)}

    def shift_wh(self, isp_start: int, isp_seconds: int, share: Fraction = Fraction(1)) -> int:
        """The activation's change to a meter's net consumption in the ISP (whole Wh), for the
        meter taking ``share`` of it.

        Rounded away from zero, so that a full delivery is never a fraction of a Wh short of
        an award whose energy is not a whole number of Wh."""
        energy = self.levels.get(isp_start, 0) * isp_seconds * self.factor * share / 3600
        return self.sign * math.ceil(energy)

    def shift_w(self, isp_start: int, share: Fraction = Fraction(1)) -> float:
        """The same change as a power, for a meter whose registers integrate it (the SDM630 model)."""
        return float(self.sign * self.levels.get(isp_start, 0) * self.factor * share)


@dataclass
class DeliveryPlan:
    deliveries: dict[bytes, Delivery]  # by offer digest
    disputed: bytes | None = None  # the offer whose anchored reading the demo corrupts
    disputed_isp: int = 0
    always_full: frozenset[int] = frozenset()  # assets that deliver in full whatever happens (the SDM630s')
    _by_asset: dict[int, list[tuple[Delivery, Fraction]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        by_asset: dict[int, list[tuple[Delivery, Fraction]]] = defaultdict(list)
        for d in self.deliveries.values():
            for asset, share in d.meters.items():
                by_asset[asset].append((d, share))
        self._by_asset = dict(by_asset)

    def shift_wh(self, asset: int, isp_start: int, isp_seconds: int = 900) -> int:
        return sum(d.shift_wh(isp_start, isp_seconds, share) for d, share in self._by_asset.get(asset, []))

    def shift_w(self, asset: int, isp_start: int) -> float:
        return sum(d.shift_w(isp_start, share) for d, share in self._by_asset.get(asset, []))

    @property
    def over_modbus(self) -> int:
        """How many of the awarded offers are assets always delivering in full (the SDM630s')."""
        return sum(d.kept.offer.asset in self.always_full for d in self.deliveries.values())

    def count(self, behaviour: Behaviour) -> int:
        return sum(d.behaviour is behaviour for d in self.deliveries.values())

    @property
    def portfolios(self) -> list[Delivery]:
        return [d for d in self.deliveries.values() if d.kept.members]


def plan_delivery(awards: list[AwardProof], kept: dict[bytes, KeptOffer], always_full: set[int],
                  seed: int = 31) -> DeliveryPlan:
    """Who delivers how much, from the final result's awards; ``always_full``: assets that deliver in full."""
    levels: dict[bytes, dict[int, int]] = defaultdict(dict)
    for a in awards:
        levels[a.offer_digest][a.isp_start] = a.level_w  # each award of an offer in an ISP carries the same level
    rng = random.Random(seed)
    digests = sorted(levels, key=lambda d: (kept[d].offer.asset, d))
    # the portfolio's members follow their aggregator's dispatch (member_shares), not a draw of their own
    free = [d for d in digests if kept[d].offer.asset and kept[d].offer.asset not in always_full]
    behaviour = dict.fromkeys(digests, Behaviour.FULL)
    disputed = None
    if free:
        picked = rng.sample(free, min(len(free), max(SHORT_AT_LEAST, len(free) // SHORT_EVERY) + 2))
        behaviour[picked[0]] = Behaviour.OVER
        disputed = picked[1] if len(picked) > 1 else None  # delivers in full; its anchored value will be wrong
        for d in picked[2:]:
            behaviour[d] = Behaviour.SHORT
    factor = {d: GATEWAY_MARGIN if kept[d].offer.asset in always_full else FACTOR[behaviour[d]] for d in digests}
    plan = DeliveryPlan({d: Delivery(kept[d], behaviour[d], levels[d], factor[d],
                                     member_shares(kept[d].members) if kept[d].members else {}) for d in digests},
                        disputed, always_full=frozenset(always_full))
    if disputed is not None:
        plan.disputed_isp = min(levels[disputed])
    return plan
