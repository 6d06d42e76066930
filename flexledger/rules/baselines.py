"""Baselines (DESIGN.md rule 6): what an asset would have consumed without activation.

Two kinds, named in the offer (``baselineMethod``):

- ``COMMITTED``: the seller commits, with the offer, to the hash of its baseline and reveals the
  values at settlement. The commitment is ``keccak256(abi.encode(uint64 asset, uint64 start,
  int64[] netWh, bytes32 salt))``: the asset, the window's first ISP, the net consumption
  (import - export, Wh, may be negative) per ISP of the window, and a random salt so that the
  hash reveals nothing before settlement.
- ``ROLLING_AVERAGE``: the standard method computed by the oracle from stored history: for an
  ISP, the average net consumption at the same time of day over the last ``DAYS`` (10) days of
  the same kind (weekdays with weekdays, weekends with weekends) that have a reading; at least
  ``MIN_DAYS`` (3) such days are needed, else there is no baseline. The average is rounded toward
  zero (integer Wh), so a baseline never claims more than was measured on average.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

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


def rolling_average(history: Mapping[int, int], isp_start: int) -> int | None:
    """The ROLLING_AVERAGE baseline of the ISP at ``isp_start`` from a meter's history, a map of
    ISP start -> net consumption (Wh); None when fewer than ``MIN_DAYS`` similar days have data."""
    kind = _weekend(isp_start)
    values: list[int] = []
    for back in range(1, LOOKBACK + 1):
        t = isp_start - back * DAY
        if _weekend(t) == kind and t in history:
            values.append(history[t])
            if len(values) == DAYS:
                break
    if len(values) < MIN_DAYS:
        return None
    total = sum(values)
    return int(total / len(values)) if total >= 0 else -int(-total / len(values))
