"""Measured ISPs waiting for the meter's signature, kept on disk until the signer gives it.

An external signer can be down (restarting, its host unreachable, a socket not yet created). The
ISP's energy was measured once and cannot be measured again, so it is committed here first and
signed afterwards, oldest first: a reading is signed late, never lost. Readings are signed in ISP
order (the outbox refuses an ISP that is not after the last one signed), so the first one that
cannot be signed holds back the ones after it until the signer answers again.

A refusal that asking again cannot cure (the signer keeps another reading of that ISP, or the ISP
is too old for it), or energy no reading can carry, moves the ISP to the outbox's ``quarantine`` table with the reason; so does
the outbox's own clock rule once an ISP is older than its horizon (seven days).

The file holds household consumption: it is created readable by its owner only.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from pathlib import Path

from .metering import IspEnergy
from .outbox import Outbox, OutboxError
from .reading import ReadingError, SignedReading
from .signer import Signer, SignerError, SignerRefusedError

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS unsigned (
    meter TEXT NOT NULL,
    isp_start INTEGER NOT NULL,
    import_wh TEXT NOT NULL,  -- decimal text: a uint64 does not fit SQLite's signed INTEGER
    export_wh TEXT NOT NULL,
    measured_at REAL NOT NULL,
    PRIMARY KEY (meter, isp_start)
);
"""


class UnsignedQueue:
    """One SQLite file: each meter's measured ISPs not yet signed and stored in the outbox."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # private from creation (SQLite gives its WAL files the database file's mode)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"cannot open {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> UnsignedQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, meter: str, energy: IspEnergy, now: float) -> None:
        """Keep a measured ISP until it is signed (a second measurement of one ISP is ignored)."""
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO unsigned (meter, isp_start, import_wh, export_wh, measured_at) "
                "VALUES (?, ?, ?, ?, ?)", (meter, energy.isp_start, str(energy.import_wh), str(energy.export_wh), now),
            )

    def waiting(self, meter: str) -> list[IspEnergy]:
        """The meter's ISPs waiting for a signature, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT isp_start, import_wh, export_wh FROM unsigned WHERE meter = ? ORDER BY isp_start", (meter,)
            ).fetchall()
        return [IspEnergy(int(r[0]), int(r[1]), int(r[2])) for r in rows]

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM unsigned").fetchone()[0])

    def remove(self, meter: str, isp_start: int) -> None:
        """Forget an ISP: it is signed and in the outbox, or was quarantined there."""
        with self._lock:
            self._db.execute("DELETE FROM unsigned WHERE meter = ? AND isp_start = ?", (meter, isp_start))


def sign_waiting(queue: UnsignedQueue, outbox: Outbox, signer: Signer, now: float) -> list[SignedReading]:
    """Sign and store the meter's waiting ISPs, oldest first, until the signer fails; those signed.

    Each one leaves the queue only after the outbox committed it (or refused it for good): a crash
    in between signs nothing twice, as the outbox skips an ISP it already holds.
    """
    meter = signer.address
    done: list[SignedReading] = []
    for energy in queue.waiting(meter):
        def sign(sequence: int, e: IspEnergy = energy) -> SignedReading:
            return signer.sign_new(isp_start=e.isp_start, sequence=sequence, import_wh=e.import_wh,
                                   export_wh=e.export_wh)

        try:
            signed = outbox.append(meter, energy.isp_start, sign, now=now)
        except SignerRefusedError as exc:
            if not exc.final:
                log.error("the signer refused ISP %d: %s; %d reading(s) wait for it", energy.isp_start, exc,
                          queue.count())
                break
            outbox.quarantine(meter, energy.isp_start, now, f"the signer refused to sign it: {exc}")
        except ReadingError as exc:
            # energy no Reading can carry (beyond uint64): kept aside, never blocking the ISPs after it
            outbox.quarantine(meter, energy.isp_start, now, f"not a valid reading: {exc}")
        except SignerError as exc:
            log.warning("ISP %d not signed yet: %s; %d reading(s) wait for the signer", energy.isp_start, exc,
                        queue.count())
            break
        else:
            if signed is not None:
                done.append(signed)
        queue.remove(meter, energy.isp_start)
    return done
