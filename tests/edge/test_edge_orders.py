"""Activation orders: only the market's dispatcher orders the asset; accepted, rejected (each
reason), overridden; answers kept across restarts; devices act on them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from dispatch_world import CHAIN_ID, DISPATCHER, DISPATCHER_KEY, ORDER_NOW, REGISTRY, signed_order
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from flexledger_edge.activation import ActivationOrder, RegistryDomain, parse_signed_order
from flexledger_edge.devices import Direction, SimulatedBattery, SimulatedHeatPump
from flexledger_edge.orders import OrderHandler, OrderPolicy

ISP = 900
NOW = ORDER_NOW
ASSET = 7
O1 = "0x" + keccak(text="o-1").hex()


class Switch:
    def __init__(self) -> None:
        self.reason: str | None = None

    def __call__(self) -> str | None:
        return self.reason


def _policy(**change: Any) -> OrderPolicy:
    fields: dict[str, Any] = {"market": 1, "domain": RegistryDomain(CHAIN_ID, REGISTRY), "dispatcher": DISPATCHER,
                              "chain": None, "prequalified_up_w": 5_000, "prequalified_down_w": 5_000}
    fields.update(change)
    return OrderPolicy(**fields)


def _handler(tmp_path: Path, device: Any = None, switch: Switch | None = None, *, policy: Any = "default",
             now: int = NOW + 10) -> OrderHandler:
    return OrderHandler(
        ASSET, device or SimulatedBattery(10_000, 5_000, 0.5), ISP,
        clock=lambda: float(now), override_active=switch or Switch(),
        policy=_policy() if policy == "default" else policy, log_path=tmp_path / "orders.sqlite3",
    )


def test_accepted_order_is_planned_and_executed(tmp_path: Path) -> None:
    battery = SimulatedBattery(10_000, 5_000, 0.5)
    ack = _handler(tmp_path, battery).handle(signed_order())
    assert ack.to_payload() == {"orderId": O1, "asset": ASSET, "status": "accepted", "reason": None, "at": NOW + 10}
    assert json.loads(ack.to_json())["reason"] is None
    assert battery.begin_isp(NOW, ISP, override=False) == 0.0  # before the window: idle
    assert battery.begin_isp(NOW + ISP, ISP, override=False) == -2000.0  # UP = discharge = injection
    assert battery.soc_wh == pytest.approx(5000 - 500)
    assert battery.begin_isp(NOW + 2 * ISP, ISP, override=False) == -2000.0
    assert battery.begin_isp(NOW + 3 * ISP, ISP, override=False) == 0.0
    assert battery.soc_wh == pytest.approx(4000)


def test_typed_data_signature_matches_the_agents_digest() -> None:
    """eth-account's encode_typed_data (what a wallet signs) and the agent's own digest agree; the
    contract's digest is held to the same fields in MarketRegistry.t.sol and test_edge_dispatch_chain."""
    order = parse_signed_order(signed_order()).order
    domain = RegistryDomain(CHAIN_ID, REGISTRY)
    signable = encode_typed_data(full_message=order.typed_data(domain))
    assert keccak(b"\x19" + signable.version + signable.header + signable.body) == order.digest(domain)
    assert Account.recover_message(signable, signature=order.sign(DISPATCHER_KEY, domain)) == DISPATCHER


def test_same_order_twice_is_answered_once_and_executed_once_across_restarts(tmp_path: Path) -> None:
    battery = SimulatedBattery(10_000, 5_000, 0.5)
    handler = _handler(tmp_path, battery)
    first = handler.handle(signed_order())
    assert handler.handle(signed_order()) == first
    assert len(battery.activations) == 1
    handler.close()
    # after a restart the accepted activation is planned again, and a replay is answered, not re-executed
    fresh = SimulatedBattery(10_000, 5_000, 0.5)
    again = _handler(tmp_path, fresh)
    assert [a.order_id for a in fresh.activations] == [O1]
    assert again.handle(signed_order()) == first
    assert len(fresh.activations) == 1


