"""The oracle's side of baselines and of erasure: the standard method computed from stored
history (``flexledger.rules.baselines`` holds the rule), and a meter's raw readings deleted on
request (GDPR) while the anchored roots, and what was settled from them, stay valid."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from flexledger.rules.baselines import LOOKBACK, rolling_average

from .store import StoredReading, session

DAY = 86_400


def history_of(engine: Engine, meter: str, before: int, days: int = LOOKBACK) -> dict[int, int]:
    """A meter's net consumption (import - export, Wh) per ISP over the ``days`` before ``before``."""
    with session(engine) as s:
        rows = s.execute(select(StoredReading.isp_start, StoredReading.import_wh, StoredReading.export_wh)
                         .where(StoredReading.meter == meter, StoredReading.isp_start < before,
                                StoredReading.isp_start >= before - days * DAY))
        return {isp: imported - exported for isp, imported, exported in rows}


def standard_baseline(engine: Engine, meter: str, isp_start: int) -> int | None:
    """The ROLLING_AVERAGE baseline of ``meter`` for the ISP at ``isp_start`` (None: too little history)."""
    return rolling_average(history_of(engine, meter, isp_start), isp_start)


def erase_meter(engine: Engine, meter: str) -> int:
    """Delete every raw reading of ``meter`` (a data subject's request); how many were deleted.
    Roots on chain do not change; proofs for the erased readings can no longer be given."""
    with session(engine) as s:
        result = s.execute(delete(StoredReading).where(StoredReading.meter == meter))
        return int(getattr(result, "rowcount", 0) or 0)
