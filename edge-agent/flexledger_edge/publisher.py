"""Forwarding the outbox to the MQTT broker, and the broker connection itself.

:class:`ReadingPublisher` is the store-and-forward logic, independent of any MQTT library:
it opens a :class:`BrokerSession` through a factory and publishes the outbox's rows in order
(QoS 1). With a :class:`ResendPolicy` (the agent's default) a row is deleted only on the
oracle's receipt for exactly that reading: a PUBACK says only that the broker has it, and a
broker that loses the oracle's session, or an oracle that fails to store it, loses it; a row
without a receipt is sent again after the policy's delay, doubling up to its maximum. Without
receipts a row goes on its PUBACK. When the connection is lost the publisher drops the
session, waits (exponential backoff with jitter) and opens a new one, which starts again
from the oldest row still stored. Nothing is lost while the broker is away: rows simply
stay in the outbox. A row whose acknowledgement was lost with the connection is sent again, so
delivery is at least once; the oracle deduplicates by (meter, sequence).

:class:`PahoSession` is one connection made with paho-mqtt 2.x (callback API version 2).
Each connection is a fresh paho client driven by ``loop()`` from the publisher's thread,
with paho's own reconnection off: paho would otherwise resend its in-memory copies of
unacknowledged messages as well as the outbox resending them, duplicating readings and
breaking their order. The reconnect-with-backoff is :class:`ReadingPublisher`'s.

The session is persistent on the broker (``clean_session=False``, a stable client id), so
activation orders published while the gateway is offline wait for it at the broker.
"""

from __future__ import annotations

import json
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from .config import BrokerConfig
from .outbox import KeptReceipt, Outbox, OutboxRow
from .reading import ReadingError, SignedReading

log = logging.getLogger(__name__)

QOS = 1
MessageHandler = Callable[[str, bytes], None]


class BrokerUnavailableError(Exception):
    """The broker cannot be reached, refused the connection, or the connection was lost."""


@dataclass(frozen=True)
class SessionCallbacks:
    """What a session reports back: PUBACKs (by message id), incoming messages, and subscriptions
    the broker refused (by topic)."""

    on_puback: Callable[[int], None]
    on_message: MessageHandler
    on_refused: Callable[[str], None] | None = None


class BrokerSession(Protocol):
    """One live connection to the broker."""

    def publish(self, topic: str, payload: bytes) -> int | None:
        """Send at QoS 1; the message id, or None when the session cannot take it."""
        ...

    def subscribe(self, topic: str) -> bool:
        """Subscribe at QoS 1; False when the session cannot."""
        ...

    def poll(self, timeout: float) -> bool:
        """Do network I/O for up to ``timeout`` s (callbacks run here); False once the connection is lost."""
        ...

    def close(self) -> None:
        """Disconnect."""
        ...


SessionFactory = Callable[[SessionCallbacks], BrokerSession]


class Backoff:
    """Exponential backoff with full jitter between ``initial_s`` and ``max_s``."""

    def __init__(self, initial_s: float = 1.0, max_s: float = 60.0, *, rng: random.Random | None = None) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self._attempts = 0
        self._rng = rng or random.Random()

    def next_delay(self) -> float:
        ceiling = min(self.max_s, self.initial_s * 2**self._attempts)
        self._attempts += 1
        return self._rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self._attempts = 0


@dataclass(frozen=True)
class ResendPolicy:
    """Wait for the oracle's receipts: a row the broker acknowledged is sent again ``initial_s`` after
    its PUBACK if no receipt came, then after twice that, and so on up to ``max_s``; a row still
    without a receipt ``give_up_s`` after it was stored is quarantined (never re-sent for ever).
    After ``silent_after`` resends of one row with no receipt ever, the receipts are ``silent``."""

    initial_s: float = 60.0
    max_s: float = 900.0
    give_up_s: float = 7 * 86_400.0
    silent_after: int = 3

    def delay(self, attempts: int) -> float:
        return float(min(self.max_s, self.initial_s * 2 ** min(attempts, 32)))


