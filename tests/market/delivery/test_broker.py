"""The embedded MQTT broker: started on a free port, used for real with paho, stopped without a trace."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from typer.testing import CliRunner, Result

from flexledger.chain.node import free_port
from flexledger.chain.paths import project_root
from flexledger.cli.app import app
from flexledger.config import Settings
from flexledger.delivery.broker import (
    BrokerInfo,
    BrokerToolMissingError,
    LocalBroker,
    broker_command,
    broker_url,
    mqtt_answers,
    oracle_broker,
)
from flexledger.errors import ConfigurationError
from flexledger.services import check_broker


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerInfo]:
    broker = LocalBroker(tmp_path_factory.mktemp("broker"), port=free_port())
    info = broker.start()
    yield info
    broker.stop()


def _login(client: mqtt.Client, info: BrokerInfo, client_id: str) -> None:
    """Make the broker user ``client_id`` (the embedded broker admits only its users, under their name)."""
    data_dir = Path(info.log_file).parent
    password = LocalBroker(data_dir).users.add(client_id, publish=["flexledger/test/#"], subscribe=["flexledger/test/#"])
    client.username_pw_set(client_id, password)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _client(info: BrokerInfo, client_id: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    _login(client, info, client_id)
    client.connect("127.0.0.1", info.port, keepalive=10)
    client.loop_start()
    return client


def test_a_qos1_message_goes_through(running: BrokerInfo) -> None:
    subscribed, received = threading.Event(), threading.Event()
    got: list[mqtt.MQTTMessage] = []

    def on_message(client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        got.append(message)
        received.set()

    subscriber = _client(running, "test-sub")
    subscriber.on_subscribe = lambda *args: subscribed.set()
    subscriber.on_message = on_message
    publisher = _client(running, "test-pub")
    try:
        subscriber.subscribe("flexledger/test/#", qos=1)
        assert subscribed.wait(5)
        sent = publisher.publish("flexledger/test/meter", b'{"kwh": 1.5}', qos=1)
        sent.wait_for_publish(5)
        assert sent.is_published()  # the broker sent PUBACK
        assert received.wait(5)
    finally:
        for client in (subscriber, publisher):
            client.disconnect()
            client.loop_stop()
    assert got[0].topic == "flexledger/test/meter"
    assert got[0].payload == b'{"kwh": 1.5}'
    assert got[0].qos == 1


def test_check_broker_says_it_answers(running: BrokerInfo) -> None:
    url, client_id = LocalBroker(Path(running.log_file).parent).oracle_url(running)
    status = check_broker(url, client_id=client_id)
    assert status.ok, status.detail
    assert mqtt_answers("127.0.0.1", running.port)


def test_start_status_reuse_stop(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path, port=free_port())
    info = broker.start()
    try:
        assert info.url == f"mqtt://127.0.0.1:{info.port}"
        assert broker.status() == info
        assert LocalBroker(tmp_path).start() == info  # a second start finds the running broker
        assert json.loads((tmp_path / "broker.json").read_text())["pid"] == info.pid
    finally:
        assert broker.stop()
    assert _gone(info.pid)
    assert broker.status() is None
    assert not broker.stop()
    assert not mqtt_answers("127.0.0.1", info.port)


def test_a_taken_port_makes_it_pick_another(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        broker = LocalBroker(tmp_path, port=taken)
        info = broker.start()
        try:
            assert info.port != taken
            assert mqtt_answers("127.0.0.1", info.port)
        finally:
            broker.stop()
    assert _gone(info.pid)


def test_the_script_reports_a_taken_port() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        proc = subprocess.run([*broker_command(), "--port", str(port)], capture_output=True, text=True, timeout=10)
    assert proc.returncode == 1
    assert "in use" in proc.stderr
    assert proc.stdout == ""


def test_broker_url_starts_then_reuses_the_embedded_broker(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    url = broker_url(settings)
    try:
        oracle_url, client_id = oracle_broker(settings)
        assert check_broker(oracle_url, client_id=client_id).ok
        assert broker_url(settings) == url
    finally:
        assert LocalBroker(tmp_path).stop()


def test_broker_url_is_the_configured_one(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, mqtt_url="mqtt://broker.example:1883")
    assert broker_url(settings) == "mqtt://broker.example:1883"
    assert not (tmp_path / "broker.json").exists()


def test_a_missing_script_is_a_typed_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FLEXLEDGER_PROJECT_ROOT", str(tmp_path))
    with pytest.raises(BrokerToolMissingError) as err:
        LocalBroker(tmp_path / "data").start()
    assert err.value.tool == "mqtt-broker.mjs"
    assert err.value.hint is not None and "npm ci" in err.value.hint


def test_missing_node_is_a_typed_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerToolMissingError) as err:
        LocalBroker(tmp_path / "data").start()
    assert err.value.tool == "node"


def _keeper(info: BrokerInfo, got: list[bytes]) -> mqtt.Client:
    """A client with a persistent session (clean_session false, fixed id), as the oracle has."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-keeper", clean_session=False,
                         protocol=mqtt.MQTTv311)
    _login(client, info, "test-keeper")
    port = info.port
    client.on_message = lambda _c, _u, message: got.append(bytes(message.payload))
    client.connect("127.0.0.1", port, keepalive=10)
    client.loop_start()
    return client


