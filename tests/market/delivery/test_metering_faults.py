"""Faults of the metering path: after each, every reading is stored exactly once and every payload
that is not kept is counted with its reason.

- The broker restarts in the middle of a stream while edge agents publish and the oracle consumes.
- An edge agent is offline for a day of readings, then reconnects.
- Malformed payloads, fuzzed, are published to the readings topic.

Real brokers only: the embedded aedes broker, and Mosquitto with the service tests
(FLEXLEDGER_TEST_MQTT_URL). Real edge agents (SQLite outbox, paho), on accelerated time; the oracle
shares that time, as it shares the chain's time in a simulation.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from nats_services import nats_broker
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from flexledger.chain.node import free_port
from flexledger.delivery.broker import LocalBroker
from flexledger.delivery.mosquitto_process import MosquittoMissingError, MosquittoProcess
from flexledger.delivery.nats_broker import NatsBroker
from flexledger.oracle.consumer import OracleConsumer
from flexledger.oracle.ingest import LATE, STORED
from flexledger.oracle.store import StoredAnchor, StoredReading, open_store, rejections, session
from flexledger.oracle.verify import Reason, Verifier
from flexledger_edge.agent import EdgeAgent
from flexledger_edge.clock import AcceleratedClock, Clock
from flexledger_edge.config import load_config
from flexledger_edge.publisher import Backoff
from flexledger_edge.reading import MeterSigner, OracleDomain
from flexledger_edge.topics import readings_topic

CHAIN_ID = 31337
ORACLE = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
SEPARATOR = OracleDomain(CHAIN_ID, ORACLE).separator()
MARKET = 1
ISP = 900
START = 1_800_000_000 - 1_800_000_000 % ISP  # the simulated time the agents start at
DAY = 86_400 // ISP


# -- what the tests are made of ----------------------------------------------------------------


def _services_url() -> str:
    url = os.environ.get("FLEXLEDGER_TEST_MQTT_URL")
    if not url:
        pytest.skip("FLEXLEDGER_TEST_MQTT_URL is not set: the Mosquitto variants run with the service tests")
    return url


def _port(url: str) -> int:
    return urlsplit(url).port or 1883


def _wait(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def _agent(folder: Path, url: str, clock: Clock) -> EdgeAgent:
    """A real edge agent with a simulated meter, a fresh key (so no broker session of an earlier run
    is found) and a reconnection backoff short enough for a test."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "agent.toml"
    path.write_text(textwrap.dedent(f"""
        chain_id = {CHAIN_ID}
        oracle_address = "{ORACLE}"
        state_dir = "state"
        mode = "development"
        [meter]
        private_key = "0x{secrets.token_hex(32)}"
        [broker]
        url = "{url}"
        [driver]
        kind = "simulated"
        base_load_w = 500
        pv_peak_w = 3000
        seed = 7
    """))
    return EdgeAgent(load_config(path), clock, backoff=Backoff(0.05, 0.25))


def _oracle(url: str, engine: Engine, clock: Callable[[], float]) -> OracleConsumer:
    """The oracle's consumer with the production verifier's time rules (retention included); every
    meter is taken as known, the chain's part of the checks is tested in tests/oracle/test_oracle.py."""
    consumer = OracleConsumer(url, engine, Verifier(SEPARATOR, lambda _meter: None, isp_seconds=ISP), MARKET,
                              client_id=f"fault-oracle-{secrets.token_hex(4)}", batch=50, clock=clock)
    consumer.receipts = True  # as `flexledger oracle run`: the agents keep each reading until its receipt
    consumer.start()
    assert consumer.wait_subscribed(), "the oracle did not subscribe"
    return consumer


def _stored(engine: Engine) -> list[tuple[int, int, int, bool]]:
    """(sequence, ISP start, received at, late) of every kept reading, by sequence."""
    with session(engine) as s:
        rows = s.execute(select(StoredReading.sequence, StoredReading.isp_start, StoredReading.received_at,
                                StoredReading.late).order_by(StoredReading.sequence))
        return [(int(q), int(i), int(r), bool(late)) for q, i, r, late in rows]


def _count(engine: Engine) -> int:
    with session(engine) as s:
        return s.scalar(select(func.count()).select_from(StoredReading)) or 0


def _refused(engine: Engine) -> dict[str, int]:
    with session(engine) as s:
        return rejections(s)