# What the oracle's receipt says became of a reading: kept (in a root or late), or kept once
# already; any other outcome is a final refusal (its reason).
KEPT_OUTCOMES = frozenset({"stored", "late", "duplicate"})
# Refused for now, not for good: the reading's ISP has not ended by the oracle's clock (this
# gateway's clock runs ahead). The row stays and is sent again after the resend policy's delay,
# until the oracle takes it or ``give_up_s`` passes.
NOT_YET_OUTCOMES = frozenset({"future"})
# The oracle keeps readings up to seven days old (its retention): an older one is refused.
ORACLE_RETENTION_S = 7 * 86_400


@dataclass(frozen=True)
class Receipt:
    """A well-formed receipt: the reading's values, its outcome, and whether it was signed as
    "accepted" for its ISP's root (a promise an omission claim holds the oracle to)."""

    meter: str
    sequence: int
    isp_start: int
    import_wh: int
    export_wh: int
    outcome: str
    market: int | None
    accepted: bool


def _parse_receipt(payload: bytes) -> Receipt | None:
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("meter"), str):
        return None
    values = [data.get(key) for key in ("sequence", "ispStart", "importWh", "exportWh")]
    if any(isinstance(v, bool) or not isinstance(v, int) for v in values):
        return None
    outcome = data.get("outcome")
    market = data.get("market")
    signed = (data.get("accepted") is True and isinstance(data.get("signature"), str)
              and isinstance(market, int) and not isinstance(market, bool))
    sequence, isp_start, import_wh, export_wh = (int(v) for v in values)  # type: ignore[arg-type]
    return Receipt(str(data["meter"]).lower(), sequence, isp_start, import_wh, export_wh,
                   outcome if isinstance(outcome, str) else "stored", market if signed else None, signed)


def _receipt_values(payload: bytes) -> tuple[str, int, int, int, int] | None:
    """(meter, sequence, ispStart, importWh, exportWh) of a well-formed receipt, else None."""
    r = _parse_receipt(payload)
    return None if r is None else (r.meter, r.sequence, r.isp_start, r.import_wh, r.export_wh)


