"""Faults the oracle must survive with nothing lost and nothing counted twice: killed with
SIGKILL in the middle of a stream, then restarted on the same broker session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from coincurve import PrivateKey
from eth_utils import keccak, to_checksum_address
from sqlalchemy import func, select

from flexledger.delivery.broker import LocalBroker
from flexledger.identity.eip712 import Eip712Domain
from flexledger.oracle.readings import Reading
from flexledger.oracle.store import StoredReading, open_store, session

DOMAIN = Eip712Domain("flexledger MeterOracle", "1", 31337, "0x" + "22" * 20)
ORACLE = textwrap.dedent('''
    import sys, time
    from flexledger.identity.eip712 import Eip712Domain
    from flexledger.oracle.consumer import OracleConsumer
    from flexledger.oracle.store import open_store
    from flexledger.oracle.verify import Verifier
    url, db = sys.argv[1], sys.argv[2]
    separator = Eip712Domain("flexledger MeterOracle", "1", 31337, "0x" + "22" * 20).separator()
    consumer = OracleConsumer(url, open_store(db), Verifier(separator, lambda meter: None, retention=10**9), 1,
                              client_id="fault-oracle", batch=50)
    consumer.start()
    consumer.wait_subscribed()
    print("ready", flush=True)
    while True:
        time.sleep(1)
''')


def readings(count: int) -> list[bytes]:
    separator = DOMAIN.separator()
    key = PrivateKey(keccak(b"fault meter"))
    meter = to_checksum_address(keccak(key.public_key.format(compressed=False)[1:])[-20:])
    first = (int(time.time()) // 900 - count - 2) * 900
    out = []
    for n in range(count):
        reading = Reading(meter, first + n * 900, n + 1, 100 + n, 0)
        raw = key.sign_recoverable(reading.digest(separator), hasher=None)
        signature = raw[:64] + bytes([raw[64] + 27])
        out.append((f'{{"meter":"{meter}","ispStart":{reading.isp_start},"sequence":{n + 1},"importWh":{100 + n},'
                    f'"exportWh":0,"signature":"0x{signature.hex()}"}}').encode())
    return out


def start_oracle(url: str, db: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", ORACLE, url, db], stdout=subprocess.PIPE, text=True,
                            cwd="/", env={**os.environ})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def stored(db: str) -> int:
    with session(open_store(db)) as s:
        return s.scalar(select(func.count()).select_from(StoredReading)) or 0


@pytest.mark.slow
def test_an_oracle_killed_mid_stream_loses_and_doubles_nothing(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "broker", auth=False)  # anonymous test clients
    url = broker.start().url
    db = f"sqlite:///{tmp_path / 'oracle.db'}"
    open_store(db)
    bodies = readings(1500)
    oracle = start_oracle(url, db)
    publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="fault-meter")
    try:
        publisher.connect("127.0.0.1", int(url.rsplit(":", 1)[1]))
        publisher.loop_start()
        for n, body in enumerate(bodies):
            publisher.publish("flexledger/v1/readings/fault", body, qos=1)
            if n == 500:
                deadline = time.time() + 10
                while stored(db) < 100 and time.time() < deadline:
                    time.sleep(0.01)
                oracle.send_signal(signal.SIGKILL)  # in the middle of a batch, before its acknowledgements
                oracle.wait(10)
        time.sleep(0.5)
        oracle = start_oracle(url, db)  # the same client id: the broker kept its session
        deadline = time.time() + 30
        while stored(db) < len(bodies) and time.time() < deadline:
            time.sleep(0.1)
        assert stored(db) == len(bodies)  # every reading kept, each once (the key is meter and sequence)
    finally:
        oracle.kill()
        oracle.wait(10)
        publisher.loop_stop()
        publisher.disconnect()
        broker.stop()
