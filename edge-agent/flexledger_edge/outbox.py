"""A durable outbox for signed readings (SQLite, WAL), and each meter's sequence counter.

Store-and-forward: a reading is signed and committed here *before* anything is sent; a row
is deleted only when the oracle's receipt for it arrives (or, with receipts off, on the broker's
MQTT PUBACK). After a crash, a power
cut or a network outage the rows still here are sent again, in the order they were stored
(which is each meter's sequence order). Delivery to the broker is therefore at least once:
a PUBACK lost with the connection means the row is sent again, and the oracle drops the
duplicate by (meter, sequence).

The same database holds, per meter, the last sequence number and the last ISP signed, so
sequences continue across restarts (1, 2, 3, ... without gaps or repeats), and every ISP
signed within the horizon, so an ISP is never signed twice with different values.

The gateway's clock is not trusted to be right (unauthenticated NTP, an RTC reset by a power
cut): an ISP is signed only when it lies in ``[now - horizon_s, now - isp_seconds + skew_s]``
(it has ended, and is not older than the horizon); one outside is quarantined (kept in the
``quarantine`` table with the reason, and logged), never signed. An ISP signed during a jump of
the clock into the future does not block the readings after it: ISPs keep increasing with
the sequence only from the last one signed that is not in the future.

``synchronous=FULL``: a committed reading survives a power cut, not only a killed process.
The object may be shared between threads (one connection behind a lock).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .reading import SignedReading
from .topics import readings_topic

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3
DEFAULT_HORIZON_S = 7 * 86_400
# How long the oracle's signed receipts are kept: beyond the market's settlement horizon (a day
# plus three dispute windows: a week by default) no omission can be claimed with them any more.
DEFAULT_RECEIPTS_KEEP_S = 8 * 86_400
DEFAULT_SKEW_S = 120
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    meter TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    isp_start INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    stored_at REAL NOT NULL,
    UNIQUE (meter, sequence)
);
CREATE TABLE IF NOT EXISTS meter_state (
    meter TEXT PRIMARY KEY,
    last_sequence INTEGER NOT NULL,
    last_isp_start INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS signed_isp (
    meter TEXT NOT NULL,
    isp_start INTEGER NOT NULL,
    PRIMARY KEY (meter, isp_start)
);
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    meter TEXT NOT NULL,
    isp_start INTEGER NOT NULL,
    clock REAL NOT NULL,
    reason TEXT NOT NULL,
    payload BLOB
);
CREATE TABLE IF NOT EXISTS receipts (
    meter TEXT NOT NULL,
    isp_start INTEGER NOT NULL,
    sequence INTEGER NOT NULL,
    market INTEGER NOT NULL,
    body BLOB NOT NULL,
    received_at REAL NOT NULL,
    PRIMARY KEY (meter, isp_start, market)
);
"""
# from schema 1: the last ISP each meter signed is the one ISP it may not sign again
_MIGRATE_1 = "INSERT OR IGNORE INTO signed_isp (meter, isp_start) SELECT meter, last_isp_start FROM meter_state"
# from schema 2: a quarantined signed reading keeps its payload (still the meter's word: it can
# settle without a root)
_MIGRATE_2 = "ALTER TABLE quarantine ADD COLUMN payload BLOB"


class OutboxError(Exception):
    """The outbox database cannot be used, or a reading does not fit its meter's history."""


@dataclass(frozen=True)
class OutboxRow:
    """One stored, signed reading waiting for its acknowledgement."""

    id: int
    meter: str
    sequence: int
    isp_start: int
    topic: str
    payload: bytes
    stored_at: float = 0.0  # when it was signed and stored (the agent's clock)


@dataclass(frozen=True)
class KeptReceipt:
    """The oracle's signed receipt of a reading accepted for its ISP's root, as received (``body``,
    the JSON the oracle signed the values of)."""

    meter: str
    isp_start: int
    sequence: int
    market: int
    body: bytes


