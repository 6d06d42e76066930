"""Red-team findings 4 and 6 (issue 17): the broker's sessions belong to authenticated clients.

RT-4: the oracle's client id was fixed and public, so one clean CONNECT under it wiped the oracle's
persistent session (readings acknowledged to the meters, lost), and repeated takeovers kept the
oracle off the broker. RT-6: `oracle run` did not pass the URL's user and password (nor any client
certificate) and `config --check` called a broker fine that the oracle could not use.
Each test here asserts the defence, on the embedded broker the CLI runs.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from eth_account import Account
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from flexledger.chain.node import free_port
from flexledger.delivery.broker import BrokerInfo, LocalBroker, meter_user
from flexledger.oracle.consumer import BrokerEndpoint, OracleConsumer
from flexledger.oracle.store import StoredReading, open_store, session
from flexledger.oracle.verify import Verifier
from flexledger.services import check_broker
from flexledger_edge.reading import MeterSigner, OracleDomain

DOMAIN = OracleDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
ISP = 900


def _consumer(url: str, client_id: str, engine: Engine, **kwargs: object) -> OracleConsumer:
    verifier = Verifier(DOMAIN.separator(), lambda _meter: None, isp_seconds=ISP)
    return OracleConsumer(url, engine, verifier, 1, client_id=client_id, **kwargs)  # type: ignore[arg-type]


def _stored(engine: Engine) -> int:
    with session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(StoredReading)) or 0)


def _wait(pred: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return bool(pred())  # type: ignore[operator]


def _connect(port: int, client_id: str, *, url: str | None = None, clean: bool = True) -> tuple[mqtt.Client, str]:
    """A client's CONNECT and the broker's answer (``Success`` or the refusal)."""
    answered = threading.Event()
    reason: list[str] = []

    def on_connect(_c: mqtt.Client, _u: object, _f: object, code: mqtt.ReasonCode, _p: object = None) -> None:
        reason.append(str(code))
        answered.set()

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean,
                         protocol=mqtt.MQTTv311)
    if url is not None:
        BrokerEndpoint.from_url(url).apply(client)
    client.on_connect = on_connect
    client.connect("127.0.0.1", port)
    client.loop_start()
    answered.wait(5)
    return client, (reason[0] if reason else "no CONNACK")


def _close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def test_RT4_a_clean_connect_under_the_oracle_id_cannot_wipe_its_session(
        broker: tuple[LocalBroker, BrokerInfo], tmp_path: Path) -> None:
    local, info = broker
    url, oracle_id = local.oracle_url(info)
    assert oracle_id != "flexledger-oracle" and oracle_id.startswith("flexledger-oracle-")  # per install, random
    engine = open_store(f"sqlite:///{tmp_path / 'o.db'}")
    consumer = _consumer(url, oracle_id, engine)
    consumer.start()
    assert consumer.wait_subscribed()
    consumer.stop()  # the oracle restarts: its persistent session keeps what arrives meanwhile
    meters = 12
    _publish_readings_with_users(local, info, meters)
    # the attack: one clean CONNECT under the oracle's id, anonymous, and as a meter the broker knows
    anonymous, refused = _connect(info.port, oracle_id)
    _close(anonymous)
    assert "Not authorized" in refused or "Bad user name" in refused
    meter_url = local.client_url(info, meter_user("0x" + "cd" * 20))
    as_meter, refused = _connect(info.port, oracle_id, url=meter_url)
    _close(as_meter)
    assert "Bad user name" in refused
    again = _consumer(url, oracle_id, engine, expect_session=True)
    again.start()
    try:
        assert again.wait_subscribed()
        assert _wait(lambda: _stored(engine) >= meters), _stored(engine)
        assert again.sessions_lost == 0
    finally:
        again.stop()


def _publish_readings_with_users(local: LocalBroker, info: BrokerInfo, count: int) -> None:
    isp = (int(time.time()) // ISP - 1) * ISP
    for _ in range(count):
        meter = MeterSigner(Account.create().key, DOMAIN)
        url = local.client_url(info, meter_user(meter.address))
        client, reason = _connect(info.port, meter_user(meter.address).name, url=url)
        assert reason == "Success", reason
        sent = client.publish(f"flexledger/v1/readings/{meter.address.lower()}",
                              meter.sign_new(isp_start=isp, sequence=1, import_wh=1000, export_wh=0).to_json(), qos=1)
        sent.wait_for_publish(5)
        assert sent.is_published()
        _close(client)


def test_RT4_repeated_takeover_attempts_do_not_kick_the_running_oracle(
        broker: tuple[LocalBroker, BrokerInfo], tmp_path: Path) -> None:
    local, info = broker
    url, oracle_id = local.oracle_url(info)
    engine = open_store(f"sqlite:///{tmp_path / 'o.db'}")
    consumer = _consumer(url, oracle_id, engine)
    consumer.start()
    assert consumer.wait_subscribed()
    stop = threading.Event()
    attempts: list[str] = []

    def attacker() -> None:
        while not stop.is_set():
            client, reason = _connect(info.port, oracle_id)
            attempts.append(reason)
            _close(client)
            stop.wait(0.1)

    thread = threading.Thread(target=attacker, daemon=True)
    thread.start()
    try:
        _publish_readings_with_users(local, info, 20)
    finally:
        stop.set()
        thread.join(5)
    try:
        assert _wait(lambda: _stored(engine) >= 20), _stored(engine)
        assert attempts and all(r != "Success" for r in attempts)
        assert consumer.sessions_lost == 0
    finally:
        consumer.stop()


def test_RT4_no_anonymous_client_and_no_topic_beyond_its_own(broker: tuple[LocalBroker, BrokerInfo]) -> None:
    """The also-seen item: anonymous clients could subscribe to every topic. Now none is admitted,
    and a meter may neither read the readings nor publish under another meter's topic."""
    local, info = broker
    anonymous, reason = _connect(info.port, "")
    _close(anonymous)
    assert reason != "Success"
    oracle_url, oracle_id = local.oracle_url(info)
    got: list[str] = []
    oracle, reason = _connect(info.port, oracle_id + ":watch", url=oracle_url)
    assert reason == "Success"
    oracle.on_message = lambda _c, _u, m: got.append(m.topic)
    watching = threading.Event()
    oracle.on_subscribe = lambda *_args: watching.set()
    oracle.subscribe("flexledger/v1/readings/+", qos=1)
    assert watching.wait(5)
    meter = "0x" + "ef" * 20
    meter_client, reason = _connect(info.port, meter_user(meter).name, url=local.client_url(info, meter_user(meter)))
    assert reason == "Success"
    granted: list[list[mqtt.ReasonCode]] = []
    meter_client.on_subscribe = lambda _c, _u, _m, codes, _p=None: granted.append(codes)
    meter_client.subscribe("flexledger/v1/readings/+", qos=1)
    meter_client.subscribe("#", qos=1)
    assert _wait(lambda: len(granted) == 2, 5)
    assert all(code.is_failure for codes in granted for code in codes)
    meter_client.publish(f"flexledger/v1/readings/{meter}", b"own", qos=0)
    try:
        assert _wait(lambda: f"flexledger/v1/readings/{meter}" in got, 5)
        meter_client.publish(f"flexledger/v1/readings/{'0x' + '12' * 20}", b"forged", qos=0)  # refused
        time.sleep(0.5)
        assert got == [f"flexledger/v1/readings/{meter}"]
    finally:
        _close(meter_client)
        _close(oracle)


