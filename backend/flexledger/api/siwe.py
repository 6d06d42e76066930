"""Sign-In with Ethereum (EIP-4361): the message, parsed and written strictly by the spec's ABNF,
and the relying party's checks of a signed one.

Written here rather than taken from PyPI: the ``siwe`` packages there pin web3 < 8. The tests hold
this module to the npm ``siwe`` package both ways (tests/backend/api/siwe.mjs).

The message, line by line (``[...]`` optional, LF endings, no trailing LF)::

    [scheme "://"] domain " wants you to sign in with your Ethereum account:"
    address                       (EIP-55 checksummed)
    (empty)
    [statement                    (no LF; RFC 3986 reserved / unreserved characters and spaces)
    (empty)] when a statement is given; else one more empty line
    "URI: " uri
    "Version: 1"
    "Chain ID: " digits
    "Nonce: " at least 8 letters or digits
    "Issued At: " RFC 3339 date-time
    ["Expiration Time: " date-time]
    ["Not Before: " date-time]
    ["Request ID: " pchars]
    ["Resources:" then one "- " uri line each]

The checks (``check_message``) raise a :class:`SiweError` whose ``reason`` names the failed rule,
so that the API answers 401 with it. The nonce and the signature are checked by the caller's
callables: the nonce store is SQL (single use) and a contract wallet is asked on chain (ERC-1271).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from eth_utils import is_checksum_address, keccak

from flexledger.errors import FlexledgerError

HEADER_SUFFIX = " wants you to sign in with your Ethereum account:"
VERSION = "1"

# RFC 3986 character classes, as the spec's ABNF draws them
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# authority = [ userinfo "@" ] host [ ":" port ]; host a reg-name, IPv4 or an IP literal in brackets
_AUTHORITY = re.compile(
    rf"(?:(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*@)?"
    rf"(?:\[[0-9A-Fa-f:.vV{_UNRESERVED}{_SUB_DELIMS}]+\]|(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})+)"
    r"(?::[0-9]*)?")
_URI_CHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:/?#\[\]@]|{_PCT})"
_URI = re.compile(rf"[A-Za-z][A-Za-z0-9+\-.]*:{_URI_CHAR}*")
_STATEMENT = re.compile(rf"[{_UNRESERVED}{_SUB_DELIMS}:/?#\[\]@ ]*")
_NONCE = re.compile(r"[A-Za-z0-9]{8,}")
_CHAIN_ID = re.compile(r"[0-9]+")
_REQUEST_ID = re.compile(rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})*")
# RFC 3339 date-time ("T" and "Z" are case-insensitive in its ABNF)
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?(?:[Zz]|[+-][0-9]{2}:[0-9]{2})")


class SiweError(FlexledgerError):
    """A sign-in message refused; ``reason`` names the rule it broke (the API answers 401 with it)."""

    reason = "malformed"
    hint = "ask POST /v1/auth/nonce for a fresh nonce and sign a new EIP-4361 message"

    def __init__(self, message: str, *, reason: str | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        if reason is not None:
            self.reason = reason


def parse_time(text: str) -> dt.datetime:
    """An RFC 3339 date-time, strictly (SiweError otherwise), as an aware datetime."""
    if not _DATE_TIME.fullmatch(text):
        raise SiweError(f"{text!r} is not an RFC 3339 date-time")
    try:
        return dt.datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError as exc:  # 2024-02-30 and the like match the pattern
        raise SiweError(f"{text!r} is not a valid date-time: {exc}") from None


def format_time(when: dt.datetime) -> str:
    """RFC 3339 in UTC with milliseconds, as JavaScript's ``toISOString`` writes it."""
    return when.astimezone(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class SiweMessage:
    """One EIP-4361 message, field for field; times kept as written (the signature covers the text)."""

    domain: str
    address: str
    uri: str
    chain_id: int
    nonce: str
    issued_at: str
    version: str = VERSION
    scheme: str | None = None
    statement: str | None = None
    expiration_time: str | None = None
    not_before: str | None = None
    request_id: str | None = None
    resources: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Every field by its ABNF rule (SiweError names the first that fails)."""
        checks: list[tuple[str, str | None, re.Pattern[str]]] = [
            ("scheme", self.scheme, _SCHEME), ("domain", self.domain, _AUTHORITY), ("URI", self.uri, _URI),
            ("nonce", self.nonce, _NONCE), ("statement", self.statement, _STATEMENT),
            ("request ID", self.request_id, _REQUEST_ID),
            *(("resource", r, _URI) for r in self.resources),
        ]
        for name, value, pattern in checks:
            if value is not None and not pattern.fullmatch(value):
                raise SiweError(f"the {name} {value!r} does not follow EIP-4361's grammar")
        if self.statement == "":
            raise SiweError("an empty statement cannot be told from none: leave it out")
        if not is_checksum_address(self.address):
            raise SiweError(f"the address {self.address!r} is not EIP-55 checksummed")
        if self.version != VERSION:
            raise SiweError(f"version {self.version!r}: only version 1 exists")
        if self.chain_id < 0:
            raise SiweError("a chain id is a non-negative integer")
        for stamp in (self.issued_at, self.expiration_time, self.not_before):
            if stamp is not None:
                parse_time(stamp)

    def to_text(self) -> str:
        """The message as the wallet shows and signs it."""
        head = f"{self.scheme}://{self.domain}" if self.scheme else self.domain
        lines = [head + HEADER_SUFFIX, self.address, ""]
        if self.statement is not None:
            lines += [self.statement, ""]
        else:
            lines += [""]
        lines += [f"URI: {self.uri}", f"Version: {self.version}", f"Chain ID: {self.chain_id}",
                  f"Nonce: {self.nonce}", f"Issued At: {self.issued_at}"]
        if self.expiration_time is not None:
            lines.append(f"Expiration Time: {self.expiration_time}")
        if self.not_before is not None:
            lines.append(f"Not Before: {self.not_before}")
        if self.request_id is not None:
            lines.append(f"Request ID: {self.request_id}")
        if self.resources:
            lines += ["Resources:", *(f"- {r}" for r in self.resources)]
        return "\n".join(lines)

    @classmethod
    def parse(cls, text: str) -> SiweMessage:
        """The message ``text`` states; SiweError for anything off the grammar (a CR, a trailing
        line, a field out of order)."""
        if "\r" in text:
            raise SiweError("an EIP-4361 message ends its lines with LF alone")
        lines = text.split("\n")
        at = _Lines(lines)
        header = at.take("the header")
        if not header.endswith(HEADER_SUFFIX):
            raise SiweError("the first line must end with" + HEADER_SUFFIX)
        origin = header.removesuffix(HEADER_SUFFIX)
        scheme, _, domain = origin.rpartition("://")
        address = at.take("the address")
        at.blank()
        statement: str | None = None
        if at.peek() != "":
            statement = at.take("the statement")
        at.blank()
        uri = at.field("URI")
        version = at.field("Version")
        chain_text = at.field("Chain ID")
        if not _CHAIN_ID.fullmatch(chain_text):
            raise SiweError(f"the chain id {chain_text!r} is not a decimal number")
        nonce = at.field("Nonce")
        issued_at = at.field("Issued At")
        expiration = at.optional("Expiration Time")
        not_before = at.optional("Not Before")
        request_id = at.optional("Request ID")
        resources: list[str] = []
        if at.peek() == "Resources:":
            at.take("Resources")
            while at.peek() is not None and str(at.peek()).startswith("- "):
                resources.append(at.take("a resource")[2:])
        if at.peek() is not None:
            raise SiweError(f"unexpected line {at.peek()!r} after the message's fields")
        return cls(domain=domain, address=address, uri=uri, chain_id=int(chain_text), nonce=nonce,
                   issued_at=issued_at, version=version, scheme=scheme or None, statement=statement,
                   expiration_time=expiration, not_before=not_before, request_id=request_id,
                   resources=tuple(resources))


class _Lines:
    """The parser's cursor over the message's lines."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.at = 0

    def peek(self) -> str | None:
        return self.lines[self.at] if self.at < len(self.lines) else None

    def take(self, what: str) -> str:
        line = self.peek()
        if line is None:
            raise SiweError(f"the message ends before {what}")
        self.at += 1
        return line

    def blank(self) -> None:
        if self.take("an empty line") != "":
            raise SiweError(f"line {self.at} must be empty")

    def field(self, name: str) -> str:
        line = self.take(f"the {name} line")
        if not line.startswith(f"{name}: "):
            raise SiweError(f"line {self.at} must be {name!r}, not {line!r}")
        return line[len(name) + 2:]

    def optional(self, name: str) -> str | None:
        line = self.peek()
        return self.field(name) if line is not None and line.startswith(f"{name}: ") else None


def message_hash(text: str) -> bytes:
    """The EIP-191 (personal_sign) hash of the message text: what an EOA signs and what an
    ERC-1271 wallet is asked about."""
    body = text.encode()
    return bytes(keccak(b"\x19Ethereum Signed Message:\n" + str(len(body)).encode() + body))


@dataclass(frozen=True)
class Expected:
    """What the server binds a sign-in to: its domain (and scheme when given), the URI, the chain."""

    domain: str
    uri: str
    chain_id: int
    scheme: str | None = None
    clock_skew: dt.timedelta = dt.timedelta(seconds=60)  # a wallet's clock a little ahead of ours


def check_message(
    text: str,
    signature: bytes,
    expected: Expected,
    *,
    now: dt.datetime,
    signed_by: Callable[[str, bytes, bytes], bool],
    consume_nonce: Callable[[str, dt.datetime], bool],
) -> SiweMessage:
    """The signed-in message, after every check; SiweError with the reason of the first that fails.

    ``signed_by(address, hash, signature)`` says whether the address signed the EIP-191 hash (an
    EOA's recovery, or a contract wallet's ERC-1271 answer). ``consume_nonce(nonce, now)`` uses the
    server's nonce up and says whether it was issued, unexpired and unused: it runs last, so a
    refused message does not burn a nonce its owner could still use.
    """
    message = SiweMessage.parse(text)
    if message.domain != expected.domain or (expected.scheme is not None and message.scheme not in (None, expected.scheme)):
        raise SiweError(f"the message is for {message.domain!r}, this server is {expected.domain!r}", reason="domain",
                        hint="sign a message whose domain is this server's (phishing sites ask for other domains)")
    if message.uri != expected.uri:
        raise SiweError(f"the message's URI {message.uri!r} is not this server's {expected.uri!r}", reason="uri")
    if message.chain_id != expected.chain_id:
        raise SiweError(f"the message is for chain {message.chain_id}, this market runs on chain {expected.chain_id}",
                        reason="chain_id")
    if parse_time(message.issued_at) > now + expected.clock_skew:
        raise SiweError(f"the message was issued at {message.issued_at}, in the future", reason="not_yet_valid")
    if message.expiration_time is not None and parse_time(message.expiration_time) <= now:
        raise SiweError(f"the message expired at {message.expiration_time}", reason="expired")
    if message.not_before is not None and parse_time(message.not_before) > now:
        raise SiweError(f"the message is not valid before {message.not_before}", reason="not_yet_valid",
                        hint="wait until its Not Before time, or sign one without it")
    if not signed_by(message.address, message_hash(text), signature):
        raise SiweError(f"the signature is not {message.address}'s over this message", reason="signature",
                        hint="sign the exact message text with the account it names (personal_sign)")
    if not consume_nonce(message.nonce, now):
        raise SiweError(f"the nonce {message.nonce} was not issued by this server, has expired or was used",
                        reason="nonce")
    return message
