"""The oracle's MQTT consumer: readings in, kept once, acknowledged only once they are stored.

It subscribes with QoS 1 on a persistent session (so the broker keeps what arrives while the
oracle is down) and acknowledges each message by hand after the transaction that stored it (or
counted its refusal) has committed: if the oracle is killed in between, the broker delivers the
message again and the store keeps it once. Messages are taken in batches (one transaction per
batch) because a commit per reading would cap the rate far below what the meters send. A message
that cannot be stored (its data, not the database) is quarantined and acknowledged, never retried
for ever with the batch it came in (``ingest.ingest_isolating``).

Acknowledgement is end to end: the broker's PUBACK tells a gateway only that the broker has a
reading; once the oracle's transaction has committed, it publishes a receipt (QoS 1) on
``flexledger/v1/receipts/<meter>`` with the reading's values and outcome, and a gateway keeps a
reading until that receipt (the broker's ACL lets only the oracle write there). Receipts are sent
when ``receipts`` is set, and signed with ``receipt_signer`` (``oracle.receipts``): a gateway
keeps the signed receipt of a reading "accepted" for the root and can claim an omission with it.

The broker must know the oracle: it connects with the user and password of its URL (or given
apart), over TLS for ``mqtts://`` with an optional CA and client certificate, under a client id the
broker binds to that user (anyone else presenting the id could otherwise take the session over and
wipe it with a clean CONNECT). A persistent session found gone on a reconnection (CONNACK
session-present false) is an alarm: what the broker had queued for the oracle is lost.

A message is acknowledged only on the connection that delivered it. After a reconnection (the
broker restarted, the network dropped) the broker sends the unacknowledged messages again under
new packet ids, so an acknowledgement carrying an old id could clear a different message that is
not stored yet; the old copies are stored (or found duplicate) and not acknowledged.

Consumers scale out through a shared subscription (``share_group``: the filter
``$share/<group>/flexledger/v1/readings/+``): the broker hands each reading to one consumer of the
group, each consumer under its own client id and persistent session, all writing one store, whose
key (meter, ISP) keeps a reading once whichever consumer gets it, or both after a redelivery.
Mosquitto and EMQX grant shared subscriptions to MQTT 3.1.1 clients too (the protocol the consumer
speaks, as do the embedded broker and NATS, neither of which has shared subscriptions).
"""

from __future__ import annotations

import json
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

from .ingest import STORED, ingest_isolating
from .readings import MalformedReadingError, Reading, parse_payload
from .receipts import ReceiptSigner
from .verify import Reason, Verifier

log = logging.getLogger(__name__)
READINGS_TOPIC = "flexledger/v1/readings/+"
SHARE_GROUP_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def readings_filter(share_group: str | None = None) -> str:
    """The readings' topic filter: shared by the consumers of ``share_group`` (``$share/<group>/...``),
    or the whole stream for one consumer."""
    if share_group is None:
        return READINGS_TOPIC
    if not share_group or not set(share_group) <= SHARE_GROUP_CHARACTERS:
        raise ValueError(f"{share_group!r} cannot name a shared subscription: use letters, digits, '-', '_' and '.'")
    return f"$share/{share_group}/{READINGS_TOPIC}"


def receipts_topic(meter: str) -> str:
    """Where the oracle tells a meter's gateway what became of its readings."""
    return f"flexledger/v1/receipts/{meter.lower()}"