def test_RT4_a_lost_session_raises_the_alarm(tmp_path: Path) -> None:
    """A broker that no longer holds the oracle's session (restarted without its state, or wiped)
    answers CONNACK session-present false: the consumer counts it and logs an alarm."""
    local = LocalBroker(tmp_path / "broker", port=free_port(), persist=False)
    info = local.start()
    url, oracle_id = local.oracle_url(info)
    engine = open_store(f"sqlite:///{tmp_path / 'o.db'}")
    consumer = _consumer(url, oracle_id, engine)
    consumer.start()
    try:
        assert consumer.wait_subscribed()
        assert consumer.sessions_lost == 0  # a first connection has nothing to lose
        local.stop()
        local.start()  # in memory: the session is gone; the consumer reconnects by itself
        assert _wait(lambda: consumer.sessions_lost == 1, 20)
    finally:
        consumer.stop()
        local.stop()


def test_RT6_the_oracle_connects_with_the_url_credentials(broker: tuple[LocalBroker, BrokerInfo],
                                                         tmp_path: Path) -> None:
    local, info = broker
    url, oracle_id = local.oracle_url(info)
    consumer = _consumer(url, oracle_id, open_store(f"sqlite:///{tmp_path / 'o.db'}"))
    assert consumer.client._username == oracle_id.encode()
    consumer.start()
    try:
        assert consumer.wait_subscribed(5)
    finally:
        consumer.stop()
    assert check_broker(url, client_id=oracle_id).ok
    assert not check_broker(info.url).ok  # what `config --check` says of a URL without credentials