def _forget_session(url: str, client_id: str) -> None:
    """Drop a persistent session on a shared broker, so that test runs leave nothing behind."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    client.connect("127.0.0.1", _port(url))
    client.loop(1.0)
    client.disconnect()


class Link:
    """The network between a client and the broker: a TCP relay that the test cuts and restores.
    While cut nothing listens on its port (connections are refused, as to an unreachable host) and
    the connections through it are dropped."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.url = f"mqtt://127.0.0.1:{self.port}"
        self._server: socket.socket | None = None
        self._open = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def open(self) -> None:
        server = socket.create_server(("127.0.0.1", self.port))
        server.settimeout(0.05)
        self._server = server
        self._open.set()
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def close(self) -> None:
        self._open.clear()
        if self._server is not None:
            self._server.close()
            self._server = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self, server: socket.socket) -> None:
        while self._open.is_set():
            try:
                near, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                far = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
                far.settimeout(None)
            except OSError:
                near.close()
                continue
            near.settimeout(None)
            with self._lock:
                self._sockets += [near, far]
            for source, sink in ((near, far), (far, near)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):  # one side gone: the other sees the connection end too
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _private_mosquitto(folder: Path, *, autosave_each_change: bool) -> MosquittoProcess:
    """This machine's Mosquitto binary as a broker of the test's own: the Mosquitto of
    FLEXLEDGER_TEST_MQTT_URL is a system service, which a test must not restart."""
    try:
        return MosquittoProcess(folder, autosave_each_change=autosave_each_change)
    except MosquittoMissingError:
        pytest.skip("no mosquitto binary here to run a broker the test may restart")


# -- 1. the broker restarts mid-stream -----------------------------------------------------------


def _restart_mid_stream(tmp_path: Path, broker_url: str, restart: Callable[[], None], readings: int = 200,
                        seconds_per_isp: float = 0.015) -> None:
    """An edge agent streams ``readings`` readings; the oracle, cut off from the broker for a moment,
    leaves some of them accepted by the broker and not delivered; then ``restart`` stops the broker
    and starts it again on the same port. The agent (outbox, reconnection) and the oracle (persistent
    session, acknowledgement after storing) go on by themselves. At ``seconds_per_isp`` the oracle's
    seven days of retention last 672 times that: a restart slower than that would have the oracle
    refuse what the broker kept as `too_old`, which is no loss of the broker's."""
    clock = AcceleratedClock(START, ISP, seconds_per_isp)  # 0.015: three seconds of stream, time for the faults
    engine = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    oracle_link = Link(_port(broker_url))
    oracle_link.open()
    oracle = _oracle(oracle_link.url, engine, clock.now)
    agent = _agent(tmp_path / "agent", broker_url, clock)
    made: list[int] = []
    runner = threading.Thread(target=lambda: made.append(agent.run(isps=readings, drain_s=30)))
    runner.start()
    try:
        _wait(lambda: _count(engine) >= 20, "the stream to flow")
        # Cut off, the oracle leaves what the agent sends now with the broker, which acknowledges it
        # to the agent (which keeps it until the oracle's receipt): the broker must still deliver them.
        oracle_link.close()
        accepted = agent.publisher.pubacked_count
        _wait(lambda: agent.publisher.pubacked_count >= accepted + 20, "the broker to accept readings for the oracle")
        held = agent.publisher.pubacked_count - accepted
        restart()
        oracle_link.open()
        runner.join(60)
        assert made == [readings] and agent.left_in_outbox == 0
        _wait(lambda: _count(engine) >= readings, f"all {readings} readings to be stored")
        time.sleep(0.3)  # time for a doubled delivery to show up, if there were one
        assert [q for q, *_ in _stored(engine)] == list(range(1, readings + 1))  # each reading once
        assert held >= 20
        assert set(_refused(engine)) <= {Reason.DUPLICATE}  # redeliveries are counted, not kept
        assert oracle.outcomes[STORED] == readings
    finally:
        runner.join(30)
        oracle.stop()
        oracle_link.close()
        engine.dispose()


def test_the_embedded_broker_killed_mid_stream_loses_and_doubles_nothing(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "broker", port=free_port(), auth=False)  # anonymous test clients
    info = broker.start()

    def kill_and_start() -> None:
        os.kill(info.pid, signal.SIGKILL)
        os.waitpid(info.pid, 0)
        assert broker.start().port == info.port  # the same port: the agents know no other

    try:
        _restart_mid_stream(tmp_path, info.url, kill_and_start)
    finally:
        broker.stop()


