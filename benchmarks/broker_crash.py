"""QoS 1 readings lost when the broker is killed (SIGKILL) under load, per broker.

A publisher sends signed readings at a steady rate, faster than the oracle's consumer keeps them,
so the broker holds a backlog for the oracle; halfway, the broker (in a cluster: the node both
clients use) is killed with SIGKILL and started again on its port and store. The publisher and the
consumer reconnect by themselves. Lost: readings the broker acknowledged (PUBACK) to the publisher
that the oracle never stored. The edge agent's resend after `resend_s` would heal a loss; the
publisher here resends nothing it had acknowledged, so the figure is the broker's alone.

Run: .venv/bin/python benchmarks/broker_crash.py [--brokers nats,nats-cluster,mosquitto,...]
     [--readings N] [--rate R] [--runs K]
Brokers: ``nats`` (one node, file storage), ``nats-cluster`` (3 nodes, every MQTT stream and
consumer replicated 3 times), ``mosquitto`` (the README's production settings: autosave every
60 s), ``mosquitto-autosave`` (a save on every change), ``embedded`` (aedes with its journal).
Target (issue 21): 0 lost for the replicated broker.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from _common import report  # benchmarks/ is on sys.path when a script runs
from ingest import signed_payloads
from sqlalchemy import select

from flexledger.chain.node import free_port
from flexledger.delivery.broker import LocalBroker
from flexledger.delivery.mosquitto_process import MosquittoMissingError, MosquittoProcess
from flexledger.delivery.nats_broker import NatsBroker, NatsServerMissingError
from flexledger.identity.eip712 import Eip712Domain
from flexledger.oracle.consumer import OracleConsumer
from flexledger.oracle.store import StoredReading, open_store, session
from flexledger.oracle.verify import Verifier

ISP = 900
BROKERS = ("nats", "nats-cluster", "mosquitto", "mosquitto-autosave", "embedded")


class Crashable:
    """A broker of the run's own: its URL, a crash (SIGKILL) and a start again on the same port."""

    def __init__(self, url: str, crash: Callable[[], None], start: Callable[[], None],
                 stop: Callable[[], object]) -> None:
        self.url, self.crash, self.start, self.stop = url, crash, start, stop


def crashable(kind: str, folder: Path) -> Crashable:
    if kind.startswith("nats"):
        nats = NatsBroker(folder, nodes=3 if kind == "nats-cluster" else 1)
        nats.start()
        return Crashable(nats.url, lambda: nats.kill(0), lambda: nats.start_node(0), nats.stop)
    if kind.startswith("mosquitto"):
        mosquitto = MosquittoProcess(folder, autosave_each_change=kind == "mosquitto-autosave")
        mosquitto.start()
        return Crashable(mosquitto.url, lambda: mosquitto.stop(signal.SIGKILL), mosquitto.start, mosquitto.stop)
    if kind == "embedded":
        embedded = LocalBroker(folder, port=free_port(), auth=False)  # anonymous clients, as benchmarks/ingest.py
        pid = embedded.start().pid

        def crash() -> None:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)

        def start() -> None:
            nonlocal pid
            pid = embedded.start().pid

        return Crashable(embedded.start().url, crash, start, embedded.stop)
    raise SystemExit(f"unknown broker {kind!r}: one of {', '.join(BROKERS)}")


class Publisher:
    """A meter gateway's connection without an outbox: which readings the broker PUBACKed."""

    def __init__(self, url: str, name: str) -> None:
        host, port = url.split("://")[1].split(":")
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, clean_session=False)
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.1, 1)
        self.sent: list[mqtt.MQTTMessageInfo] = []
        self.client.connect(host, int(port))
        self.client.loop_start()

    def publish(self, topic: str, body: bytes) -> None:
        while not self.client.is_connected():  # a gateway's outbox holds readings while the broker is away
            time.sleep(0.01)
        self.sent.append(self.client.publish(topic, body, qos=1))

    def acked(self) -> list[int]:
        """The indexes of the readings PUBACKed (paho marks a QoS 1 message published on its PUBACK).
        One published in the instant the connection dropped is not counted (paho cannot say)."""
        return [n for n, info in enumerate(self.sent) if _published(info)]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _published(info: mqtt.MQTTMessageInfo) -> bool:
    try:
        return info.is_published()
    except RuntimeError:  # handed to paho while the connection was down
        return False


