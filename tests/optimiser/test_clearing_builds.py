"""The two builds of the clearing model, the pyomo statement (optimiser/flexledger/optimiser/model.py) and the matrix
written into HiGHS (optimiser/flexledger/optimiser/highs_build.py, the default), held to the same optimum on random
books: both stages' welfare exactly, both proven, both feasible by the Python rules. 100 books in
the default run; set FLEXLEDGER_TEST_CLEARING_BOOKS for more (the differential test's knob)."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
from clearing_books import random_book

import flexledger.optimiser.clearing as clearing_module
from flexledger.optimiser import clear
from flexledger.optimiser.clearing import BACKEND_ENV
from flexledger.optimiser.highs_build import build_highs
from flexledger.optimiser.model import OfferSlot, Pair, RequestSlot, StageProblem, build
from flexledger.optimiser.solve import SolverError
from flexledger.rules.clearing import stage_welfare, violations
from flexledger.rules.orders import Mode

BOOKS = min(int(os.environ.get("FLEXLEDGER_TEST_CLEARING_BOOKS", "100")), 1000)


@pytest.mark.parametrize("chunk", range(5))
def test_the_highs_build_and_the_pyomo_build_reach_the_same_optimum(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """In odd chunks stage 2 takes bounds proven from every stage-1 model (as the dense day's large
    components do), so that both builds apply them."""
    if chunk % 2:
        monkeypatch.setattr(clearing_module, "FIXING_PAIRS", 0)
    for seed in range(1000 + chunk, 1000 + BOOKS, 5):
        inp = random_book(random.Random(seed))
        values = {}
        for backend in ("highs", "pyomo"):
            result = clear(inp, backend=backend)
            assert result.stats.optimal, f"book seed {seed}, {backend}: {result.stats.status}"
            assert violations(inp.offers, inp.requests, result.awards, parent=inp.parent, lights=inp.lights,
                              isp_seconds=inp.isp_seconds) == [], f"book seed {seed}, {backend}"
            values[backend] = stage_welfare(inp.offers, inp.requests, result.awards)
        assert values["highs"] == values["pyomo"], f"book seed {seed}: (DSO, TSO) by build {values}"


def test_the_builds_agree_on_size() -> None:
    """One model, two builds: the same columns (pairs, binaries, block levels) and rows."""
    problem = StageProblem(
        [OfferSlot(0, [0, 900], True, 5_000, 2_000, Mode.MIN_QUANTITY, 10),
         OfferSlot(1, [0], False, 3_000, 0, Mode.DIVISIBLE, 20),
         OfferSlot(2, [900], False, 4_000, 4_000, Mode.ALL_OR_NOTHING, 30)],
        [RequestSlot(0, [0, 900], 6_000), RequestSlot(1, [0, 900], 9_000)],
        [Pair(0, 0, 0, 5, False), Pair(0, 1, 900, 7, True), Pair(1, 0, 0, 3, False), Pair(1, 1, 0, 1, True),
         Pair(2, 0, 900, 2, False), Pair(2, 1, 900, 4, True)],
        light_caps=[([1, 3, 5], 4_000)], exclusive=[[1, 2]], tso_objective=True, holds=[([0, 2, 4], 12_345)])
    pyomo_model, highs_model = build(problem), build_highs(problem)
    assert highs_model.binaries == pyomo_model.binaries == 3  # a minimum, all or nothing, a shared asset
    assert highs_model.constraints == pyomo_model.constraints
    assert highs_model.columns == len(problem.pairs) + pyomo_model.binaries + 1
    # the hold row: the DSO pairs' margins, at least the welfare held
    hold_row = int(np.flatnonzero(highs_model.row_lower == 12_345)[0])
    assert sorted(highs_model.value[highs_model.index == hold_row].tolist()) == [2.0, 3.0, 5.0]


def test_an_unknown_backend_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    inp = random_book(random.Random(1))
    with pytest.raises(SolverError, match="unknown clearing backend"):
        clear(inp, backend="cplex")  # type: ignore[arg-type]
    monkeypatch.setenv(BACKEND_ENV, "pyomo")
    assert clear(inp).stats.optimal


def test_models_shared_between_processes_give_the_same_awards(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large models are solved in two processes (clearing._solve_all): every model is solved as it
    would be alone, so the awards are those of one process."""
    books = [random_book(random.Random(seed)) for seed in range(2000, 2010)]
    monkeypatch.setattr(clearing_module, "BATCH_PAIRS", 1)  # a model per component
    alone = [clear(inp) for inp in books]
    monkeypatch.setattr(clearing_module, "PARALLEL_PAIRS", 1)  # every model counts as large
    pools = []

    class Pool(clearing_module.ProcessPoolExecutor):  # type: ignore[misc]
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            pools.append(args)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(clearing_module, "ProcessPoolExecutor", Pool)
    monkeypatch.setattr(clearing_module.os, "cpu_count", lambda: 2)
    for inp, expected in zip(books, alone, strict=True):
        shared = clear(inp)
        assert shared.awards == expected.awards
        assert shared.stats.optimal and shared.stats.variables == expected.stats.variables
    assert pools, "no book had two models to share"
