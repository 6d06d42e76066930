"""A broker that keeps what it acknowledged: nats-server with JetStream, speaking MQTT 3.1.1.

NATS stores every QoS 1 message an MQTT client publishes in a JetStream stream before it sends the
PUBACK, and each persistent session's subscription is a durable JetStream consumer of that stream:
a SIGKILL of the server loses nothing it acknowledged, and in a cluster each stream is replicated
(``stream_replicas``, at most 3), so a node lost for good loses nothing either. Mosquitto, by
contrast, saves its sessions as a snapshot after the PUBACK (README, "Faults").

:class:`NatsBroker` runs this machine's ``nats-server`` as one node or a cluster on free ports with
a store directory of its own: for the tests and ``benchmarks/broker_crash.py``, and as the shape of
the production configuration the README gives (there: TLS, users and permissions per subject).
Never point it at the store of a server someone else runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

from flexledger.chain.node import free_port
from flexledger.delivery.broker import HOST, BrokerError, BrokerUser
from flexledger.redaction import child_environment

START_TIMEOUT = 30.0


class NatsServerMissingError(BrokerError):
    """``nats-server`` is not installed: the replicated broker cannot be run here."""

    def __init__(self) -> None:
        super().__init__("nats-server was not found on PATH (nor in /usr/sbin, /usr/local/bin)",
                         hint="install it (Debian: `apt-get install nats-server`; or the release binary "
                              "from nats.io) or use Mosquitto or the embedded broker")


def nats_server_binary() -> str | None:
    """The ``nats-server`` executable, or None where it is not installed (a fresh machine)."""
    return shutil.which("nats-server", path=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/local/bin:/usr/local/sbin")


@dataclass(frozen=True)
class NatsNode:
    """One server of the cluster: its name, its ports and where JetStream keeps its files."""

    name: str
    client_port: int
    mqtt_port: int
    cluster_port: int
    store_dir: Path

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{HOST}:{self.mqtt_port}"


def nats_subject(topic: str) -> str:
    """An MQTT topic filter as the NATS subject its permissions name: levels joined by dots,
    ``+`` a single level (``*``) and ``#`` the rest (``>``). flexledger's topics hold no dots."""
    return ".".join({"+": "*", "#": ">"}.get(level, level) for level in topic.split("/"))


@dataclass(frozen=True)
class NatsUser:
    """A client of the broker: its topics (``user``) and how it logs in: a ``password`` with its
    user name, or a client certificate whose ``subject`` (RFC 2253, e.g. ``CN=0xabc...``) names it
    (``verify_and_map``)."""

    user: BrokerUser
    password: str | None = None
    subject: str | None = None


@dataclass(frozen=True)
class NatsTls:
    """The MQTT listener's TLS: the broker's certificate and key, and the CA its clients' are from."""

    cert_file: Path
    key_file: Path
    ca_file: Path


def nats_user(entry: NatsUser) -> str:
    """``entry`` as an item of the server's ``authorization.users``: MQTT connections only, and the
    subjects of its topics. A QoS 1 subscription is a JetStream consumer delivering on an internal
    ``$MQTT.sub.<id>`` subject, which the user must be allowed to subscribe to (MQTT clients cannot
    name ``$MQTT/...`` topics themselves: the server refuses them)."""
    user = entry.user
    publish = ", ".join(f'"{nats_subject(t)}"' for t in user.publish)
    subscribe = ", ".join(f'"{nats_subject(t)}"' for t in (*user.subscribe, "$MQTT/sub/#"))
    login = f'user: "{entry.subject or user.name}"' + (f', password: "{entry.password}"' if entry.password else "")
    return (f'{{ {login}, allowed_connection_types: ["MQTT"], '
            f"permissions: {{ publish: [{publish}], subscribe: [{subscribe}] }} }}")


def node_config(node: NatsNode, peers: list[NatsNode], *, replicas: int, ack_wait: str,
                users: list[NatsUser] | None = None, tls: NatsTls | None = None) -> str:
    """The configuration file of ``node``: JetStream on file storage, the MQTT listener, and with
    ``peers`` a cluster whose MQTT streams and consumers keep ``replicas`` copies; with ``users``
    no anonymous client, each user only its own subjects; with ``tls`` MQTT over TLS only, every
    client with a certificate of the CA, which names its user."""
    lines = [
        f"server_name: {node.name}",  # JetStream in a cluster, and MQTT, need a stable name per server
        f"listen: {HOST}:{node.client_port}",
        f'jetstream {{ store_dir: "{node.store_dir}" }}',
        "mqtt {",
        f"  listen: {HOST}:{node.mqtt_port}",
        # a delivery the consumer has not acknowledged comes again after this: long enough for the
        # oracle's batch (one transaction), short enough that a restart does not stall the stream
        f'  ack_wait: "{ack_wait}"',
        f"  stream_replicas: {replicas}",
        f"  consumer_replicas: {replicas}",
    ]
    if tls is not None:
        lines += ["  tls {", f'    cert_file: "{tls.cert_file}"', f'    key_file: "{tls.key_file}"',
                  f'    ca_file: "{tls.ca_file}"', "    verify_and_map: true", "  }"]
    lines.append("}")
    if users:
        lines += ["authorization {", "  users: [", *(f"    {nats_user(u)}" for u in users), "  ]", "}"]
    if peers:
        routes = ", ".join(f"nats://{HOST}:{p.cluster_port}" for p in peers)
        lines += ["cluster {", "  name: flexledger", f"  listen: {HOST}:{node.cluster_port}",
                  f"  routes: [{routes}]", "}"]
    return "\n".join(lines) + "\n"