def _nats(folder: Path, nodes: int) -> NatsBroker:
    return nats_broker(folder, nodes=nodes)


@pytest.mark.slow
@pytest.mark.services
@pytest.mark.parametrize("nodes", [1, 3], ids=["one-node", "cluster-of-3"])
def test_nats_killed_mid_stream_loses_and_doubles_nothing(tmp_path: Path, nodes: int) -> None:
    """NATS with JetStream stores each QoS 1 message before its PUBACK (replicated 3 times in the
    cluster): the node the agent and the oracle use, killed with SIGKILL and started again, has
    lost nothing. The agent's resend (60 s) is longer than the test's drain (30 s): a reading the
    broker lost would stay in the outbox and fail the test, rather than be healed by a resend."""
    broker = _nats(tmp_path / "nats", nodes)
    broker.start()

    def kill_and_start() -> None:
        broker.kill(0)
        broker.start_node(0)

    try:
        # a node of the cluster rejoins in seconds (its stream and consumer replicas catch up): a
        # slower stream keeps the oracle's retention longer than that
        _restart_mid_stream(tmp_path, broker.url, kill_and_start, seconds_per_isp=0.015 if nodes == 1 else 0.06)
    finally:
        broker.stop()


@pytest.mark.slow
@pytest.mark.services
def test_a_nats_cluster_fails_over_when_a_node_is_lost_for_good(tmp_path: Path) -> None:
    """The node the agent and the oracle use is killed and never comes back; the network sends them
    to another node (a relay here, DNS or a load balancer in production). The messages and the
    oracle's session were replicated on all three: nothing is lost."""
    broker = _nats(tmp_path / "nats", 3)
    broker.start()
    entry = Link(broker.nodes[0].mqtt_port)  # the address both clients know
    entry.open()

    def lose_node_and_fail_over() -> None:
        broker.kill(0)
        entry.close()
        entry.target_port = broker.nodes[1].mqtt_port
        time.sleep(0.2)  # the relay's accept loop lets go of its port within its 50 ms poll
        entry.open()

    try:
        _restart_mid_stream(tmp_path, entry.url, lose_node_and_fail_over, seconds_per_isp=0.06)
    finally:
        entry.close()
        broker.stop()


@pytest.mark.services
# Mosquitto's crash (SIGKILL) is not a case: it saves after it acknowledges, so even with
# autosave_on_changes a crash between the two loses the message (about one run in four under
# load); the README says so. The embedded broker's crash is tested above.
@pytest.mark.parametrize(("how", "autosave_each_change"), [(signal.SIGTERM, False)], ids=["restarted"])
def test_mosquitto_restarted_mid_stream_loses_and_doubles_nothing(
    tmp_path: Path, how: signal.Signals, autosave_each_change: bool
) -> None:
    """Mosquitto 2.0 saves its sessions as a snapshot: at shutdown (a service restart is a SIGTERM)
    and every autosave interval. A SIGKILL loses what it accepted since its last save unless it
    saves on each change, which the second case configures."""
    _services_url()
    mosquitto = _private_mosquitto(tmp_path / "mosquitto", autosave_each_change=autosave_each_change)
    mosquitto.start()

    def restart() -> None:
        mosquitto.stop(how)
        mosquitto.start()

    try:
        _restart_mid_stream(tmp_path, mosquitto.url, restart)
    finally:
        mosquitto.stop()


# -- 2. an edge agent offline for a day ----------------------------------------------------------


