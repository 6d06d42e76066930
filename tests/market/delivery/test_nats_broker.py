"""The replicated broker's configuration: MQTT topics as NATS subjects, and users who may publish
and read only their own topics (what the README's production configuration gives each meter and
the oracle), by password and by client certificate over TLS (``verify_and_map``), checked against
a real nats-server of the test's own."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from nats_services import nats_broker

from flexledger.delivery.broker import READINGS_FILTER, RECEIPTS_FILTER, BrokerUser, meter_user
from flexledger.delivery.nats_broker import (
    NatsBroker,
    NatsTls,
    NatsUser,
    nats_subject,
)
from flexledger.oracle.consumer import BrokerEndpoint

METER, OTHER = "0x" + "ab" * 20, "0x" + "cd" * 20
ORACLE = BrokerUser("flexledger-oracle-test", (RECEIPTS_FILTER,), (READINGS_FILTER,))


def test_topics_become_subjects() -> None:
    assert nats_subject("flexledger/v1/readings/+") == "flexledger.v1.readings.*"
    assert nats_subject("flexledger/v1/orders/#") == "flexledger.v1.orders.>"
    assert nats_subject(f"flexledger/v1/receipts/{METER}") == f"flexledger.v1.receipts.{METER}"


class Client:
    """A persistent MQTT session that records what it receives and what its subscriptions got."""

    def __init__(self, port: int, name: str, password: str | None, tls: tuple[Path, Path, Path] | None = None) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.granted: list[bool] = []
        self.connected = threading.Event()
        self.refused = threading.Event()
        self._acked = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, clean_session=False)
        if password is not None:
            self.client.username_pw_set(name, password)
        if tls is not None:  # as the oracle connects: its CA, certificate and key
            ca, cert, key = tls
            BrokerEndpoint.from_url(f"mqtts://127.0.0.1:{port}", ca_file=str(ca), cert_file=str(cert),
                                    key_file=str(key)).apply(self.client)
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


@pytest.mark.services
def test_each_user_publishes_and_reads_only_its_own_topics(tmp_path: Path) -> None:
    meter = meter_user(METER)
    broker = _broker(tmp_path, users=[NatsUser(ORACLE, password="oracle-secret"),
                                      NatsUser(meter, password="meter-secret")])
    port = broker.nodes[0].mqtt_port
    clients: list[Client] = []
    try:
        anonymous = Client(port, "stranger", None)
        clients.append(anonymous)
        assert anonymous.refused.wait(10)  # no anonymous client
        oracle = Client(port, ORACLE.name, "oracle-secret")
        gateway = Client(port, meter.name, "meter-secret")
        clients += [oracle, gateway]
        _only_own_topics(oracle, gateway)
    finally:
        for client in clients:
            client.close()
        broker.stop()


def _broker(tmp_path: Path, *, users: list[NatsUser], tls: NatsTls | None = None,
            ready: Callable[[int], bool] | None = None) -> NatsBroker:
    broker = nats_broker(tmp_path / "nats", users=users, tls=tls, ready=ready)
    broker.start()
    return broker


def _only_own_topics(oracle: Client, gateway: Client) -> None:
    """The oracle reads readings and writes receipts; the gateway publishes its meter's readings and
    reads its receipts, nothing of another meter's."""
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


def _certificates(folder: Path, names: list[str]) -> dict[str, tuple[Path, Path]]:
    """A CA (``ca``), the broker's certificate for 127.0.0.1 (``broker``) and a client certificate
    with ``CN=<name>`` for each name: (certificate, key) by name, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command here to make the test's certificates")
    folder.mkdir(parents=True, exist_ok=True)

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=folder)

    new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run("req", "-x509", *new_key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=test CA")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    made = {"ca": (folder / "ca.pem", folder / "ca.key")}
    for name in ["broker", *names]:
        subject = "/CN=127.0.0.1" if name == "broker" else f"/CN={name}"
        run("req", *new_key, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject)
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", *(["-extfile", "san.ext"] if name == "broker" else []))
        made[name] = (folder / f"{name}.pem", folder / f"{name}.key")
    return made


@pytest.mark.services
def test_over_tls_each_client_certificate_is_its_user(tmp_path: Path) -> None:
    """The production listener: TLS only, and a client's certificate subject (its meter's address,
    the oracle's name) is its user (``verify_and_map``); a client without a certificate is refused
    at the handshake."""
    meter = meter_user(METER)
    certs = _certificates(tmp_path / "pki", [METER, ORACLE.name])
    ca = certs["ca"][0]

    def as_oracle(port: int) -> Client:
        return Client(port, ORACLE.name, None, (ca, *certs[ORACLE.name]))

    def ready(port: int) -> bool:
        try:
            probe = as_oracle(port)
        except OSError:  # not listening yet
            return False
        try:
            return probe.connected.wait(3) and probe.subscribe(READINGS_FILTER)
        finally:
            probe.close()

    broker = _broker(tmp_path, tls=NatsTls(*certs["broker"], ca), ready=ready,
                     users=[NatsUser(ORACLE, subject=f"CN={ORACLE.name}"), NatsUser(meter, subject=f"CN={METER}")])
    port = broker.nodes[0].mqtt_port
    clients: list[Client] = []
    try:
        oracle, gateway = as_oracle(port), Client(port, meter.name, None, (ca, *certs[METER]))
        clients += [oracle, gateway]
        assert oracle.connected.wait(10) and gateway.connected.wait(10)
        _only_own_topics(oracle, gateway)
        assert not _connects_without_certificate(port, ca)
    finally:
        for client in clients:
            client.close()
        broker.stop()


def _connects_without_certificate(port: int, ca: Path) -> bool:
    """Whether a client trusting the CA but presenting no certificate gets a session."""
    refused = threading.Event()
    connected = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="stranger")
    client.tls_set(ca_certs=str(ca))
    client.on_connect = lambda _c, _u, _f, reason, _p: (refused if reason.is_failure else connected).set()
    try:
        client.connect("127.0.0.1", port)
        client.loop_start()
        connected.wait(3)  # TLS 1.3: the server's refusal comes after the client's handshake is done
    except OSError:
        return False
    finally:
        client.loop_stop()
    return connected.is_set()
