"""The clearing of a market day: eligibility, decomposition into independent components, the
DSO stage then the TSO stage (rule 2), awards and prices.

Rules, as ``flexledger.rules`` and DESIGN.md state them:

- An offer can serve a request when directions match, their ISPs overlap, the offer's zone lies
  in the request's zone subtree, and the offer's price is at most the request's maximum price
  (rule 3; a trade at equal prices adds no welfare, so the solver may or may not make it).
- One meter is sold once per ISP: two offers that share an asset (``OfferIn.assets``: an asset
  offer's asset, a portfolio offer's members) and an ISP are never both awarded, whatever their
  directions, across both stages. So an asset's awards in an ISP never exceed its offer's power,
  which the book holds within the asset's prequalified power. (The book's offers in force never
  overlap like this, ``flexledger.rules.orders.offers_in_force``; the optimiser holds the rule
  whatever its input.)
- A block offer (more than one ISP) is awarded the same power in each of its ISPs, or nothing.
  ``MIN_QUANTITY``: nothing or at least the minimum; ``ALL_OR_NOTHING``: nothing or all of it.
- DSO requests clear first against every eligible offer; TSO requests then clear against what is
  left of the offers (their mode applying to the offer's total), and within each lit zone on an
  offer's path the TSO's awards at an ISP and direction add up to at most its YELLOW capability
  (nothing under RED). The DSO's own requests are not limited by lights.
- Welfare is the sum over awards of power x (request's maximum price - offer's price) x ISP length.
- Prices: ``PAY_AS_BID`` pays each award its offer's price. ``PAY_AS_CLEARED`` pays every award
  of a cell (request zone, ISP, direction) the highest offer price awarded in that cell, capped at
  the award's request's maximum price (the marginal accepted offer sets the price).
- Ties: offers are taken in a canonical order (price, then offer key), requests by id, and HiGHS
  runs single-threaded with a fixed seed, so the same inputs give the same awards with the same
  HiGHS version. Awarded power is rounded to whole watts.
"""

from __future__ import annotations

import time
from collections import defaultdict

from flexledger.rules.grid import path_to_root
from flexledger.rules.lights import Colour, Direction
from flexledger.rules.market import PricingRule
from flexledger.rules.orders import Mode

from .inputs import BuyerKind, ClearingInput, OfferIn, RequestIn
from .model import OfferSlot, Pair, RequestSlot, StageProblem, build
from .results import Award, ClearingResult, SolverStats
from .solve import solve

SECONDS_PER_MWH = 3_600_000_000  # W*s per MWh


