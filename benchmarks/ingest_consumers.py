"""Verified, stored readings per second with 1, 2, ... oracle consumer processes sharing the readings
through a shared subscription (``$share/oracles/flexledger/v1/readings/+``): how the oracle scales out.

What it times is the consumers alone: the readings are published first, while each consumer's
persistent session exists but is offline, so the broker holds the backlog and shares it between the
sessions; then the consumer processes start together and the clock runs until the store holds every
reading. Publishers would otherwise take a core of the two here (benchmarks/ingest.py measures end
to end). Receipts are off. Meters are taken as known (no chain).

Run: .venv/bin/python benchmarks/ingest_consumers.py [--consumers 1,2] [--readings N]
The broker is a private Mosquitto (the embedded aedes and NATS 2.9 have no shared subscriptions);
the store is SQLite in a temporary folder, or FLEXLEDGER_BENCH_DATABASE_URL (PostgreSQL: a schema of
the run's own). The machine's load is printed with the figures: two cores are shared with the broker.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
from _common import report  # benchmarks/ is on sys.path when a script runs
from ingest import signed_payloads
from sqlalchemy import create_engine, func, select, text

from flexledger.delivery.mosquitto_process import MosquittoProcess, mosquitto_binary
from flexledger.identity.eip712 import Eip712Domain
from flexledger.oracle.store import StoredReading, open_store, session

ISP = 900
DOMAIN = Eip712Domain("flexledger MeterOracle", "1", 31337, "0x" + "11" * 20)
CONSUMER = textwrap.dedent('''
    import sys, time
    from flexledger.identity.eip712 import Eip712Domain
    from flexledger.oracle.consumer import OracleConsumer
    from flexledger.oracle.store import open_store
    from flexledger.oracle.verify import Verifier
    url, db, client_id = sys.argv[1], sys.argv[2], sys.argv[3]
    separator = Eip712Domain("flexledger MeterOracle", "1", 31337, "0x" + "11" * 20).separator()
    consumer = OracleConsumer(url, open_store(db), Verifier(separator, lambda meter: None, retention=30 * 86_400), 1,
                              client_id=client_id, share_group="oracles")
    consumer.start()
    assert consumer.wait_subscribed(30)
    print("ready", flush=True)
    while True:
        time.sleep(1)
''')


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used (Linux /proc): what a reading costs,
    whatever else the machine runs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def consumer(url: str, db: str, client_id: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", CONSUMER, url, db, client_id], stdout=subprocess.PIPE, text=True,
                            cwd="/", env={**os.environ})
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", "a consumer did not subscribe"
    return proc


def store_url(folder: Path) -> tuple[str, str | None]:
    """The store's URL and, on PostgreSQL, the schema made for this run (dropped afterwards)."""
    base = os.environ.get("FLEXLEDGER_BENCH_DATABASE_URL")
    if not base:
        return f"sqlite:///{folder / 'oracle.db'}", None
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as c:
        c.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}", schema


def drop_schema(schema: str | None) -> None:
    if schema is not None:
        admin = create_engine(os.environ["FLEXLEDGER_BENCH_DATABASE_URL"])
        with admin.begin() as c:
            c.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def stored(engine: object) -> int:
    with session(engine) as s:  # type: ignore[arg-type]
        return s.scalar(select(func.count()).select_from(StoredReading)) or 0


def one_run(consumers: int, readings: int) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix=f"flexledger-consumers-{consumers}-"))
    mosquitto = MosquittoProcess(folder / "mosquitto")
    mosquitto.start()
    db, schema = store_url(folder)
    engine = open_store(db)
    names = [f"bench-oracle-{i}" for i in range(consumers)]
    procs: list[subprocess.Popen[str]] = []
    try:
        for name in names:  # each session subscribed once, then offline: the broker queues its share
            proc = consumer(mosquitto.url, db, name)
            proc.kill()
            proc.wait(10)
        first_isp = (int(time.time()) // ISP - readings // 1000 - 2) * ISP
        payloads, _ = signed_payloads(readings, DOMAIN.separator(), first_isp)
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-meters-{os.getpid()}")
        publisher.max_inflight_messages_set(1000)
        publisher.max_queued_messages_set(0)
        publisher.connect("127.0.0.1", mosquitto.port)
        publisher.loop_start()
        sent = [publisher.publish(topic, body, qos=1) for topic, body in payloads]
        for info in sent:
            info.wait_for_publish(60)
        publisher.loop_stop()
        publisher.disconnect()
        load = os.getloadavg()[0]
        assert mosquitto.proc is not None
        broker_cpu = cpu_seconds(mosquitto.proc.pid)
        started = time.perf_counter()
        procs = [consumer(mosquitto.url, db, name) for name in names]
        ready = [cpu_seconds(p.pid) for p in procs]  # their start (imports, connection) is not ingest
        deadline = time.monotonic() + 600
        while (count := stored(engine)) < readings and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        consumers_cpu = sum(cpu_seconds(p.pid) - r for p, r in zip(procs, ready, strict=True))
        broker_cpu = cpu_seconds(mosquitto.proc.pid) - broker_cpu
        return {"consumers": consumers, "readings": readings, "stored": count, "seconds": round(elapsed, 2),
                "per_second": round(count / elapsed), "load_before": round(load, 2),
                "store": "postgresql" if schema else "sqlite",
                "consumer_cpu_us_per_reading": round(consumers_cpu / count * 1e6),
                "broker_cpu_us_per_reading": round(broker_cpu / count * 1e6)}
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)
        engine.dispose()
        drop_schema(schema)
        mosquitto.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--consumers", default="1,2", help="consumer process counts to measure, comma separated")
    parser.add_argument("--readings", type=int, default=30_000)
    args = parser.parse_args()
    if mosquitto_binary() is None:  # `make bench` on a fresh machine
        print("  skipped: no mosquitto binary here (the embedded broker has no shared subscriptions)")
        report("ingest_consumers", {"skipped": "no mosquitto binary"})
        return
    results = []
    for n in (int(c) for c in args.consumers.split(",")):
        result = one_run(n, args.readings)
        results.append(result)
        print(f"  {n} consumer process(es): {result['stored']:,} readings in {result['seconds']} s = "
              f"{result['per_second']:,} per second ({result['store']}; load average before {result['load_before']}); "
              f"CPU per reading: consumers {result['consumer_cpu_us_per_reading']} us, "
              f"broker {result['broker_cpu_us_per_reading']} us", flush=True)
    base = int(results[0]["per_second"])  # type: ignore[call-overload]
    report("ingest_consumers", {"results": results,
                                "speedup": {str(r["consumers"]): round(int(r["per_second"]) / base, 2)  # type: ignore[call-overload]
                                            for r in results}})


if __name__ == "__main__":
    main()
