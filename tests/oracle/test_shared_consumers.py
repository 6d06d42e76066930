"""Oracle consumers scaled out: two consumer processes share the readings through a shared
subscription (``$share/<group>/...``), one is killed with SIGKILL mid-stream and started again; every
reading is kept once, whichever consumer got it (the store's key is the meter and ISP)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from coincurve import PrivateKey
from eth_utils import keccak, to_checksum_address
from oracle_stores import STORES, store_url
from sqlalchemy import func, select

from flexledger.chain.node import free_port
from flexledger.config import Settings
from flexledger.delivery.broker import LocalBroker
from flexledger.delivery.mosquitto_process import MosquittoMissingError, MosquittoProcess
from flexledger.delivery.oracle_service import shared_subscription
from flexledger.errors import ConfigurationError
from flexledger.identity.eip712 import Eip712Domain
from flexledger.oracle.consumer import READINGS_TOPIC, readings_filter
from flexledger.oracle.readings import Reading
from flexledger.oracle.store import StoredReading, open_store, rejections, session

DOMAIN = Eip712Domain("flexledger MeterOracle", "1", 31337, "0x" + "33" * 20)
METERS = 50
CONSUMER = textwrap.dedent('''
    import sys, time
    from flexledger.identity.eip712 import Eip712Domain
    from flexledger.oracle.consumer import OracleConsumer
    from flexledger.oracle.store import open_store
    from flexledger.oracle.verify import Verifier
    url, db, client_id = sys.argv[1], sys.argv[2], sys.argv[3]
    separator = Eip712Domain("flexledger MeterOracle", "1", 31337, "0x" + "33" * 20).separator()
    consumer = OracleConsumer(url, open_store(db), Verifier(separator, lambda meter: None, retention=10**9), 1,
                              client_id=client_id, batch=50, share_group="oracles")
    consumer.start()
    assert consumer.wait_subscribed(20)
    print("ready", flush=True)
    while True:
        time.sleep(1)
''')


def readings(count: int) -> list[tuple[str, bytes]]:
    """``count`` signed readings of ``METERS`` meters, each on its meter's topic."""
    separator = DOMAIN.separator()
    keys = [PrivateKey(keccak(f"shared meter {m}".encode())) for m in range(METERS)]
    meters = [to_checksum_address(keccak(k.public_key.format(compressed=False)[1:])[-20:]) for k in keys]
    first = (int(time.time()) // 900 - count // METERS - 2) * 900
    out = []
    for n in range(count):
        m, isp = n % METERS, first + (n // METERS) * 900
        reading = Reading(meters[m], isp, n // METERS + 1, 100 + n, 0)
        raw = keys[m].sign_recoverable(reading.digest(separator), hasher=None)
        signature = raw[:64] + bytes([raw[64] + 27])
        body = (f'{{"meter":"{meters[m]}","ispStart":{isp},"sequence":{reading.sequence},"importWh":{100 + n},'
                f'"exportWh":0,"signature":"0x{signature.hex()}"}}')
        out.append((f"flexledger/v1/readings/{meters[m].lower()}", body.encode()))
    return out


def start_consumer(url: str, db: str, client_id: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", CONSUMER, url, db, client_id], stdout=subprocess.PIPE, text=True,
                            cwd="/", env={**os.environ})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def stored(db: str) -> int:
    engine = open_store(db)
    try:
        with session(engine) as s:
            return s.scalar(select(func.count()).select_from(StoredReading)) or 0
    finally:
        engine.dispose()


def test_the_share_group_makes_a_shared_filter() -> None:
    assert readings_filter() == READINGS_TOPIC
    assert readings_filter("oracles") == f"$share/oracles/{READINGS_TOPIC}"
    with pytest.raises(ValueError, match="shared subscription"):
        readings_filter("a/b")


def test_the_embedded_broker_has_no_shared_subscriptions(tmp_path: Path) -> None:
    """aedes 1.x grants a subscription to ``$share/...`` and delivers nothing to it (a literal
    topic): why `oracle run` refuses a share group on the embedded broker."""
    broker = LocalBroker(tmp_path / "broker", port=free_port(), auth=False)  # anonymous test clients
    info = broker.start()
    received: list[str] = []
    granted = threading.Event()
    consumer = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="shared-consumer")
    consumer.on_message = lambda _c, _u, m: received.append(m.topic)
    consumer.on_subscribe = lambda _c, _u, _m, codes, _p: None if codes[0].is_failure else granted.set()
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="shared-meter")
    try:
        consumer.connect("127.0.0.1", info.port)
        consumer.loop_start()
        consumer.subscribe(readings_filter("oracles"), 1)
        assert granted.wait(10)
        publisher.connect("127.0.0.1", info.port)
        publisher.loop_start()
        publisher.publish("flexledger/v1/readings/0xmeter", b"{}", qos=1).wait_for_publish(10)
        time.sleep(0.5)
        assert received == []
    finally:
        for client in (consumer, publisher):
            client.loop_stop()
            client.disconnect()
        broker.stop()


def test_oracle_run_refuses_a_share_group_on_the_embedded_broker(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no shared subscriptions"):
        shared_subscription(Settings(data_dir=tmp_path, mqtt_share_group="oracles"))
    assert shared_subscription(Settings(data_dir=tmp_path, mqtt_url="mqtt://127.0.0.1:1883",
                                        mqtt_share_group="oracles")) == "oracles"


@pytest.mark.services
@pytest.mark.slow
@pytest.mark.parametrize("store", STORES)
def test_two_consumers_one_killed_mid_stream_lose_and_double_nothing(tmp_path: Path, store: str) -> None:
    try:
        mosquitto = MosquittoProcess(tmp_path / "mosquitto")
    except MosquittoMissingError:
        pytest.skip("no mosquitto binary here to run a broker of the test's own")
    mosquitto.start()
    bodies = readings(3000)
    consumers: list[subprocess.Popen[str]] = []
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="shared-meters")
    with store_url(store, tmp_path) as db:
        open_store(db).dispose()
        try:
            consumers = [start_consumer(mosquitto.url, db, f"shared-oracle-{i}") for i in range(2)]
            publisher.connect("127.0.0.1", mosquitto.port)
            publisher.loop_start()
            sent = [publisher.publish(topic, body, qos=1) for topic, body in bodies[:1000]]
            deadline = time.time() + 30
            while stored(db) < 300 and time.time() < deadline:
                time.sleep(0.02)
            consumers[0].send_signal(signal.SIGKILL)  # mid-stream, within a batch before its acknowledgements
            consumers[0].wait(10)
            at_kill = stored(db)
            sent += [publisher.publish(topic, body, qos=1) for topic, body in bodies[1000:]]
            deadline = time.time() + 30
            while stored(db) < at_kill + 900 and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)
            alone = stored(db)
            assert alone >= at_kill + 900  # the other consumer took its share meanwhile ...
            assert alone < len(bodies)  # ... and the killed one's waits in its session
            consumers[0] = start_consumer(mosquitto.url, db, "shared-oracle-0")
            deadline = time.time() + 60
            while stored(db) < len(bodies) and time.time() < deadline:
                time.sleep(0.1)
            assert all(info.is_published() for info in sent)
            assert stored(db) == len(bodies)  # nothing lost; each (meter, ISP) is one row: nothing doubled
            time.sleep(0.5)
            assert stored(db) == len(bodies)
            engine = open_store(db)
            with session(engine) as s:
                assert set(rejections(s)) <= {"duplicate"}  # a redelivery of the killed batch, counted, not kept
            engine.dispose()
        finally:
            for proc in consumers:
                proc.kill()
                proc.wait(10)
            publisher.loop_stop()
            publisher.disconnect()
            mosquitto.stop()
