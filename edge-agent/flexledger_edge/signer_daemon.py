"""The reference external signer: a meter's key behind a Unix socket, run by whoever must hold it.

``flexledger-edge signer serve --keystore meter-key.json --socket /run/flexledger/meter.sock
--chain-id ID --oracle 0xMETERORACLE`` answers the protocol of :mod:`flexledger_edge.signer`. It is
meant to run as another OS user than the agent (the metering operator's, or the DSO's): the agent's
user may connect to the socket and ask for signatures, but cannot read the keystore, its password
(the daemon's environment) or the daemon's memory.

It signs only what a meter may sign:

- in the one MeterOracle domain it was started for, and only for its own key's meter;
- an ISP aligned on ``isp_seconds`` that has ended by its own clock (no reading signed ahead of
  time), and not older than ``horizon_s``;
- only to the users it allows, when started with ``--allow-user`` (checked with ``SO_PEERCRED``,
  beyond the socket's permissions);
- **one reading per ISP**: it commits the (ISP -> digest) it signs to its journal (SQLite,
  ``synchronous=FULL``) before answering; the same reading asked again is signed again (an answer
  lost on the way), a different one for that ISP is refused with ``equivocation``. A gateway's
  owner therefore cannot make the meter equivocate without access to the signer's host.

The journal is kept for good (a row per ISP: about 35,000 a year); losing it loses that protection
for the ISPs it held.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import socketserver
import sqlite3
import stat
import struct
import threading
import time
from pathlib import Path
from typing import Any

from .reading import MeterSigner, OracleDomain, Reading, ReadingError
from .signer import read_line

log = logging.getLogger(__name__)

DEFAULT_HORIZON_S = 7 * 86_400
DEFAULT_SKEW_S = 120
CONNECTION_TIMEOUT_S = 30.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS signed (
    meter TEXT NOT NULL,
    isp_start INTEGER NOT NULL,
    digest BLOB NOT NULL,
    sequence INTEGER NOT NULL,
    signed_at REAL NOT NULL,
    PRIMARY KEY (meter, isp_start)
);
CREATE TABLE IF NOT EXISTS refused (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    meter TEXT NOT NULL,
    isp_start INTEGER NOT NULL,
    digest BLOB NOT NULL,
    message TEXT NOT NULL,
    refused_at REAL NOT NULL
);
"""


