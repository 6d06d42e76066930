"""The clearing model of one component and one stage written straight into HiGHS's matrix: the
same variables, constraints and objective as :func:`.model.build` (whose pyomo statement is the
readable one, and the rules' text), in numpy arrays rather than one Python object per variable
and per constraint. Building and handing over a pyomo model took two thirds of a 100,000-offer
day; this build takes a small part of it. ``tests/optimiser/test_clearing_builds.py`` holds the two builds
to the same optimum, both stages, on random books.

Columns: ``x`` (one per pair, in the problem's order), then ``y`` (one binary per offer that has a
minimum or shares an asset, in offer order), then ``b`` (one level per block offer, in offer order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .model import StageProblem

INF = float("inf")  # HiGHS reads any bound of 1e20 or more as infinite; inf is such a bound
ISP_KEY = 1 << 32  # (index, ISP) -> one int64 key: index * ISP_KEY + seconds since the first ISP

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass
class HighsModel:
    """A model as HiGHS's ``passModel`` takes it: columns, rows, and the matrix column-wise."""

    problem: StageProblem
    col_cost: FloatArray
    col_lower: FloatArray
    col_upper: FloatArray
    integrality: npt.NDArray[np.int32]  # 0 continuous, 1 integer
    row_lower: FloatArray
    row_upper: FloatArray
    matrix_start: npt.NDArray[np.int32]
    index: npt.NDArray[np.int32]
    value: FloatArray
    binaries: int
    constraints: int
    binary_offers: IntArray  # the offer (index) of each binary column, in column order
    block_offers: IntArray  # the offer (index) of each block level column, in column order

    @property
    def columns(self) -> int:
        return len(self.col_cost)

    def point(self, watts: dict[int, int]) -> FloatArray:
        """Every column's value at the point where pair k has ``watts[k]`` W (the others 0): an
        offer's binary 1 where it is given any power, a block's level its power in its first ISP."""
        pairs = self.problem.pairs
        n = len(pairs)
        value = np.zeros(self.columns)
        value[list(watts)] = list(watts.values())
        offer = np.fromiter((p.offer for p in pairs), np.int64, n)
        level = np.bincount(offer, weights=value[:n], minlength=len(self.problem.offers))
        value[n:n + len(self.binary_offers)] = level[self.binary_offers] > 0
        first_isp = np.full(len(self.problem.offers), -1, dtype=np.int64)
        first_isp[self.block_offers] = [self.problem.offers[o].isps[0] for o in self.block_offers.tolist()]
        in_first = np.fromiter((p.isp for p in pairs), np.int64, n) == first_isp[offer]
        block_level = np.bincount(offer[in_first], weights=value[:n][in_first], minlength=len(self.problem.offers))
        value[n + len(self.binary_offers):] = block_level[self.block_offers]
        return value


class _Rows:
    """Rows added in blocks: per block the row bounds and the (row, column, coefficient) entries."""

    def __init__(self) -> None:
        self.count = 0
        self.lower: list[FloatArray] = []
        self.upper: list[FloatArray] = []
        self.rows: list[IntArray] = []
        self.cols: list[IntArray] = []
        self.vals: list[FloatArray] = []

    def add(self, lower: npt.ArrayLike, upper: npt.ArrayLike, rows: IntArray, cols: IntArray,
            vals: npt.ArrayLike) -> None:
        """Rows numbered 0..n-1 within this block (``rows`` refers to them), n = len(lower)."""
        lo = np.asarray(lower, dtype=np.float64)
        self.lower.append(lo)
        self.upper.append(np.broadcast_to(np.asarray(upper, dtype=np.float64), lo.shape))
        self.rows.append(np.asarray(rows, dtype=np.int64) + self.count)
        self.cols.append(np.asarray(cols, dtype=np.int64))
        self.vals.append(np.broadcast_to(np.asarray(vals, dtype=np.float64), (len(rows),)))
        self.count += len(lo)


def _ints(parts: list[IntArray]) -> IntArray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _floats(parts: list[FloatArray]) -> FloatArray:
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float64)


