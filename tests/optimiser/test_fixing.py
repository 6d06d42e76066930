"""Bounds proven from an LP relaxation's duals (optimiser/flexledger/optimiser/fixing.py): exact on a
model worked by hand, and on random models never violated by a solution worth the optimum, even
with the duals spoiled (they only weaken the bounds, never make them wrong)."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest

from flexledger.optimiser.fixing import proven_bounds
from flexledger.optimiser.highs_build import HighsModel, build_highs
from flexledger.optimiser.model import OfferSlot, Pair, RequestSlot, StageProblem
from flexledger.optimiser.solve import InfeasibleError, relaxation_duals, solve
from flexledger.rules.orders import Mode

ISPS = [0, 900, 1800]


def two_offers_one_request() -> StageProblem:
    """Offers A (3,000 W, margin 3) and B (3,000 W, margin 2) for a request of 4,000 W: the
    optimum gives A 3,000 and B 1,000 (11,000); the request's dual is 2, A's reduced cost 1."""
    return StageProblem([OfferSlot(0, [0], False, 3_000, 0, Mode.DIVISIBLE, 10),
                         OfferSlot(1, [0], False, 3_000, 0, Mode.DIVISIBLE, 11)],
                        [RequestSlot(0, [0], 4_000)], [Pair(0, 0, 0, 3, False), Pair(1, 0, 0, 2, False)])


def test_bounds_by_hand() -> None:
    model = build_highs(two_offers_one_request())
    duals = relaxation_duals(model, time_limit=10)
    assert duals is not None
    lower, upper = proven_bounds(model, duals, 11_000) or ([], [])
    assert (lower, upper) == ([3_000, 0], [3_000, 3_000])  # A is fixed at its power; B stays free
    lower, upper = proven_bounds(model, duals, 10_000) or ([], [])
    assert (lower, upper) == ([2_000, 0], [3_000, 3_000])  # 1,000 to spare: A may give up 1,000 W
    assert proven_bounds(model, duals, 11_001) is None  # more than the LP's bound: a wrong worth


def test_duals_that_press_on_an_infinite_side_are_dropped() -> None:
    model = build_highs(two_offers_one_request())
    # the request row has no lower side: a negative multiplier there proves nothing and is ignored
    lower, upper = proven_bounds(model, [-5.0] * len(model.row_lower), 0) or ([], [])
    assert (lower, upper) == ([0, 0], [3_000, 3_000])


def random_problem(rng: random.Random) -> StageProblem:
    offers = []
    for k in range(rng.randint(2, 7)):
        first = rng.randrange(len(ISPS))
        isps = ISPS[first:first + rng.choice((1, 1, 2, 3))]
        mode = rng.choice(list(Mode))
        cap = rng.randint(1, 9) * 500 + rng.choice((0, rng.randint(1, 499)))
        minimum = {Mode.DIVISIBLE: 0, Mode.MIN_QUANTITY: rng.randint(1, cap), Mode.ALL_OR_NOTHING: cap}[mode]
        offers.append(OfferSlot(k, isps, len(isps) > 1, cap, minimum, mode, 0))
    requests = [RequestSlot(r, ISPS, rng.randint(1, 12) * 500) for r in range(rng.randint(1, 3))]
    pairs = [Pair(o.index, r.index, t, rng.randint(0, 6), False) for o in offers for r in requests for t in o.isps
             if rng.random() < 0.8]
    shared = rng.sample([o.index for o in offers], 2) if rng.random() < 0.3 else []
    return StageProblem(offers, requests, pairs, exclusive=[shared] if shared else [])


def forced_outside(model: HighsModel, column: int, lower: int, upper: int) -> list[HighsModel]:
    """Copies of the model with the column just past each proven bound that is tighter than its own."""
    out = []
    if lower > model.col_lower[column]:
        out.append(replace(model, col_upper=np.where(np.arange(model.columns) == column, lower - 1, model.col_upper)))
    if upper < model.col_upper[column]:
        out.append(replace(model, col_lower=np.where(np.arange(model.columns) == column, upper + 1, model.col_lower)))
    return out


@pytest.mark.parametrize("spoil", [False, True])
def test_no_solution_worth_the_optimum_breaks_a_proven_bound(spoil: bool) -> None:
    """For every column whose bound was tightened, the model with that column forced past the bound
    (in whole watts) is infeasible or worth less than the optimum; spoiled duals change nothing."""
    rng = random.Random(7 + spoil)
    tightened = 0
    for _ in range(60):
        problem = random_problem(rng)
        if not problem.pairs:
            continue
        whole = build_highs(replace(problem, integer=True))
        optimum = solve(whole, time_limit=10)
        assert optimum.optimal
        worth = round(optimum.objective)
        duals = relaxation_duals(build_highs(problem), time_limit=10)
        assert duals is not None
        if spoil:
            duals = [d * rng.uniform(0.9, 1.1) + rng.uniform(-0.01, 0.01) for d in duals]
        proven = proven_bounds(whole, duals, worth)
        if proven is None:
            continue
        for column, (lower, upper) in enumerate(zip(*proven, strict=True)):
            for outside in forced_outside(whole, column, lower, upper):
                tightened += 1
                try:
                    beyond = solve(outside, time_limit=10)
                except InfeasibleError:
                    continue
                assert beyond.optimal and beyond.objective < worth - 0.5, (problem, column, lower, upper)
    assert tightened > 20, "the random models should tighten some bounds"