def _offline_day(tmp_path: Path, broker_url: str) -> None:
    """The gateway's network is down while it measures a day (96 ISPs); then it comes back. The
    oracle runs on, its verifier with the production retention (seven days): a day-old reading from
    an offline gateway is kept. One ISP of that day was anchored meanwhile (other meters' readings):
    the gateway's reading for it is kept, flagged late and counted, and stays out of that root."""
    clock = AcceleratedClock(START, ISP, 0.02)
    engine = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    link = Link(_port(broker_url))  # not open: the broker cannot be reached from the gateway
    agent = _agent(tmp_path / "agent", link.url, clock)
    oracle = _oracle(broker_url, engine, clock.now)
    arrived: list[int] = []  # the order the broker delivers the gateway's readings in
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fault-watcher-{secrets.token_hex(4)}")
    watcher.on_message = lambda _c, _u, m: arrived.append(json.loads(m.payload)["sequence"])
    subscribed = threading.Event()
    watcher.on_subscribe = lambda *_args: subscribed.set()
    watcher.connect("127.0.0.1", _port(broker_url))
    watcher.loop_start()
    watcher.subscribe(readings_topic(agent.meter), qos=1)
    assert subscribed.wait(10)
    made: list[int] = []
    isps = DAY + 24  # the agent measures on after it is back
    runner = threading.Thread(target=lambda: made.append(agent.run(isps=isps, drain_s=30)))
    runner.start()
    try:
        _wait(lambda: agent.outbox.count() >= DAY, "a day of readings in the outbox")
        assert agent.publisher.acked_count == 0 and arrived == []  # nothing got out
        anchored_isp = agent.outbox.pending(limit=DAY)[40].isp_start
        with session(engine) as s:
            s.add(StoredAnchor(market=MARKET, isp_start=anchored_isp, root=b"\x01" * 32, leaf_count=3,
                               oracle=ORACLE, anchored_at=anchored_isp + ISP + 60, tx_hash="0x" + "ab" * 32))
        link.open()
        runner.join(60)
        assert made == [isps] and agent.left_in_outbox == 0
        _wait(lambda: _count(engine) >= isps, f"all {isps} readings to be stored")
        time.sleep(0.3)  # time for a doubled delivery to show up, if there were one
        stored = _stored(engine)
        assert [q for q, *_ in stored] == list(range(1, isps + 1))  # each reading once
        first_isp = stored[0][1]
        assert [i for _, i, _, _ in stored] == [first_isp + k * ISP for k in range(isps)]
        assert arrived == list(range(1, isps + 1))  # in order
        assert stored[0][2] - first_isp >= DAY * ISP  # kept at a day old
        assert [i for _, i, _, late in stored if late] == [anchored_isp]
        assert _refused(engine) == {LATE: 1}
        assert oracle.outcomes == {STORED: isps - 1, LATE: 1}
    finally:
        runner.join(30)
        watcher.loop_stop()
        watcher.disconnect()
        oracle.stop()
        link.close()
        engine.dispose()
        if broker_url == os.environ.get("FLEXLEDGER_TEST_MQTT_URL"):  # a shared broker keeps sessions
            _forget_session(broker_url, oracle.client_id)
            _forget_session(broker_url, f"flexledger-edge-{agent.meter.lower()}")


def test_an_agent_offline_for_a_day_delivers_it_all_in_order_once(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "broker", port=free_port(), auth=False)  # anonymous test clients
    try:
        _offline_day(tmp_path, broker.start().url)
    finally:
        broker.stop()


@pytest.mark.services
def test_an_agent_offline_for_a_day_delivers_it_all_through_mosquitto(tmp_path: Path) -> None:
    _offline_day(tmp_path, _services_url())


# -- 3. malformed payloads through the consumer --------------------------------------------------

FIELDS = ["meter", "ispStart", "sequence", "importWh", "exportWh", "signature"]
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**80), 2**80), st.floats(allow_nan=False), st.text(max_size=80)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=6,
)


def _good_reading(isp_start: int, sequence: int) -> dict[str, object]:
    signer = MeterSigner(bytes.fromhex("4c" * 32), OracleDomain(CHAIN_ID, ORACLE))
    signed = json.loads(signer.sign_new(isp_start=isp_start, sequence=sequence, import_wh=1200, export_wh=3).to_json())
    assert isinstance(signed, dict)
    return signed


GOOD = _good_reading(START, 1)
GOOD_BYTES = json.dumps(GOOD).encode()


def _with_raw(field: str, number: str) -> bytes:
    """The good reading with one field's value written as ``number``, verbatim (json.dumps would
    refuse to write some of them)."""
    return json.dumps({**GOOD, field: 0}).encode().replace(f'"{field}": 0'.encode(), f'"{field}": {number}'.encode())


