"""The oracle's side of baselines and of erasure: the standard method computed from stored
history (``flexledger.rules.baselines`` holds the rule) and anchored per ISP in MeterOracle, so
that the settlement of an offer naming the method can prove its meter's value (leaves of the
OpenZeppelin standard tree, encoding ``BASELINE_ENCODING``); and a meter's raw readings deleted
on request (GDPR) while the anchored roots, and what was settled from them, stay valid."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from flexledger.chain.bindings import MeterOracleClient
from flexledger.chain.errors import ChainError
from flexledger.errors import FlexledgerError
from flexledger.rules.baselines import LOOKBACK, rolling_average

from .merkle import StandardMerkleTree
from .store import ConflictingReading, StoredBaseline, StoredBaselineAnchor, StoredReading, session

log = logging.getLogger(__name__)
DAY = 86_400
BASELINE_ENCODING = ["address", "uint64", "int64"]  # meter, ISP start, baseline Wh: MeterOracle.baselineLeaf


class BaselineError(FlexledgerError):
    """No standard baseline of that meter anchored for that ISP."""


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
        s.execute(delete(ConflictingReading).where(ConflictingReading.meter == meter))  # household data too
        return int(getattr(result, "rowcount", 0) or 0)


def metered_before(engine: Engine, before: int, days: int = LOOKBACK) -> list[str]:
    """The meters with any stored reading in the ``days`` before ``before``."""
    with session(engine) as s:
        return sorted(s.scalars(select(StoredReading.meter).where(
            StoredReading.isp_start < before, StoredReading.isp_start >= before - days * DAY).distinct()))


def _tree(rows: list[StoredBaseline]) -> StandardMerkleTree:
    return StandardMerkleTree.of([[r.meter, r.isp_start, r.baseline_wh] for r in rows], BASELINE_ENCODING)


def _rows(s: Any, market: int, isp_start: int) -> list[StoredBaseline]:
    return list(s.scalars(select(StoredBaseline).where(StoredBaseline.market == market,
                                                       StoredBaseline.isp_start == isp_start)
                          .order_by(StoredBaseline.meter)))


def anchor_baselines(engine: Engine, oracle: MeterOracleClient, market: int, isp_start: int,
                     meters: Iterable[str] | None = None, *,
                     values: Mapping[str, int | None] | None = None) -> StoredBaselineAnchor | None:
    """Compute the standard baseline of each of ``meters`` (default: every meter with history)
    for the ISP at ``isp_start`` (or take ``values`` already computed), keep them, and anchor their
    root. Meters with too little history have no baseline (an offer naming the method for them
    cannot be settled with it). None when no meter has one. Anchoring twice answers the first
    anchor (the contract keeps one per ISP)."""
    with session(engine) as s:
        existing = s.get(StoredBaselineAnchor, (market, isp_start))
        if existing is not None:
            s.expunge(existing)
            return existing
    if values is None:
        chosen = metered_before(engine, isp_start) if meters is None else list(meters)
        values = {m: standard_baseline(engine, m, isp_start) for m in chosen}
    rows = [StoredBaseline(market=market, isp_start=isp_start, meter=m, baseline_wh=v)
            for m, v in sorted(values.items()) if v is not None]
    if not rows:
        return None
    tree = _tree(rows)
    tx = oracle.anchor_baselines(market, isp_start, tree.root, len(rows))
    event = tx.event("BaselinesAnchored").args
    with session(engine) as s:
        s.add_all(rows)
        anchor = StoredBaselineAnchor(market=market, isp_start=isp_start, root=tree.root, leaf_count=len(rows),
                                      oracle=event["oracle"], tx_hash=tx.tx_hash)
        s.add(anchor)
        s.flush()
        s.expunge(anchor)
        return anchor


def baseline_proof_for(engine: Engine, market: int, meter: str, isp_start: int) -> dict[str, Any]:
    """``meter``'s anchored standard baseline for ``isp_start`` and its proof (JSON-ready)."""
    with session(engine) as s:
        anchor = s.get(StoredBaselineAnchor, (market, isp_start))
        if anchor is None:
            raise BaselineError(f"no standard baselines anchored for the ISP starting at {isp_start} in market {market}",
                                hint="the oracle anchors them with `flexledger oracle baselines`")
        rows = _rows(s, market, isp_start)
        index = next((i for i, r in enumerate(rows) if r.meter.lower() == meter.lower()), None)
        if index is None:
            raise BaselineError(f"{meter} has no standard baseline for the ISP starting at {isp_start}",
                                hint="the method needs at least 3 similar days of readings before the ISP")
        tree = _tree(rows)
        if tree.root != anchor.root:
            raise BaselineError(f"the stored baselines of ISP {isp_start} no longer give their anchored root")
        return {"meter": rows[index].meter, "ispStart": isp_start, "baselineWh": rows[index].baseline_wh,
                "proof": ["0x" + p.hex() for p in tree.proof(index)], "root": "0x" + anchor.root.hex()}


def day_baselines(engine: Engine, day_start: int, isp_seconds: int) -> dict[int, dict[str, int | None]]:
    """The standard baseline of every meter with history for each ISP of the day starting at
    ``day_start``, from one read of the history before the day (the service runs it day-ahead)."""
    history: dict[str, dict[int, int]] = defaultdict(dict)
    with session(engine) as s:
        rows = s.execute(select(StoredReading.meter, StoredReading.isp_start, StoredReading.import_wh,
                                StoredReading.export_wh)
                         .where(StoredReading.isp_start < day_start, StoredReading.isp_start >= day_start - LOOKBACK * DAY))
        for meter, isp, imported, exported in rows:
            history[meter][isp] = imported - exported
    return {t: {m: rolling_average(h, t) for m, h in history.items()}
            for t in range(day_start, day_start + DAY, isp_seconds)}


def anchor_day_baselines(engine: Engine, oracle: MeterOracleClient, market: int, day_start: int,
                         isp_seconds: int) -> tuple[list[StoredBaselineAnchor], list[int]]:
    """Anchor the standard baselines of every ISP of a market day (those with any meter's): the
    anchors, and the ISPs whose transaction failed (run again: anchored ISPs are skipped)."""
    anchored, failed = [], []
    for t, values in day_baselines(engine, day_start, isp_seconds).items():
        try:
            done = anchor_baselines(engine, oracle, market, t, values=values)
        except ChainError as exc:
            log.warning("anchoring the standard baselines of ISP %s failed, kept for the next round: %s", t, exc)
            failed.append(t)
            continue
        if done is not None:
            anchored.append(done)
    return anchored, failed