OTHER_KEY = bytes.fromhex("e2" * 32)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "malformed order: not JSON"),
        (b"[1, 2]", "malformed order: not a JSON object"),
        (json.dumps({"orderId": "o-1"}).encode(), "malformed order"),
        (signed_order().replace(b'"UP"', b'"SIDEWAYS"'), "direction"),
        (signed_order().replace(b'"powerW":2000', b'"powerW":"2000"'), "powerW must be an integer"),
        (signed_order(signature=b"\x01" * 64), "signature must be 65 bytes"),
        (signed_order(signature=b"\x00" * 65), "not signed by market 1's dispatcher"),
        (signed_order(OTHER_KEY), "not signed by market 1's dispatcher"),
        (signed_order(registry="0x" + "11" * 20), "not signed by market 1's dispatcher"),  # another domain
        (signed_order(market=2), "wrong market"),
        (signed_order(asset=8), "wrong asset"),
        (signed_order(isp_start=NOW + 100), "not an ISP boundary"),
        (signed_order(isp_start=NOW - 2 * ISP, isps=2), "too late"),
        (signed_order(expires_at=NOW), "expired"),
        (signed_order(power_w=5001), "power above the device's ability"),
        (signed_order(power_w=5000, isps=8, expires_at=NOW + 9 * ISP), "not enough stored energy"),
        (signed_order(direction="DOWN", power_w=5000, isps=8), "not enough room to charge"),
        (signed_order(isps=97), "window too long without a chain"),
        (signed_order(isp_start=NOW + 3 * 86_400), "starts too far ahead without a chain"),
    ],
)
def test_rejections_carry_their_reason(tmp_path: Path, payload: bytes, reason: str) -> None:
    ack = _handler(tmp_path).handle(payload)
    assert ack.status == "rejected"
    assert ack.reason is not None and reason in ack.reason
    assert ack.asset == ASSET


def test_above_the_prequalified_power_is_rejected(tmp_path: Path) -> None:
    handler = _handler(tmp_path, policy=_policy(prequalified_up_w=1_500))
    ack = handler.handle(signed_order(power_w=1_501))
    assert ack.status == "rejected" and "prequalified 1500 W UP" in str(ack.reason)


def test_without_a_dispatcher_configured_no_order_is_taken(tmp_path: Path) -> None:
    ack = _handler(tmp_path, policy=None).handle(signed_order())
    assert ack.status == "rejected" and "no dispatcher configured" in str(ack.reason)


def test_a_forged_order_cannot_pre_empt_the_markets_order_with_its_id(tmp_path: Path) -> None:
    """An unsigned payload carrying the real order's id is refused without being remembered."""
    handler = _handler(tmp_path)
    assert handler.handle(signed_order(OTHER_KEY)).status == "rejected"
    assert handler.handle(signed_order(asset=8)).status == "rejected"
    assert handler.handle(signed_order()).status == "accepted"


def test_rejected_malformed_order_keeps_its_id_when_readable(tmp_path: Path) -> None:
    assert _handler(tmp_path).handle(json.dumps({"orderId": O1}).encode()).order_id == O1
    assert _handler(tmp_path).handle(b"garbage").order_id == ""


def test_overlapping_order_is_rejected(tmp_path: Path) -> None:
    handler = _handler(tmp_path)
    assert handler.handle(signed_order()).status == "accepted"
    ack = handler.handle(signed_order(order_id=keccak(text="o-2"), isp_start=NOW + 2 * ISP, power_w=100))
    assert ack.status == "rejected" and ack.reason == f"overlaps accepted order {O1}"


def test_heat_pump_abilities(tmp_path: Path) -> None:
    pump = SimulatedHeatPump(rated_power_w=3000, baseline_w=1200)
    handler = _handler(tmp_path, pump)
    up = handler.handle(signed_order(power_w=1201))
    assert up.status == "rejected" and "at most 1200 W" in str(up.reason)
    down = handler.handle(signed_order(order_id=keccak(text="o-2"), direction="DOWN", power_w=1801))
    assert down.status == "rejected" and "at most 1800 W" in str(down.reason)
    assert handler.handle(signed_order(order_id=keccak(text="o-3"), power_w=1200)).status == "accepted"
    assert pump.begin_isp(NOW, ISP, override=False) == 1200.0  # baseline
    assert pump.begin_isp(NOW + ISP, ISP, override=False) == 0.0  # UP: switched off
    assert pump.max_power_w(Direction.DOWN) == 1800


