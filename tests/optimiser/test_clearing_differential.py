"""The optimiser against an independent formulation of the same rules (tests/clearing_reference.py,
a direct highspy model in whole watts) on random small books: both stages' values must agree
exactly, under the chain's ranking (DSO welfare first, then TSO welfare), and every result must be
feasible by the Python rules. 300 books in the default run; set FLEXLEDGER_TEST_CLEARING_BOOKS
(e.g. 5000) for more.
"""

from __future__ import annotations

import os
import random

import pytest
from clearing_books import random_book
from clearing_reference import RefOffer, RefRequest, RefResult, solve_reference

from flexledger.optimiser import BuyerKind, ClearingInput, ClearingResult, clear
from flexledger.rules.clearing import stage_welfare, violations

BOOKS = int(os.environ.get("FLEXLEDGER_TEST_CLEARING_BOOKS", "300"))


def reference(inp: ClearingInput) -> RefResult:
    offers = [RefOffer(o.key, o.zone, o.start, o.isps, o.direction, o.power_w, o.price, o.mode, o.min_power_w, o.assets)
              for o in inp.offers]
    requests = [RefRequest(r.request_id, r.kind is BuyerKind.TSO, r.zone, r.start, r.isps, r.direction, r.power_w,
                           r.max_price) for r in inp.requests]
    return solve_reference(offers, requests, inp.parent, inp.lights, inp.isp_seconds)


def check(inp: ClearingInput, result: ClearingResult) -> None:
    assert violations(inp.offers, inp.requests, result.awards, parent=inp.parent, lights=inp.lights,
                      isp_seconds=inp.isp_seconds) == []
    assert result.stats.optimal, result.stats.status
    ref = reference(inp)
    assert ref.proven
    ours = stage_welfare(inp.offers, inp.requests, result.awards)
    assert ours == (ref.dso, ref.tso), f"optimiser (DSO, TSO) {ours}, independent model {(ref.dso, ref.tso)}"


def check_books(seeds: range) -> None:
    for seed in seeds:
        inp = random_book(random.Random(seed))
        try:
            check(inp, clear(inp))
        except AssertionError as e:
            raise AssertionError(f"book seed {seed}: {e}") from e


@pytest.mark.parametrize("chunk", range(10))
def test_both_stages_match_an_independent_model(chunk: int) -> None:
    check_books(range(chunk, BOOKS, 10))


@pytest.mark.parametrize("chunk", range(2))
def test_stage_two_with_bounds_from_every_stage_one_model(chunk: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Stage 2 bounded by every stage-1 model's LP duals (clearing.FIXING_PAIRS, on the dense day
    only the large components') reaches the same two optima as the independent model."""
    import flexledger.optimiser.clearing as clearing_module

    monkeypatch.setattr(clearing_module, "FIXING_PAIRS", 0)
    check_books(range(chunk, BOOKS, 3))
