"""The settlement arithmetic in Python (flexledger.rules.settlement) and in the Settlement contract
(`awardMoney`) agree on random cases, the extremes included."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from flexledger.chain.bindings import SettlementClient
from flexledger.chain.connection import ChainConnection
from flexledger.chain.manifest import Manifest
from flexledger.rules.lights import Direction
from flexledger.rules.market import MarketParams
from flexledger.rules.orders import Product
from flexledger.rules.settlement import AwardIsp, delivered_ws, settle_award_isp

U32, U128, I64 = 2**32 - 1, 2**128 - 1, 2**63 - 1


@st.composite
def cases(draw: st.DrawFn) -> tuple[AwardIsp, MarketParams]:
    power = draw(st.integers(1, U32))
    level = draw(st.sampled_from([0, power, min(U32, power * 2), U32]))
    max_price = draw(st.integers(1, U128))
    award = AwardIsp(power_w=power, price=draw(st.integers(0, max_price)), max_price=max_price,
                     product=draw(st.sampled_from(list(Product))), direction=draw(st.sampled_from(list(Direction))),
                     baseline_wh=draw(st.integers(-I64 - 1, I64)), measured_wh=draw(st.integers(-I64 - 1, I64)),
                     level_w=level)
    market = MarketParams(isp_seconds=draw(st.sampled_from([60, 300, 900, 3600, 86_400])),
                          tolerance_bps=draw(st.integers(0, 10_000)), penalty_factor_bps=draw(st.integers(0, 100_000)))
    return award, market


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=cases())
@example(case=(AwardIsp(1, 1, 1, Product.ACTIVATION, Direction.UP, 1, 0), MarketParams(isp_seconds=900)))
@example(case=(AwardIsp(U32, U128, U128, Product.ACTIVATION, Direction.DOWN, -I64 - 1, I64),
               MarketParams(isp_seconds=86_400, tolerance_bps=0, penalty_factor_bps=100_000)))
def test_the_contract_and_the_python_rules_agree(conn: ChainConnection, manifest: Manifest,
                                                 case: tuple[AwardIsp, MarketParams]) -> None:
    award, market = case
    ours = settle_award_isp(award, market, 0)
    settlement = SettlementClient(conn, manifest.address("Settlement"))
    delivered = delivered_ws(award.direction, award.baseline_wh, award.measured_wh)
    payment, penalty = settlement.award_money(award.power_w, award.level_w or award.power_w, market.isp_seconds,
                                              delivered, award.price, award.product is Product.AVAILABILITY,
                                              market.tolerance_bps, market.penalty_factor_bps)
    assert (payment, penalty) == (ours.payment, ours.penalty)