def receipt(reading: Reading, outcome: str, signer: ReceiptSigner | None = None, accepted: bool = False) -> bytes:
    """A receipt: the reading's signed values, so that a gateway clears exactly that reading, and
    its outcome (``stored``, ``duplicate``, a refusal reason: every one is final). With a
    ``signer``, also the market and whether the reading is ``accepted`` for the ISP's root; an
    accepted one (a promise the gateway can hold the oracle to, ``oracle.receipts``) carries the
    oracle and its signature."""
    body: dict[str, object] = {"meter": reading.meter, "ispStart": reading.isp_start, "sequence": reading.sequence,
                               "importWh": reading.import_wh, "exportWh": reading.export_wh, "outcome": outcome}
    if signer is not None:
        body.update(market=signer.market, accepted=accepted)
        if accepted:  # only a promise is worth a signature (and signing costs as much as a recovery)
            body.update(oracle=signer.address, signature="0x" + signer.sign(reading, True).hex())
    return json.dumps(body).encode()


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
    # Off until the broker lets the oracle write receipts (a broker with ACLs disconnects a client
    # that publishes where it may not) and the gateways wait for them.
    receipts: bool = False
    # Signs receipts (the oracle's anchoring key), so that "accepted" is a promise it can be held
    # to; None: receipts unsigned (no omission can be claimed against this oracle).
    receipt_signer: ReceiptSigner | None = None
    # Seconds after an ISP's end before its root is anchored (the anchoring's grace): a reading
    # committed before then is in the root, and only such a reading is receipted "accepted".
    anchor_grace: int = 60
    isp_seconds: int = 900

    def __init__(
        self, url: str, engine: Engine, verifier: Verifier, market: int, *, client_id: str = "flexledger-oracle",
        batch: int = 500, wait: float = 0.05, clock: Callable[[], float] = time.time,
        username: str | None = None, password: str | None = None, ca_file: str | None = None,
        cert_file: str | None = None, key_file: str | None = None, expect_session: bool = False,
        share_group: str | None = None,
    ) -> None:
        self.engine, self.verifier, self.market, self.client_id = engine, verifier, market, client_id
        self.topic = readings_filter(share_group)
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
        client.subscribe(self.topic, qos=1)

    def _on_subscribe(self, _client: mqtt.Client, _userdata: object, _mid: int, codes: list[mqtt.ReasonCode],
                      _properties: object = None) -> None:
        if any(code.is_failure for code in codes):
            log.error("the broker refused the oracle's subscription to %s (%s)", self.topic, codes)
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
            outcomes = ingest_isolating(self.engine, self.verifier, self.market,
                                        [bytes(m.payload) for _, m in messages], now)
        except Exception:  # the database or the chain is out of reach: nothing is acknowledged
            log.exception("storing a batch of %d readings failed; they stay unacknowledged", len(messages))
            time.sleep(1.0)
            for item in messages:
                self._queue.put(item)
            return
        committed = int(self.clock())  # after the commit: what decides whether a reading is promised
        self.outcomes.update(outcomes)
        with self._ack_lock:  # held so that no acknowledgement of a lost connection reaches the next
            for connection, m in messages:
                if connection == self._connection:
                    self.client.ack(m.mid, m.qos)
        for (_connection, m), outcome in zip(messages, outcomes, strict=True):
            self._receipt(bytes(m.payload), outcome, committed)

    def accepted(self, reading: Reading, outcome: str, committed: int) -> bool:
        """Whether the receipt promises the reading is in its ISP's root: it was stored (a repeat's
        receipt promises nothing: the first one did) and committed before the anchoring round may
        read the ISP's readings (``ispStart + isp_seconds + anchor_grace``, on the anchoring's clock,
        which is never ahead of this one)."""
        return outcome == STORED and committed < reading.isp_start + self.isp_seconds + self.anchor_grace

    def _receipt(self, payload: bytes, outcome: str, committed: int) -> None:
        """Tell the meter's gateway what became of its reading, once that is committed. Only for a
        reading its meter signed: a receipt for a forged one would let anyone clear a gateway's
        outbox of the genuine reading before it got here."""
        if not self.receipts or outcome in (Reason.MALFORMED, Reason.BAD_SIGNATURE):
            return
        try:
            reading, _signature = parse_payload(payload)
        except MalformedReadingError:
            return  # quarantined before it parsed: there is no meter to tell
        body = receipt(reading, outcome, self.receipt_signer, self.accepted(reading, outcome, committed))
        self.client.publish(receipts_topic(reading.meter), body, qos=1)