def test_override_answers_overridden_and_does_not_act(tmp_path: Path) -> None:
    battery = SimulatedBattery(10_000, 5_000, 0.5)
    switch = Switch()
    handler = _handler(tmp_path, battery, switch)
    switch.reason = "owner override: file exists"
    ack = handler.handle(signed_order())
    assert (ack.status, ack.reason) == ("overridden", "owner override: file exists")
    assert battery.activations == []
    # An order accepted earlier is not executed while the override is on.
    switch.reason = None
    assert handler.handle(signed_order(order_id=keccak(text="o-2"))).status == "accepted"
    assert battery.begin_isp(NOW + ISP, ISP, override=True) == 0.0
    assert battery.soc_wh == 5000


def test_battery_stops_at_empty(tmp_path: Path) -> None:
    battery = SimulatedBattery(1000, 5000, 0.1)  # 100 Wh stored
    handler = _handler(tmp_path, battery)
    assert handler.handle(signed_order(power_w=400, isps=1)).status == "accepted"  # 100 Wh over 15 min
    assert battery.begin_isp(NOW + ISP, ISP, override=False) == pytest.approx(-400.0)
    assert battery.soc_wh == pytest.approx(0.0)


def test_order_round_trips_through_json() -> None:
    order = ActivationOrder(keccak(text="x"), 1, 7, NOW, 4, "DOWN", 10, NOW + 1, 9, keccak(text="y"))
    sig = order.sign(DISPATCHER_KEY, RegistryDomain(CHAIN_ID, REGISTRY))
    parsed = parse_signed_order(order.to_json(sig))
    assert parsed.order == order and parsed.signature == sig and parsed.award is None
    assert parsed.signer(RegistryDomain(CHAIN_ID, REGISTRY)) == DISPATCHER


def test_a_refusal_by_a_wrong_clock_is_not_final(tmp_path: Path) -> None:
    """A clock pushed ahead (the sibling of finding 14) answers "expired", but the same order is taken once
    the clock is right again."""
    battery = SimulatedBattery(10_000, 5_000, 0.5)
    ahead = _handler(tmp_path, battery, now=NOW + 86_400)
    assert "expired" in str(ahead.handle(signed_order()).reason)
    ahead.close()
    assert _handler(tmp_path, battery).handle(signed_order()).status == "accepted"


FIELDS = ["orderId", "market", "asset", "ispStart", "isps", "direction", "powerW", "expiresAt", "resultId",
          "offerDigest"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(FIELDS), value=st.integers(0, 2**64 - 1), other=st.binary(min_size=32, max_size=32))
def test_RT2_class_any_field_changed_after_signing_is_refused(
    tmp_path_factory: pytest.TempPathFactory, field: str, value: int, other: bytes
) -> None:
    """An order the dispatcher signed, with any one field changed in transit (a squatter stretching isps,
    moving ispStart, raising powerW, retargeting the asset...): never executed, and never remembered."""
    data = json.loads(signed_order(isps=1))
    original = data[field]
    if field in ("orderId", "offerDigest"):
        data[field] = "0x" + other.hex()
    elif field == "direction":
        data[field] = "DOWN"
    else:
        data[field] = value % 2**32 if field in ("market", "powerW") else value % 2**16 if field == "isps" else value
    assume(data[field] != original)
    battery = SimulatedBattery(10_000, 5_000, 0.5)
    handler = _handler(tmp_path_factory.mktemp("o"), battery)
    assert handler.handle(json.dumps(data).encode()).status == "rejected"
    assert battery.activations == []
    assert handler.handle(signed_order(isps=1)).status == "accepted"  # the real one still is
