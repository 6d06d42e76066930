"""The replicated broker's configuration: MQTT topics as NATS subjects, and users who may publish
and read only their own topics (what the README's production configuration gives each meter and
the oracle), checked against a real nats-server of the test's own."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from flexledger.delivery.broker import READINGS_FILTER, RECEIPTS_FILTER, BrokerUser, meter_user
from flexledger.delivery.nats_broker import NatsBroker, NatsServerMissingError, nats_subject

METER, OTHER = "0x" + "ab" * 20, "0x" + "cd" * 20
ORACLE = BrokerUser("flexledger-oracle-test", (RECEIPTS_FILTER,), (READINGS_FILTER,))


def test_topics_become_subjects() -> None:
    assert nats_subject("flexledger/v1/readings/+") == "flexledger.v1.readings.*"
    assert nats_subject("flexledger/v1/orders/#") == "flexledger.v1.orders.>"
    assert nats_subject(f"flexledger/v1/receipts/{METER}") == f"flexledger.v1.receipts.{METER}"


class Client:
    """A persistent MQTT session that records what it receives and what its subscriptions got."""

    def __init__(self, port: int, name: str, password: str | None) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.granted: list[bool] = []
        self.connected = threading.Event()
        self.refused = threading.Event()
        self._acked = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, clean_session=False)
        if password is not None:
            self.client.username_pw_set(name, password)
        self.client.on_connect = lambda _c, _u, _f, reason, _p: (self.refused if reason.is_failure
                                                                 else self.connected).set()
        self.client.on_message = lambda _c, _u, m: self.received.append((m.topic, bytes(m.payload)))
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_subscribe(self, _c: mqtt.Client, _u: object, _mid: int, codes: list[mqtt.ReasonCode], _p: object) -> None:
        self.granted.append(not codes[0].is_failure)
        self._acked.set()

    def subscribe(self, topic: str) -> bool:
        self._acked.clear()
        self.client.subscribe(topic, 1)
        assert self._acked.wait(10)
        return self.granted[-1]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _wait(condition: Callable[[], object], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_each_user_publishes_and_reads_only_its_own_topics(tmp_path: Path) -> None:
    meter = meter_user(METER)
    try:
        broker = NatsBroker(tmp_path / "nats", users={ORACLE: "oracle-secret", meter: "meter-secret"})
    except NatsServerMissingError:
        pytest.skip("nats-server is not installed here: the replicated broker cannot be tested")
    broker.start()
    port = broker.nodes[0].mqtt_port
    clients: list[Client] = []
    try:
        anonymous = Client(port, "stranger", None)
        clients.append(anonymous)
        assert anonymous.refused.wait(10)  # no anonymous client
        oracle = Client(port, ORACLE.name, "oracle-secret")
        gateway = Client(port, meter.name, "meter-secret")
        clients += [oracle, gateway]
        assert oracle.connected.wait(10) and gateway.connected.wait(10)
        assert oracle.subscribe(READINGS_FILTER)
        assert gateway.subscribe(f"flexledger/v1/receipts/{METER}")
        assert not gateway.subscribe(f"flexledger/v1/receipts/{OTHER}")  # another meter's receipts
        assert not gateway.subscribe("$MQTT/sub/#")  # the server's delivery subjects are not topics
        gateway.client.publish(f"flexledger/v1/readings/{OTHER}", b"forged", qos=1)  # dropped by the server
        gateway.client.publish(f"flexledger/v1/readings/{METER}", b"own", qos=1)
        oracle.client.publish(f"flexledger/v1/receipts/{METER}", b"receipt", qos=1)
        assert _wait(lambda: oracle.received and gateway.received)
        _wait(lambda: False, 1.0)  # time for what should not arrive
        assert oracle.received == [(f"flexledger/v1/readings/{METER}", b"own")]
        assert gateway.received == [(f"flexledger/v1/receipts/{METER}", b"receipt")]
    finally:
        for client in clients:
            client.close()
        broker.stop()
