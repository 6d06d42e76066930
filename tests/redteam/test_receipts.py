"""Finding 3's class (issue 17): a reading the broker acknowledged is not a reading the oracle stored.

The gateway deleted a reading on the broker's PUBACK, so a reading the broker accepted while the
oracle had no session there (or that the oracle failed to store) was gone for good. The gateway now
keeps it until the oracle's receipt and sends it again meanwhile; only the oracle may write the
receipts topic, so nobody else can clear a gateway's outbox. Both on the embedded broker the CLI runs.
"""

from __future__ import annotations

import json
import logging
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
from flexledger.oracle.consumer import BrokerEndpoint, OracleConsumer, receipt
from flexledger.oracle.readings import Reading
from flexledger.oracle.store import StoredReading, open_store, session
from flexledger.oracle.verify import Verifier
from flexledger_edge.agent import EdgeAgent
from flexledger_edge.clock import RealClock
from flexledger_edge.config import load_config
from flexledger_edge.reading import OracleDomain, SignedReading

DOMAIN = OracleDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3")
ISP = 900


def _agent(local: LocalBroker, info: BrokerInfo, folder: Path) -> EdgeAgent:
    account = Account.create()
    url = local.client_url(info, meter_user(account.address))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "agent.toml"
    path.write_text(f"""
chain_id = {DOMAIN.chain_id}
oracle_address = "{DOMAIN.verifying_contract}"
mode = "development"
state_dir = "state"
[meter]
private_key = "{account.key.hex()}"
[broker]
url = "{url}"
resend_s = 1
resend_max_s = 2
[driver]
kind = "simulated"
""")
    return EdgeAgent(load_config(path), RealClock())


