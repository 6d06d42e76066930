"""Who signs the meter's readings: a key in the agent (keystore, development key) or an external signer.

Every signer answers the same :class:`Signer` interface: its meter address, and ``sign`` turning a
:class:`~flexledger_edge.reading.Reading` into a :class:`~flexledger_edge.reading.SignedReading`
(the 65-byte ``r || s || v`` signature of the reading's EIP-712 digest).

:class:`SocketSigner` asks a signer process over a Unix socket, so the key need not be in the
agent's process or files (a signer daemon run by the metering operator as another OS user,
``flexledger-edge signer serve``; a bridge to a secure element or an HSM speaking the same
protocol). The agent trusts none of its answers: each signature must recover to the meter address
the configuration names, or it is refused and the reading waits.

The protocol: one request per line, one answer per line, UTF-8 JSON objects, at most
:data:`MAX_LINE` bytes each; a connection may carry several requests in turn::

    -> {"id": 1, "method": "sign_reading",
        "domain": {"name": "flexledger MeterOracle", "version": "1", "chainId": 31337,
                   "verifyingContract": "0x5FbD..."},
        "message": {"meter": "0xAbC...", "ispStart": 1700000100, "sequence": 12,
                    "importWh": 240, "exportWh": 0}}
    <- {"id": 1, "signature": "0x<65 bytes: r || s || v, v in {27, 28}>"}
    <- {"id": 1, "error": {"code": "equivocation", "message": "..."}}

    -> {"id": 2, "method": "address"}
    <- {"id": 2, "address": "0xAbC..."}

An error about no request in particular (a line that is not JSON or too long, a connection from a
user the signer does not allow) carries ``"id": null``.

``domain`` and ``message`` are the EIP-712 typed data's fields (``eth_signTypedData_v4`` with
:data:`~flexledger_edge.reading.READING_TYPES`); the signer computes the digest from them itself,
never takes one on trust. Error codes in :data:`FINAL_REFUSALS` are final for that reading.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import socket
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from .reading import MeterSigner, OracleDomain, Reading, ReadingError, SignedReading, recover_signer

if TYPE_CHECKING:
    from .config import MeterKeyConfig

log = logging.getLogger(__name__)

MAX_LINE = 4096
# the signer keeps a different reading of that ISP (equivocation), or the ISP is too old to sign:
# asking again cannot help, so the agent quarantines the reading instead of retrying it for ever
FINAL_REFUSALS = frozenset({"equivocation", "too_old"})


class SignerError(Exception):
    """A reading could not be signed now; it stays unsigned and is tried again."""


class SignerUnavailableError(SignerError):
    """The external signer cannot be reached (not running, socket missing, no answer in time)."""


class SignerRefusedError(SignerError):
    """The signer answered with an error; ``final`` when asking again for this reading cannot help."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.final = code in FINAL_REFUSALS


class Signer(Protocol):
    """Signs one meter's readings in one MeterOracle domain."""

    domain: OracleDomain

    @property
    def address(self) -> str:
        """The meter's checksummed address: every signature recovers to it."""
        ...

    def sign(self, reading: Reading) -> SignedReading:
        """The reading with the meter's signature; :class:`SignerError` when it cannot be had now."""
        ...

    def sign_new(self, *, isp_start: int, sequence: int, import_wh: int, export_wh: int) -> SignedReading:
        """Build and sign this meter's reading."""
        ...


class SocketSigner:
    """An external signer reached over a Unix socket; checks every signature it is given."""

    def __init__(self, path: Path, address: str, domain: OracleDomain, *, timeout_s: float = 5.0) -> None:
        self.path = path
        self._address = address
        self.domain = domain
        self.timeout_s = timeout_s
        self._next_id = 0

    @property
    def address(self) -> str:
        return self._address

    def sign(self, reading: Reading) -> SignedReading:
        if reading.meter != self._address:
            raise ReadingError(f"reading is for meter {reading.meter}, this signer is {self._address}")
        answer = self.call("sign_reading", domain=self.domain.as_dict(), message=reading.message())
        text = answer.get("signature")
        if not isinstance(text, str) or not text.startswith("0x"):
            raise SignerError(f"the signer at {self.path} answered no signature: {answer!r}")
        try:
            signed = SignedReading(reading, bytes.fromhex(text[2:]))
            signer = recover_signer(signed, self.domain)
        except ValueError as exc:  # ReadingError too: not hex, not 65 bytes, v not 27/28, s out of range
            raise SignerError(f"the signer at {self.path} answered a malformed signature: {exc}") from exc
        if signer != self._address:
            # another key (a misconfigured signer, or someone else's process on the socket): a reading
            # stored with it would be refused by the oracle, or worse, count for another meter
            raise SignerError(f"the signer at {self.path} signed with {signer}, not the meter {self._address}; refused")
        return signed

    def sign_new(self, *, isp_start: int, sequence: int, import_wh: int, export_wh: int) -> SignedReading:
        return self.sign(Reading(self._address, isp_start, sequence, import_wh, export_wh))

    def remote_address(self) -> str:
        """The address the signer says it signs for (a health check; signatures are checked anyway)."""
        answer = self.call("address")
        address = answer.get("address")
        if not isinstance(address, str):
            raise SignerError(f"the signer at {self.path} answered no address: {answer!r}")
        return address

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One request and its answer; an error answer raises :class:`SignerRefusedError`."""
        self._next_id += 1
        request = {"id": self._next_id, "method": method, **params}
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout_s)
                sock.connect(str(self.path))
                # a signer that refuses the connection answers and closes before it reads: its
                # answer may still wait in the socket, and says more than the broken pipe
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    sock.sendall(json.dumps(request, separators=(",", ":")).encode() + b"\n")
                with sock.makefile("rb") as stream:
                    line = read_line(stream)
        except (OSError, TimeoutError) as exc:
            raise SignerUnavailableError(f"the signer at {self.path} cannot be reached: {exc}") from exc
        if line is None:
            raise SignerUnavailableError(f"the signer at {self.path} closed the connection without an answer")
        try:
            answer = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SignerError(f"the signer at {self.path} answered no JSON: {exc}") from exc
        # an error about no request in particular (a refused connection, a line not read) has id null
        if not isinstance(answer, dict) or answer.get("id") not in (request["id"], *((None,) if "error" in answer else ())):
            raise SignerError(f"the signer at {self.path} answered another request: {answer!r}")
        error = answer.get("error")
        if error is not None:
            if not isinstance(error, dict):
                raise SignerError(f"the signer at {self.path} answered a malformed error: {error!r}")
            raise SignerRefusedError(str(error.get("code", "unknown")), str(error.get("message", "")))
        return answer


def read_line(stream: IO[bytes] | io.BufferedIOBase) -> bytes | None:
    """One newline-terminated line (without it); None at the end of the stream.

    A line longer than :data:`MAX_LINE` bytes, or cut off by the end of the stream, is an error:
    neither side reads without bound.
    """
    line = stream.readline(MAX_LINE + 1)
    if not line:
        return None
    if not line.endswith(b"\n"):
        raise OSError(f"a line longer than {MAX_LINE} bytes" if len(line) > MAX_LINE else "a line cut off")
    return line[:-1]


def build_signer(meter: MeterKeyConfig, domain: OracleDomain) -> Signer:
    """The signer a ``[meter]`` configuration names."""
    if meter.signer_socket is not None:
        assert meter.address is not None
        return SocketSigner(meter.signer_socket, meter.address, domain, timeout_s=meter.timeout_s)
    return MeterSigner(meter.load_private_key(), domain)
