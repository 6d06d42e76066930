"""Baselines (DESIGN.md rule 6): what an asset would have consumed without activation.

Two kinds, named in the offer (``baselineMethod``):

- ``COMMITTED``: the seller commits, with the offer, to the hash of its baseline and reveals the
  values at settlement. The commitment is ``keccak256(abi.encode(uint64 asset, uint64 start,
  int64[] netWh, bytes32 salt))``: the asset, the window's first ISP, the net consumption
  (import - export, Wh, may be negative) per ISP of the window, and a random salt so that the
  hash reveals nothing before settlement.
- ``ROLLING_AVERAGE``: the standard method, a function of the meter's anchored readings: for an
  ISP, the average net consumption at the same time of day over the most recent ``DAYS`` (10)
  days of the same kind (weekdays with weekdays, weekends with weekends, by the UTC weekday)
  within ``LOOKBACK`` (60) days that have a reading anchored in the market by the time the
  baselines are anchored; at least ``MIN_DAYS`` (3) such days are needed, else there is no
  baseline. The average is rounded toward zero (integer Wh), so a baseline never claims more than
  was measured on average. Each anchored baseline commits to its inputs (``BaselineInputs``: which
  days, and the net consumption of each), so anyone can check it against the anchored readings
  and dispute it on chain (``BaselineDisputes``, whose ``rule`` is this module's ``apply_rule``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eth_abi import encode
from eth_utils import keccak

DAY = 86_400
DAYS = 10
MIN_DAYS = 3
LOOKBACK = 60  # calendar days searched for DAYS days of the same kind


def baseline_commitment(asset: int, start: int, net_wh: Sequence[int], salt: bytes) -> bytes:
    if len(salt) != 32:
        raise ValueError("the salt is 32 bytes")
    return keccak(encode(["uint64", "uint64", "int64[]", "bytes32"], [asset, start, list(net_wh), salt]))


def reveal_matches(commitment: bytes, asset: int, start: int, net_wh: Sequence[int], salt: bytes) -> bool:
    """Whether revealed values are the ones committed to (DESIGN rule 6)."""
    return len(salt) == 32 and baseline_commitment(asset, start, net_wh, salt) == commitment


def _weekend(t: int) -> bool:
    return dt.datetime.fromtimestamp(t, dt.UTC).weekday() >= 5


@dataclass(frozen=True)
class BaselineInputs:
    """What a standard baseline averaged: bit ``k - 1`` of ``days_back`` set when the day ``k``
    days before the ISP was used, and the meter's net consumption (Wh) on each used day, most
    recent first (``nets``, at most ``DAYS``). Its hash is the leaf's last value (MeterOracle.baselineLeaf)."""

    days_back: int
    nets: tuple[int, ...]

    @classmethod
    def of(cls, used: Sequence[tuple[int, int]]) -> BaselineInputs:
        """From (days back, net Wh) pairs, most recent first."""
        bits = 0
        for k, _ in used:
            bits |= 1 << (k - 1)
        return cls(bits, tuple(net for _, net in used))

    def padded(self) -> list[int]:
        """``nets`` as the contract's ``int64[10]``: zero after the last used day."""
        return [*self.nets, *([0] * (DAYS - len(self.nets)))][:DAYS]

    def hash(self) -> bytes:
        """``keccak256(abi.encode(uint64 daysBack, int64[10] nets))``."""
        return keccak(encode(["uint64", "int64[10]"], [self.days_back, self.padded()]))

    def days(self) -> list[int]:
        """The used days, as days back, most recent first."""
        return [k for k in range(1, 65) if self.days_back >> (k - 1) & 1]


def _similar(isp_start: int, k: int) -> bool:
    return k <= LOOKBACK and k * DAY <= isp_start and _weekend(isp_start - k * DAY) == _weekend(isp_start)


def _mean(values: Sequence[int]) -> int:
    total, n = sum(values), len(values)
    return total // n if total >= 0 else -(-total // n)  # toward zero, exactly (no float)


def rolling_inputs(history: Mapping[int, int], isp_start: int) -> BaselineInputs:
    """The days the ROLLING_AVERAGE baseline of the ISP at ``isp_start`` averages, from a meter's
    history (ISP start -> net consumption, Wh: its anchored readings): the most recent ``DAYS`` of
    the ISP's kind within ``LOOKBACK`` that have a reading."""
    used: list[tuple[int, int]] = []
    for k in range(1, LOOKBACK + 1):
        t = isp_start - k * DAY
        if _similar(isp_start, k) and t in history:
            used.append((k, history[t]))
            if len(used) == DAYS:
                break
    return BaselineInputs.of(used)


def apply_rule(isp_start: int, inputs: BaselineInputs) -> tuple[int | None, BaselineInputs]:
    """The rule applied to inputs as given (what ``BaselineDisputes.rule`` computes): of the used
    days, those of the ISP's kind within the lookback, the first ``DAYS`` (a day's value is its
    position among the used days); the baseline (None: fewer than ``MIN_DAYS``) and the inputs kept."""
    kept: list[tuple[int, int]] = []
    for at, k in enumerate(inputs.days()[:DAYS]):
        if _similar(isp_start, k) and len(kept) < DAYS:
            kept.append((k, inputs.padded()[at]))
    result = BaselineInputs.of(kept)
    return (_mean(result.nets) if len(kept) >= MIN_DAYS else None), result


def rolling_average(history: Mapping[int, int], isp_start: int) -> int | None:
    """The ROLLING_AVERAGE baseline of the ISP at ``isp_start`` from a meter's history, a map of
    ISP start -> net consumption (Wh); None when fewer than ``MIN_DAYS`` similar days have data."""
    inputs = rolling_inputs(history, isp_start)
    return _mean(inputs.nets) if len(inputs.nets) >= MIN_DAYS else None