def _subscribe_and_leave(info: BrokerInfo) -> None:
    subscribed = threading.Event()
    keeper = _keeper(info, [])
    keeper.on_subscribe = lambda *_args: subscribed.set()
    keeper.subscribe("flexledger/test/#", qos=1)
    assert subscribed.wait(5)
    keeper.disconnect()
    keeper.loop_stop()


def _wait_for(got: list[bytes], count: int) -> None:
    deadline = time.monotonic() + 10
    while len(got) < count and time.monotonic() < deadline:
        time.sleep(0.02)


def test_a_killed_broker_comes_back_on_its_port_with_what_it_accepted(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path, port=free_port())
    info = broker.start()
    try:
        _subscribe_and_leave(info)
        publisher = _client(info, "test-pub")
        for n in range(20):
            sent = publisher.publish("flexledger/test/meter", str(n).encode(), qos=1)
            sent.wait_for_publish(5)
            assert sent.is_published()  # accepted: the publisher may forget it
        os.kill(info.pid, signal.SIGKILL)  # with the publisher still connected (its port in TIME_WAIT)
        os.waitpid(info.pid, 0)
        publisher.loop_stop()
        again = broker.start()
        assert again.port == info.port and again.pid != info.pid
        got: list[bytes] = []
        keeper = _keeper(info, got)
        _wait_for(got, 20)
        time.sleep(0.2)
        keeper.disconnect()
        keeper.loop_stop()
        # every message; the last ones perhaps twice (journaled and not yet crossed out at the kill)
        assert set(got) == {str(n).encode() for n in range(20)} and len(got) <= 22
    finally:
        broker.stop()


JOURNAL_ENTRY = """
import { Level } from 'level'
const db = new Level(process.argv[1])
await db.sublevel('flexledger-journal', { valueEncoding: 'json' }).put('000000000000', JSON.parse(process.argv[2]))
await db.close()
"""


def test_a_message_acknowledged_but_not_yet_queued_is_queued_at_the_next_start(tmp_path: Path) -> None:
    """aedes acknowledges a QoS 1 message before it queues it; the broker journals it first. What
    the journal holds when the broker dies (written here by hand: the window is too short to hit
    with a kill) is queued for the persistent sessions when it starts again, then crossed out."""
    broker = LocalBroker(tmp_path, port=free_port())
    info = broker.start()
    _subscribe_and_leave(info)
    broker.stop()
    entry = {"topic": "flexledger/test/meter", "payload": "am91cm5hbGVk", "retain": False}  # "journaled"
    subprocess.run(["node", "--input-type=module", "-e", JOURNAL_ENTRY, str(broker.state_dir), json.dumps(entry)],
                   cwd=project_root(), check=True, timeout=30)
    info = broker.start()
    try:
        got: list[bytes] = []
        keeper = _keeper(info, got)
        _wait_for(got, 1)
        keeper.disconnect()
        keeper.loop_stop()
        assert got == [b"journaled"]
    finally:
        broker.stop()
    info = broker.start()  # crossed out: not queued a second time
    try:
        again: list[bytes] = []
        keeper = _keeper(info, again)
        time.sleep(0.5)
        keeper.disconnect()
        keeper.loop_stop()
        assert again == []
    finally:
        broker.stop()


def test_an_in_memory_broker_keeps_nothing(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path, port=free_port(), persist=False)
    info = broker.start()
    _subscribe_and_leave(info)
    broker.stop()
    assert not broker.state_dir.exists()


def _cli(*args: str, data_dir: Path) -> Result:
    """The command in this process (its imports take seconds as a new process)."""
    return CliRunner().invoke(app, ["--data-dir", str(data_dir), "broker", *args])


