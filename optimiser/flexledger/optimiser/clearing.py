"""The clearing of a market day: eligibility, decomposition into independent components, the
DSO stage then the TSO stage (rule 2), awards and prices.

Rules, as README "## Clearing" states them (the one reading the contract, ``flexledger.rules``
and the auditor share):

- An offer can serve a request when directions match, their ISPs overlap, the offer's zone lies
  in the request's zone subtree, and the offer's price is at most the request's maximum price
  (rule 3; a trade at equal prices adds no welfare, but may complete a block or a mode).
- One meter is sold once per ISP: two offers that share an asset (``OfferIn.assets``: an asset
  offer's asset, a portfolio offer's members) and an ISP are never both awarded, whatever their
  directions and buyers. (The book's offers in force never overlap like this,
  ``flexledger.rules.orders.offers_in_force``; the optimiser holds the rule whatever its input.)
- Modes and blocks hold on the offer's total over all its awards, DSO and TSO together: a block
  offer (more than one ISP) is awarded the same power in each of its ISPs, or nothing;
  ``MIN_QUANTITY``: nothing or at least the minimum; ``ALL_OR_NOTHING``: nothing or all of it.
- Within each lit zone on an offer's path the TSO's awards at an ISP and direction add up to at
  most its YELLOW capability (nothing under RED). The DSO's own requests are not limited by lights.
- Welfare is two exact integers, the DSO's and the TSO's, each the sum over its awards of
  power (W) x (request's maximum price - offer's price); results rank by the DSO's, then the
  TSO's (the chain's ranking). Stage 1 maximises the DSO's over the joint model (TSO awards are
  variables too, so they may complete a block or a mode); stage 2 the TSO's with the DSO's held
  at stage 1's optimum, every award free to move. Both in whole watts, to a proven optimum.
- Prices: ``PAY_AS_BID`` pays each award its offer's price. ``PAY_AS_CLEARED`` pays every award
  of a cell (request zone, ISP, direction) the highest offer price awarded in that cell, capped at
  the award's request's maximum price (the marginal accepted offer sets the price).
- Ties beyond the ranking: offers are taken in a canonical order (price, then offer key),
  requests by id, components by their first offer, and HiGHS runs single-threaded with a fixed
  seed, so the same inputs give the same awards with the same HiGHS version.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt

from flexledger.rules.grid import path_to_root
from flexledger.rules.lights import Colour, Direction
from flexledger.rules.market import PricingRule
from flexledger.rules.orders import Mode

from .fixing import proven_bounds
from .highs_build import HighsModel, build_highs
from .inputs import BuyerKind, ClearingInput, OfferIn, RequestIn
from .model import BuiltModel, OfferSlot, Pair, RequestSlot, StageProblem, build
from .results import Award, ClearingResult, SolverStats
from .solve import (
    ABS_GAP,
    InfeasibleError,
    NumericalError,
    Solved,
    SolverError,
    relaxation_duals,
    solve,
)

log = logging.getLogger(__name__)

SECONDS_PER_MWH = 3_600_000_000  # W*s per MWh
BATCH_PAIRS = 300
PARALLEL_PAIRS = 2_000  # a model this large takes HiGHS long enough to be worth a process of its own
PARALLEL_STAGE_PAIRS = 50_000  # so are this many pairs in all of a stage's models
PARALLEL_WORKERS = 2
# a stage-2 component this large is worth an LP relaxation of each stage-1 model inside it, whose
# duals bound stage 2's columns (fixing.py): they cost a small part of what they save there
FIXING_PAIRS = 2_000
WHOLE_WATT_TOLERANCE = 1e-6  # a solver value this close to a whole watt is that watt
# "highs": the model written into HiGHS's matrix (highs_build.py), the default; "pyomo": the same
# model stated in pyomo (model.py), the readable statement, slower to build and hand over
Backend = Literal["highs", "pyomo"]
BACKEND_ENV = "FLEXLEDGER_CLEARING_BACKEND"


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


def clear(inp: ClearingInput, *, backend: Backend | None = None) -> ClearingResult:
    """Clear a market day. An empty book, or one where nothing can trade, gives an empty result.
    ``backend`` picks the model's build (default: $FLEXLEDGER_CLEARING_BACKEND, else "highs")."""
    chosen = backend or os.environ.get(BACKEND_ENV) or "highs"
    if chosen not in get_args(Backend):
        raise SolverError(f"unknown clearing backend {chosen!r}", hint=f"one of {', '.join(get_args(Backend))}")
    builder = build_highs if chosen == "highs" else build
    started = time.perf_counter()
    deadline = started + inp.time_limit
    offers = sorted(inp.offers, key=lambda o: (o.price, o.key))
    requests = sorted(inp.requests, key=lambda r: r.request_id)
    paths: dict[int, tuple[int, ...]] = {}
    isp = inp.isp_seconds
    stats = SolverStats(components=0)
    pairs = _eligible(offers, requests, inp, paths)
    tso = [requests[r].kind is BuyerKind.TSO for _o, r, _t in pairs]
    book = _Book(offers, requests, pairs, tso, _exclusive(offers, isp), _lit(offers, pairs, tso, inp, paths), inp)

    # Stage 1 on its own pairs: TSO pairs enter only where a TSO award can change what the DSO
    # may be given (the offer also serves the DSO and is a block or has a mode); any other TSO
    # award can be dropped from a solution without touching its feasibility or its DSO welfare.
    serves_dso = {pairs[i][0] for i in range(len(pairs)) if not tso[i]}
    bound = {o for o in serves_dso if offers[o].isps > 1 or offers[o].mode is not Mode.DIVISIBLE}
    first = [i for i in range(len(pairs)) if not tso[i] or pairs[i][0] in bound]
    watts: dict[int, int] = {}  # pair index -> W
    holds: dict[int, list[tuple[list[int], int]]] = defaultdict(list)  # stage-2 component -> (DSO pairs, welfare)
    joint = book.components(range(len(pairs)))
    root_of = {i: key for key, members in joint.items() for i in members}
    stage_one = list(book.components(first).values())
    batches = _batches(stage_one)
    large = {key for key, members in joint.items() if len(members) >= FIXING_PAIRS}
    proven = _Bounds()
    for batch, (solved, bounds) in zip(batches, _solve_all(book, [
            _Job([i for members in batch for i in members], False, [],
                 prove=[members for members in batch if root_of[members[0]] in large]) for batch in batches],
            deadline, stats, builder), strict=True):
        watts.update(solved)
        proven.update(bounds)
        stats.components += len(batch)
    for members in stage_one:
        dso_pairs = [i for i in members if not tso[i]]
        holds[root_of[members[0]]].append((dso_pairs, sum(book.margin(i) * watts.get(i, 0) for i in dso_pairs)))
    # Stage 2 on the joint components: the TSO's welfare, the DSO's held at its optimum, every
    # award free to move (an offer's mode and block hold on its total over both stages). Each
    # stage-1 component's DSO welfare is at most its stage-1 optimum in any joint solution (drop
    # the TSO awards stage 1 left out: what remains is feasible there), so holding their sum is
    # holding each: one row per stage-1 component, local rather than one row over them all.
    stage_two = [(key, members) for key, members in joint.items() if any(tso[i] for i in members)]
    batches = _batches([members for _key, members in stage_two])
    jobs = [_Job(members, True, [hold for group in batch for hold in holds[root_of[group[0]]]],
                 bounds=proven.of(book, members), start={i: watts[i] for i in members if i in watts})
            for batch in batches for members in [[i for group in batch for i in group]]]
    for batch, job, (solved, _none) in zip(batches, jobs, _solve_all(book, jobs, deadline, stats, builder), strict=True):
        members, kept = job.members, job.holds
        stats.components += len(batch)
        if any(sum(book.margin(i) * solved.get(i, 0) for i in dso_pairs) < hold for dso_pairs, hold in kept):
            stats.optimal, stats.status = False, "dso_welfare_not_held"  # keep stage 1's awards
            continue
        for i in members:
            watts.pop(i, None)
        watts.update(solved)
    raw = [(pairs[i][0], pairs[i][1], pairs[i][2], w) for i, w in sorted(watts.items()) if w > 0]
    awards = _price(raw, offers, requests, inp.pricing)
    welfare_units = sum(w * (requests[r].max_price - offers[o].price) for o, r, _t, w in raw) * isp
    stats.status = "empty" if not raw and not stats.variables else ("optimal" if stats.optimal else stats.status)
    return ClearingResult(awards, welfare_units // SECONDS_PER_MWH, stats)


@dataclass
class _Bounds:
    """Proven bounds (fixing.py) on the columns of a day's models, by pair (its power), by offer
    (its binary) and by block offer (its level)."""

    pairs: dict[int, tuple[int, int]] = field(default_factory=dict)
    binary: dict[int, tuple[int, int]] = field(default_factory=dict)
    level: dict[int, tuple[int, int]] = field(default_factory=dict)

    def update(self, other: _Bounds) -> None:
        """Add bounds of other columns (each stage-1 model bounds its own)."""
        self.pairs.update(other.pairs)
        self.binary.update(other.binary)
        self.level.update(other.level)

    def of(self, book: _Book, members: list[int]) -> _Bounds:
        """Those on the columns of a model of these pairs (what a worker process is sent)."""
        offers = {book.pairs[i][0] for i in members}
        return _Bounds({i: self.pairs[i] for i in members if i in self.pairs},
                       {o: self.binary[o] for o in offers if o in self.binary},
                       {o: self.level[o] for o in offers if o in self.level})


@dataclass
class _Job:
    """One model to solve: its pairs, its stage, in stage 2 the DSO welfare it holds and the
    bounds proven for its columns; in stage 1 the components to prove bounds for, each from its
    own LP relaxation (a component whose relaxation is exact then bounds all it can, whatever
    the gap of the others in its model)."""

    members: list[int]
    tso_objective: bool
    holds: list[tuple[list[int], int]]
    prove: list[list[int]] = field(default_factory=list)
    bounds: _Bounds = field(default_factory=_Bounds)
    start: dict[int, int] = field(default_factory=dict)  # stage 2: stage 1's awards, a feasible point


# the book and build that forked workers solve with (set in the parent before forking)
_WORKER: tuple[_Book, Callable[[StageProblem], BuiltModel | HighsModel]] | None = None


def _solve_all(book: _Book, jobs: list[_Job], deadline: float, stats: SolverStats,
               builder: Callable[[StageProblem], BuiltModel | HighsModel]) -> list[tuple[dict[int, int], _Bounds]]:
    """Every job's awards and proven bounds, in order. Where two or more jobs are large, or all
    of them together are (HiGHS's time dominates: the dense day's stage 1 is 335 small models),
    and the machine has two cores or more, the jobs are shared between processes, one job per call:
    each model is solved exactly as it would be alone (HiGHS single-threaded, seeded), so the
    awards are the same either way; only the wall time differs."""
    global _WORKER
    cores = min(os.cpu_count() or 1, PARALLEL_WORKERS)
    large = sum(len(job.members) >= PARALLEL_PAIRS for job in jobs)
    heavy = large >= 2 or sum(len(job.members) for job in jobs) >= PARALLEL_STAGE_PAIRS
    if cores < 2 or not heavy or "fork" not in multiprocessing.get_all_start_methods():
        return [_run(book, job, deadline, stats, builder) for job in jobs]
    _WORKER = (book, builder)
    try:
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(cores, mp_context=context) as pool:
            # the largest first, so that one long model does not start last
            order = sorted(range(len(jobs)), key=lambda k: -len(jobs[k].members))
            futures = {k: pool.submit(_solve_in_worker, jobs[k], deadline) for k in order}
            results = []
            for k in range(len(jobs)):
                outcome, part = futures[k].result()
                stats.add(part)
                results.append(outcome)
            return results
    finally:
        _WORKER = None


def _solve_in_worker(job: _Job, deadline: float) -> tuple[tuple[dict[int, int], _Bounds], SolverStats]:
    assert _WORKER is not None, "a worker forked from _solve_all"
    book, builder = _WORKER
    part = SolverStats(components=0)
    return _run(book, job, deadline, part, builder), part


def _run(book: _Book, job: _Job, deadline: float, stats: SolverStats,
         builder: Callable[[StageProblem], BuiltModel | HighsModel]) -> tuple[dict[int, int], _Bounds]:
    solved = _solve(book, job.members, job.tso_objective, job.holds, deadline, stats, builder, job.bounds, job.start)
    bounds = _Bounds()
    for component in job.prove:
        bounds.update(_prove(book, component, solved, deadline))
    return solved, bounds


def _prove(book: _Book, members: list[int], solved: dict[int, int], deadline: float) -> _Bounds:
    """Bounds that every solution of this stage-1 component keeps when it is worth at least
    ``solved`` there (stage 2 holds that), from its LP relaxation's duals (fixing.py); none when
    the LP gives none."""
    model = build_highs(book.problem(members, False, [], False))
    duals = relaxation_duals(model, time_limit=deadline - time.perf_counter())
    worth = sum(book.margin(i) * solved.get(i, 0) for i in members if not book.tso[i])
    proven = None if duals is None else proven_bounds(model, duals, worth)
    if proven is None:
        log.debug("stage 1, %d pairs: no bounds proven", len(members))
        return _Bounds()
    lower, upper = proven
    offers = list(dict.fromkeys(book.pairs[i][0] for i in members))  # local offer index -> offer
    out = _Bounds()
    keyed = [(out.pairs, members), (out.binary, [offers[o] for o in model.binary_offers.tolist()]),
             (out.level, [offers[o] for o in model.block_offers.tolist()])]
    column = 0
    for bounds, keys in keyed:
        for key in keys:
            if lower[column] > model.col_lower[column] or upper[column] < model.col_upper[column]:
                bounds[key] = (lower[column], upper[column])
            column += 1
    return out


def _batches(groups: list[list[int]]) -> list[list[list[int]]]:
    """Components gathered, in order, into models of at least BATCH_PAIRS pairs each: a model per
    tiny component would cost more in building and calling HiGHS than in solving it, and a model
    of independent parts has as its optimum the sum of theirs."""
    out: list[list[list[int]]] = []
    size = BATCH_PAIRS
    for group in groups:
        if size >= BATCH_PAIRS:
            out.append([])
            size = 0
        out[-1].append(group)
        size += len(group)
    return out


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
    offers: list[OfferIn], requests: list[RequestIn], inp: ClearingInput, paths: dict[int, tuple[int, ...]],
) -> list[tuple[int, int, int]]:
    """(offer, request, ISP) triples that may trade, in canonical order: by offer, then the
    request's zone along the offer's path (its own zone first), then request, then ISP. Computed
    per request over all offers at once (numpy): a day has a few hundred requests and up to a
    hundred thousand offers."""
    if not offers or not requests:
        return []
    isp = inp.isp_seconds
    zones, zone_of_offer = np.unique(np.fromiter((offer.zone for offer in offers), np.int64, len(offers)),
                                     return_inverse=True)
    zone_paths = [_path(inp.parent, int(zone), paths) for zone in zones]
    depth = max(len(path) for path in zone_paths)
    by_zone = np.full((len(zones), depth), -1, dtype=np.int64)
    for k, path in enumerate(zone_paths):
        by_zone[k, :len(path)] = path
    # every (offer, depth) cell of the offers' paths, sorted by the zone there (offers ascending)
    cells = by_zone[zone_of_offer.ravel()].ravel()
    cell_order = np.argsort(cells, kind="stable")
    sorted_cells = cells[cell_order]
    direction = np.fromiter((offer.direction for offer in offers), np.int64, len(offers))
    price = np.fromiter((offer.price for offer in offers), np.int64, len(offers))
    start = np.fromiter((offer.start for offer in offers), np.int64, len(offers))
    end = start + np.fromiter((offer.isps for offer in offers), np.int64, len(offers)) * isp
    found: list[tuple[npt.NDArray[np.int64], ...]] = []
    for r, request in enumerate(requests):
        lo, hi = np.searchsorted(sorted_cells, [request.zone, request.zone + 1])
        o, d = np.divmod(cell_order[lo:hi], depth)
        first = np.maximum(start[o], request.start)
        count = (np.minimum(end[o], request.start + request.isps * isp) - first) // isp
        # the two windows' common ISPs: none unless their starts lie on one ISP grid
        keep = (direction[o] == request.direction) & (price[o] <= request.max_price) & (count > 0) & \
            ((request.start - start[o]) % isp == 0)
        found.append((o[keep], d[keep], np.full(int(keep.sum()), r, dtype=np.int64), first[keep], count[keep]))
    offer_of, depth_of, request_of, first_isp, isps = (np.concatenate(column) for column in zip(*found, strict=True))
    step = np.arange(int(isps.sum())) - np.repeat(np.cumsum(isps) - isps, isps)
    offer_of, depth_of, request_of = np.repeat(offer_of, isps), np.repeat(depth_of, isps), np.repeat(request_of, isps)
    t = np.repeat(first_isp, isps) + step * isp
    order = np.lexsort((t, request_of, depth_of, offer_of))
    return list(zip(offer_of[order].tolist(), request_of[order].tolist(), t[order].tolist(), strict=True))


