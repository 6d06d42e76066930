"""A second, independent formulation of the clearing rules, written from README "## Clearing"
and DESIGN rules 1-4 without calling into ``flexledger.optimiser``: a direct highspy model in
whole watts, solved lexicographically (the chain's ranking). The differential tests hold the
optimiser's stage values against it.

Formulation (deliberately not the optimiser's): every offer has one level ``L`` (its power in
each of its ISPs, so a single-ISP offer and a block alike) and one binary ``a`` (awarded or not);
every eligible (offer, request, ISP) triple an integer power ``x``. Per offer and ISP of its
window the x add up to L (an ISP with no eligible request forces L = 0); L <= power * a and
L >= minimum * a (0, the minimum, or the power by mode); per request and ISP the x add up to at
most its power; per lit zone, ISP and direction the TSO's x of offers in the zone's subtree add
up to at most the capability (0 under RED); per asset and ISP the a of the offers holding it add
up to at most 1. Stage 1 maximises the DSO's welfare; stage 2 the TSO's with the DSO's held at
stage 1's value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import highspy

from flexledger.rules.lights import Colour, Direction, Light
from flexledger.rules.orders import Mode


@dataclass(frozen=True)
class RefOffer:
    key: str
    zone: int
    start: int
    isps: int
    direction: Direction
    power_w: int
    price: int
    mode: Mode
    min_power_w: int
    assets: tuple[int, ...]


@dataclass(frozen=True)
class RefRequest:
    request_id: int
    tso: bool
    zone: int
    start: int
    isps: int
    direction: Direction
    power_w: int
    max_price: int


@dataclass
class RefResult:
    dso: int  # exact welfare, W x price units
    tso: int
    watts: dict[tuple[str, int, int], int]  # (offer key, request id, ISP) -> W
    proven: bool


def _ancestors(parent: dict[int, int], zone: int) -> set[int]:
    seen = set()
    while zone and zone not in seen:
        seen.add(zone)
        zone = parent.get(zone, 0)
    return seen


def solve_reference(
    offers: Sequence[RefOffer], requests: Sequence[RefRequest], parent: dict[int, int],
    lights: dict[tuple[int, int, Direction], Light], isp_seconds: int,
) -> RefResult:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("threads", 1)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 0.5)  # integer objective: below 1 is exact
    inf = highspy.kHighsInf

    def window(start: int, count: int) -> list[int]:
        return [start + k * isp_seconds for k in range(count)]

    triples: list[tuple[int, int, int]] = []
    for o, offer in enumerate(offers):
        up = _ancestors(parent, offer.zone)
        for r, request in enumerate(requests):
            if request.direction != offer.direction or request.zone not in up or offer.price > request.max_price:
                continue
            for t in sorted(set(window(offer.start, offer.isps)) & set(window(request.start, request.isps))):
                triples.append((o, r, t))
    columns = 0

    def add(lower: float, upper: float, integer: bool) -> int:
        nonlocal columns
        h.addVar(lower, upper)
        if integer:
            h.changeColIntegrality(columns, highspy.HighsVarType.kInteger)
        columns += 1
        return columns - 1

    x = [add(0, min(offers[o].power_w, requests[r].power_w), False) for o, r, _t in triples]
    level = [add(0, offer.power_w, False) for offer in offers]
    awarded = [add(0, 1, True) for _ in offers]

    def row(lower: float, upper: float, cols: Iterable[int], coefs: Iterable[float]) -> None:
        cols, coefs = list(cols), list(coefs)
        h.addRow(lower, upper, len(cols), cols, coefs)

    by_offer_isp: dict[tuple[int, int], list[int]] = defaultdict(list)
    by_request_isp: dict[tuple[int, int], list[int]] = defaultdict(list)
    for k, (o, r, t) in enumerate(triples):
        by_offer_isp[(o, t)].append(x[k])
        by_request_isp[(r, t)].append(x[k])
    for o, offer in enumerate(offers):
        for t in window(offer.start, offer.isps):
            cols = by_offer_isp.get((o, t), [])
            row(0, 0, [*cols, level[o]], [1.0] * len(cols) + [-1.0])
        minimum = {Mode.DIVISIBLE: 0, Mode.MIN_QUANTITY: offer.min_power_w, Mode.ALL_OR_NOTHING: offer.power_w}[offer.mode]
        row(-inf, 0, [level[o], awarded[o]], [1.0, -float(offer.power_w)])
        row(0, inf, [level[o], awarded[o]], [1.0, -float(minimum)])
    for (r, _t), cols in by_request_isp.items():
        row(-inf, requests[r].power_w, cols, [1.0] * len(cols))
    for (zone, t, d), light in lights.items():
        if light.colour is Colour.GREEN:
            continue
        cap = 0 if light.colour is Colour.RED else light.capability_w
        cols = [x[k] for k, (o, r, tt) in enumerate(triples)
                if tt == t and requests[r].tso and offers[o].direction == d and zone in _ancestors(parent, offers[o].zone)]
        if cols:
            row(-inf, cap, cols, [1.0] * len(cols))
    holders: dict[tuple[int, int], list[int]] = defaultdict(list)
    for o, offer in enumerate(offers):
        for asset in set(offer.assets):
            for t in window(offer.start, offer.isps):
                holders[(asset, t)].append(awarded[o])
    for cols in holders.values():
        if len(cols) > 1:
            row(-inf, 1, cols, [1.0] * len(cols))

    margin = [requests[r].max_price - offers[o].price for o, r, _t in triples]
    dso_cols = [x[k] for k, (_o, r, _t) in enumerate(triples) if not requests[r].tso]
    dso_coefs = [float(margin[k]) for k, (_o, r, _t) in enumerate(triples) if not requests[r].tso]
    h.changeObjectiveSense(highspy.ObjSense.kMaximize)
    proven = True

    def run(tso: bool) -> list[int]:
        """One stage in whole watts. HiGHS is slow to prove whole-watt optima by branching, so the
        powers are relaxed first: when the relaxed optimum lies on whole watts it is also the
        whole-watt optimum (the relaxation's feasible set contains the whole-watt one)."""
        nonlocal proven
        h.changeColsCost(columns, list(range(columns)), [0.0] * columns)
        chosen = [k for k, (_o, r, _t) in enumerate(triples) if requests[r].tso is tso]
        if chosen:
            h.changeColsCost(len(chosen), [x[k] for k in chosen], [float(margin[k]) for k in chosen])
        for kind in (highspy.HighsVarType.kContinuous, highspy.HighsVarType.kInteger):
            h.changeColsIntegrality(len(x), x, [kind] * len(x))
            h.run()
            values = h.getSolution().col_value
            whole = [round(values[c]) for c in x]
            if all(abs(values[c] - w) <= 1e-6 for c, w in zip(x, whole, strict=True)):
                break
        proven = proven and h.getModelStatus() == highspy.HighsModelStatus.kOptimal
        return whole

    if not triples:
        return RefResult(0, 0, {}, True)
    first = run(False)
    dso = sum(w * m for w, m, (_o, r, _t) in zip(first, margin, triples, strict=True) if not requests[r].tso)
    if dso > 0:
        row(dso, inf, dso_cols, dso_coefs)
    second = run(True)
    watts = {(offers[o].key, requests[r].request_id, t): w for w, (o, r, t) in zip(second, triples, strict=True) if w}
    return RefResult(
        sum(w * m for w, m, (_o, r, _t) in zip(second, margin, triples, strict=True) if not requests[r].tso),
        sum(w * m for w, m, (_o, r, _t) in zip(second, margin, triples, strict=True) if requests[r].tso),
        watts, proven)