class ReadingPublisher:
    """Sends the outbox to the broker, in order; reconnects with backoff. A row leaves the outbox on
    its PUBACK or, with a :class:`ResendPolicy`, on the oracle's receipt for exactly that reading."""

    def __init__(
        self,
        outbox: Outbox,
        connect: SessionFactory,
        *,
        backoff: Backoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_in_flight: int = 50,
        receipts: ResendPolicy | None = None,
        wall: Callable[[], float] | None = None,
        retention_s: float = ORACLE_RETENTION_S,
    ) -> None:
        self.outbox = outbox
        self._receipts = receipts
        # the agent's clock, for a reading's age (``clock`` may be monotonic); without it no row is
        # given up for its age (a publisher driven by hand)
        self._wall = wall
        self._retention_s = retention_s
        self._awaiting: dict[int, float] = {}  # outbox row id -> when it is sent again without a receipt
        self._resends: dict[int, int] = {}  # outbox row id -> times sent again, for the backoff
        self._connect = connect
        self._backoff = backoff or Backoff()
        self._clock = clock
        self._max_in_flight = max_in_flight
        self._lock = threading.RLock()
        self._session: BrokerSession | None = None
        self._next_attempt = 0.0
        self._in_flight: dict[int, int] = {}  # message id -> outbox row id
        self._sent_up_to = 0  # highest outbox row id published in this session
        self._subscriptions: dict[str, MessageHandler] = {}
        self.sent_count = 0
        self.acked_count = 0  # rows cleared: by the oracle's receipt, or by the PUBACK without receipts
        self.pubacked_count = 0  # PUBACKs of readings: what the broker accepted
        self.resent_count = 0
        self.receipts_count = 0  # receipts that cleared a row
        self.quarantined_count = 0  # rows the oracle will never take, moved to the quarantine
        self.deferred_count = 0  # readings the oracle refused for now (its clock behind ours), kept to send again
        self.refused_topics: set[str] = set()  # subscriptions the broker refused
        self._silent_logged = False

    @property
    def connected(self) -> bool:
        return self._session is not None

    def receipts_state(self) -> str:
        """``off`` (no receipts awaited), ``ok`` (a receipt came), ``waiting`` (none yet, none
        overdue), ``refused`` (the broker refused the receipts subscription: this gateway's broker
        user may not read them) or ``silent`` (readings re-sent ``silent_after`` times with no
        receipt ever: no oracle answers, or its receipts cannot reach this gateway)."""
        if self._receipts is None:
            return "off"
        if any("/receipts/" in topic for topic in self.refused_topics):
            return "refused"
        if self.receipts_count:
            return "ok"
        if max(self._resends.values(), default=0) >= self._receipts.silent_after:
            return "silent"
        return "waiting"

    def status(self) -> dict[str, object]:
        """What the agent exposes about delivery (``flexledger-edge status``)."""
        return {"connected": self.connected, "receipts": self.receipts_state(), "outbox": self.outbox.count(),
                "sent": self.sent_count, "resent": self.resent_count, "pubacked": self.pubacked_count,
                "receipted": self.receipts_count, "quarantined": self.quarantined_count, "deferred": self.deferred_count,
                "refused_subscriptions": sorted(self.refused_topics)}

    def subscribe(self, topic: str, handler: MessageHandler) -> None:
        """Receive a topic's messages (QoS 1) on every session from now on."""
        with self._lock:
            self._subscriptions[topic] = handler
            if self._session is not None and not self._session.subscribe(topic):
                self._drop_session("subscribe failed")

    def publish_now(self, topic: str, payload: bytes) -> bool:
        """Send a message that needs no store-and-forward (an acknowledgement): QoS 1 if
        connected now, otherwise not at all. True when handed to the session."""
        with self._lock:
            if self._session is None:
                log.warning("not connected: message for %s not sent", topic)
                return False
            if self._session.publish(topic, payload) is None:
                self._drop_session(f"publish to {topic} refused")
                return False
            return True

    def step(self, timeout: float = 0.2) -> None:
        """One round: connect if due, send what the outbox holds, process the network."""
        with self._lock:
            if self._session is None:
                now = self._clock()
                if now < self._next_attempt:
                    return
                self._open_session()
                if self._session is None:
                    return
            self._send_pending()
            session = self._session
            if session is not None and not session.poll(timeout):
                self._drop_session("connection lost")

    def seconds_until_retry(self) -> float:
        """How long until the next connection attempt is due (0 when connected or due)."""
        with self._lock:
            if self._session is not None:
                return 0.0
            return max(0.0, self._next_attempt - self._clock())

    def run(self, stop: threading.Event, poll_s: float = 0.2) -> None:
        """Loop until ``stop`` is set (for a background thread)."""
        while not stop.is_set():
            try:
                self.step(poll_s)
            except Exception:
                log.exception("publisher round failed; retrying")
                self._drop_session("error")
                stop.wait(1.0)
                continue
            if not self.connected:
                stop.wait(min(max(self.seconds_until_retry(), 0.05), poll_s * 5))

    def drain(self, timeout_s: float, poll_s: float = 0.1) -> bool:
        """Run rounds until the outbox is empty or ``timeout_s`` passed; True when empty."""
        deadline = time.monotonic() + timeout_s
        while self.outbox.count() and time.monotonic() < deadline:
            self.step(poll_s)
            if not self.connected:
                time.sleep(min(poll_s, max(0.0, deadline - time.monotonic())))
        return self.outbox.count() == 0

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.close()
                self._session = None

    # -- internals ---------------------------------------------------------------------

    def _open_session(self) -> None:
        try:
            session = self._connect(SessionCallbacks(self._on_puback, self._on_message, self._on_refused))
        except BrokerUnavailableError as exc:
            delay = self._backoff.next_delay()
            self._next_attempt = self._clock() + delay
            log.warning("broker unavailable (%s); %d reading(s) kept in the outbox; retry in %.1f s", exc, self.outbox.count(), delay)
            return
        self._session = session
        self._in_flight.clear()
        self._sent_up_to = 0
        self._backoff.reset()
        for topic in self._subscriptions:
            if not session.subscribe(topic):
                self._drop_session(f"subscribe to {topic} failed")
                return
        waiting = self.outbox.count()
        log.info("connected to the broker; %d reading(s) to send", waiting)

    def _send_pending(self) -> None:
        room = self._max_in_flight - len(self._in_flight)
        if room <= 0 or self._session is None:
            return
        now = self._clock()
        for row_id in sorted(r for r, due in self._awaiting.items() if due <= now)[:room]:
            del self._awaiting[row_id]
            stored = self.outbox.get(row_id)
            if stored is None or self._gave_up(stored):
                continue
            mid = self._session.publish(stored.topic, stored.payload)
            if mid is None:
                self._drop_session("publish refused")
                return
            self._in_flight[mid] = row_id
            self._resends[row_id] = self._resends.get(row_id, 0) + 1
            self.resent_count += 1
            room -= 1
            log.info("no receipt for reading %d of %s: sent again", stored.sequence, stored.meter)
            self._check_silent()
        if room <= 0:
            return
        for row in self.outbox.pending(after_id=self._sent_up_to, limit=room):
            if self._gave_up(row):
                self._sent_up_to = row.id
                continue
            mid = self._session.publish(row.topic, row.payload)
            if mid is None:
                self._drop_session("publish refused")
                return
            self._in_flight[mid] = row.id
            self._sent_up_to = row.id
            self.sent_count += 1
            log.debug("sent reading %d of %s (message %d)", row.sequence, row.meter, mid)

    def _gave_up(self, row: OutboxRow) -> bool:
        """Quarantine (and skip) a row the oracle can never take: its ISP older than the oracle's
        retention, or no receipt ``give_up_s`` after it was stored. True when it was."""
        if self._wall is None:
            return False
        now = self._wall()
        if row.isp_start < now - self._retention_s:
            reason = f"older than the oracle's {self._retention_s / 86_400:g}-day retention: it would be refused"
        elif self._receipts is not None and row.stored_at and row.stored_at < now - self._receipts.give_up_s:
            reason = f"no receipt from the oracle within {self._receipts.give_up_s:g} s"
        else:
            return False
        self._quarantine(row, reason, now)
        return True

    def _now(self) -> float:
        return time.time() if self._wall is None else self._wall()

    def _quarantine(self, row: OutboxRow, reason: str, now: float) -> None:
        self.outbox.quarantine_row(row, reason, now)
        self._awaiting.pop(row.id, None)
        self._resends.pop(row.id, None)
        self.quarantined_count += 1

    def _check_silent(self) -> None:
        if self.receipts_state() == "silent" and not self._silent_logged:
            self._silent_logged = True
            log.error("no receipt from the oracle has ever come though %d reading(s) were re-sent: readings stay in "
                      "the outbox and are sent again; check that an oracle runs with receipts and that this "
                      "gateway's broker user may read its receipts topic (`flexledger broker user upgrade`)",
                      len(self._resends))

    def _on_refused(self, topic: str) -> None:
        with self._lock:
            self.refused_topics.add(topic)
        if "/receipts/" in topic:
            log.error("the broker refused this gateway's subscription to its receipts (%s): no reading can be "
                      "cleared by the oracle's receipt, each would be re-sent until given up; the broker user "
                      "was made before receipts: upgrade it (`flexledger broker user upgrade`)", topic)

    def _on_puback(self, mid: int) -> None:
        with self._lock:
            row_id = self._in_flight.pop(mid, None)
            if row_id is None:
                return  # an acknowledgement's PUBACK, or a session already dropped
            self.pubacked_count += 1
            if self._receipts is None:
                self.outbox.delete(row_id)
                self.acked_count += 1
            else:  # the broker has it, the oracle may not: wait for the receipt, then send again
                self._awaiting[row_id] = self._clock() + self._receipts.delay(self._resends.get(row_id, 0))

    def on_receipt(self, topic: str, payload: bytes) -> None:
        """The oracle's receipt: it committed this reading, so its row leaves the sending order.
        Kept (``stored``, ``late``, ``duplicate``), the row goes, and a receipt signed "accepted"
        for its ISP's root is kept (an omission claim is filed with it); refused for good (any
        other outcome: ``too_old``, ``unknown_meter``, ``conflicting``, ...), the row moves to the
        quarantine with that reason. Only a receipt naming the stored row's meter, sequence, ISP
        and energy counts; anything else (another reading, a malformed receipt) changes nothing.
        Only the oracle may publish on the receipts topic (the broker's ACL)."""
        r = _parse_receipt(payload)
        if r is None:
            log.warning("malformed receipt on %s ignored", topic)
            return
        with self._lock:
            row = self.outbox.find(r.meter, r.sequence)
            if row is None:
                log.debug("receipt for reading %d of %s matches no stored row", r.sequence, r.meter)
                return
            try:
                reading = SignedReading.from_json(row.payload).reading
            except ReadingError:
                log.error("stored row %d does not parse; kept", row.id)
                return
            if (reading.isp_start, reading.import_wh, reading.export_wh) != (r.isp_start, r.import_wh, r.export_wh):
                log.warning("receipt for reading %d of %s carries other values; ignored", r.sequence, r.meter)
                return
            self.receipts_count += 1
            if r.outcome in NOT_YET_OUTCOMES and self._receipts is not None:
                self._awaiting[row.id] = self._clock() + self._receipts.delay(self._resends.get(row.id, 0))
                self.deferred_count += 1
                log.warning("the oracle refused reading %d of %s as %s (this gateway's clock may run ahead of "
                            "the oracle's): kept, sent again later", r.sequence, r.meter, r.outcome)
                return
            if r.outcome not in KEPT_OUTCOMES:
                self._quarantine(row, f"refused by the oracle: {r.outcome}", self._now())
                return
            kept = KeptReceipt(r.meter, r.isp_start, r.sequence, r.market, payload) if r.market is not None else None
            self.outbox.receipted(row, kept, now=self._now())
            self._awaiting.pop(row.id, None)
            self._resends.pop(row.id, None)
            self.acked_count += 1

    def _on_message(self, topic: str, payload: bytes) -> None:
        handler = self._subscriptions.get(topic)
        if handler is None:
            log.debug("message on unexpected topic %s ignored", topic)
            return
        try:
            handler(topic, payload)
        except Exception:
            log.exception("handler for %s failed", topic)

    def _drop_session(self, why: str) -> None:
        session, self._session = self._session, None
        if session is None:
            return
        unacked = len(self._in_flight)
        self._in_flight.clear()
        self._awaiting.clear()  # the next session sends every stored row again from the oldest
        self._sent_up_to = 0
        try:
            session.close()
        except Exception:
            log.debug("closing a broken session failed", exc_info=True)
        delay = self._backoff.next_delay()
        self._next_attempt = self._clock() + delay
        log.warning(
            "broker session ended (%s); %d reading(s) unacknowledged stay in the outbox; reconnecting in %.1f s",
            why, unacked, delay,
        )


