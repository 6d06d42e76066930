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
from clearing_reference import RefOffer, RefRequest, solve_reference

from flexledger.optimiser import BuyerKind, ClearingInput, ClearingResult, OfferIn, RequestIn, clear
from flexledger.rules.clearing import stage_welfare, violations
from flexledger.rules.lights import Colour, Direction, Light
from flexledger.rules.market import PricingRule
from flexledger.rules.orders import Mode

DAY = 1_800_000_000 - 1_800_000_000 % 86_400
ISP = 900
BOOKS = int(os.environ.get("FLEXLEDGER_TEST_CLEARING_BOOKS", "300"))


def random_book(rng: random.Random) -> ClearingInput:
    """5-40 offers, 1-8 requests, a zone tree of depth 2-4, lights, blocks, every mode and both
    pricing rules; prices on a coarse grid so that equal margins and prices at the maximum occur."""
    depth = rng.randint(2, 4)
    parent = {1: 0}
    level = [1]
    for _ in range(depth - 1):
        level = [z for z0 in level for z in range(len(parent) + 1, len(parent) + 1 + rng.randint(1, 2))
                 if not parent.update({z: z0})]
    zones = sorted(parent)
    isps = 4
    offers = []
    for k in range(rng.randint(5, 40)):
        length = rng.choice((1, 1, 1, 2, 3))
        mode = rng.choice(list(Mode))
        power = rng.choice((rng.randint(1, 10) * 1000, rng.randint(1, 9_999)))
        minimum = {Mode.DIVISIBLE: 0, Mode.MIN_QUANTITY: rng.randint(1, power), Mode.ALL_OR_NOTHING: power}[mode]
        assets = tuple(sorted(rng.sample(range(1, 13), rng.choice((1, 1, 1, 2)))))
        offers.append(OfferIn(f"{k:04x}", rng.choice(zones), DAY + rng.randint(0, isps - length) * ISP, length,
                              Direction.UP if rng.random() < 0.8 else Direction.DOWN, power,
                              rng.randint(1, 10) * 10, mode, minimum, assets))
    requests = []
    for r in range(rng.randint(1, 8)):
        length = rng.randint(1, isps)
        requests.append(RequestIn(r + 1, rng.choice(list(BuyerKind)), rng.choice(zones),
                                  DAY + rng.randint(0, isps - length) * ISP, length,
                                  Direction.UP if rng.random() < 0.8 else Direction.DOWN,
                                  rng.choice((rng.randint(1, 20) * 1000, rng.randint(1, 19_999))), rng.randint(1, 12) * 10))
    lights = {}
    for _ in range(rng.randint(0, 6)):
        light = rng.choice([Light(Colour.RED), Light(Colour.YELLOW, 0), Light(Colour.YELLOW, rng.randint(1, 8_000)),
                            Light(Colour.YELLOW, rng.randint(1, 8) * 1000)])
        lights[(rng.choice(zones), DAY + rng.randint(0, isps - 1) * ISP,
                Direction.UP if rng.random() < 0.8 else Direction.DOWN)] = light
    return ClearingInput(offers, requests, parent, lights, isp_seconds=ISP,
                         pricing=rng.choice(list(PricingRule)), time_limit=60)


def reference(inp: ClearingInput):  # type: ignore[no-untyped-def]
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


@pytest.mark.parametrize("chunk", range(10))
def test_both_stages_match_an_independent_model(chunk: int) -> None:
    for seed in range(chunk, BOOKS, 10):
        inp = random_book(random.Random(seed))
        try:
            check(inp, clear(inp))
        except AssertionError as e:
            raise AssertionError(f"book seed {seed}: {e}") from e