def _sign(agent: EdgeAgent, count: int) -> list[SignedReading]:
    last = (int(time.time()) // ISP - 1) * ISP
    made = []
    for isp in range(last - (count - 1) * ISP, last + 1, ISP):
        signed = agent.outbox.append(agent.meter, isp, lambda sequence, isp=isp: agent.signer.sign_new(
            isp_start=isp, sequence=sequence, import_wh=1200, export_wh=30))
        assert signed is not None
        made.append(signed)
    return made


def _oracle(local: LocalBroker, info: BrokerInfo, engine: Engine) -> OracleConsumer:
    url, client_id = local.oracle_url(info)
    consumer = OracleConsumer(url, engine, Verifier(DOMAIN.separator(), lambda _m: None, isp_seconds=ISP), 1,
                              client_id=client_id)
    consumer.receipts = True  # as `flexledger oracle run`
    consumer.start()
    assert consumer.wait_subscribed()
    return consumer


def _stored(engine: Engine) -> int:
    with session(engine) as s:
        return int(s.scalar(select(func.count()).select_from(StoredReading)) or 0)


def _step_until(agent: EdgeAgent, pred: object, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        agent.publisher.step(0.05)
        if pred():  # type: ignore[operator]
            return True
    return bool(pred())  # type: ignore[operator]


def test_rt3_a_reading_the_broker_acknowledged_but_the_oracle_never_stored_is_sent_again_and_stored(
        broker: tuple[LocalBroker, BrokerInfo], tmp_path: Path) -> None:
    local, info = broker
    agent = _agent(local, info, tmp_path / "gw")
    try:
        _sign(agent, 3)
        # no oracle session at the broker: it acknowledges the readings and drops them
        assert _step_until(agent, lambda: agent.publisher.sent_count >= 3 and not agent.publisher._in_flight)
        assert agent.outbox.count() == 3  # a PUBACK is not a receipt
        engine = open_store(f"sqlite:///{tmp_path / 'o.db'}")
        oracle = _oracle(local, info, engine)
        try:
            assert _step_until(agent, lambda: agent.outbox.count() == 0), agent.outbox.count()
            assert _stored(engine) == 3
            assert agent.publisher.resent_count >= 3
        finally:
            oracle.stop()
    finally:
        agent.publisher.close()
        agent.outbox.close()


def _client(info: BrokerInfo, url: str, client_id: str) -> tuple[mqtt.Client, threading.Event]:
    closed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
    BrokerEndpoint.from_url(url).apply(client)
    client.on_disconnect = lambda *_a: closed.set()
    client.connect("127.0.0.1", info.port)
    client.loop_start()
    return client, closed


def test_rt3_a_forged_receipt_from_another_client_cannot_clear_the_outbox(
        broker: tuple[LocalBroker, BrokerInfo], tmp_path: Path) -> None:
    local, info = broker
    agent = _agent(local, info, tmp_path / "gw")
    other = Account.create().address
    try:
        (signed,) = _sign(agent, 1)
        assert _step_until(agent, lambda: agent.publisher.sent_count >= 1 and not agent.publisher._in_flight)
        reading = signed.reading
        forged = receipt(Reading(reading.meter, reading.isp_start, reading.sequence, reading.import_wh,
                                 reading.export_wh), "stored")
        topic = f"flexledger/v1/receipts/{agent.meter.lower()}"
        # another meter's gateway, and the gateway's own user (a gateway cannot clear itself either)
        for user in (meter_user(other), meter_user(agent.meter)):
            client_id = f"{user.name}:forger" if user.name == meter_user(agent.meter).name else user.name
            client, closed = _client(info, local.client_url(info, user), client_id)
            try:
                subscribed: list[list[mqtt.ReasonCode]] = []
                client.on_subscribe = lambda _c, _u, _m, codes, _p=None, into=subscribed: into.append(codes)
                if user.name != meter_user(agent.meter).name:
                    client.subscribe(topic, qos=1)  # nor may it read another meter's receipts
                    assert _step_until(agent, lambda seen=subscribed: bool(seen), 5.0)
                    assert subscribed[0][0].is_failure
                client.publish(topic, forged, qos=1)
                assert closed.wait(5), "the broker let a non-oracle client publish a receipt"
                _step_until(agent, lambda: False, 1.0)
                assert agent.outbox.count() == 1
            finally:
                client.loop_stop()
        # the oracle's own receipt still clears it
        engine = open_store(f"sqlite:///{tmp_path / 'o.db'}")
        oracle = _oracle(local, info, engine)
        try:
            assert _step_until(agent, lambda: agent.outbox.count() == 0)
            assert _stored(engine) == 1
        finally:
            oracle.stop()
    finally:
        agent.publisher.close()
        agent.outbox.close()


def test_rt3_the_oracle_user_of_an_older_install_may_publish_receipts_and_keeps_its_password(tmp_path: Path) -> None:
    local = LocalBroker(tmp_path / "broker", port=free_port())
    local.data_dir.mkdir(parents=True)
    name = "flexledger-oracle-0123456789ab"
    password = local.users.add(name, subscribe=["flexledger/v1/readings/+"])  # as made before receipts
    (local.data_dir / "broker-oracle.json").write_text(json.dumps({"name": name, "password": password}))
    assert local.oracle_credentials() == (name, password)
    (user,) = local.users.list()
    assert user.publish == ("flexledger/v1/receipts/+",) and user.subscribe == ("flexledger/v1/readings/+",)
    meter = meter_user("0x" + "AB" * 20, 7)
    assert meter.subscribe == ("flexledger/v1/receipts/" + "0x" + "ab" * 20, "flexledger/v1/orders/7")
    assert not any("receipts" in topic for topic in meter.publish)


def test_rt3_a_gateway_whose_user_may_not_read_its_receipts_says_so(
        broker: tuple[LocalBroker, BrokerInfo], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    local, info = broker
    agent = _agent(local, info, tmp_path / "gw")
    try:
        old = meter_user(agent.meter)
        local.users.set_topics(old.name, publish=old.publish)  # a meter user made before receipts
        agent.publisher.close()
        with caplog.at_level(logging.ERROR, logger="flexledger_edge.publisher"):
            _step_until(agent, lambda: "refused a subscription" in caplog.text, 5.0)
        assert "refused a subscription" in caplog.text
        assert "subscription to its receipts" in caplog.text  # what to do about it, not only that it failed
        assert agent.publisher.receipts_state() == "refused"
        assert agent.write_status()["receipts"] == "refused"
        assert json.loads(agent.config.status_path.read_text())["receipts"] == "refused"
    finally:
        agent.publisher.close()
        agent.outbox.close()


def test_rt3_meter_users_made_before_receipts_are_upgraded_on_start_and_keep_their_password(
        broker: tuple[LocalBroker, BrokerInfo], tmp_path: Path) -> None:
    local, info = broker
    agent = _agent(local, info, tmp_path / "gw")
    try:
        old = meter_user(agent.meter)
        local.users.set_topics(old.name, publish=old.publish)  # made before receipts
        other = "a-service"
        local.users.add(other, publish=["x/y"])
        before = json.loads(local.users.path.read_text())["users"][old.name]
        assert local.start() == info  # the running broker: its users are upgraded all the same
        after = json.loads(local.users.path.read_text())["users"]
        assert after[old.name]["subscribe"] == list(old.subscribe)
        assert (after[old.name]["salt"], after[old.name]["hash"]) == (before["salt"], before["hash"])
        assert after[other]["subscribe"] == [] and local.users.upgrade_meters() == []
        # the agent, with its old password, now gets its receipts
        _sign(agent, 1)
        engine = open_store(f"sqlite:///{tmp_path / 'o.db'}")
        oracle = _oracle(local, info, engine)
        try:
            assert _step_until(agent, lambda: agent.outbox.count() == 0)
            assert agent.publisher.receipts_state() == "ok"
        finally:
            oracle.stop()
    finally:
        agent.publisher.close()
        agent.outbox.close()
