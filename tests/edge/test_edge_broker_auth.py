"""The agent's broker credentials reach paho, against a Mosquitto of the test's own that refuses
anonymous clients and applies the per-asset ACL the README recommends: the gateway reads only its
asset's orders, only the dispatcher writes orders."""

from __future__ import annotations

import getpass
import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from dispatch_world import CHAIN_ID, DISPATCHER, REGISTRY, signed_order
from eth_utils import keccak

from flexledger.chain.node import free_port
from flexledger_edge.agent import EdgeAgent
from flexledger_edge.clock import RealClock
from flexledger_edge.config import parse_config
from flexledger_edge.publisher import BrokerUnavailableError, PahoSession, SessionCallbacks

pytestmark = pytest.mark.skipif(not (shutil.which("mosquitto") and shutil.which("mosquitto_passwd")),
                                reason="needs mosquitto and mosquitto_passwd")

ISP = 900
USERS = {"gw-7": "gw-pw", "dispatcher": "d-pw", "gw-8": "other-pw"}
ACL = """
user gw-7
topic read flexledger/v1/orders/7
topic write flexledger/v1/acks/7
topic write flexledger/v1/readings/#
user gw-8
topic read flexledger/v1/orders/8
topic write flexledger/v1/acks/8
user dispatcher
topic write flexledger/v1/orders/#
topic read flexledger/v1/acks/#
"""


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[int]:
    port = free_port()
    passwords = tmp_path / "passwd"
    passwords.touch()
    for user, password in USERS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwords), user, password], check=True, capture_output=True)
    (tmp_path / "acl").write_text(ACL)
    conf = tmp_path / "mosquitto.conf"
    # run as this user: started as root, mosquitto would switch to its own user and not read tmp_path
    conf.write_text(f"user {getpass.getuser()}\nlistener {port} 127.0.0.1\nallow_anonymous false\n"
                    f"password_file {passwords}\nacl_file {tmp_path / 'acl'}\npersistence false\n")
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def _agent(tmp_path: Path, port: int, **broker: Any) -> EdgeAgent:
    config = parse_config({
        "chain_id": CHAIN_ID, "oracle_address": "0x5FbDB2315678afecb367f032d93F642f64180aa3", "mode": "development",
        "state_dir": str(tmp_path / "state"), "meter": {"private_key": "0x" + "22" * 32},
        "broker": {"url": f"mqtt://127.0.0.1:{port}", **broker}, "driver": {"kind": "simulated"},
        "asset": {"id": 7, "device": {"kind": "battery", "capacity_wh": 10_000, "max_power_w": 5_000}},
        "orders": {"market": 1, "market_registry": REGISTRY, "dispatcher": DISPATCHER},
    }, tmp_path / "agent.toml")
    return EdgeAgent(config, RealClock())


def _client(port: int, user: str | None) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    if user is not None:
        client.username_pw_set(user, USERS[user])
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def test_credentials_from_the_config_reach_the_broker(tmp_path: Path, mosquitto: int) -> None:
    callbacks = SessionCallbacks(lambda _mid: None, lambda _t, _p: None)
    with pytest.raises(BrokerUnavailableError, match="refused"):
        PahoSession(_agent(tmp_path, mosquitto).config.broker, "x", callbacks)
    with pytest.raises(BrokerUnavailableError, match="refused"):
        PahoSession(_agent(tmp_path, mosquitto, username="gw-7", password="wrong").config.broker, "x", callbacks)
    session = PahoSession(_agent(tmp_path, mosquitto, username="gw-7", password="gw-pw").config.broker, "x", callbacks)
    session.close()


def test_under_the_acl_only_the_dispatcher_reaches_the_gateway(tmp_path: Path, mosquitto: int) -> None:
    agent = _agent(tmp_path, mosquitto, username="gw-7", password="gw-pw")
    acks: list[dict[str, Any]] = []
    dispatcher = _client(mosquitto, "dispatcher")
    dispatcher.on_message = lambda _c, _u, m: acks.append(json.loads(m.payload))
    dispatcher.subscribe("flexledger/v1/acks/#", qos=1)
    other = _client(mosquitto, "gw-8")
    try:
        for _ in range(50):
            agent.publisher.step(0.05)
            if agent.publisher.connected:
                break
        for _ in range(10):
            agent.publisher.step(0.05)  # SUBACK
        nxt = (int(time.time()) // ISP + 1) * ISP
        # another gateway's user cannot publish orders (the broker drops them): nothing reaches asset 7
        other.publish("flexledger/v1/orders/7", signed_order(order_id=keccak(text="o8"), isp_start=nxt,
                                                            expires_at=nxt + 2 * ISP), qos=1).wait_for_publish(5)
        real = signed_order(isp_start=nxt, expires_at=nxt + 2 * ISP)
        dispatcher.publish("flexledger/v1/orders/7", real, qos=1).wait_for_publish(5)
        deadline = time.monotonic() + 10
        while not acks and time.monotonic() < deadline:
            agent.publisher.step(0.05)
        time.sleep(0.3)
        assert [a["orderId"] for a in acks] == ["0x" + keccak(text="o-1").hex()]
        assert acks[0]["status"] == "accepted"
    finally:
        for c in (dispatcher, other):
            c.loop_stop()
            c.disconnect()
        agent.publisher.close()
        agent.outbox.close()