def _malformed() -> st.SearchStrategy[bytes]:
    """Payloads no meter would send: noise, broken JSON, a reading with a field missing, of the
    wrong type or out of range, numbers of hundreds of digits, nesting deep enough to overflow a C
    stack, and readings altered after signing."""
    as_json: Callable[[object], bytes] = lambda value: json.dumps(value).encode()  # noqa: E731
    return st.one_of(
        st.binary(max_size=400),
        st.integers(0, len(GOOD_BYTES) - 1).map(lambda k: GOOD_BYTES[:k]),  # truncated
        st.sets(st.sampled_from(FIELDS), min_size=1).map(lambda gone: as_json({k: v for k, v in GOOD.items()
                                                                                if k not in gone})),
        st.tuples(st.sampled_from(FIELDS), JSON_VALUES).filter(lambda kv: kv[1] != GOOD[kv[0]])
        .map(lambda kv: as_json({**GOOD, kv[0]: kv[1]})),
        st.tuples(st.sampled_from(FIELDS[1:5]), st.integers(2**64, 2**200) | st.integers(-(2**70), -1))
        .map(lambda kv: as_json({**GOOD, kv[0]: kv[1]})),
        st.sampled_from(FIELDS[1:5]).map(lambda k: _with_raw(k, "9" * 1500)),
        st.sampled_from(FIELDS[1:5]).map(lambda k: _with_raw(k, "1e400")),
        st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n),
        st.tuples(st.sampled_from(FIELDS[2:5]), st.integers(1, 2**32))  # altered after signing
        .map(lambda kv: as_json({**GOOD, kv[0]: int(str(GOOD[kv[0]])) + kv[1]})),
        st.just(as_json({**GOOD, "extra": 1})),
        JSON_VALUES.map(as_json),
    )


def test_a_deeply_nested_payload_is_refused_before_it_is_parsed() -> None:
    """py_ecc raises Python's recursion limit so far that the json module would overflow the C stack
    on this payload (a segmentation fault of the whole oracle); it must be a refusal instead."""
    outcome: list[str | None] = []
    verifier = Verifier(SEPARATOR, lambda _meter: None)
    checker = threading.Thread(target=lambda: outcome.append(
        verifier.check(b"[" * 200_000 + b"]" * 200_000, START + 10 * ISP).reason))  # in a thread, as the consumer
    checker.start()
    checker.join(30)
    assert outcome == [Reason.MALFORMED]


def _fuzz_through_the_consumer(tmp_path: Path, broker_url: str) -> None:
    engine = open_store(f"sqlite:///{tmp_path / 'oracle.db'}")
    now = START + 10 * ISP
    oracle = _oracle(broker_url, engine, lambda: now)
    meter = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fault-fuzzer-{secrets.token_hex(4)}")
    meter.connect("127.0.0.1", _port(broker_url))
    meter.loop_start()
    topic = readings_topic(str(GOOD["meter"]))
    try:

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(st.lists(_malformed(), min_size=1, max_size=6))
        @example([b"", GOOD_BYTES[:-1], b"[" * 200_000 + b"]" * 200_000, _with_raw("importWh", "9" * 1500)])
        def refused_and_counted(bodies: list[bytes]) -> None:
            before, counted = sum(oracle.outcomes.values()), _refused(engine)
            for body in bodies:
                meter.publish(topic, body, qos=1).wait_for_publish(10)
            _wait(lambda: sum(oracle.outcomes.values()) >= before + len(bodies), "the oracle to take the payloads")
            now_counted = _refused(engine)
            new = {r: now_counted.get(r, 0) - counted.get(r, 0) for r in now_counted}
            assert sum(new.values()) == len(bodies)  # each one counted, with its reason
            assert set(r for r, n in new.items() if n) <= {Reason.MALFORMED, Reason.BAD_SIGNATURE}
            assert _count(engine) == 0  # none kept

        refused_and_counted()
        # the consumer is alive and well: a good reading after the storm is kept
        meter.publish(topic, GOOD_BYTES, qos=1).wait_for_publish(10)
        _wait(lambda: _count(engine) == 1, "the good reading to be stored")
        assert oracle.outcomes[STORED] == 1
        assert sum(_refused(engine).values()) == sum(oracle.outcomes.values()) - 1
    finally:
        meter.loop_stop()
        meter.disconnect()
        oracle.stop()
        engine.dispose()
        if broker_url == os.environ.get("FLEXLEDGER_TEST_MQTT_URL"):  # a shared broker keeps sessions
            _forget_session(broker_url, oracle.client_id)


def test_fuzzed_payloads_are_refused_counted_and_never_stop_the_oracle(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path / "broker", port=free_port(), auth=False)  # anonymous test clients
    try:
        _fuzz_through_the_consumer(tmp_path, broker.start().url)
    finally:
        broker.stop()


@pytest.mark.services
def test_fuzzed_payloads_through_mosquitto(tmp_path: Path) -> None:
    _fuzz_through_the_consumer(tmp_path, _services_url())