def stored_keys(engine: object) -> set[tuple[str, int]]:
    with session(engine) as s:  # type: ignore[arg-type]
        return {(m.lower(), int(i)) for m, i in s.execute(select(StoredReading.meter, StoredReading.isp_start))}


def one_run(kind: str, readings: int, rate: float, run: int) -> dict[str, object]:
    folder = Path(tempfile.mkdtemp(prefix=f"flexledger-crash-{kind}-"))
    domain = Eip712Domain("flexledger MeterOracle", "1", 31337, "0x" + "11" * 20)
    separator = domain.separator()
    first_isp = (int(time.time()) // ISP - readings // 1000 - 2) * ISP
    payloads, _ = signed_payloads(readings, separator, first_isp)
    keys = [(topic.rsplit("/", 1)[1], first_isp + (n // 1000) * ISP) for n, (topic, _b) in enumerate(payloads)]
    broker = crashable(kind, folder / "broker")
    engine = open_store(f"sqlite:///{folder / 'oracle.db'}")
    consumer = OracleConsumer(broker.url, engine, Verifier(separator, lambda _m: None, retention=30 * 86_400), 1,
                              client_id=f"crash-oracle-{run}")
    consumer.start()
    assert consumer.wait_subscribed(30), "the oracle did not subscribe"
    publisher = Publisher(broker.url, f"crash-meters-{run}")
    backlog_at_crash = 0
    started = time.perf_counter()
    try:
        for n, (topic, body) in enumerate(payloads):
            time.sleep(max(0.0, started + n / rate - time.perf_counter()))
            publisher.publish(topic, body)
            if n == readings // 2:  # under load: the oracle is behind the publisher
                backlog_at_crash = len(publisher.acked()) - sum(consumer.outcomes.values())
                broker.crash()
                broker.start()
        deadline = time.monotonic() + 120
        while len(publisher.acked()) < len(publisher.sent) and time.monotonic() < deadline:
            time.sleep(0.1)
        # settled: nothing new stored for a while (a NATS redelivery waits for its ack_wait, 5 s)
        last, quiet = -1, time.monotonic()
        while time.monotonic() - quiet < 8 and time.monotonic() < deadline:
            now = sum(consumer.outcomes.values())
            if now != last:
                last, quiet = now, time.monotonic()
            time.sleep(0.2)
        stored = stored_keys(engine)
        acked = publisher.acked()
        lost = [n for n in acked if keys[n] not in stored]
        return {"broker": kind, "run": run, "acked": len(acked), "stored": len(stored), "lost": len(lost),
                "backlog_at_crash": backlog_at_crash, "sessions_lost": consumer.sessions_lost,
                "duplicates_refused": consumer.outcomes.get("duplicate", 0)}
    finally:
        publisher.close()
        consumer.stop()
        engine.dispose()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", default="nats,nats-cluster,mosquitto,mosquitto-autosave,embedded")
    parser.add_argument("--readings", type=int, default=6000)
    parser.add_argument("--rate", type=float, default=1500.0, help="readings published per second")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results: list[dict[str, object]] = []
    skipped: dict[str, str] = {}
    for kind in args.brokers.split(","):
        for run in range(args.runs):
            try:
                result = one_run(kind, args.readings, args.rate, run)
            except (NatsServerMissingError, MosquittoMissingError) as exc:  # `make bench` on a fresh machine
                skipped[kind] = exc.message
                print(f"  {kind:<20} skipped: {exc.message}", flush=True)
                break
            results.append(result)
            print(f"  {kind:<20} run {run}: {result['acked']:,} acknowledged, {result['lost']:,} lost "
                  f"(backlog at the crash {result['backlog_at_crash']:,}, oracle sessions lost "
                  f"{result['sessions_lost']})", flush=True)
    totals = {kind: sum(int(str(r["lost"])) for r in results if r["broker"] == kind)
              for kind in args.brokers.split(",") if kind not in skipped}
    report("broker_crash", {"readings": args.readings, "rate": args.rate, "runs": args.runs, "lost_by_broker": totals,
                            "results": results, "skipped": skipped, "target_lost_replicated": 0})


if __name__ == "__main__":
    main()
