"""RT-3 (outside review, 2026-12-07), the Python rules' side: one asset's meter is sold at most
once per ISP. A newer offer of the same asset or portfolio whose window overlaps an older one
replaces it in either direction; the feasibility rules name a result that sells one meter twice.
(The contract's side: contracts/test/redteam/SameAsset.t.sol; the optimiser's: tests/optimiser/test_optimiser.py;
the chain, optimiser and auditor together: tests/market/clearing/test_clearing_commitment.py.)"""

from __future__ import annotations

from dataclasses import replace

from flexledger.optimiser import Award, BuyerKind, OfferIn, RequestIn
from flexledger.rules.clearing import violations
from flexledger.rules.lights import Direction
from flexledger.rules.orders import (
    BaselineMethod,
    Mode,
    Offer,
    newest_overlapping,
    offers_in_force,
    overlapping_pairs,
)

ISP = 900
H8 = 1_800_000_000 - 1_800_000_000 % 86_400 + 8 * 3600


def offer(nonce: int, start: int, isps: int, direction: int = 0, *, asset: int = 6, portfolio: int = 0,
          market: int = 1) -> Offer:
    return Offer(market, asset if not portfolio else 0, portfolio, start, isps, direction, 10_000, 10_000,
                 Mode.DIVISIBLE, 0, BaselineMethod.COMMITTED, bytes(32), H8 + 86_400, nonce)


def test_rt3_a_newer_overlapping_offer_replaces_the_older_in_either_direction() -> None:
    single = offer(1, H8, 1)  # 08:00
    block = offer(2, H8, 2)  # 08:00 x2: the review's pair
    later = offer(3, H8 + 2 * ISP, 1, 1)  # 08:30 DOWN: next to the block, no overlap
    down = offer(4, H8 + ISP, 1, 1)  # 08:15 DOWN: inside the block
    accepted = [single, block, later, down]
    assert newest_overlapping(single, accepted, ISP) == block  # 08:15 DOWN starts where it ends
    assert newest_overlapping(block, accepted, ISP) == down
    assert offers_in_force(accepted, ISP) == [later, down]
    assert offers_in_force([single, block], ISP) == [block]
    assert set(map(frozenset, overlapping_pairs(accepted, ISP))) == {
        frozenset(p) for p in [(single, block), (block, down)]}


def test_rt3_the_rule_is_per_asset_or_portfolio_and_market() -> None:
    mine, other_asset = offer(1, H8, 2), offer(2, H8, 2, asset=7)
    pooled, pooled_again = offer(1, H8, 1, portfolio=3), offer(2, H8 + ISP, 2, portfolio=3)
    elsewhere = offer(3, H8, 2, market=2)
    accepted = [mine, other_asset, pooled, pooled_again, elsewhere]
    assert offers_in_force(accepted, ISP) == [mine, other_asset, pooled, pooled_again, elsewhere]
    overlapping = replace(pooled_again, start=H8)
    assert offers_in_force([pooled, overlapping], ISP) == [overlapping]


def test_rt3_the_rules_name_one_meter_sold_twice() -> None:
    """Altered data: a result awarding both overlapping offers of asset 6, and then one of them
    beside a portfolio holding asset 6, each within its own offer's and request's limits."""
    offers = [OfferIn("0xsingle", 2, H8, 1, Direction.UP, 10_000, 10, assets=(6,)),
              OfferIn("0xblock", 2, H8, 2, Direction.UP, 10_000, 10, assets=(6,)),
              OfferIn("0xpool", 2, H8, 1, Direction.DOWN, 5_000, 10, assets=(6, 7))]
    requests = [RequestIn(1, BuyerKind.DSO, 1, H8, 2, Direction.UP, 30_000, 100),
                RequestIn(2, BuyerKind.DSO, 1, H8, 1, Direction.DOWN, 30_000, 100)]

    def problems(awards: list[Award]) -> list[str]:
        return violations(offers, requests, awards, parent={1: 0, 2: 1}, lights={}, isp_seconds=ISP)

    twice = [Award(1, H8, "0xsingle", 10_000, 10), Award(1, H8, "0xblock", 10_000, 10),
             Award(1, H8 + ISP, "0xblock", 10_000, 10)]
    assert any("one meter sold twice" in p and "asset 6" in p for p in problems(twice))
    with_pool = [Award(1, H8, "0xsingle", 10_000, 10), Award(2, H8, "0xpool", 5_000, 10)]
    assert any("one meter sold twice" in p for p in problems(with_pool))
    assert problems(twice[1:]) == []  # the block alone is fine