class PahoSession:
    """One MQTT connection with paho-mqtt 2.x, driven by :meth:`poll` (no background thread)."""

    def __init__(
        self,
        config: BrokerConfig,
        client_id: str,
        callbacks: SessionCallbacks,
        *,
        connect_timeout_s: float = 10.0,
    ) -> None:
        self._callbacks = callbacks
        self._subscribing: dict[int, str] = {}  # SUBSCRIBE message id -> topic, until its SUBACK
        self._connack: ReasonCode | None = None
        self._alive = False
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=False,
            protocol=mqtt.MQTTv311,
            reconnect_on_failure=False,
        )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.connect_timeout = connect_timeout_s
        client.max_queued_messages_set(0)
        if config.username is not None:
            client.username_pw_set(config.username, config.password)
        if config.tls:
            try:
                client.tls_set(
                    ca_certs=str(config.ca_file) if config.ca_file else None,
                    certfile=str(config.cert_file) if config.cert_file else None,
                    keyfile=str(config.key_file) if config.key_file else None,
                    tls_version=ssl.PROTOCOL_TLS_CLIENT,
                )
            except (ssl.SSLError, OSError) as exc:
                raise BrokerUnavailableError(f"TLS set-up failed: {exc}") from exc
        self._client = client
        try:
            client.connect(config.host, config.port, keepalive=config.keepalive_s)
        except (OSError, ValueError) as exc:
            raise BrokerUnavailableError(f"cannot connect to {config.host}:{config.port}: {exc}") from exc
        deadline = time.monotonic() + connect_timeout_s
        while (connack := self._connack_reason()) is None:
            rc = client.loop(0.1)
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise BrokerUnavailableError(f"connection to {config.host}:{config.port} failed: {mqtt.error_string(rc)}")
            if time.monotonic() > deadline:
                client.disconnect()
                raise BrokerUnavailableError(f"no CONNACK from {config.host}:{config.port} within {connect_timeout_s} s")
        if connack.is_failure:
            client.disconnect()
            raise BrokerUnavailableError(f"broker {config.host}:{config.port} refused the connection: {connack}")
        self._alive = True

    def _connack_reason(self) -> ReasonCode | None:
        return self._connack

    def publish(self, topic: str, payload: bytes) -> int | None:
        if not self._alive:
            return None
        info = self._client.publish(topic, payload, qos=QOS)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            log.warning("publish to %s refused: %s", topic, mqtt.error_string(info.rc))
            return None
        return int(info.mid)

    def subscribe(self, topic: str) -> bool:
        if not self._alive:
            return False
        rc, mid = self._client.subscribe(topic, qos=QOS)
        if mid is not None:
            self._subscribing[int(mid)] = topic
        return bool(rc == MQTTErrorCode.MQTT_ERR_SUCCESS)

    def poll(self, timeout: float) -> bool:
        if not self._alive:
            return False
        rc = self._client.loop(timeout)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._alive = False
        return self._alive

    def close(self) -> None:
        if self._alive:
            self._alive = False
            self._client.disconnect()
            self._client.loop(0.1)

    # paho callbacks (VERSION2 signatures)
    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any) -> None:
        self._connack = reason

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any) -> None:
        if self._alive:
            log.info("disconnected from the broker: %s", reason)
        self._alive = False

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode, properties: Any) -> None:
        if reason.is_failure:
            log.warning("broker refused message %d: %s", mid, reason)
            return
        self._callbacks.on_puback(mid)

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, reasons: list[ReasonCode],
                      properties: Any) -> None:
        # a refused receipts subscription (a broker user made before receipts) means readings are
        # re-sent for ever: say so rather than fail quietly
        topic = self._subscribing.pop(mid, "?")
        if any(reason.is_failure for reason in reasons):
            log.error("the broker refused a subscription to %s (%s): check this gateway's broker user may read its "
                      "receipts and orders topics", topic, reasons)
            if self._callbacks.on_refused is not None:
                self._callbacks.on_refused(topic)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self._callbacks.on_message(message.topic, bytes(message.payload))


def paho_factory(config: BrokerConfig, client_id: str) -> SessionFactory:
    """A session factory connecting to the configured broker with a fixed client id."""

    def connect(callbacks: SessionCallbacks) -> BrokerSession:
        return PahoSession(config, client_id, callbacks)

    return connect