class RefusalError(Exception):
    """A request the signer will not sign; ``code`` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class ReadingJournal:
    """What the signer signed, one digest per (meter, ISP), and what it refused as equivocation."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def claim(self, reading: Reading, digest: bytes, now: float) -> None:
        """Record that ``digest`` is this ISP's reading; :class:`RefusalError` if another one is."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT digest, sequence FROM signed WHERE meter = ? AND isp_start = ?",
                                       (reading.meter, reading.isp_start)).fetchone()
                if row is None:
                    self._db.execute(
                        "INSERT INTO signed (meter, isp_start, digest, sequence, signed_at) VALUES (?, ?, ?, ?, ?)",
                        (reading.meter, reading.isp_start, digest, reading.sequence, now),
                    )
                elif bytes(row[0]) != digest:
                    message = (f"ISP {reading.isp_start} was signed before with other values (sequence {row[1]}, "
                               f"digest 0x{bytes(row[0]).hex()}); a meter signs one reading per ISP")
                    self._db.execute(
                        "INSERT INTO refused (meter, isp_start, digest, message, refused_at) VALUES (?, ?, ?, ?, ?)",
                        (reading.meter, reading.isp_start, digest, message, now),
                    )
                    self._db.execute("COMMIT")
                    raise RefusalError("equivocation", message)
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise

    def signed_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM signed").fetchone()[0])

    def refused(self) -> list[tuple[int, str]]:
        """The equivocations refused, oldest first: (ISP start, message)."""
        with self._lock:
            rows = self._db.execute("SELECT isp_start, message FROM refused ORDER BY id").fetchall()
        return [(int(r[0]), str(r[1])) for r in rows]


class ReadingSigner:
    """The signing rules, apart from the socket: one key, one domain, one reading per ISP."""

    def __init__(self, private_key: bytes, domain: OracleDomain, journal: ReadingJournal, *,
                 isp_seconds: int = 900, horizon_s: int = DEFAULT_HORIZON_S, skew_s: int = DEFAULT_SKEW_S,
                 clock: Any = time.time) -> None:
        self._key = MeterSigner(private_key, domain)
        self.domain = domain
        self.journal = journal
        self.isp_seconds = isp_seconds
        self.horizon_s = horizon_s
        self.skew_s = skew_s
        self.clock = clock

    @property
    def address(self) -> str:
        return self._key.address

    def answer(self, request: Any) -> dict[str, Any]:
        """The answer to one decoded request (an ``error`` object when refused)."""
        request_id = request.get("id") if isinstance(request, dict) else None
        try:
            if not isinstance(request, dict):
                raise RefusalError("bad_request", "a request is a JSON object")
            method = request.get("method")
            if method == "address":
                return {"id": request_id, "address": self.address}
            if method == "sign_reading":
                return {"id": request_id, "signature": "0x" + self.sign_reading(request).hex()}
            raise RefusalError("unknown_method", f"unknown method {method!r} (sign_reading, address)")
        except RefusalError as exc:
            return {"id": request_id, "error": {"code": exc.code, "message": str(exc)}}

    def sign_reading(self, request: dict[str, Any]) -> bytes:
        domain, message = request.get("domain"), request.get("message")
        if not isinstance(domain, dict) or not isinstance(message, dict):
            raise RefusalError("bad_request", "sign_reading needs the typed data's domain and message objects")
        if not _same_domain(domain, self.domain):
            raise RefusalError("wrong_domain", f"this signer signs in {self.domain.as_dict()} only, not {domain}")
        fields = {"meter", "ispStart", "sequence", "importWh", "exportWh"}
        if set(message) != fields:
            raise RefusalError("bad_request", f"message fields must be {sorted(fields)}, not {sorted(message)}")
        try:
            reading = Reading(message["meter"], message["ispStart"], message["sequence"],
                              message["importWh"], message["exportWh"])
        except ReadingError as exc:
            raise RefusalError("bad_request", str(exc)) from exc
        if reading.meter != self.address:
            raise RefusalError("wrong_meter", f"this signer holds the key of {self.address}, not {reading.meter}")
        now = self.clock()
        if reading.isp_start % self.isp_seconds:
            raise RefusalError("bad_request", f"ISP {reading.isp_start} does not start on a {self.isp_seconds} s boundary")
        if reading.isp_start + self.isp_seconds > now + self.skew_s:
            # not ended by this host's clock: a reading signed ahead of time would take the ISP's place
            raise RefusalError("not_ended", f"ISP {reading.isp_start} has not ended at {int(now)} (this signer's clock)")
        if reading.isp_start < now - self.horizon_s:
            raise RefusalError("too_old", f"ISP {reading.isp_start} is older than {self.horizon_s} s")
        self.journal.claim(reading, reading.digest(self.domain), now)  # committed before anyone sees a signature
        return self._key.sign(reading).signature


def _same_domain(asked: dict[str, Any], mine: OracleDomain) -> bool:
    """The typed data's domain is this signer's (the contract's address in any case)."""
    expected = mine.as_dict()
    contract = asked.get("verifyingContract")
    return (set(asked) == set(expected) and isinstance(contract, str)
            and contract.lower() == expected["verifyingContract"].lower()
            and all(asked[k] == expected[k] and type(asked[k]) is type(expected[k])
                    for k in ("name", "version", "chainId")))


class _Handler(socketserver.StreamRequestHandler):
    server: SignerServer
    timeout = CONNECTION_TIMEOUT_S

    def handle(self) -> None:
        allowed = self.server.allowed_uids
        if allowed is not None:
            uid = _peer_uid(self.connection)
            if uid not in allowed:
                log.warning("refused a connection from uid %s (allowed: %s)", uid, sorted(allowed))
                self._write({"id": None, "error": {"code": "forbidden", "message": f"uid {uid} may not ask"}})
                return
        while True:
            try:
                line = read_line(self.rfile)
            except OSError as exc:
                log.warning("a client sent a bad line (%s); connection closed", exc)
                self._write({"id": None, "error": {"code": "bad_request", "message": str(exc)}})
                return
            if line is None:
                return
            try:
                request = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                self._write({"id": None, "error": {"code": "bad_request", "message": f"not JSON: {exc}"}})
                continue
            answer = self.server.rules.answer(request)
            if "error" in answer:
                log.warning("refused %s: %s", request.get("method") if isinstance(request, dict) else request,
                            answer["error"]["message"])
            self._write(answer)

    def _write(self, answer: dict[str, Any]) -> None:
        self.wfile.write(json.dumps(answer, separators=(",", ":")).encode() + b"\n")
        self.wfile.flush()


class SignerServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """The socket: created with ``mode`` (0660 by default: its owner and group may connect)."""

    daemon_threads = True

    def __init__(self, path: Path, rules: ReadingSigner, *, mode: int = 0o660, group: int | None = None,
                 allowed_uids: frozenset[int] | None = None) -> None:
        self.rules = rules
        # beyond the socket's mode: only these users' processes are answered (SO_PEERCRED)
        self.allowed_uids = allowed_uids
        self.socket_path = path
        _clear_stale_socket(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # created with no access for others from the first instant, then given its group and mode
        old = os.umask(0o177)
        try:
            super().__init__(str(path), _Handler)
        finally:
            os.umask(old)
        if group is not None:
            os.chown(path, -1, group)
        os.chmod(path, mode)

    def server_close(self) -> None:
        super().server_close()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()


def _peer_uid(connection: socket.socket) -> int | None:
    """The user id of the process at the other end (Linux ``SO_PEERCRED``), or None if unknown."""
    try:
        creds = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, AttributeError):
        return None
    _pid, uid, _gid = struct.unpack("3i", creds)
    return int(uid)


def _clear_stale_socket(path: Path) -> None:
    """Remove a socket left by a signer that died; refuse to replace a live one or a plain file."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise OSError(f"{path} exists and is not a socket; refusing to replace it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            path.unlink()
            return
    raise OSError(f"another signer is serving on {path}")


def serve(server: SignerServer, stop: threading.Event) -> None:
    """Answer until ``stop`` is set."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        thread.join()
        server.server_close()
