"""The embedded MQTT broker: started on a free port, used for real with paho, stopped without a trace."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from typer.testing import CliRunner, Result

from flexledger.broker import (
    BrokerInfo,
    BrokerToolMissingError,
    LocalBroker,
    broker_command,
    broker_url,
    mqtt_answers,
)
from flexledger.chain.node import free_port
from flexledger.cli.app import app
from flexledger.config import Settings
from flexledger.errors import ConfigurationError
from flexledger.services import check_broker


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerInfo]:
    broker = LocalBroker(tmp_path_factory.mktemp("broker"), port=free_port())
    info = broker.start()
    yield info
    broker.stop()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _client(info: BrokerInfo, client_id: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
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
    status = check_broker(running.url)
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
        assert check_broker(url).ok
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
