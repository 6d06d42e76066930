"""Settlement arithmetic (rules 7-9): the worked examples, money conservation, the escrow bound,
and rounding at the extremes, on random cases (hypothesis)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flexledger.rules.lights import Direction
from flexledger.rules.market import DAY, MarketParams
from flexledger.rules.orders import UINT128_MAX, Product, max_exposure
from flexledger.rules.settlement import (
    INT64_MAX,
    INT64_MIN,
    UINT32_MAX,
    UINT64_MAX,
    WS_PER_MWH,
    AwardIsp,
    AwardIspSettlement,
    money_moves,
    net_consumption,
    request_refund,
    settle_award_isp,
    settle_in_order,
)

ISP_LENGTHS = [t for t in range(1, DAY + 1) if DAY % t == 0]
UINT256 = 2**256

markets = st.builds(
    MarketParams,
    isp_seconds=st.sampled_from(ISP_LENGTHS),
    tolerance_bps=st.one_of(st.integers(0, 10_000), st.sampled_from([0, 1, 9_999, 10_000])),
    penalty_factor_bps=st.one_of(st.integers(0, 100_000), st.sampled_from([0, 1, 10_000, 100_000])),
)
powers = st.one_of(st.integers(0, UINT32_MAX), st.integers(0, 10), st.just(UINT32_MAX))
prices = st.one_of(st.integers(0, UINT128_MAX), st.integers(0, 10), st.just(UINT128_MAX))
energies = st.one_of(st.integers(INT64_MIN, INT64_MAX), st.integers(-10_000, 10_000),
                     st.sampled_from([INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX]))
bonds = st.one_of(st.integers(0, UINT256 - 1), st.integers(0, 10**6), st.just(0))


@st.composite
def awards(draw: st.DrawFn, max_price: int | None = None, product: Product | None = None) -> AwardIsp:
    m = draw(prices) if max_price is None else max_price
    return AwardIsp(
        power_w=draw(powers),
        price=draw(st.one_of(st.integers(0, m), st.just(m))),
        max_price=m,
        product=draw(st.sampled_from(Product)) if product is None else product,
        direction=draw(st.sampled_from(Direction)),
        baseline_wh=draw(energies),
        measured_wh=draw(energies),
    )


def award(**changes: Any) -> AwardIsp:
    fields: dict[str, Any] = dict(power_w=1_000, price=1_000, max_price=1_000, product=Product.ACTIVATION,
                                  direction=Direction.UP, baseline_wh=0, measured_wh=0)
    return AwardIsp(**(fields | changes))


def market(tolerance_bps: int = 500, penalty_factor_bps: int = 15_000, isp_seconds: int = 900) -> MarketParams:
    return MarketParams(isp_seconds=isp_seconds, tolerance_bps=tolerance_bps, penalty_factor_bps=penalty_factor_bps)


# --------------------------------------------------------------------------- worked examples

def test_example_a_short_beyond_the_tolerance() -> None:
    a = award(power_w=100_000, price=50_000_000, max_price=80_000_000, baseline_wh=40_000, measured_wh=20_000)
    s = settle_award_isp(a, market(), 0)
    assert s == AwardIspSettlement(
        awarded_ws=90_000_000, delivered_ws=72_000_000, paid_ws=72_000_000, payment=1_000_000,
        reserved=2_000_000, shortfall_ws=18_000_000, tolerance_ws=4_500_000, penalised_ws=13_500_000,
        penalty=281_250, claim=718_750, from_payment=281_250, from_bond=0, debt=0,
    )
    escrow = max_exposure(100_000, 1, 900, 80_000_000)
    assert escrow == 2_000_000
    assert request_refund(escrow, [s]) == 1_281_250


def test_example_b_nothing_delivered_and_the_bond_short() -> None:
    a = award(power_w=10_000, price=100_000_000, max_price=100_000_000, direction=Direction.DOWN,
              baseline_wh=1_000, measured_wh=800)
    s = settle_award_isp(a, market(tolerance_bps=1_000, penalty_factor_bps=20_000), 300_000)
    assert s == AwardIspSettlement(
        awarded_ws=9_000_000, delivered_ws=0, paid_ws=0, payment=0, reserved=250_000,
        shortfall_ws=9_000_000, tolerance_ws=900_000, penalised_ws=8_100_000, penalty=450_000,
        claim=0, from_payment=0, from_bond=300_000, debt=150_000,
    )
    escrow = max_exposure(10_000, 1, 900, 100_000_000)
    moves = money_moves(escrow, [("seller", s)])
    assert (escrow, moves.buyer, moves.sellers, moves.bonds, moves.debts) == (
        250_000, 550_000, {"seller": 0}, {"seller": -300_000}, {"seller": 150_000})
    assert moves.net() == 0


def test_example_c_over_delivery_is_not_paid() -> None:
    a = award(power_w=1_000, price=36_000_000, max_price=36_000_000, baseline_wh=1_000, measured_wh=0)
    s = settle_award_isp(a, market(), 0)
    assert (s.awarded_ws, s.delivered_ws, s.paid_ws, s.payment, s.penalty, s.claim) == (
        900_000, 3_600_000, 900_000, 9_000, 0, 9_000)


def test_example_d_availability_pays_the_capacity() -> None:
    a = award(power_w=1_000, price=7_200_000, max_price=7_200_000, product=Product.AVAILABILITY)
    s = settle_award_isp(a, market(isp_seconds=3600), 0)
    assert (s.awarded_ws, s.delivered_ws, s.paid_ws, s.payment, s.shortfall_ws, s.penalty, s.claim) == (
        3_600_000, 0, 3_600_000, 7_200, 0, 0, 7_200)


def test_example_e_one_wh_at_one_base_unit() -> None:
    a = award(power_w=4, price=1, max_price=1, baseline_wh=0, measured_wh=-1)
    s = settle_award_isp(a, market(), 0)
    assert (s.awarded_ws, s.delivered_ws, s.payment, s.reserved, s.penalty, s.claim) == (3_600, 3_600, 0, 0, 0, 0)
    escrow = max_exposure(4, 1, 900, 1)
    assert escrow == 1
    assert request_refund(escrow, [s]) == 1  # the rounding stays with the buyer


# --------------------------------------------------------------------------- extremes

def test_the_largest_power_at_the_largest_price() -> None:
    a = award(power_w=UINT32_MAX, price=UINT128_MAX, max_price=UINT128_MAX, baseline_wh=INT64_MAX,
              measured_wh=INT64_MIN)
    s = settle_award_isp(a, market(tolerance_bps=0, penalty_factor_bps=100_000, isp_seconds=DAY), UINT256 - 1)
    awarded = UINT32_MAX * DAY
    assert s.awarded_ws == s.paid_ws == awarded < 2**49
    assert s.delivered_ws == UINT64_MAX * 3600 < 2**76
    assert s.payment == s.reserved == awarded * UINT128_MAX // WS_PER_MWH
    assert awarded * UINT128_MAX < 2**177
    assert s.payment <= max_exposure(UINT32_MAX, 1, DAY, UINT128_MAX)
    # Nothing delivered at the same size: the largest penalty, ten times the payment.
    s = settle_award_isp(AwardIsp(**(vars(a) | {"measured_wh": INT64_MAX})), market(0, 100_000, DAY), UINT256 - 1)
    assert s.penalised_ws == awarded
    assert awarded * UINT128_MAX * 100_000 < 2**194
    assert s.penalty == awarded * UINT128_MAX * 100_000 // (WS_PER_MWH * 10_000)
    assert s.from_bond == s.penalty and s.debt == 0


@pytest.mark.parametrize(("direction", "baseline", "measured", "delivered_wh"), [
    (Direction.UP, INT64_MAX, INT64_MIN, UINT64_MAX),
    (Direction.DOWN, INT64_MIN, INT64_MAX, UINT64_MAX),
    (Direction.UP, INT64_MIN, INT64_MAX, 0),
    (Direction.DOWN, INT64_MAX, INT64_MIN, 0),
    (Direction.UP, -5, -6, 1),  # a PV home exporting one Wh more than its baseline
    (Direction.DOWN, -6, -5, 1),
    (Direction.UP, -5, -5, 0),
])
def test_delivery_at_the_int64_extremes(direction: Direction, baseline: int, measured: int, delivered_wh: int) -> None:
    s = settle_award_isp(award(direction=direction, baseline_wh=baseline, measured_wh=measured), market(), 0)
    assert s.delivered_ws == delivered_wh * 3600


def test_one_watt_and_one_wh() -> None:
    # 1 W for 900 s is a quarter of a Wh: a whole Wh delivered covers it, none leaves a shortfall of 900 W*s.
    s = settle_award_isp(award(power_w=1, price=1, max_price=1, measured_wh=-1), market(), 0)
    assert (s.awarded_ws, s.paid_ws, s.shortfall_ws, s.payment) == (900, 900, 0, 0)
    s = settle_award_isp(award(power_w=1, price=WS_PER_MWH, max_price=WS_PER_MWH), market(0, 10_000), 0)
    assert (s.shortfall_ws, s.penalised_ws, s.penalty, s.from_bond, s.debt) == (900, 900, 900, 0, 900)
    # The tolerance rounds down: 1 bps of 900 W*s is 0.09 W*s, so none of the shortfall is tolerated.
    s = settle_award_isp(award(power_w=1), market(tolerance_bps=1), 0)
    assert s.tolerance_ws == 0 and s.penalised_ws == 900


def test_the_penalty_is_floored_once() -> None:
    # 1 W*s short (1 W for a 1 s ISP, no tolerance) at 20 base units per W*s, factor 1: 20.
    s = settle_award_isp(award(power_w=1, price=WS_PER_MWH * 20, max_price=WS_PER_MWH * 20), market(0, 10_000, 1), 0)
    assert s.penalty == 20
    s = settle_award_isp(award(power_w=1, price=WS_PER_MWH // 2, max_price=WS_PER_MWH), market(0, 20_000, 1), 0)
    assert s.penalty == 1  # 1 * 1.8e9 * 20,000 / 3.6e13; dividing by 3.6e9 first gives floor(0.5) * 2 = 0


# --------------------------------------------------------------------------- properties

@given(awards(), markets, bonds)
def test_the_figures_are_the_exact_rules_rounded_down(a: AwardIsp, m: MarketParams, bond: int) -> None:
    s = settle_award_isp(a, m, bond)
    sign = 1 if a.direction is Direction.UP else -1
    assert s.awarded_ws == a.power_w * m.isp_seconds
    assert s.delivered_ws == max(0, sign * (a.baseline_wh - a.measured_wh)) * 3600
    exact_payment = Fraction(s.paid_ws * a.price, WS_PER_MWH)
    assert s.payment <= exact_payment < s.payment + 1
    exact_penalty = Fraction(s.penalised_ws * a.price * m.penalty_factor_bps, WS_PER_MWH * 10_000)
    assert s.penalty <= exact_penalty < s.penalty + 1
    assert s.tolerance_ws <= Fraction(s.awarded_ws * m.tolerance_bps, 10_000) < s.tolerance_ws + 1
    assert s.payment <= s.reserved
    assert s.payment == s.claim + s.from_payment
    assert s.penalty == s.from_payment + s.from_bond + s.debt
    assert min(s.claim, s.from_payment, s.from_bond, s.debt) >= 0
    assert s.from_bond <= bond
    assert s.debt == 0 or s.from_bond == bond  # a debt only once the bond is spent
    # The overflow bound of the docstring: every intermediate fits uint256 with room to spare.
    assert s.awarded_ws < 2**49 and s.delivered_ws < 2**76
    assert s.paid_ws * a.price < 2**177 and s.awarded_ws * a.max_price < 2**177
    assert s.penalised_ws * a.price * m.penalty_factor_bps < 2**194


@given(awards(product=Product.ACTIVATION), markets, bonds)
def test_over_delivery_is_never_paid(a: AwardIsp, m: MarketParams, bond: int) -> None:
    s = settle_award_isp(a, m, bond)
    assert s.paid_ws <= s.awarded_ws
    assert s.payment <= s.awarded_ws * a.price // WS_PER_MWH
    if s.delivered_ws >= s.awarded_ws:
        assert s.paid_ws == s.awarded_ws and s.shortfall_ws == s.penalty == 0


@given(awards(product=Product.AVAILABILITY), markets, bonds)
def test_availability_pays_the_capacity_whatever_was_delivered(a: AwardIsp, m: MarketParams, bond: int) -> None:
    s = settle_award_isp(a, m, bond)
    assert s.paid_ws == s.awarded_ws
    assert s.payment == s.claim == s.awarded_ws * a.price // WS_PER_MWH
    assert s.shortfall_ws == s.penalised_ws == s.penalty == s.from_bond == s.debt == 0


@given(awards(product=Product.ACTIVATION), markets, bonds)
def test_nothing_delivered_costs_the_full_penalty_beyond_the_tolerance(a: AwardIsp, m: MarketParams, bond: int) -> None:
    nothing = AwardIsp(**(vars(a) | {"measured_wh": a.baseline_wh}))
    s = settle_award_isp(nothing, m, bond)
    awarded = a.power_w * m.isp_seconds
    penalised = awarded - awarded * m.tolerance_bps // 10_000
    assert s.payment == s.claim == 0
    assert s.penalised_ws == penalised
    assert s.penalty == penalised * a.price * m.penalty_factor_bps // (WS_PER_MWH * 10_000)
    assert s.from_bond == min(s.penalty, bond)


@given(awards(), markets, bonds, st.one_of(st.integers(0, 2**64), st.integers(0, 100)))
def test_more_delivery_never_lowers_the_claim(a: AwardIsp, m: MarketParams, bond: int, more_wh: int) -> None:
    # Move the measurement further in the award's direction, within int64.
    sign = 1 if a.direction is Direction.UP else -1
    measured = min(max(a.measured_wh - sign * more_wh, INT64_MIN), INT64_MAX)
    before = settle_award_isp(a, m, bond)
    after = settle_award_isp(AwardIsp(**(vars(a) | {"measured_wh": measured})), m, bond)
    assert after.delivered_ws >= before.delivered_ws
    assert after.payment >= before.payment and after.claim >= before.claim
    assert after.penalty <= before.penalty
    assert after.from_bond <= before.from_bond and after.debt <= before.debt


@st.composite
def feasible_requests(draw: st.DrawFn) -> tuple[int, list[tuple[str, AwardIsp]], MarketParams, dict[str, int]]:
    """A request, and award-ISPs whose powers add up to at most the request's power in each ISP,
    from a few sellers with random bonds. Returns the escrow, the award-ISPs, the market and bonds."""
    m = draw(markets)
    isps = draw(st.integers(1, min(6, DAY // m.isp_seconds)))
    power = draw(powers)
    max_price = draw(prices)
    sellers = ["s0", "s1", "s2"]
    items: list[tuple[str, AwardIsp]] = []
    for _ in range(isps):
        left = power
        for _ in range(draw(st.integers(0, 4))):
            a = draw(awards(max_price=max_price))
            share = draw(st.one_of(st.integers(0, left), st.just(left)))
            items.append((draw(st.sampled_from(sellers)), AwardIsp(**(vars(a) | {"power_w": share}))))
            left -= share
    held = {s: draw(bonds) for s in sellers}
    return max_exposure(power, isps, m.isp_seconds, max_price), items, m, held


@given(feasible_requests())
def test_payments_never_exceed_the_escrow(case: tuple[int, list[tuple[str, AwardIsp]], MarketParams, dict[str, int]]) -> None:
    escrow, items, m, held = case
    settled, _ = settle_in_order(items, m, held)
    assert sum(s.payment for _, s in settled) <= sum(s.reserved for _, s in settled) <= escrow
    assert request_refund(escrow, (s for _, s in settled)) >= 0


@given(feasible_requests())
def test_money_is_neither_created_nor_destroyed(case: tuple[int, list[tuple[str, AwardIsp]], MarketParams, dict[str, int]]) -> None:
    escrow, items, m, held = case
    settled, left = settle_in_order(items, m, held)
    moves = money_moves(escrow, settled)
    assert moves.net() == 0
    assert moves.escrow == -escrow
    assert escrow == sum(moves.sellers.values()) + moves.buyer + sum(moves.bonds.values())
    # The bond's decrease is exactly the penalty the buyer receives beyond what the payments covered.
    extra = moves.buyer - (escrow - sum(s.payment for _, s in settled)) - sum(s.from_payment for _, s in settled)
    assert -sum(moves.bonds.values()) == extra
    for seller in held:
        assert left[seller] == held[seller] + moves.bonds.get(seller, 0) >= 0
    assert sum(moves.debts.values()) == sum(s.penalty - s.collected for _, s in settled)


def test_a_bond_is_drawn_in_settlement_order() -> None:
    short = award(price=WS_PER_MWH, max_price=WS_PER_MWH)  # 900,000 W*s, nothing delivered
    m = market(tolerance_bps=0, penalty_factor_bps=10_000)
    settled, left = settle_in_order([("s", short), ("s", short), ("t", short)], m, {"s": 1_000_000})
    assert [(s.from_bond, s.debt) for _, s in settled] == [(900_000, 0), (100_000, 800_000), (0, 900_000)]
    assert left == {"s": 0, "t": 0}


def test_a_refund_larger_than_the_escrow_is_refused() -> None:
    s = settle_award_isp(award(measured_wh=-1_000), market(), 0)
    assert s.payment == 0  # 1,000 W at 1,000/MWh for 900 s is 0.25 base units
    rich = settle_award_isp(award(price=WS_PER_MWH, max_price=WS_PER_MWH, measured_wh=-1_000), market(), 0)
    with pytest.raises(ValueError, match="escrow"):
        request_refund(rich.payment - 1, [rich])


# --------------------------------------------------------------------------- rejected inputs

@pytest.mark.parametrize(("field", "value"), [
    ("power_w", -1), ("power_w", UINT32_MAX + 1), ("max_price", UINT128_MAX + 1), ("max_price", -1),
    ("price", 1_001), ("price", -1), ("product", 2), ("direction", 2), ("baseline_wh", INT64_MAX + 1),
    ("baseline_wh", INT64_MIN - 1), ("measured_wh", INT64_MAX + 1), ("measured_wh", INT64_MIN - 1),
    ("power_w", 1.5),
])
def test_an_out_of_range_award_is_rejected(field: str, value: Any) -> None:
    with pytest.raises(ValueError, match=field):
        award(**{field: value})


@pytest.mark.parametrize(("field", "params"), [
    ("isp_seconds", MarketParams(isp_seconds=0)), ("isp_seconds", MarketParams(isp_seconds=7)),
    ("isp_seconds", MarketParams(isp_seconds=2 * DAY)), ("tolerance_bps", MarketParams(tolerance_bps=10_001)),
    ("penalty_factor_bps", MarketParams(penalty_factor_bps=100_001)),
    ("tolerance_bps", MarketParams(tolerance_bps=-1)),
])
def test_out_of_range_market_parameters_are_rejected(field: str, params: MarketParams) -> None:
    with pytest.raises(ValueError, match=field):
        settle_award_isp(award(), params, 0)


def test_other_out_of_range_inputs_are_rejected() -> None:
    with pytest.raises(ValueError, match="bond_available"):
        settle_award_isp(award(), market(), -1)
    with pytest.raises(ValueError, match="bond_available"):
        settle_award_isp(award(), market(), UINT256)
    with pytest.raises(ValueError, match="escrow"):
        request_refund(-1, [])


def test_net_consumption_of_a_reading() -> None:
    assert net_consumption(5, 7) == -2
    assert net_consumption(INT64_MAX, 0) == INT64_MAX
    assert net_consumption(0, 2**63) == INT64_MIN
    with pytest.raises(ValueError, match="measured_wh"):
        net_consumption(UINT64_MAX, 0)  # a valid uint64 reading whose net does not fit int64
    with pytest.raises(ValueError, match="export_wh"):
        net_consumption(0, UINT64_MAX + 1)


def test_an_offer_split_between_two_requests_shares_its_delivery_by_power() -> None:
    market = MarketParams(isp_seconds=900, tolerance_bps=0, penalty_factor_bps=10_000)
    common = {"price": 100_000, "max_price": 200_000, "product": Product.ACTIVATION, "direction": Direction.UP,
              "baseline_wh": 3_000, "measured_wh": 1_000}  # 2,000 Wh delivered by the asset
    big = settle_award_isp(AwardIsp(power_w=6_000, level_w=9_000, **common), market, 0)
    small = settle_award_isp(AwardIsp(power_w=3_000, level_w=9_000, **common), market, 0)
    assert big.delivered_ws + small.delivered_ws == 2_000 * 3600  # never counted twice
    assert (big.delivered_ws, small.delivered_ws) == (2_000 * 3600 * 2 // 3, 2_000 * 3600 // 3)
    with pytest.raises(ValueError, match="level_w"):
        AwardIsp(power_w=6_000, level_w=5_000, **common)