def build_highs(problem: StageProblem) -> HighsModel:
    """The model of :func:`.model.build`, column for column and row for row in meaning (the rows'
    order differs: grouped by kind here, by offer there)."""
    pairs = problem.pairs
    n = len(pairs)
    po = np.fromiter((p.offer for p in pairs), np.int64, n)
    pr = np.fromiter((p.request for p in pairs), np.int64, n)
    pt = np.fromiter((p.isp for p in pairs), np.int64, n)
    margin = np.fromiter((p.margin for p in pairs), np.int64, n)
    tso = np.fromiter((p.tso for p in pairs), np.bool_, n)
    offers = problem.offers
    cap = np.array([s.cap_w for s in offers], dtype=np.int64)
    minimum = np.array([s.min_w for s in offers], dtype=np.int64)
    used = np.zeros(len(offers), dtype=np.bool_)
    used[po] = True
    shared = np.zeros(len(offers), dtype=np.bool_)
    shared[[o for group in problem.exclusive for o in group]] = True
    block = np.array([s.block for s in offers], dtype=np.bool_) & used
    binary = used & ((minimum > 0) | shared)
    binary_offers, block_offers = np.flatnonzero(binary), np.flatnonzero(block)
    y_col = np.full(len(offers), -1, dtype=np.int64)
    y_col[binary_offers] = n + np.arange(len(binary_offers))
    b_col = np.full(len(offers), -1, dtype=np.int64)
    b_col[block_offers] = n + len(binary_offers) + np.arange(len(block_offers))
    request_power = np.array([r.power_w for r in problem.requests], dtype=np.int64)
    columns = n + len(binary_offers) + len(block_offers)

    col_lower = np.zeros(columns)
    col_upper = np.concatenate([np.minimum(cap[po], request_power[pr]), np.ones(len(binary_offers)),
                                cap[block_offers]]).astype(np.float64)
    integrality = np.zeros(columns, dtype=np.int32)
    integrality[n:n + len(binary_offers)] = 1
    if problem.integer:
        integrality[:n] = 1
    for bounds, col_of in ((problem.pair_bounds, np.arange(n)), (problem.binary_bounds, y_col), (problem.level_bounds, b_col)):
        for k, (lo, hi) in bounds.items():
            if col_of[k] >= 0:
                col_lower[col_of[k]] = max(col_lower[col_of[k]], lo)
                col_upper[col_of[k]] = min(col_upper[col_of[k]], hi)
    chosen = tso == problem.tso_objective
    col_cost = np.zeros(columns)
    col_cost[:n] = np.where(chosen, margin, 0)

    rows = _Rows()
    x = np.arange(n, dtype=np.int64)
    first = min((min(s.isps) for s in offers), default=0)
    # a block offer's pairs in each of its ISPs add up to its level b (an ISP without an eligible
    # request forces 0): one row per block offer and ISP of its window
    block_isps = [(o, t) for o in block_offers.tolist() for t in offers[o].isps]
    if block_isps:
        keys = np.array([o * ISP_KEY + t - first for o, t in block_isps], dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        in_block = block[po]
        row_of_pair = order[np.searchsorted(keys[order], po[in_block] * ISP_KEY + pt[in_block] - first)]
        owners = np.array([o for o, _t in block_isps], dtype=np.int64)
        count = len(block_isps)
        rows.add(np.zeros(count), 0.0, np.concatenate([row_of_pair, np.arange(count)]),
                 np.concatenate([x[in_block], b_col[owners]]),
                 np.concatenate([np.ones(int(in_block.sum())), -np.ones(count)]))
    # an offer's level: b for a block, else its pairs' sum (a single-ISP offer's pairs are all in
    # that ISP); rows over it for the minimum (level >= min y) and the power (level <= cap y, or cap)
    single = ~block[po]

    def level_rows(kind: npt.NDArray[np.bool_], lower: FloatArray, upper: FloatArray | float,
                   y_coef: FloatArray | None) -> None:
        owners = np.flatnonzero(kind)
        row_of = np.full(len(offers), -1, dtype=np.int64)
        row_of[owners] = np.arange(len(owners))
        by_pairs = single & kind[po]
        blocks = owners[block[owners]]
        parts_r, parts_c, parts_v = [row_of[po[by_pairs]], row_of[blocks]], [x[by_pairs], b_col[blocks]], \
            [np.ones(int(by_pairs.sum())), np.ones(len(blocks))]
        if y_coef is not None:
            parts_r.append(row_of[owners])
            parts_c.append(y_col[owners])
            parts_v.append(y_coef)
        rows.add(lower, upper, np.concatenate(parts_r), np.concatenate(parts_c), np.concatenate(parts_v))

    with_minimum = used & (minimum > 0)
    level_rows(with_minimum, np.zeros(int(with_minimum.sum())), INF, -minimum[with_minimum].astype(np.float64))
    level_rows(binary, np.full(len(binary_offers), -INF), 0.0, -cap[binary].astype(np.float64))
    capped = used & ~binary & ~block
    level_rows(capped, np.full(int(capped.sum()), -INF), cap[capped].astype(np.float64), None)

    # each request's power per ISP
    keys = pr * ISP_KEY + pt - first
    unique, row_of_pair = np.unique(keys, return_inverse=True)
    rows.add(np.full(len(unique), -INF), request_power[unique // ISP_KEY].astype(np.float64), row_of_pair.ravel(), x, 1.0)
    # each lit zone's TSO capability
    if problem.light_caps:
        sizes = [len(members) for members, _cap in problem.light_caps]
        rows.add(np.full(len(sizes), -INF), [c for _members, c in problem.light_caps],
                 np.repeat(np.arange(len(sizes)), sizes),
                 np.fromiter((i for members, _cap in problem.light_caps for i in members), np.int64, sum(sizes)), 1.0)
    # at most one offer awarded per asset and ISP
    groups = [[o for o in group if binary[o]] for group in problem.exclusive]
    groups = [g for g in groups if len(g) > 1]
    if groups:
        sizes = [len(g) for g in groups]
        rows.add(np.full(len(groups), -INF), 1.0, np.repeat(np.arange(len(groups)), sizes),
                 y_col[np.fromiter((o for g in groups for o in g), np.int64, sum(sizes))], 1.0)
    # stage 2: the DSO welfare held, as in model.build (exactly, or half a unit below in integers)
    holds = [(np.array([i for i in members if pairs[i].margin > 0], dtype=np.int64), hold)
             for members, hold in problem.holds if hold > 0]
    if holds:
        sizes = [len(members) for members, _hold in holds]
        held = np.concatenate([members for members, _hold in holds])
        rows.add([hold - 0.5 if problem.integer else hold for _members, hold in holds], INF,
                 np.repeat(np.arange(len(holds)), sizes), held, margin[held].astype(np.float64))

    row_index = _ints(rows.rows)
    col_index = _ints(rows.cols)
    values = _floats(rows.vals)
    order = np.lexsort((row_index, col_index))
    col_start = np.zeros(columns + 1, dtype=np.int64)
    np.cumsum(np.bincount(col_index, minlength=columns), out=col_start[1:])
    return HighsModel(
        problem, col_cost, col_lower, col_upper, integrality,
        _floats(rows.lower), _floats(rows.upper),
        col_start.astype(np.int32), row_index[order].astype(np.int32), values[order],
        len(binary_offers), rows.count, binary_offers, block_offers)