class _Components:
    """Union-find over offer indexes and request indexes (offset by the offer count)."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _path(parent: dict[int, int], zone: int, cache: dict[int, tuple[int, ...]]) -> tuple[int, ...]:
    if zone not in cache:
        cache[zone] = tuple(path_to_root(parent, zone))
    return cache[zone]


def clear(inp: ClearingInput) -> ClearingResult:
    """Clear a market day. An empty book, or one where nothing can trade, gives an empty result."""
    started = time.perf_counter()
    deadline = started + inp.time_limit
    offers = sorted(inp.offers, key=lambda o: (o.price, o.key))
    requests = sorted(inp.requests, key=lambda r: r.request_id)
    paths: dict[int, tuple[int, ...]] = {}
    isp = inp.isp_seconds
    already: dict[int, dict[int, int]] = defaultdict(dict)  # offer -> ISP -> W awarded in stage 1
    raw: list[tuple[int, int, int, int]] = []  # (offer, request, isp, W)
    stats = SolverStats(components=0)
    exclusive = _exclusive(offers, isp)
    rivals: dict[int, set[int]] = defaultdict(set)
    for group in exclusive:
        for o in group:
            rivals[o].update(x for x in group if x != o)
    for kind in (BuyerKind.DSO, BuyerKind.TSO):
        stage_requests = [i for i, r in enumerate(requests) if r.kind is kind]
        pairs = _eligible(offers, requests, stage_requests, inp, paths)
        # an offer awarded in stage 1 keeps its assets' ISPs: its rivals sit out stage 2
        taken = {x for o in already for x in rivals[o]}
        pairs = [p for p in pairs if p[0] not in taken]
        stage = _clear_stage(kind, offers, requests, pairs, already, inp, paths, deadline, stats, exclusive)
        raw += stage
        for o, _r, t, w in stage:
            already[o][t] = already[o].get(t, 0) + w
    awards = _price(raw, offers, requests, inp.pricing)
    welfare_units = sum(w * (requests[r].max_price - offers[o].price) for o, r, _t, w in raw) * isp
    stats.status = "empty" if not raw and not stats.variables else ("optimal" if stats.optimal else stats.status)
    return ClearingResult(awards, welfare_units // SECONDS_PER_MWH, stats)


def _isps(start: int, count: int, isp: int) -> list[int]:
    return [start + k * isp for k in range(count)]


def _exclusive(offers: list[OfferIn], isp: int) -> list[list[int]]:
    """Per asset and ISP covered by more than one offer, those offers (each set once)."""
    covering: dict[tuple[int, int], list[int]] = defaultdict(list)
    for o, offer in enumerate(offers):
        for asset in set(offer.assets):
            for t in _isps(offer.start, offer.isps, isp):
                covering[(asset, t)].append(o)
    return [list(g) for g in sorted({tuple(g) for g in covering.values() if len(g) > 1})]


def _eligible(
    offers: list[OfferIn], requests: list[RequestIn], chosen: list[int], inp: ClearingInput,
    paths: dict[int, tuple[int, ...]],
) -> list[tuple[int, int, int]]:
    """(offer, request, ISP) triples that may trade, in canonical order."""
    by_zone: dict[tuple[int, Direction], list[int]] = defaultdict(list)
    for r in chosen:
        by_zone[(requests[r].zone, requests[r].direction)].append(r)
    out = []
    for o, offer in enumerate(offers):
        offer_isps = set(_isps(offer.start, offer.isps, inp.isp_seconds))
        for zone in _path(inp.parent, offer.zone, paths):
            for r in by_zone.get((zone, offer.direction), ()):
                request = requests[r]
                if offer.price > request.max_price:
                    continue
                for t in _isps(request.start, request.isps, inp.isp_seconds):
                    if t in offer_isps:
                        out.append((o, r, t))
    return out


def _slot(o: int, offer: OfferIn, done: dict[int, int], isp: int) -> OfferSlot | None:
    """What is left of an offer after stage 1, or None when nothing is."""
    given = max(done.values(), default=0)
    cap = offer.power_w - given
    if cap <= 0 or (offer.mode is Mode.ALL_OR_NOTHING and given > 0):
        return None
    minimum = 0
    if given == 0 and offer.mode is Mode.MIN_QUANTITY:
        minimum = offer.min_power_w
    elif offer.mode is Mode.ALL_OR_NOTHING:
        minimum = cap
    return OfferSlot(o, _isps(offer.start, offer.isps, isp), offer.isps > 1, cap, minimum, offer.mode, offer.price)


def _clear_stage(
    kind: BuyerKind, offers: list[OfferIn], requests: list[RequestIn], pairs: list[tuple[int, int, int]],
    already: dict[int, dict[int, int]], inp: ClearingInput, paths: dict[int, tuple[int, ...]], deadline: float,
    stats: SolverStats, exclusive: list[list[int]],
) -> list[tuple[int, int, int, int]]:
    slots = {o: _slot(o, offers[o], already.get(o, {}), inp.isp_seconds) for o in {p[0] for p in pairs}}
    pairs = [p for p in pairs if slots[p[0]] is not None]
    if not pairs:
        return []
    n = len(offers)
    components = _Components(n + len(requests))
    for o, r, _t in pairs:
        components.union(o, n + r)
    lit: dict[tuple[int, int, Direction], list[int]] = defaultdict(list)  # lit zone, ISP, dir -> pair indexes
    if kind is BuyerKind.TSO:
        for i, (o, _r, t) in enumerate(pairs):
            for zone in _path(inp.parent, offers[o].zone, paths):
                light = inp.lights.get((zone, t, offers[o].direction))
                if light is not None and light.colour in (Colour.YELLOW, Colour.RED):
                    lit[(zone, t, offers[o].direction)].append(i)
        for members in lit.values():
            for i in members[1:]:
                components.union(pairs[members[0]][0], pairs[i][0])
    trading = {p[0] for p in pairs}
    for group in exclusive:
        inside = [o for o in group if o in trading]
        for o in inside[1:]:
            components.union(inside[0], o)
    groups: dict[int, list[int]] = defaultdict(list)
    for i, (o, _r, _t) in enumerate(pairs):
        groups[components.find(o)].append(i)
    out: list[tuple[int, int, int, int]] = []
    for key in sorted(groups):
        members = groups[key]
        local_offers: dict[int, int] = {}
        local_requests: dict[int, int] = {}
        problem = StageProblem([], [], [])
        index_of_pair: dict[int, int] = {}
        for i in members:
            o, r, t = pairs[i]
            if o not in local_offers:
                local_offers[o] = len(problem.offers)
                slot = slots[o]
                assert slot is not None
                problem.offers.append(OfferSlot(local_offers[o], slot.isps, slot.block, slot.cap_w, slot.min_w,
                                                slot.mode, slot.price))
            if r not in local_requests:
                local_requests[r] = len(problem.requests)
                rq = requests[r]
                problem.requests.append(RequestSlot(local_requests[r], _isps(rq.start, rq.isps, inp.isp_seconds),
                                                    rq.power_w))
            index_of_pair[i] = len(problem.pairs)
            problem.pairs.append(Pair(local_offers[o], local_requests[r], t, requests[r].max_price - offers[o].price))
        for group in exclusive:
            local = [local_offers[o] for o in group if o in local_offers]
            if len(local) > 1:
                problem.exclusive.append(local)
        for (zone, _t, _d), lit_members in lit.items():
            inside = [index_of_pair[i] for i in lit_members if i in index_of_pair]
            if inside:
                light = inp.lights[(zone, _t, _d)]
                problem.light_caps.append((inside, 0 if light.colour is Colour.RED else light.capability_w))
        built_at = time.perf_counter()
        built = build(problem)
        stats.build_seconds += time.perf_counter() - built_at
        solved = solve(built, time_limit=deadline - time.perf_counter())
        stats.solve_seconds += solved.seconds
        stats.components += 1
        stats.variables += len(problem.pairs) + built.binaries
        stats.binaries += built.binaries
        stats.constraints += built.constraints
        stats.gap = max(stats.gap, solved.gap)
        if not solved.optimal:
            stats.optimal = False
            stats.status = solved.status
        offer_of = {v: k for k, v in local_offers.items()}
        request_of = {v: k for k, v in local_requests.items()}
        for p, value in zip(problem.pairs, solved.x, strict=True):
            watts = round(value)
            if watts > 0:
                out.append((offer_of[p.offer], request_of[p.request], p.isp, watts))
    return out


def _price(
    raw: list[tuple[int, int, int, int]], offers: list[OfferIn], requests: list[RequestIn], rule: PricingRule,
) -> list[Award]:
    cell_price: dict[tuple[int, int, Direction], int] = {}
    if rule is PricingRule.PAY_AS_CLEARED:
        for o, r, t, _w in raw:
            cell = (requests[r].zone, t, requests[r].direction)
            cell_price[cell] = max(cell_price.get(cell, 0), offers[o].price)
    awards = []
    for o, r, t, w in raw:
        if rule is PricingRule.PAY_AS_CLEARED:
            price = min(cell_price[(requests[r].zone, t, requests[r].direction)], requests[r].max_price)
        else:
            price = offers[o].price
        awards.append(Award(requests[r].request_id, t, offers[o].key, w, price))
    return sorted(awards)