def _lit(
    offers: list[OfferIn], pairs: list[tuple[int, int, int]], tso: list[bool], inp: ClearingInput,
    paths: dict[int, tuple[int, ...]],
) -> dict[tuple[int, int, Direction], list[int]]:
    """Per lit (YELLOW or RED) zone, ISP and direction, the TSO pairs whose offer lies under it."""
    lit: dict[tuple[int, int, Direction], list[int]] = defaultdict(list)
    for i, (o, _r, t) in enumerate(pairs):
        if not tso[i]:
            continue
        for zone in _path(inp.parent, offers[o].zone, paths):
            light = inp.lights.get((zone, t, offers[o].direction))
            if light is not None and light.colour in (Colour.YELLOW, Colour.RED):
                lit[(zone, t, offers[o].direction)].append(i)
    return lit


@dataclass
class _Book:
    offers: list[OfferIn]
    requests: list[RequestIn]
    pairs: list[tuple[int, int, int]]
    tso: list[bool]
    exclusive: list[list[int]]
    lit: dict[tuple[int, int, Direction], list[int]]
    inp: ClearingInput
    # indexes into the two above, so that a model of a few pairs does not scan the whole day's
    lit_of_pair: dict[int, list[tuple[int, int, Direction]]] = field(default_factory=dict)
    exclusive_of_offer: dict[int, list[int]] = field(default_factory=dict)
    # per pair, the most it can be given (its offer's power or its request's, whichever is less),
    # read half a million times on the dense day
    caps: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.caps = [min(self.offers[o].power_w, self.requests[r].power_w) for o, r, _t in self.pairs]
        for key, members in self.lit.items():
            for i in members:
                self.lit_of_pair.setdefault(i, []).append(key)
        for g, group in enumerate(self.exclusive):
            for o in group:
                self.exclusive_of_offer.setdefault(o, []).append(g)

    def components(self, chosen: Iterable[int]) -> dict[int, list[int]]:
        """The chosen pairs split into independent components, keyed by their first offer, members
        in canonical order. Pairs are linked by their offer, by a shared asset, and by a request's
        power in an ISP or a lit zone's capability; not by a request or a light that the chosen
        pairs cannot exceed even all at their most (such a row binds nothing, in any model of a
        subset of them: so a TSO request that takes all it is offered links no one)."""
        chosen = list(chosen)
        n, caps = len(self.offers), self.caps
        rows: dict[tuple[int, int], list[int]] = defaultdict(list)  # (request, ISP) -> pairs
        for i in chosen:
            o, r, t = self.pairs[i]
            rows[(r, t)].append(i)
        linking = [members for (r, _t), members in rows.items()
                   if sum(caps[i] for i in members) > self.requests[r].power_w]
        inside = set(chosen)
        for key, members in self.lit.items():
            present = [i for i in members if i in inside]
            if sum(caps[i] for i in present) > self.lit_cap(key):
                linking.append(present)
        components = _Components(n)
        for members in linking:
            for i in members[1:]:
                components.union(self.pairs[members[0]][0], self.pairs[i][0])
        trading = {self.pairs[i][0] for i in chosen}
        for group in self.exclusive:
            present = [o for o in group if o in trading]
            for o in present[1:]:
                components.union(present[0], o)
        groups: dict[int, list[int]] = defaultdict(list)
        for i in chosen:
            groups[components.find(self.pairs[i][0])].append(i)
        return dict(sorted(groups.items()))

    def lit_cap(self, key: tuple[int, int, Direction]) -> int:
        light = self.inp.lights[key]
        return 0 if light.colour is Colour.RED else light.capability_w

    def margin(self, i: int) -> int:
        o, r, _t = self.pairs[i]
        return self.requests[r].max_price - self.offers[o].price

    def problem(self, members: list[int], tso_objective: bool, holds: list[tuple[list[int], int]],
                integer: bool, bounds: _Bounds | None = None) -> StageProblem:
        local_offers: dict[int, int] = {}
        local_requests: dict[int, int] = {}
        problem = StageProblem([], [], [], tso_objective=tso_objective, integer=integer)
        isp = self.inp.isp_seconds
        index_of_pair: dict[int, int] = {}
        for i in members:
            o, r, t = self.pairs[i]
            offer, request = self.offers[o], self.requests[r]
            if o not in local_offers:
                local_offers[o] = len(problem.offers)
                minimum = {Mode.DIVISIBLE: 0, Mode.MIN_QUANTITY: min(offer.min_power_w, offer.power_w),
                           Mode.ALL_OR_NOTHING: offer.power_w}[offer.mode]
                problem.offers.append(OfferSlot(local_offers[o], _isps(offer.start, offer.isps, isp), offer.isps > 1,
                                                offer.power_w, minimum, offer.mode, offer.price))
            if r not in local_requests:
                local_requests[r] = len(problem.requests)
                problem.requests.append(RequestSlot(local_requests[r], _isps(request.start, request.isps, isp),
                                                    request.power_w))
            index_of_pair[i] = len(problem.pairs)
            problem.pairs.append(Pair(local_offers[o], local_requests[r], t, request.max_price - offer.price,
                                      self.tso[i]))
        for g in sorted({g for o in local_offers for g in self.exclusive_of_offer.get(o, ())}):
            local = [local_offers[o] for o in self.exclusive[g] if o in local_offers]
            if len(local) > 1:
                problem.exclusive.append(local)
        lit_keys = {key for i in members for key in self.lit_of_pair.get(i, ())}
        for key in sorted(lit_keys):
            inside = [index_of_pair[i] for i in self.lit[key] if i in index_of_pair]
            problem.light_caps.append((inside, self.lit_cap(key)))
        problem.holds = [([index_of_pair[i] for i in chosen], hold) for chosen, hold in holds]
        if bounds is not None:
            problem.pair_bounds = {index_of_pair[i]: b for i, b in bounds.pairs.items() if i in index_of_pair}
            problem.binary_bounds = {local_offers[o]: b for o, b in bounds.binary.items() if o in local_offers}
            problem.level_bounds = {local_offers[o]: b for o, b in bounds.level.items() if o in local_offers}
        return problem


