"""End to end against a real MQTT broker (FLEXLEDGER_TEST_MQTT_URL): readings and orders."""

from __future__ import annotations

import json
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from dispatch_world import signed_order
from eth_utils import keccak
from paho.mqtt.enums import CallbackAPIVersion

from flexledger_edge.agent import EdgeAgent, install_client_id
from flexledger_edge.config import load_config
from flexledger_edge.reading import OracleDomain, SignedReading, verify

pytestmark = pytest.mark.services

ISP = 900
START = 1_700_000_000 - 1_700_000_000 % ISP


def _broker_url() -> str:
    url = os.environ.get("FLEXLEDGER_TEST_MQTT_URL")
    if not url:
        pytest.skip("FLEXLEDGER_TEST_MQTT_URL is not set (e.g. mqtt://127.0.0.1:1883)")
    return url


class StepClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def now(self) -> float:
        return self.t

    def wait_until(self, at: float, stop: threading.Event) -> bool:
        self.t = max(self.t, at)
        return not stop.is_set()


@pytest.fixture
def subscriber() -> Iterator[Callable[[str], queue.Queue[tuple[str, bytes]]]]:
    parts = urlsplit(_broker_url())
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"edge-test-{secrets.token_hex(4)}")
    if parts.username:
        client.username_pw_set(parts.username, parts.password)
    if parts.scheme == "mqtts":
        client.tls_set()
    received: queue.Queue[tuple[str, bytes]] = queue.Queue()
    subscribed = threading.Event()
    client.on_message = lambda c, u, m: received.put((m.topic, bytes(m.payload)))
    client.on_subscribe = lambda c, u, mid, rc, p: subscribed.set()
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()

    def subscribe(topic: str) -> queue.Queue[tuple[str, bytes]]:
        subscribed.clear()
        client.subscribe(topic, qos=1)
        assert subscribed.wait(10), "no SUBACK from the test broker"
        return received

    yield subscribe
    client.loop_stop()
    client.disconnect()


def _publish(topic: str, payload: bytes) -> None:
    parts = urlsplit(_broker_url())
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"edge-test-pub-{secrets.token_hex(4)}")
    if parts.username:
        client.username_pw_set(parts.username, parts.password)
    if parts.scheme == "mqtts":
        client.tls_set()
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def _forget_session(client_id: str) -> None:
    """The agent's broker session is persistent: drop it so test runs leave nothing behind."""
    parts = urlsplit(_broker_url())
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    if parts.username:
        client.username_pw_set(parts.username, parts.password)
    if parts.scheme == "mqtts":
        client.tls_set()
    client.connect(parts.hostname or "127.0.0.1", parts.port or 1883)
    client.loop(1.0)
    client.disconnect()


def test_readings_reach_a_subscriber_signed(
    write_config: Callable[..., Path],
    subscriber: Callable[[str], queue.Queue[tuple[str, bytes]]],
    domain: OracleDomain,
) -> None:
    key = "0x" + secrets.token_hex(32)
    # no oracle here to send receipts: the broker's PUBACK clears the outbox (receipts = false);
    # the receipts' round trip through a real broker is tests/redteam/test_receipts.py's
    path = write_config(None, meter={"private_key": key}, broker={"url": _broker_url(), "receipts": False}, asset={"id": 90_000 + secrets.randbelow(10_000), "device": {"kind": "battery", "capacity_wh": 10_000, "max_power_w": 5_000}})
    config = load_config(path)
    agent = EdgeAgent(config, StepClock(START))
    inbox = subscriber(f"flexledger/v1/readings/{agent.meter.lower()}")
    assert agent.run(isps=3, drain_s=20) == 3
    assert agent.left_in_outbox == 0
    got: list[SignedReading] = []
    deadline = time.monotonic() + 20
    while len(got) < 3 and time.monotonic() < deadline:
        topic, payload = inbox.get(timeout=max(deadline - time.monotonic(), 0.1))
        assert topic == f"flexledger/v1/readings/{agent.meter.lower()}"
        got.append(SignedReading.from_json(payload))
    assert [r.reading.sequence for r in got] == [1, 2, 3]
    assert all(verify(r, domain) and r.reading.meter == agent.meter for r in got)
    _forget_session(install_client_id(config.client_id_path))


def test_an_order_is_acknowledged_over_the_broker(
    write_config: Callable[..., Path],
    subscriber: Callable[[str], queue.Queue[tuple[str, bytes]]],
) -> None:
    asset = 90_000 + secrets.randbelow(10_000)
    path = write_config(None, meter={"private_key": "0x" + secrets.token_hex(32)}, broker={"url": _broker_url()}, asset={"id": asset, "device": {"kind": "heat_pump", "rated_power_w": 3000}})
    config = load_config(path)
    agent = EdgeAgent(config, StepClock(START))
    acks = subscriber(f"flexledger/v1/acks/{asset}")
    for _ in range(50):
        agent.publisher.step(0.1)
        if agent.publisher.connected:
            break
    assert agent.publisher.connected
    for _ in range(5):
        agent.publisher.step(0.1)  # SUBACK
    order = signed_order(order_id=keccak(text="e2e"), asset=asset, isp_start=START + ISP, isps=1, direction="DOWN",
                         power_w=900, expires_at=START + ISP)
    _publish(f"flexledger/v1/orders/{asset}", order)
    deadline = time.monotonic() + 15
    while acks.empty() and time.monotonic() < deadline:
        agent.publisher.step(0.1)
    _topic, payload = acks.get(timeout=1)
    assert json.loads(payload) == {"orderId": "0x" + keccak(text="e2e").hex(), "asset": asset, "status": "accepted", "reason": None, "at": START}
    agent.publisher.close()
    agent.outbox.close()
    _forget_session(install_client_id(config.client_id_path))
