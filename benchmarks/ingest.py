"""Verified, stored readings per second, end to end: publishers -> MQTT broker -> oracle consumer
(signature recovery, checks, one transaction per batch, manual acknowledgement) -> SQLite -> the
ISP's Merkle tree; and, in the same run, the single-core signature-recovery rate for comparison.

Run: .venv/bin/python benchmarks/ingest.py [READINGS]   (or `make bench`)
The broker is the one named by FLEXLEDGER_BENCH_MQTT_URL (e.g. this machine's Mosquitto at
mqtt://127.0.0.1:1883), else the embedded broker the CLI starts. Meters' credentials are not read
from a chain here (the consumer caches them in production): every meter is taken as known.
Target (metering issue): at least 10,000 readings per second end to end on 2 cores.
FLEXLEDGER_BENCH_RECEIPTS chooses the receipts the oracle publishes: ``signed`` (the default, as
`flexledger oracle run`, every reading taken as arriving in time, so each receipt is an "accepted"
EIP-712 ReadingReceipt signed by the oracle: the worst case), ``plain`` (unsigned) or ``off``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from _common import report  # benchmarks/ is on sys.path when a script runs
from coincurve import PrivateKey
from eth_utils import keccak
from sqlalchemy import func, select

from flexledger.identity.eip712 import Eip712Domain, recover_strict
from flexledger.oracle.anchoring import tree_of
from flexledger.oracle.consumer import OracleConsumer
from flexledger.oracle.readings import Reading
from flexledger.oracle.receipts import ReceiptSigner
from flexledger.oracle.store import StoredReading, open_store, readings_of_isp, session
from flexledger.oracle.verify import Verifier

METERS = 1000
ISP = 900


def signed_payloads(count: int, separator: bytes, first_isp: int) -> tuple[list[tuple[str, bytes]], list[bytes]]:
    from eth_utils import keccak, to_checksum_address

    keys = [PrivateKey(keccak(f"meter {k}".encode())) for k in range(METERS)]
    addresses = [to_checksum_address(keccak(k.public_key.format(compressed=False)[1:])[-20:]) for k in keys]
    out, digests = [], []
    for n in range(count):
        m, isp = n % METERS, first_isp + (n // METERS) * ISP
        reading = Reading(addresses[m], isp, n // METERS + 1, 100 + n % 997, n % 13)
        digest = reading.digest(separator)
        raw = keys[m].sign_recoverable(digest, hasher=None)
        signature = raw[:64] + bytes([raw[64] + 27])
        body = (f'{{"meter":"{reading.meter}","ispStart":{reading.isp_start},"sequence":{reading.sequence},'
                f'"importWh":{reading.import_wh},"exportWh":{reading.export_wh},"signature":"0x{signature.hex()}"}}')
        out.append((f"flexledger/v1/readings/{reading.meter.lower()}", body.encode()))
        digests.append(digest + signature)
    return out, digests


def broker_url() -> tuple[str, object | None]:
    url = os.environ.get("FLEXLEDGER_BENCH_MQTT_URL")
    if url:
        return url, None
    from flexledger.delivery.broker import LocalBroker  # the embedded default

    broker = LocalBroker(Path(tempfile.mkdtemp(prefix="flexledger-bench-broker-")), auth=False)  # anonymous clients
    info = broker.start()
    return info.url, broker


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50_000
    domain = Eip712Domain("flexledger MeterOracle", "1", 31337, "0x" + "11" * 20)
    separator = domain.separator()
    now = int(time.time())
    first_isp = (now // ISP - count // METERS - 2) * ISP
    payloads, signed = signed_payloads(count, separator, first_isp)

    sample = signed[:5000]
    started = time.perf_counter()
    for item in sample:
        recover_strict(item[:32], item[32:])
    recovery_rate = len(sample) / (time.perf_counter() - started)

    url, broker = broker_url()
    engine = open_store(f"sqlite:///{tempfile.mkdtemp(prefix='flexledger-bench-oracle-')}/oracle.db")
    verifier = Verifier(separator, lambda _meter: None, retention=30 * 86_400)
    consumer = OracleConsumer(url, engine, verifier, 1, client_id=f"bench-oracle-{os.getpid()}")
    receipts = os.environ.get("FLEXLEDGER_BENCH_RECEIPTS", "signed")
    consumer.receipts = receipts != "off"
    if receipts == "signed":
        consumer.receipt_signer = ReceiptSigner(keccak(b"bench oracle"), separator, 1)
        consumer.anchor_grace = 10**9  # every reading here is old: promise (and sign) each, the worst case
    consumer.start()
    consumer.wait_subscribed()
    publishers = []
    for p in range(2):
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-meters-{p}-{os.getpid()}")
        client.max_inflight_messages_set(1000)
        client.max_queued_messages_set(0)
        host, port = url.split("://")[1].split(":")
        client.connect(host, int(port))
        client.loop_start()
        publishers.append(client)
    started = time.perf_counter()

    sent = [0, 0]

    def send(index: int, client: mqtt.Client, part: list[tuple[str, bytes]]) -> None:
        for topic, body in part:
            # brokers bound what they queue for a slow subscriber (Mosquitto: 1,000 messages by
            # default, beyond which it drops): keep the publishers at most 800 ahead of the oracle
            while sum(sent) - sum(consumer.outcomes.values()) > 800:
                time.sleep(0.001)
            client.publish(topic, body, qos=1)
            sent[index] += 1

    threads = [threading.Thread(target=send, args=(i, c, payloads[i::2])) for i, c in enumerate(publishers)]
    for t in threads:
        t.start()
    stored = 0
    deadline = time.perf_counter() + 600
    while time.perf_counter() < deadline:
        with session(engine) as s:
            stored = s.scalar(select(func.count()).select_from(StoredReading)) or 0
        if stored >= count or sum(consumer.outcomes.values()) >= count:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    tree_started = time.perf_counter()
    with session(engine) as s:
        tree = tree_of(readings_of_isp(s, first_isp))
    tree_seconds = time.perf_counter() - tree_started
    for c in publishers:
        c.loop_stop()
        c.disconnect()
    consumer.stop()
    if broker is not None:
        broker.stop()  # type: ignore[attr-defined]
    rate = stored / elapsed
    print(f"  {stored:,} of {count:,} readings verified and stored in {elapsed:.1f} s: {rate:,.0f} per second end to end "
          f"(target 10,000: {'met' if rate >= 10_000 else 'MISSED'})")
    print(f"  signature recovery alone, one core: {recovery_rate:,.0f} per second")
    print(f"  the Merkle tree of one ISP ({METERS:,} readings): {tree_seconds * 1000:.0f} ms, root 0x{tree.root.hex()[:16]}…")
    print(f"  consumer outcomes: {dict(consumer.outcomes)}; receipts: {receipts}")
    report("ingest", {"readings": count, "stored": stored, "seconds": round(elapsed, 2), "per_second": round(rate),
                      "recovery_per_second_one_core": round(recovery_rate), "tree_ms_1000": round(tree_seconds * 1000),
                      "broker": url.split("@")[-1], "target_per_second": 10_000, "receipts": receipts})


if __name__ == "__main__":
    main()
