"""No single legal change to the optimiser's result ranks higher under the chain's ranking (more
DSO welfare, or the same and more TSO welfare), judged by the Python rules' feasibility check
(``flexledger.rules.clearing.violations``, which mirrors ClearingCommitment) on random small
books. The changes: one more watt, or all that is left, on an eligible pair; moving one watt or a
whole award to another request of the same offer and ISP, or to another offer for the same request
and ISP; and awarding an offer not yet awarded at its minimum or its full power in each of its
ISPs, to any eligible requests (a zero-margin award that completes a block among them).
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterator

import pytest
from clearing_books import random_book

from flexledger.optimiser import Award, ClearingInput, OfferIn, RequestIn, clear
from flexledger.rules.clearing import ranks_higher, stage_welfare, violations
from flexledger.rules.grid import path_to_root
from flexledger.rules.orders import Mode


def eligible(inp: ClearingInput, o: OfferIn, r: RequestIn) -> list[int]:
    """The ISPs at which offer o may serve request r (rule 3), none when it may not."""
    if o.direction != r.direction or o.price > r.max_price or r.zone not in path_to_root(inp.parent, o.zone):
        return []
    isp = inp.isp_seconds
    return sorted(set(range(o.start, o.start + o.isps * isp, isp)) & set(range(r.start, r.start + r.isps * isp, isp)))


def changes(inp: ClearingInput, awards: list[Award]) -> Iterator[list[Award]]:
    pairs = [(o, r, t) for o in inp.offers for r in inp.requests for t in eligible(inp, o, r)]
    for o, r, t in pairs:  # one more watt, or all the offer and request could take
        for w in (1, min(o.power_w, r.power_w)):
            yield [*awards, Award(r.request_id, t, o.key, w, o.price)]
    for k, a in enumerate(awards):
        rest = awards[:k] + awards[k + 1:]
        for o, r, t in pairs:
            if t != a.isp_start or (o.key == a.offer_key) == (r.request_id == a.request_id):
                continue  # the same offer to another request, or another offer to the same request
            for w in {1, a.power_w}:
                moved = [*rest, Award(r.request_id, t, o.key, w, o.price)]
                if w < a.power_w:
                    moved.append(Award(a.request_id, a.isp_start, a.offer_key, a.power_w - w, a.price))
                yield moved
    awarded = {a.offer_key for a in awards}
    for o in inp.offers:
        if o.key in awarded:
            continue
        per_isp: dict[int, list[RequestIn]] = defaultdict(list)
        for r in inp.requests:
            for t in eligible(inp, o, r):
                per_isp[t].append(r)
        if len(per_isp) != o.isps:
            continue
        level = {Mode.DIVISIBLE: 1, Mode.MIN_QUANTITY: o.min_power_w, Mode.ALL_OR_NOTHING: o.power_w}[o.mode]
        for w in {level, o.power_w}:
            for chosen in itertools.islice(itertools.product(*per_isp.values()), 64):
                yield [*awards, *(Award(r.request_id, t, o.key, w, o.price)
                                  for t, r in zip(per_isp, chosen, strict=True))]


@pytest.mark.parametrize("seed", range(40))
def test_no_single_legal_change_ranks_higher(seed: int) -> None:
    inp = random_book(random.Random(10_000 + seed))
    result = clear(inp)
    base = stage_welfare(inp.offers, inp.requests, result.awards)
    assert violations(inp.offers, inp.requests, result.awards, parent=inp.parent, lights=inp.lights,
                      isp_seconds=inp.isp_seconds) == []
    for trial in changes(inp, list(result.awards)):
        if violations(inp.offers, inp.requests, trial, parent=inp.parent, lights=inp.lights,
                      isp_seconds=inp.isp_seconds):
            continue
        better = stage_welfare(inp.offers, inp.requests, trial)
        assert not ranks_higher(better, base), f"{sorted(trial)} ranks {better} above the optimiser's {base}"
