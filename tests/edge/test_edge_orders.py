"""Activation orders: accepted, rejected (each reason), overridden; devices act on them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flexledger_edge.devices import Direction, SimulatedBattery, SimulatedHeatPump
from flexledger_edge.orders import OrderHandler

ISP = 900
NOW = 1_700_000_000 - 1_700_000_000 % ISP  # an ISP boundary
ASSET = 7


def _order(**change: Any) -> bytes:
    order: dict[str, Any] = {
        "orderId": "o-1", "asset": ASSET, "ispStart": NOW + ISP, "isps": 2, "direction": "UP", "powerW": 2000,
    }
    order.update(change)
    return json.dumps(order).encode()


class Switch:
    def __init__(self) -> None:
        self.reason: str | None = None

    def __call__(self) -> str | None:
        return self.reason


def _handler(device: Any = None, switch: Switch | None = None) -> OrderHandler:
    return OrderHandler(
        ASSET, device or SimulatedBattery(10_000, 5_000, 0.5), ISP,
        clock=lambda: float(NOW + 10), override_active=switch or Switch(),
    )


def test_accepted_order_is_planned_and_executed() -> None:
    battery = SimulatedBattery(10_000, 5_000, 0.5)
    handler = _handler(battery)
    ack = handler.handle(_order())
    assert ack.to_payload() == {"orderId": "o-1", "asset": ASSET, "status": "accepted", "reason": None, "at": NOW + 10}
    assert json.loads(ack.to_json())["reason"] is None
    assert battery.begin_isp(NOW, ISP, override=False) == 0.0  # before the window: idle
    assert battery.begin_isp(NOW + ISP, ISP, override=False) == -2000.0  # UP = discharge = injection
    assert battery.soc_wh == pytest.approx(5000 - 500)
    assert battery.power_during(NOW + ISP) == -2000.0
    assert battery.begin_isp(NOW + 2 * ISP, ISP, override=False) == -2000.0
    assert battery.begin_isp(NOW + 3 * ISP, ISP, override=False) == 0.0
    assert battery.soc_wh == pytest.approx(4000)


def test_same_order_twice_is_answered_once_and_executed_once() -> None:
    battery = SimulatedBattery(10_000, 5_000, 0.5)
    handler = _handler(battery)
    first = handler.handle(_order())
    assert handler.handle(_order()) == first
    assert len(battery.activations) == 1


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "malformed order: not JSON"),
        (b"[1, 2]", "malformed order: not a JSON object"),
        (_order(orderId=""), "orderId"),
        (_order(direction="SIDEWAYS"), "direction"),
        (_order(powerW="2000"), "powerW must be an integer"),
        (_order(powerW=0), "powerW must be at least 1"),
        (_order(isps=0), "isps must be at least 1"),
        (_order(asset=True), "asset must be an integer"),
        (json.dumps({"orderId": "o-1"}).encode(), "malformed order"),
        (_order(asset=8), "wrong asset"),
        (_order(ispStart=NOW + 100), "not an ISP boundary"),
        (_order(ispStart=NOW - 2 * ISP, isps=2), "too late"),
        (_order(powerW=5001), "power above the device's ability"),
        (_order(powerW=5000, isps=8), "not enough stored energy"),
        (_order(direction="DOWN", powerW=5000, isps=8), "not enough room to charge"),
    ],
)
def test_rejections_carry_their_reason(payload: bytes, reason: str) -> None:
    ack = _handler().handle(payload)
    assert ack.status == "rejected"
    assert ack.reason is not None and reason in ack.reason
    assert ack.asset == ASSET


def test_rejected_malformed_order_keeps_its_id_when_readable() -> None:
    assert _handler().handle(_order(powerW=-1)).order_id == "o-1"
    assert _handler().handle(b"garbage").order_id == ""


def test_overlapping_order_is_rejected() -> None:
    handler = _handler()
    assert handler.handle(_order()).status == "accepted"
    ack = handler.handle(_order(orderId="o-2", ispStart=NOW + 2 * ISP, powerW=100))
    assert ack.status == "rejected" and ack.reason == "overlaps accepted order o-1"


def test_heat_pump_abilities() -> None:
    pump = SimulatedHeatPump(rated_power_w=3000, baseline_w=1200)
    handler = _handler(pump)
    up = handler.handle(_order(powerW=1201))
    assert up.status == "rejected" and "at most 1200 W" in str(up.reason)
    down = handler.handle(_order(orderId="o-2", direction="DOWN", powerW=1801))
    assert down.status == "rejected" and "at most 1800 W" in str(down.reason)
    assert handler.handle(_order(orderId="o-3", powerW=1200)).status == "accepted"
    assert pump.begin_isp(NOW, ISP, override=False) == 1200.0  # baseline
    assert pump.begin_isp(NOW + ISP, ISP, override=False) == 0.0  # UP: switched off
    assert pump.max_power_w(Direction.DOWN) == 1800


def test_override_answers_overridden_and_does_not_act() -> None:
    battery = SimulatedBattery(10_000, 5_000, 0.5)
    switch = Switch()
    handler = _handler(battery, switch)
    switch.reason = "owner override: file exists"
    ack = handler.handle(_order())
    assert (ack.status, ack.reason) == ("overridden", "owner override: file exists")
    assert battery.activations == []
    # An order accepted earlier is not executed while the override is on.
    switch.reason = None
    assert handler.handle(_order(orderId="o-2")).status == "accepted"
    assert battery.begin_isp(NOW + ISP, ISP, override=True) == 0.0
    assert battery.soc_wh == 5000


def test_battery_stops_at_empty() -> None:
    battery = SimulatedBattery(1000, 5000, 0.1)  # 100 Wh stored
    handler = _handler(battery)
    assert handler.handle(_order(powerW=400, isps=1)).status == "accepted"  # 100 Wh over 15 min
    assert battery.begin_isp(NOW + ISP, ISP, override=False) == pytest.approx(-400.0)
    assert battery.soc_wh == pytest.approx(0.0)
