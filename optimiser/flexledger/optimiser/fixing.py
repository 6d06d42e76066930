"""Reduced-cost fixing, proven in exact integer arithmetic: bounds that every solution of a model
worth at least a given value keeps, read from the duals of the model's LP relaxation.

Stage 2 may use them. Its feasible set, restricted to a stage-1 model's columns, lies inside that
model's solutions worth at least stage 1's result (the DSO welfare is held there), so the bounds of
those solutions hold in stage 2 too. On the dense day they fix or tighten a third of stage 2's
columns and cut its largest models' time by a factor of two to ten (BENCHMARKS.md).

The argument, for ``max c.x`` over ``L <= A x <= U``, ``l <= x <= u`` and any multipliers ``p``
(``p_i > 0`` only where ``U_i`` is finite, ``p_i < 0`` only where ``L_i`` is): with ``d = c - A'p``,
``c.x = p.(A x) + d.x <= sum_i max(p_i L_i, p_i U_i) + sum_j max(d_j l_j, d_j u_j) = B``. A
solution worth at least ``Z`` loses at most ``G = B - Z`` against ``B`` in each column's term, so
``d_j > 0`` gives ``x_j >= u_j - G / d_j`` and ``d_j < 0`` gives ``x_j <= l_j + G / -d_j``. The
duals HiGHS returns are floats: they are rounded to multiples of 2^-20, and ``d``, ``B`` and ``G``
computed from those exactly (Python integers), so the bounds are proven whatever the LP's
tolerances did; poor duals only make them weaker. The model's data must be whole numbers (the
clearing's are: watts, prices, 0 and 1), and so are the bounds (floored: the clearing's solutions
are in whole watts).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .highs_build import HighsModel

DUAL_SCALE = 1 << 20  # duals are rounded to multiples of 1 / DUAL_SCALE
INT64_ROOM = float(1 << 62)  # products below this magnitude are exact in int64


def proven_bounds(model: HighsModel, row_dual: npt.ArrayLike, worth: int) -> tuple[list[int], list[int]] | None:
    """Per column of ``model`` (a maximisation), the lower and upper bounds that every solution in
    whole numbers worth at least ``worth`` keeps, from the LP relaxation's row duals; None when the
    model's data are not whole numbers or the duals prove nothing (too large to use exactly, or a
    bound below ``worth``, which a correct ``worth`` never gives)."""
    data = (model.col_cost, model.col_lower, model.col_upper, model.value)
    if not all(np.all(np.isfinite(a)) and np.all(a == np.rint(a)) for a in data):
        return None
    lower_row, upper_row = model.row_lower, model.row_upper
    sides = np.concatenate([lower_row, upper_row])
    if np.any(sides[np.isfinite(sides)] != np.rint(sides[np.isfinite(sides)])):
        return None
    dual = np.asarray(row_dual, dtype=np.float64) * DUAL_SCALE
    if not np.all(np.isfinite(dual)) or (len(dual) and np.max(np.abs(dual)) >= INT64_ROOM):
        return None
    p = np.rint(dual).astype(np.int64)
    # a multiplier may press only on a finite side of its row
    p[(p > 0) & ~np.isfinite(upper_row)] = 0
    p[(p < 0) & ~np.isfinite(lower_row)] = 0
    columns = model.columns
    count: npt.NDArray[np.int64] = np.diff(model.matrix_start).astype(np.int64)
    value = model.value.astype(np.int64)
    reach = float(np.max(np.abs(value), initial=0)) * float(np.max(np.abs(p), initial=0)) * float(np.max(count, initial=0))
    cost = model.col_cost.astype(np.int64)
    if reach + float(np.max(np.abs(cost), initial=0)) * DUAL_SCALE >= INT64_ROOM:
        return None
    column_of = np.repeat(np.arange(columns), count)
    pressed = np.zeros(columns, dtype=np.int64)
    np.add.at(pressed, column_of, value * p[model.index])
    d = (cost * DUAL_SCALE - pressed).tolist()
    lo = model.col_lower.astype(np.int64).tolist()
    up = model.col_upper.astype(np.int64).tolist()
    side = np.where(p > 0, upper_row, np.where(p < 0, lower_row, 0.0)).astype(np.int64)
    # Python integers from here: exact whatever the sizes
    bound = sum(pi * si for pi, si in zip(p.tolist(), side.tolist(), strict=True) if pi) + \
        sum(max(dj * lj, dj * uj) for dj, lj, uj in zip(d, lo, up, strict=True))
    slack = bound - worth * DUAL_SCALE
    if slack < 0:
        return None
    new_lo, new_up = list(lo), list(up)
    for j, dj in enumerate(d):
        if dj > 0:
            new_lo[j] = max(lo[j], up[j] - slack // dj)
        elif dj < 0:
            new_up[j] = min(up[j], lo[j] + slack // -dj)
    return new_lo, new_up
