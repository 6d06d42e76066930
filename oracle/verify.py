"""What the oracle checks before it keeps a reading, and the reasons it refuses one.

In order: the payload is a reading; its signature recovers to the meter it names; the meter
holds a valid METER credential and is the meter of a mapped asset (ACTIVE or SUSPENDED: a
suspended asset still meters, its settlement needs the readings); its ISP is aligned, has ended
(a clock skew allowed) and is not older than the retention. A duplicate (same meter and sequence)
is kept once and counted; a reading for an ISP already anchored is kept, flagged late, and left
out of that root.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

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
    DUPLICATE = "duplicate"


@dataclass
class Verdict:
    reading: Reading | None
    signature: bytes
    reason: str | None  # None: keep it


class ChainMeters:
    """Which meters may report, from the RoleRegistry and the AssetRegistry, remembered for ``ttl`` seconds."""

    def __init__(self, roles: RoleRegistryClient, assets: AssetRegistryClient, *, ttl: float = 60.0) -> None:
        self.roles, self.assets, self.ttl = roles, assets, ttl
        self._cache: dict[str, tuple[float, str | None]] = {}

    def problem(self, meter: str) -> str | None:
        now = time.monotonic()
        cached = self._cache.get(meter)
        if cached and now - cached[0] < self.ttl:
            return cached[1]
        problem: str | None = None
        if not self.roles.has_market_role(meter, Role.METER.id):
            problem = Reason.UNKNOWN_METER
        else:
            asset = self.assets.asset_of_meter(meter)
            status = self.assets.offer_terms(asset)[2] if asset else 0
            if status not in (ASSET_ACTIVE, ASSET_SUSPENDED):
                problem = Reason.UNMAPPED
        self._cache[meter] = (now, problem)
        return problem


@dataclass
class Verifier:
    separator: bytes  # the MeterOracle's EIP-712 domain separator
    meters: Callable[[str], str | None]  # a meter's problem, or None
    isp_seconds: int = 900
    skew: int = 60
    retention: int = 7 * 86_400
    seen: set[tuple[str, int]] = field(default_factory=set)

    def check(self, payload: bytes, now: int) -> Verdict:
        try:
            reading, signature = parse_payload(payload)
        except MalformedReadingError:
            return Verdict(None, b"", Reason.MALFORMED)
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
        return Verdict(reading, signature, None)