def test_RT6_a_client_certificate_is_honoured(tmp_path: Path) -> None:
    key, cert = tmp_path / "oracle.key", tmp_path / "oracle.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-subj", "/CN=flexledger-oracle", "-days", "1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    endpoint = BrokerEndpoint.from_url("mqtts://oracle:pw@broker.example", ca_file=str(cert),
                                       cert_file=str(cert), key_file=str(key))
    assert (endpoint.port, endpoint.tls, endpoint.username, endpoint.password) == (8883, True, "oracle", "pw")
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="x", protocol=mqtt.MQTTv311)
    endpoint.apply(client)  # loads the certificate chain: a wrong file fails here, not silently
    assert client._ssl_context is not None
    with pytest.raises(ValueError, match="mqtts"):
        BrokerEndpoint.from_url("mqtt://broker.example", cert_file=str(cert), key_file=str(key))
    with pytest.raises(ValueError, match="key"):
        BrokerEndpoint.from_url("mqtts://broker.example", cert_file=str(cert))
    status = check_broker(f"mqtts://127.0.0.1:{free_port()}", cert_file=str(tmp_path / "missing.pem"),
                          key_file=str(key), timeout=2)
    assert not status.ok


def test_RT6_config_check_checks_the_embedded_broker_as_the_oracle(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from flexledger.cli.app import app

    monkeypatch.setenv("FLEXLEDGER_DATA_DIR", str(tmp_path / "data"))
    broker = LocalBroker(tmp_path / "data", port=free_port())
    broker.start()
    try:
        result = CliRunner().invoke(app, ["config", "--check", "--json"])
    finally:
        broker.stop()
    assert result.exit_code == 0, result.output
    services = {s["name"]: s for s in json.loads(result.stdout)["services"]}
    assert services["broker"]["ok"], services["broker"]
    assert "authenticated as flexledger-oracle-" in services["broker"]["detail"]


def test_RT4_an_edge_agent_session_cannot_be_taken(broker: tuple[LocalBroker, BrokerInfo]) -> None:
    """The same attack on a gateway's id (flexledger-edge-<meter>) would keep it offline and take its
    orders: anonymous, with another meter's password, or the oracle's, the id is refused."""
    local, info = broker
    meter, other = "0x" + "a1" * 20, "0x" + "b2" * 20
    agent_url = local.client_url(info, meter_user(meter, 5))
    own = meter_user(meter).name
    attempts = [_connect(info.port, own, clean=True),
                _connect(info.port, own, url=local.client_url(info, meter_user(other, 6))),
                _connect(info.port, own, url=local.oracle_url(info)[0])]
    for client, reason in attempts:
        _close(client)
        assert reason != "Success", reason
    agent, reason = _connect(info.port, own, url=agent_url, clean=False)
    _close(agent)
    assert reason == "Success"