def test_cli_start_status_stop(tmp_path: Path) -> None:
    result = _cli("start", "--json", data_dir=tmp_path)
    assert result.exit_code == 0, result.output
    started = json.loads(result.stdout)
    try:
        assert not started["already_running"]
        assert json.loads(_cli("start", "--json", data_dir=tmp_path).stdout)["already_running"]
        status = json.loads(_cli("status", "--json", data_dir=tmp_path).stdout)
        assert status == {"running": True, **{k: v for k, v in started.items() if k != "already_running"}}
    finally:
        assert json.loads(_cli("stop", "--json", data_dir=tmp_path).stdout) == {"stopped": True}
    assert _gone(started["pid"])
    assert _cli("status", data_dir=tmp_path).exit_code == 3
    assert (tmp_path / "broker-state").is_dir()  # sessions are kept for the next start ...
    fresh = _cli("start", "--fresh", "--json", data_dir=tmp_path)
    assert fresh.exit_code == 0, fresh.output
    try:
        assert not any((tmp_path / "broker-state").glob("*.ldb"))  # ... unless --fresh
    finally:
        _cli("stop", data_dir=tmp_path)


def test_cli_help_explains() -> None:
    result = CliRunner().invoke(app, ["broker", "--help"])
    assert result.exit_code == 0
    for words in ("embedded MQTT broker", "FLEXLEDGER_MQTT_URL", "start", "stop", "status"):
        assert words in result.stdout


def test_cli_with_a_configured_broker_says_the_embedded_one_is_unused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("FLEXLEDGER_MQTT_URL", "mqtt://u:secret@broker.example:1883")
    result = _cli("start", data_dir=tmp_path)
    assert isinstance(result.exception, ConfigurationError)
    assert "embedded broker is not used" in result.exception.message
    assert "secret" not in result.exception.message
    assert result.exception.hint is not None and "FLEXLEDGER_MQTT_URL" in result.exception.hint
    assert not (tmp_path / "broker.json").exists()


def test_cli_broker_users(tmp_path: Path) -> None:
    """Users are made, listed (never with their passwords) and removed; the file is private."""
    made = _cli("user", "add-meter", "0x" + "AB" * 20, "--asset", "7", "--json", data_dir=tmp_path)
    assert made.exit_code == 0, made.output
    user = json.loads(made.stdout)
    assert user["user"] == user["client_id"] == "flexledger-edge-0x" + "ab" * 20
    assert user["publish"] == ["flexledger/v1/readings/0x" + "ab" * 20, "flexledger/v1/acks/7"]
    assert user["subscribe"] == ["flexledger/v1/receipts/0x" + "ab" * 20, "flexledger/v1/orders/7"]
    assert len(user["password"]) >= 40
    listed = _cli("user", "list", "--json", data_dir=tmp_path)
    assert [u["user"] for u in json.loads(listed.stdout)] == [user["user"]]
    assert user["password"] not in (tmp_path / "broker-users.json").read_text()
    assert (tmp_path / "broker-users.json").stat().st_mode & 0o077 == 0
    assert _cli("user", "add", "bad/name", data_dir=tmp_path).exit_code != 0
    assert json.loads(_cli("user", "remove", user["user"], "--json", data_dir=tmp_path).stdout) == {"removed": True}


def test_cli_upgrades_meter_users_made_before_receipts_and_prints_the_mosquitto_acl(tmp_path: Path) -> None:
    """A meter user made before receipts gets its receipts topic (its password and other topics
    kept); a user that is no meter's is left alone; the Mosquitto ACL gives every meter its own."""
    meter = "0x" + "cd" * 20
    made = json.loads(_cli("user", "add", f"flexledger-edge-{meter}", "--publish", f"flexledger/v1/readings/{meter}",
                           "--subscribe", "flexledger/v1/orders/3", "--json", data_dir=tmp_path).stdout)
    _cli("user", "add", "flexledger-edge-someone", "--publish", "x/y", data_dir=tmp_path)
    stored = json.loads((tmp_path / "broker-users.json").read_text())["users"]
    upgraded = _cli("user", "upgrade", "--json", data_dir=tmp_path)
    assert upgraded.exit_code == 0, upgraded.output
    assert json.loads(upgraded.stdout) == {"upgraded": [made["user"]]}
    after = json.loads((tmp_path / "broker-users.json").read_text())["users"]
    assert after[made["user"]]["subscribe"] == [f"flexledger/v1/receipts/{meter}", "flexledger/v1/orders/3"]
    assert after[made["user"]]["hash"] == stored[made["user"]]["hash"]
    assert after["flexledger-edge-someone"] == stored["flexledger-edge-someone"]
    assert json.loads(_cli("user", "upgrade", "--json", data_dir=tmp_path).stdout) == {"upgraded": []}
    acl = _cli("mosquitto-acl", data_dir=tmp_path)
    assert acl.exit_code == 0 and "pattern read  flexledger/v1/receipts/%u" in acl.stdout
