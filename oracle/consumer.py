"""The oracle's MQTT consumer: readings in, kept once, acknowledged only once they are stored.

It subscribes with QoS 1 on a persistent session (so the broker keeps what arrives while the
oracle is down) and acknowledges each message by hand after the transaction that stored it (or
counted its refusal) has committed: if the oracle is killed in between, the broker delivers the
message again and the store keeps it once. Messages are taken in batches (one transaction per
batch) because a commit per reading would cap the rate far below what the meters send.

The broker must know the oracle: it connects with the user and password of its URL (or given
apart), over TLS for ``mqtts://`` with an optional CA and client certificate, under a client id the
broker binds to that user (anyone else presenting the id could otherwise take the session over and
wipe it with a clean CONNECT). A persistent session found gone on a reconnection (CONNACK
session-present false) is an alarm: what the broker had queued for the oracle is lost.

A message is acknowledged only on the connection that delivered it. After a reconnection (the
broker restarted, the network dropped) the broker sends the unacknowledged messages again under
new packet ids, so an acknowledgement carrying an old id could clear a different message that is
not stored yet; the old copies are stored (or found duplicate) and not acknowledged.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from sqlalchemy.engine import Engine

from .ingest import ingest_batch
from .store import session
from .verify import Verifier

log = logging.getLogger(__name__)
READINGS_TOPIC = "flexledger/v1/readings/+"


@dataclass(frozen=True)
class BrokerEndpoint:
    """How to reach and authenticate to a broker: what the oracle and `config --check` both use."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    @classmethod
    def from_url(cls, url: str, *, username: str | None = None, password: str | None = None,
                 ca_file: str | None = None, cert_file: str | None = None,
                 key_file: str | None = None) -> BrokerEndpoint:
        """The URL's host, port, scheme and user; arguments given explicitly win over the URL's."""
        parts = urlsplit(url)
        tls = parts.scheme in ("mqtts", "wss")
        if (cert_file or key_file or ca_file) and not tls:
            raise ValueError("a CA file or client certificate needs an mqtts:// broker URL")
        if bool(cert_file) != bool(key_file):
            raise ValueError("a client certificate needs its key file, and a key file its certificate")
        user = username if username is not None else (unquote(parts.username) if parts.username else None)
        secret = password if password is not None else (unquote(parts.password) if parts.password else None)
        return cls(parts.hostname or "127.0.0.1", parts.port or (8883 if tls else 1883), tls, user, secret,
                   ca_file, cert_file, key_file)

    def apply(self, client: mqtt.Client) -> None:
        """Set the credentials and TLS of this endpoint on a paho client, before it connects."""
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set(ca_certs=self.ca_file, certfile=self.cert_file, keyfile=self.key_file)


class OracleConsumer:
    def __init__(
        self, url: str, engine: Engine, verifier: Verifier, market: int, *, client_id: str = "flexledger-oracle",
        batch: int = 500, wait: float = 0.05, clock: Callable[[], float] = time.time,
        username: str | None = None, password: str | None = None, ca_file: str | None = None,
        cert_file: str | None = None, key_file: str | None = None, expect_session: bool = False,
    ) -> None:
        self.engine, self.verifier, self.market, self.client_id = engine, verifier, market, client_id
        self.batch, self.wait, self.clock = batch, wait, clock
        self.outcomes: Counter[str] = Counter()
        # Connections on which the broker no longer had the oracle's session: its queued readings
        # (acknowledged to the meters, which deleted them) are gone.
        self.sessions_lost = 0
        self._expect_session = expect_session
        self._queue: queue.Queue[tuple[int, mqtt.MQTTMessage]] = queue.Queue()
        self._connection = 0  # counts connections lost, so each message knows the one it came on
        self._ack_lock = threading.Lock()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self.endpoint = BrokerEndpoint.from_url(url, username=username, password=password, ca_file=ca_file,
                                                cert_file=cert_file, key_file=key_file)
        self._host, self._port = self.endpoint.host, self.endpoint.port
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                                  protocol=mqtt.MQTTv311, manual_ack=True)
        self.endpoint.apply(self.client)
        # paho's default backoff grows to two minutes: an oracle lagging that long behind a broker
        # that is back would leave its meters' readings waiting at the broker for nothing
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = lambda _c, _u, message: self._queue.put((self._connection, message))
        self._worker = threading.Thread(target=self._work, name="oracle-ingest", daemon=True)

    def _on_connect(self, client: mqtt.Client, _userdata: object, flags: mqtt.ConnectFlags, reason: object,
                    _properties: object = None) -> None:
        if getattr(reason, "is_failure", False):
            log.error("the broker refused the oracle (%s): check its user, password and client id", reason)
            return
        log.info("oracle connected to the broker (%s)", reason)
        if not flags.session_present and self._expect_session:
            self.sessions_lost += 1
            log.error("ALARM: the broker had lost the oracle's persistent session (client id %s): readings it "
                      "queued for the oracle are gone; check the broker's persistence and who else uses this id",
                      self.client_id)
        self._expect_session = True
        client.subscribe(READINGS_TOPIC, qos=1)

    def _on_subscribe(self, _client: mqtt.Client, _userdata: object, _mid: int, codes: list[mqtt.ReasonCode],
                      _properties: object = None) -> None:
        if any(code.is_failure for code in codes):
            log.error("the broker refused the oracle's subscription to %s (%s)", READINGS_TOPIC, codes)
            return
        self._subscribed.set()

    def _on_disconnect(self, _client: mqtt.Client, _userdata: object, _flags: object, reason: object,
                       _properties: object = None) -> None:
        with self._ack_lock:
            self._connection += 1
        if not self._stop.is_set():
            log.warning("oracle lost the broker (%s); what it received unacknowledged will come again", reason)

    def start(self) -> None:
        self.client.connect_async(self._host, self._port, keepalive=30)
        self.client.loop_start()
        self._worker.start()

    def wait_subscribed(self, timeout: float = 10.0) -> bool:
        """Whether the broker confirmed the subscription (before it, a broker drops what meters publish
        unless an earlier session of this client id is waiting for it)."""
        return self._subscribed.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        self._worker.join(timeout=10)
        self.client.loop_stop()
        self.client.disconnect()

    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._queue.get(timeout=self.wait)
            except queue.Empty:
                continue
            messages = [first]
            while len(messages) < self.batch:
                try:
                    messages.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._process(messages)

    def _process(self, messages: list[tuple[int, mqtt.MQTTMessage]]) -> None:
        now = int(self.clock())
        try:
            with session(self.engine) as s:
                outcomes = ingest_batch(s, self.verifier, self.market, [bytes(m.payload) for _, m in messages], now)
        except Exception:  # the database is down: nothing is acknowledged, the broker keeps the messages
            log.exception("storing a batch of %d readings failed; they stay unacknowledged", len(messages))
            time.sleep(1.0)
            for item in messages:
                self._queue.put(item)
            return
        self.outcomes.update(outcomes)
        with self._ack_lock:  # held so that no acknowledgement of a lost connection reaches the next
            for connection, m in messages:
                if connection == self._connection:
                    self.client.ack(m.mid, m.qos)
