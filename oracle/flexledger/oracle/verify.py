"""What the oracle checks before it keeps a reading, and the reasons it refuses one.

In order: the payload is a reading; its signature recovers to the meter it names; the meter
holds a valid METER credential and is the meter of a mapped asset (ACTIVE or SUSPENDED: a
suspended asset still meters, its settlement needs the readings); its ISP is aligned, has ended
(a clock skew allowed) and is not older than the retention; its energies are within what a meter
can measure in one ISP (``max_wh``: far below 2^63, so that nets and baselines stay int64). What
the store then does with it (kept per meter and ISP, a duplicate, a conflicting reading kept as
evidence, a late one) is ``ingest``'s.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from flexledger.chain.bindings import AssetRegistryClient, RoleRegistryClient
from flexledger.identity.eip712 import recover_strict
from flexledger.identity.roles import Role

from .readings import MalformedReadingError, Reading, parse_payload

ASSET_ACTIVE, ASSET_SUSPENDED = 2, 3


class Reason:
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_METER = "unknown_meter"  # no valid METER credential (never had one, revoked or expired)
    UNMAPPED = "unmapped_meter"  # no asset, or its asset is still pending
    NOT_ALIGNED = "not_aligned"
    FUTURE = "future"
    TOO_OLD = "too_old"
    OUT_OF_RANGE = "out_of_range"
    DUPLICATE = "duplicate"  # the same signed values of a meter and ISP again
    CONFLICTING = "conflicting"  # other values signed for a meter and ISP already kept: evidence, in no root
    QUARANTINED = "quarantined"  # could not be stored even alone: kept aside


# 1 TWh in one ISP: no meter measures that much, and twice it is far within int64.
MAX_WH = 10**12


@dataclass
class Verdict:
    reading: Reading | None
    signature: bytes
    reason: str | None  # None: keep it


class ChainMeters:
    """Which meters may report, from the RoleRegistry and the AssetRegistry.

    An answer is kept for ``ttl`` seconds (an ISP by default, so a meter is asked about once per
    ISP at most, not once per reading), and dropped sooner when the registries' events say it
    changed: a METER credential issued or revoked, an asset registered, mapped, suspended or
    reinstated (the events are polled every ``poll`` seconds). What no event announces, a
    credential reaching its expiry, is seen within ``ttl``. ``prefetch`` asks about a batch's
    meters together, ``batch`` of them in one ``AssetRegistry.meterStates`` call.

    The answers are bounded, so that a flood of readings signed by fresh keys cannot grow the
    oracle's memory: at most ``size`` meters that may report (least recently used dropped first)
    and, apart, at most ``refused_size`` that may not, each kept only ``refused_ttl`` seconds.
    Fresh keys therefore only ever push out other refused keys, never a known meter.
    """

    def __init__(self, roles: RoleRegistryClient, assets: AssetRegistryClient, *, ttl: float = 900.0,
                 poll: float = 5.0, batch: int = 500, size: int = 200_000, refused_size: int = 20_000,
                 refused_ttl: float = 60.0) -> None:
        self.roles, self.assets, self.ttl, self.poll, self.batch = roles, assets, ttl, poll, batch
        self.size, self.refused_size, self.refused_ttl = size, refused_size, refused_ttl
        self._cache: OrderedDict[str, tuple[float, str | None]] = OrderedDict()  # meters that may report
        self._refused: OrderedDict[str, tuple[float, str | None]] = OrderedDict()
        self._lock = threading.Lock()
        self._polled_at = float("-inf")
        self._next_block: int | None = None

    def problem(self, meter: str) -> str | None:
        self._refresh()
        now = time.monotonic()
        with self._lock:
            cached = self._fresh(meter, now)
        if cached is not None:
            return cached[1]
        return self._ask([meter])[meter]

    def _fresh(self, meter: str, now: float) -> tuple[float, str | None] | None:
        """The cached answer about ``meter`` while it holds (called with the lock held)."""
        cached = self._cache.get(meter)
        if cached is not None and now - cached[0] < self.ttl:
            self._cache.move_to_end(meter)
            return cached
        cached = self._refused.get(meter)
        if cached is not None and now - cached[0] < self.refused_ttl:
            return cached
        return None

    def prefetch(self, meters: list[str]) -> None:
        """Ask about the meters not known yet (or no longer), ``batch`` to a call."""
        self._refresh()
        now = time.monotonic()
        with self._lock:
            unknown = sorted({m for m in meters if self._fresh(m, now) is None})
        for first in range(0, len(unknown), self.batch):
            self._ask(unknown[first:first + self.batch])

    def _ask(self, meters: list[str]) -> dict[str, str | None]:
        """One ``AssetRegistry.meterStates`` call for many meters: credential and asset status."""
        statuses, credentialed = self.assets.meter_states(meters)
        asked = time.monotonic()
        answers: dict[str, str | None] = {}
        with self._lock:
            for meter, status, valid in zip(meters, statuses, credentialed, strict=True):
                problem = None
                if not valid:
                    problem = Reason.UNKNOWN_METER
                elif status not in (ASSET_ACTIVE, ASSET_SUSPENDED):
                    problem = Reason.UNMAPPED
                answers[meter] = problem
                self._cache.pop(meter, None)
                self._refused.pop(meter, None)
                kept, bound = (self._cache, self.size) if problem is None else (self._refused, self.refused_size)
                kept[meter] = (asked, problem)
                while len(kept) > bound:
                    kept.popitem(last=False)
        return answers

    def cached(self) -> tuple[int, int]:
        """How many meters' answers are held: those that may report, those that may not."""
        with self._lock:
            return len(self._cache), len(self._refused)

    def _refresh(self) -> None:
        """Forget the answers that the registries' events since the last poll may have changed."""
        now = time.monotonic()
        if now - self._polled_at < self.poll:
            return
        self._polled_at = now
        latest = int(self.roles.conn.w3.eth.block_number)
        first, self._next_block = self._next_block, latest + 1
        if first is None or first > latest:
            return
        meter_topic = "0x" + Role.METER.id.hex()
        stale: set[str] = set()
        for name in ("CredentialIssued", "CredentialRevoked"):
            for e in self.roles.events(name, from_block=first, to_block=latest, topics=[None, meter_topic]):
                stale.add(str(e.args["subject"]))
        for e in self.assets.events("AssetRegistered", from_block=first, to_block=latest):
            stale.add(str(e.args["meter"]))
        changed = {int(e.args["assetId"]) for name in ("AssetMapped", "AssetSuspended", "AssetReinstated")
                   for e in self.assets.events(name, from_block=first, to_block=latest)}
        stale |= {str(self.assets.asset(asset_id).meter) for asset_id in changed}  # the asset's meter
        with self._lock:
            for m in stale:
                self._cache.pop(m, None)
                self._refused.pop(m, None)