class NatsBroker:
    """``nodes`` nats-server processes (1, or a cluster of 3 with every MQTT stream replicated 3
    times) under ``folder``, each with its own MQTT port. Killing a node (:meth:`kill`) and
    starting it again (:meth:`start_node`) keeps its ports and store."""

    def __init__(self, folder: Path, *, nodes: int = 1, ack_wait: str = "5s", users: list[NatsUser] | None = None,
                 tls: NatsTls | None = None, ready: Callable[[int], bool] | None = None) -> None:
        binary = nats_server_binary()
        if binary is None:
            raise NatsServerMissingError()
        if nodes < 1:
            raise ValueError("a broker has at least one node")
        self.binary, self.folder, self.ack_wait, self.users, self.tls = binary, Path(folder), ack_wait, users, tls
        # whether a node's MQTT port serves sessions; over TLS only the caller has a certificate to ask with
        self.ready = ready or (lambda port: mqtt_session_ready(port, self.probe))
        self.folder.mkdir(parents=True, exist_ok=True)
        self.nodes = [NatsNode(f"flexledger-nats-{i}", free_port(), free_port(), free_port(),
                               self.folder / f"node{i}") for i in range(nodes)]
        self.replicas = min(nodes, 3)
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def url(self) -> str:
        """The MQTT URL of the first node (what a single-node broker's clients use)."""
        return self.nodes[0].mqtt_url

    def config_file(self, index: int) -> Path:
        return self.folder / f"node{index}.conf"

    def log_file(self, index: int) -> Path:
        return self.folder / f"node{index}.log"

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start every node, then wait until each accepts an MQTT session with a QoS 1 subscription
        (in a cluster that needs the JetStream leaders elected and the MQTT streams made)."""
        try:
            for index in range(len(self.nodes)):
                self._spawn(index)
            for index in range(len(self.nodes)):
                self._wait_ready(index, timeout)
        except BaseException:  # no server outlives a start that failed (they run in their own sessions)
            self.stop()
            raise

    def start_node(self, index: int, timeout: float = START_TIMEOUT) -> None:
        """Start one node again (after :meth:`kill`), on its ports and store."""
        self._spawn(index)
        try:
            self._wait_ready(index, timeout)
        except BaseException:
            self.kill(index, signal.SIGTERM)
            raise

    def _spawn(self, index: int) -> None:
        node = self.nodes[index]
        peers = [n for n in self.nodes if n is not node] if len(self.nodes) > 1 else []
        config = node_config(node, peers, replicas=self.replicas, ack_wait=self.ack_wait, users=self.users,
                             tls=self.tls)
        self.config_file(index).write_text(config)
        with self.log_file(index).open("ab") as log:
            self._procs[index] = subprocess.Popen(
                [self.binary, "-c", str(self.config_file(index))], stdout=log, stderr=log,
                stdin=subprocess.DEVNULL, start_new_session=True, env=child_environment())

    def _wait_ready(self, index: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        proc = self._procs[index]
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = " | ".join(self.log_file(index).read_text(errors="replace").splitlines()[-3:])
                raise BrokerError(f"nats-server {self.nodes[index].name} exited ({proc.returncode}): {tail}",
                                  hint=f"see {self.log_file(index)}")
            if self.ready(self.nodes[index].mqtt_port):
                return
            time.sleep(0.2)
        raise BrokerError(f"nats-server {self.nodes[index].name} did not accept MQTT sessions within {timeout:.0f} s",
                          hint=f"see {self.log_file(index)}")

    @property
    def probe(self) -> tuple[str, str, str] | None:
        """The user, password and topic of the readiness probe: the first password user's first
        subscription."""
        entry = next((u for u in self.users or [] if u.password), None)
        if entry is None:
            return None
        assert entry.password is not None
        return entry.user.name, entry.password, entry.user.subscribe[0]

    def pid(self, index: int = 0) -> int:
        return self._procs[index].pid

    def kill(self, index: int = 0, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send ``sig`` to one node and wait for it to exit (SIGKILL: the crash under test)."""
        proc = self._procs.pop(index, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        proc.wait(20)

    def stop(self) -> None:
        """Stop every node (SIGTERM, SIGKILL after 10 s)."""
        for index in list(self._procs):
            proc = self._procs.pop(index)
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)


def mqtt_session_ready(port: int, login: tuple[str, str, str] | None = None, timeout: float = 3.0) -> bool:
    """Whether the MQTT listener on ``port`` grants a QoS 1 subscription (with ``login``: as that
    user, to its topic): more than answering a CONNECT, since NATS answers before its JetStream
    streams for MQTT exist."""
    granted = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"flexledger-probe-{os.getpid()}-{port}",
                         clean_session=True)
    topic = "flexledger/probe"
    if login is not None:
        user, password, topic = login
        client.username_pw_set(user, password)

    def on_subscribe(_c: mqtt.Client, _u: object, _mid: int, codes: list[mqtt.ReasonCode], _p: object) -> None:
        if codes and not codes[0].is_failure:
            granted.set()

    client.on_subscribe = on_subscribe
    client.on_connect = lambda c, _u, _f, reason, _p: None if reason.is_failure else c.subscribe(topic, 1)
    try:
        client.connect(HOST, port, keepalive=10)
    except OSError:
        return False
    client.loop_start()
    try:
        return granted.wait(timeout)
    finally:
        client.loop_stop()
        with contextlib.suppress(Exception):
            client.disconnect()
