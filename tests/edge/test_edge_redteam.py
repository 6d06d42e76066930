"""Issue 17's edge findings, as the reproductions ran them (../shared/redteam/offchain/), asserting the defence.

RT2 (poc_orders_unauthenticated.py): an anonymous client on the broker dispatches the battery, or books it
for a week so that the market's real order is refused. RT14 (poc_edge_clock_jump.py) is in
test_edge_outbox.py (test_RT14_*).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from dispatch_world import CHAIN_ID, DISPATCHER, REGISTRY, signed_order
from eth_utils import keccak

from flexledger.chain.node import free_port
from flexledger.delivery.broker import LocalBroker
from flexledger_edge.agent import EdgeAgent
from flexledger_edge.clock import RealClock
from flexledger_edge.config import parse_config
from flexledger_edge.devices import SimulatedBattery

ISP = 900
METER_KEY = "0x" + "11" * 32


def _wait(pred: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[str, int]]:
    # an open broker, as in the reproduction: the agent's defence must not depend on the broker's ACLs
    local = LocalBroker(tmp_path / "broker", port=free_port(), auth=False)
    info = local.start()
    try:
        yield info.url, info.port
    finally:
        local.stop()


def _agent(tmp_path: Path, url: str) -> EdgeAgent:
    config = parse_config({
        "chain_id": CHAIN_ID, "oracle_address": "0x5FbDB2315678afecb367f032d93F642f64180aa3", "mode": "development",
        "state_dir": str(tmp_path / "state"), "meter": {"private_key": METER_KEY},
        "broker": {"url": url}, "driver": {"kind": "simulated"},
        "asset": {"id": 7, "device": {"kind": "battery", "capacity_wh": 10_000, "max_power_w": 5_000,
                                      "initial_soc": 0.5}},
        "orders": {"market": 1, "market_registry": REGISTRY, "dispatcher": DISPATCHER},
    }, tmp_path / "agent.toml")
    return EdgeAgent(config, RealClock())


@pytest.mark.slow
def test_RT2_orders_from_anyone_but_the_markets_dispatcher_are_refused(tmp_path: Path, broker: tuple[str, int]) -> None:
    url, port = broker
    agent = _agent(tmp_path, url)
    stop = threading.Event()
    thread = threading.Thread(target=agent.publisher.run, args=(stop,), daemon=True)
    thread.start()
    spy = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)  # anonymous
    acks: list[dict[str, Any]] = []
    spy.on_message = lambda _c, _u, m: acks.append(json.loads(m.payload))
    try:
        assert _wait(lambda: agent.publisher.connected)
        time.sleep(0.5)  # SUBACK
        spy.connect("127.0.0.1", port)
        spy.subscribe("flexledger/v1/acks/7", qos=1)
        spy.loop_start()
        time.sleep(0.3)

        def ack_of(order_id: str) -> dict[str, Any]:
            assert _wait(lambda: any(a["orderId"] == order_id for a in acks)), order_id
            return next(a for a in acks if a["orderId"] == order_id)

        nxt = (int(time.time()) // ISP + 1) * ISP
        # 1. the PoC's forged order: plain JSON, no signature
        evil = {"orderId": "not-from-the-market", "asset": 7, "ispStart": nxt, "isps": 4, "direction": "UP",
                "powerW": 5000}
        spy.publish("flexledger/v1/orders/7", json.dumps(evil), qos=1).wait_for_publish(5)
        assert ack_of("not-from-the-market")["status"] == "rejected"
        # siblings: signed by a key of the attacker's own; carrying the market's future order id
        real_id = keccak(text="market-award-123")
        forged = signed_order(bytes.fromhex("e2" * 32), order_id=real_id, isp_start=nxt, isps=4, power_w=5000,
                              expires_at=nxt + 4 * ISP)
        spy.publish("flexledger/v1/orders/7", forged, qos=1).wait_for_publish(5)
        forged_ack = ack_of("0x" + real_id.hex())
        assert forged_ack["status"] == "rejected" and "dispatcher" in forged_ack["reason"]
        battery = agent.device
        assert isinstance(battery, SimulatedBattery)
        soc = battery.soc
        assert battery.begin_isp(nxt, ISP, override=False) == 0.0 and battery.soc == soc  # nothing dispatched
        # 2. the squat: a week at 1 W; then the market's real order (the same id the forger used) is accepted
        squat = {"orderId": "squat", "asset": 7, "ispStart": nxt + 4 * ISP, "isps": 672, "direction": "DOWN",
                 "powerW": 1}
        spy.publish("flexledger/v1/orders/7", json.dumps(squat), qos=1).wait_for_publish(5)
        assert ack_of("squat")["status"] == "rejected"
        acks.clear()
        real = signed_order(order_id=real_id, isp_start=nxt + 8 * ISP, isps=4, power_w=2000,
                            expires_at=nxt + 12 * ISP)
        spy.publish("flexledger/v1/orders/7", real, qos=1).wait_for_publish(5)
        assert ack_of("0x" + real_id.hex())["status"] == "accepted"
        assert [a.order_id for a in battery.activations] == ["0x" + real_id.hex()]
    finally:
        spy.loop_stop()
        spy.disconnect()
        stop.set()
        thread.join(5)
        agent.publisher.close()
        agent.outbox.close()