@dataclass
class Verifier:
    separator: bytes  # the MeterOracle's EIP-712 domain separator
    meters: Callable[[str], str | None]  # a meter's problem, or None
    isp_seconds: int = 900
    skew: int = 60
    retention: int = 7 * 86_400
    max_wh: int = MAX_WH
    prefetch: Callable[[list[str]], None] | None = None  # ask about many meters at once (ChainMeters.prefetch)

    def check(self, payload: bytes, now: int) -> Verdict:
        try:
            reading, signature = parse_payload(payload)
        except MalformedReadingError:
            return Verdict(None, b"", Reason.MALFORMED)
        return self._verdict(reading, signature, now)

    def check_many(self, payloads: list[bytes], now: int) -> list[Verdict]:
        """``check`` for a batch, the meters it names asked about together first."""
        parsed: list[tuple[Reading, bytes] | None] = []
        for payload in payloads:
            try:
                parsed.append(parse_payload(payload))
            except MalformedReadingError:
                parsed.append(None)
        if self.prefetch is not None:
            self.prefetch([p[0].meter for p in parsed if p is not None])
        return [self._verdict(p[0], p[1], now) if p is not None else Verdict(None, b"", Reason.MALFORMED)
                for p in parsed]

    def _verdict(self, reading: Reading, signature: bytes, now: int) -> Verdict:
        if recover_strict(reading.digest(self.separator), signature) != reading.meter:
            return Verdict(reading, signature, Reason.BAD_SIGNATURE)
        problem = self.meters(reading.meter)
        if problem:
            return Verdict(reading, signature, problem)
        if reading.isp_start % self.isp_seconds:
            return Verdict(reading, signature, Reason.NOT_ALIGNED)
        if reading.isp_start + self.isp_seconds > now + self.skew:
            return Verdict(reading, signature, Reason.FUTURE)
        if reading.isp_start < now - self.retention:
            return Verdict(reading, signature, Reason.TOO_OLD)
        if reading.import_wh > self.max_wh or reading.export_wh > self.max_wh:
            return Verdict(reading, signature, Reason.OUT_OF_RANGE)
        return Verdict(reading, signature, None)