class Outbox:
    """The outbox and sequence store in one SQLite file."""

    def __init__(self, path: Path, *, isp_seconds: int = 900, horizon_s: int = DEFAULT_HORIZON_S,
                 skew_s: int = DEFAULT_SKEW_S, receipts_keep_s: int = DEFAULT_RECEIPTS_KEEP_S) -> None:
        self.path = path
        self.receipts_keep_s = receipts_keep_s
        self.isp_seconds = isp_seconds
        self.horizon_s = horizon_s
        self.skew_s = skew_s
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise OutboxError(f"{path} was written by a newer agent (schema {version}); upgrade the agent")
            self._db.executescript(_SCHEMA)
            if version == 1:
                self._db.execute(_MIGRATE_1)
            columns = {str(r[1]) for r in self._db.execute("PRAGMA table_info(quarantine)").fetchall()}
            if "payload" not in columns:  # made by schema 2 (schema 1 had no quarantine: made just now)
                self._db.execute(_MIGRATE_2)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"cannot open the outbox {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def last_sequence(self, meter: str) -> int:
        """The last sequence number signed for a meter (0 before its first reading)."""
        with self._lock:
            row = self._db.execute("SELECT last_sequence FROM meter_state WHERE meter = ?", (meter,)).fetchone()
        return int(row[0]) if row else 0

    def last_isp_start(self, meter: str) -> int | None:
        """The last ISP signed for a meter, if any."""
        with self._lock:
            row = self._db.execute("SELECT last_isp_start FROM meter_state WHERE meter = ?", (meter,)).fetchone()
        return int(row[0]) if row else None

    def latest_signable(self, now: float) -> int:
        """The latest ISP start that may be signed at ``now`` (the ISP has ended, give or take the skew)."""
        return int(now) - self.isp_seconds + self.skew_s

    def append(self, meter: str, isp_start: int, sign: Callable[[int], SignedReading], *,
               now: float | None = None) -> SignedReading | None:
        """Take the meter's next sequence number, sign with it, and store: all in one transaction.

        ``sign(sequence)`` returns the signed reading. Returns None (and stores nothing) when the
        ISP was signed before, is not after the last one signed (that is not in the future), or
        lies outside ``[now - horizon, now - ISP + skew]`` (then it is quarantined). ``now`` is
        the agent's clock (the system clock by default).
        """
        now = time.time() if now is None else now
        latest = self.latest_signable(now)
        if not int(now) - self.horizon_s <= isp_start <= latest:
            reason = (f"ISP {isp_start} is outside [{int(now) - self.horizon_s}, {latest}] at clock {int(now)}: "
                      "the clock or the meter's data is wrong")
            self.quarantine(meter, isp_start, now, reason)
            return None
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT last_sequence, last_isp_start FROM meter_state WHERE meter = ?", (meter,)
                ).fetchone()
                last_sequence, last_isp = (int(row[0]), int(row[1])) if row else (0, None)
                signed_before = self._db.execute(
                    "SELECT 1 FROM signed_isp WHERE meter = ? AND isp_start = ?", (meter, isp_start)
                ).fetchone()
                # a last ISP in the future was signed while the clock was ahead: it orders nothing
                if signed_before or (last_isp is not None and isp_start <= last_isp <= latest):
                    self._db.execute("ROLLBACK")
                    log.warning("ISP %d of meter %s was signed before or is not after the last one signed (%s); skipped",
                                isp_start, meter, last_isp)
                    return None
                sequence = last_sequence + 1
                signed = sign(sequence)
                reading = signed.reading
                if (reading.meter, reading.sequence, reading.isp_start) != (meter, sequence, isp_start):
                    raise OutboxError("the signed reading does not carry the meter, sequence and ISP asked for")
                self._db.execute(
                    "INSERT INTO outbox (meter, sequence, isp_start, topic, payload, stored_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (meter, sequence, isp_start, readings_topic(meter), signed.to_json(), now),
                )
                self._db.execute(
                    "INSERT INTO meter_state (meter, last_sequence, last_isp_start) VALUES (?, ?, ?) "
                    "ON CONFLICT (meter) DO UPDATE SET last_sequence = excluded.last_sequence, "
                    "last_isp_start = excluded.last_isp_start",
                    (meter, sequence, isp_start),
                )
                self._db.execute("INSERT INTO signed_isp (meter, isp_start) VALUES (?, ?)", (meter, isp_start))
                # ISPs older than the horizon can no longer be signed: their record is not needed
                self._db.execute("DELETE FROM signed_isp WHERE meter = ? AND isp_start < ?",
                                 (meter, int(now) - self.horizon_s))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise
        log.debug("stored reading %d of meter %s (ISP %d)", sequence, meter, isp_start)
        return signed

    def quarantine(self, meter: str, isp_start: int, now: float, reason: str) -> None:
        """Keep a refused ISP aside, with why (an operator reads the ``quarantine`` table)."""
        log.error("reading of meter %s not signed: %s", meter, reason)
        with self._lock:
            self._db.execute("INSERT INTO quarantine (meter, isp_start, clock, reason) VALUES (?, ?, ?, ?)",
                             (meter, isp_start, now, reason))

    def quarantine_row(self, row: OutboxRow, reason: str, now: float) -> None:
        """Move a signed reading the oracle will never take out of the sending order, into the
        quarantine with why and its payload (still the meter's signed word: a settlement can bring
        it without a root); one transaction, so it is neither lost nor sent again."""
        log.error("reading %d of meter %s (ISP %d) quarantined: %s", row.sequence, row.meter, row.isp_start, reason)
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("INSERT INTO quarantine (meter, isp_start, clock, reason, payload) VALUES (?, ?, ?, ?, ?)",
                                 (row.meter, row.isp_start, now, reason, row.payload))
                self._db.execute("DELETE FROM outbox WHERE id = ?", (row.id,))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def quarantined(self) -> list[tuple[str, int, str]]:
        """The quarantined ISPs, oldest first: (meter, ISP start, reason)."""
        with self._lock:
            rows = self._db.execute("SELECT meter, isp_start, reason FROM quarantine ORDER BY id").fetchall()
        return [(str(r[0]), int(r[1]), str(r[2])) for r in rows]

    def pending(self, *, after_id: int = 0, limit: int = 100) -> list[OutboxRow]:
        """Rows still waiting for a PUBACK, oldest first, with ids above ``after_id``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, meter, sequence, isp_start, topic, payload, stored_at FROM outbox WHERE id > ? ORDER BY id "
                "LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [OutboxRow(int(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4]), bytes(r[5]), float(r[6])) for r in rows]

    def get(self, row_id: int) -> OutboxRow | None:
        """A stored row by id, or None once it is gone."""
        with self._lock:
            r = self._db.execute("SELECT id, meter, sequence, isp_start, topic, payload, stored_at FROM outbox "
                                 "WHERE id = ?", (row_id,)).fetchone()
        return OutboxRow(int(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4]), bytes(r[5]), float(r[6])) if r else None

    def find(self, meter: str, sequence: int) -> OutboxRow | None:
        """The stored row of a meter's reading by sequence number (the address in any case), or None."""
        with self._lock:
            r = self._db.execute(
                "SELECT id, meter, sequence, isp_start, topic, payload, stored_at FROM outbox "
                "WHERE lower(meter) = ? AND sequence = ?",
                (meter.lower(), sequence),
            ).fetchone()
        return OutboxRow(int(r[0]), str(r[1]), int(r[2]), int(r[3]), str(r[4]), bytes(r[5]), float(r[6])) if r else None

    def count(self) -> int:
        """How many readings wait for the broker."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def delete(self, row_id: int) -> None:
        """Forget a row: it was acknowledged."""
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))

    def receipted(self, row: OutboxRow, receipt: KeptReceipt | None, *, now: float | None = None) -> None:
        """The oracle's receipt for ``row`` came: the row goes and, when the receipt promises the
        reading is in its ISP's root (signed, "accepted"), the receipt is kept, in one transaction
        (a crash between the two must not lose the only proof of the promise). Receipts older than
        ``receipts_keep_s`` are pruned on the way."""
        now = time.time() if now is None else now
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if receipt is not None:
                    self._db.execute(
                        "INSERT OR REPLACE INTO receipts (meter, isp_start, sequence, market, body, received_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (receipt.meter.lower(), receipt.isp_start, receipt.sequence, receipt.market, receipt.body, now))
                self._db.execute("DELETE FROM outbox WHERE id = ?", (row.id,))
                self._db.execute("DELETE FROM receipts WHERE isp_start < ?", (int(now) - self.receipts_keep_s,))
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def receipts(self, *, meter: str | None = None) -> list[KeptReceipt]:
        """The kept signed receipts (what an omission claim is filed with), oldest ISP first."""
        query = "SELECT meter, isp_start, sequence, market, body FROM receipts"
        args: tuple[str, ...] = ()
        if meter is not None:
            query, args = query + " WHERE meter = ?", (meter.lower(),)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY isp_start, meter", args).fetchall()
        return [KeptReceipt(str(r[0]), int(r[1]), int(r[2]), int(r[3]), bytes(r[4])) for r in rows]