def _solve(book: _Book, members: list[int], tso_objective: bool, holds: list[tuple[list[int], int]],
           deadline: float, stats: SolverStats,
           builder: Callable[[StageProblem], BuiltModel | HighsModel] = build_highs,
           bounds: _Bounds | None = None, start: dict[int, int] | None = None) -> dict[int, int]:
    """One stage of some components, to a proven optimum in whole watts. The continuous model is
    solved first: its optimum bounds the whole-watt one, so when it lies on whole watts (the usual
    case: the constraints are sums with unit coefficients and whole-watt right-hand sides) it is
    the whole-watt optimum. Otherwise (or when HiGHS's tolerances make stage 2's hold infeasible
    or let it slip) the model is solved again with integer powers. ``start``: a feasible point,
    watts by pair, for HiGHS to start from."""
    local = {i: k for k, i in enumerate(members)}
    local_start = {local[i]: w for i, w in (start or {}).items() if i in local}
    for integer in (False, True):
        problem = book.problem(members, tso_objective, holds, integer, bounds)
        built_at = time.perf_counter()
        built = builder(problem)
        stats.build_seconds += time.perf_counter() - built_at
        stats.variables += len(problem.pairs) + built.binaries
        stats.binaries += built.binaries
        stats.constraints += built.constraints
        try:
            solved = _solve_from(built, local_start, deadline)
        except (InfeasibleError, NumericalError) as e:
            log.debug("stage %d, %d pairs, integer %s: %s", 1 + tso_objective, len(members), integer, e)
            if integer or not holds:
                raise
            continue
        stats.solve_seconds += solved.seconds
        rounded = [round(v) for v in solved.x]
        whole = all(abs(v - w) <= WHOLE_WATT_TOLERANCE for v, w in zip(solved.x, rounded, strict=True))
        held = all(sum(book.margin(i) * rounded[local[i]] for i in chosen) >= hold for chosen, hold in holds)
        log.debug("stage %d, %d pairs, integer %s: %s in %.2f s, whole %s, held %s", 1 + tso_objective, len(members),
                  integer, solved.status, solved.seconds, whole, held)
        if not integer and not (whole and held):
            continue
        value = sum(w * p.margin for w, p in zip(rounded, problem.pairs, strict=True) if p.tso is tso_objective)
        gap = 0.0 if not math.isfinite(solved.bound) or solved.bound - value <= ABS_GAP else \
            (solved.bound - value) / max(abs(value), 1)
        stats.gap = max(stats.gap, gap)
        if not solved.optimal or gap > 0 or not whole:
            stats.optimal = False
            stats.status = solved.status if not solved.optimal else "gap"
        return {i: w for i, w in zip(members, rounded, strict=True) if w > 0}
    raise AssertionError("unreachable: the integer model is always accepted")


def _solve_from(built: BuiltModel | HighsModel, start: dict[int, int], deadline: float) -> Solved:
    """HiGHS from a starting point, and again without it unless that ended proven optimal by the
    point it returned (HiGHS 1.16 once returned a starting point as its optimum with another
    point's objective: the proof is checked against the point, never taken on trust)."""
    if not start or not isinstance(built, HighsModel):
        return solve(built, time_limit=deadline - time.perf_counter())
    try:
        solved = solve(built, time_limit=deadline - time.perf_counter(), start=start)
        objective = built.problem.tso_objective
        value = sum(round(v) * p.margin for v, p in zip(solved.x, built.problem.pairs, strict=True) if p.tso is objective)
        if solved.optimal and solved.bound - value <= ABS_GAP:
            return solved
        log.debug("from the starting point: %s, bound %s, value %s; solving again without it",
                  solved.status, solved.bound, value)
    except SolverError as e:
        log.debug("from the starting point: %s; solving again without it", e)
    return solve(built, time_limit=deadline - time.perf_counter())


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
    # Award's own order (its fields in turn), by a key: a third of the time of comparing dataclasses
    return sorted(awards, key=lambda a: (a.request_id, a.isp_start, a.offer_key, a.power_w, a.price))
