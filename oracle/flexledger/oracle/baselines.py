"""The oracle's side of baselines and of erasure: the standard method computed from the readings
this oracle anchored (``flexledger.rules.baselines`` holds the rule) and anchored per ISP in
MeterOracle, in the day before the ISP's gate closure (``MeterOracle.baselineWindow``), so that
the settlement of an offer naming the method can prove its meter's value (leaves of the
OpenZeppelin standard tree, encoding ``BASELINE_ENCODING``: each commits to its inputs, which
anyone checks against the anchored readings and disputes in BaselineDisputes); and a meter's raw
readings deleted on request (GDPR) while the anchored roots, and what was settled from them,
stay valid."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from flexledger.chain.bindings import MeterOracleClient
from flexledger.chain.errors import ChainError
from flexledger.chain.revert_errors import MeterOracleBaselineWindow
from flexledger.errors import FlexledgerError
from flexledger.rules.baselines import LOOKBACK, MIN_DAYS, BaselineInputs, rolling_inputs

from .merkle import StandardMerkleTree
from .store import ConflictingReading, StoredBaseline, StoredBaselineAnchor, StoredReading, session

log = logging.getLogger(__name__)
DAY = 86_400
# meter, ISP start, baseline Wh, the hash of its inputs: MeterOracle.baselineLeaf
BASELINE_ENCODING = ["address", "uint64", "int64", "bytes32"]


class BaselineError(FlexledgerError):
    """No standard baseline of that meter anchored for that ISP."""


def history_of(engine: Engine, meter: str, before: int, days: int = LOOKBACK) -> dict[int, int]:
    """A meter's net consumption (import - export, Wh) per ISP over the ``days`` before ``before``,
    from its readings in this oracle's anchored roots (what the rule reads: a reading kept but not
    anchored, a late one, is not on chain for anyone to check the baseline against)."""
    with session(engine) as s:
        rows = s.execute(select(StoredReading.isp_start, StoredReading.import_wh, StoredReading.export_wh)
                         .where(StoredReading.meter == meter, StoredReading.isp_start < before,
                                StoredReading.isp_start >= before - days * DAY, StoredReading.anchored.is_(True)))
        return {isp: imported - exported for isp, imported, exported in rows}


def standard_inputs(engine: Engine, meter: str, isp_start: int) -> BaselineInputs | None:
    """The inputs of the ROLLING_AVERAGE baseline of ``meter`` for the ISP at ``isp_start`` (None: too little history)."""
    inputs = rolling_inputs(history_of(engine, meter, isp_start), isp_start)
    return inputs if len(inputs.nets) >= MIN_DAYS else None


def standard_baseline(engine: Engine, meter: str, isp_start: int) -> int | None:
    """The ROLLING_AVERAGE baseline of ``meter`` for the ISP at ``isp_start`` (None: too little history)."""
    inputs = standard_inputs(engine, meter, isp_start)
    return None if inputs is None else value_of(inputs)


def value_of(inputs: BaselineInputs) -> int:
    """The baseline of these inputs: their mean, rounded toward zero."""
    total, n = sum(inputs.nets), len(inputs.nets)
    return total // n if total >= 0 else -(-total // n)


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


def inputs_of(row: StoredBaseline) -> BaselineInputs:
    """A kept baseline's inputs."""
    return BaselineInputs(row.days_back, tuple(int(v) for v in row.nets.split(",") if v))


def _tree(rows: list[StoredBaseline]) -> StandardMerkleTree:
    return StandardMerkleTree.of([[r.meter, r.isp_start, r.baseline_wh, inputs_of(r).hash()] for r in rows],
                                 BASELINE_ENCODING)


def _rows(s: Any, market: int, isp_start: int) -> list[StoredBaseline]:
    return list(s.scalars(select(StoredBaseline).where(StoredBaseline.market == market,
                                                       StoredBaseline.isp_start == isp_start)
                          .order_by(StoredBaseline.meter)))


def anchor_baselines(engine: Engine, oracle: MeterOracleClient, market: int, isp_start: int,
                     meters: Iterable[str] | None = None, *,
                     inputs: Mapping[str, BaselineInputs | None] | None = None) -> StoredBaselineAnchor | None:
    """Compute the standard baseline of each of ``meters`` (default: every meter with history)
    for the ISP at ``isp_start`` from its anchored readings (or take ``inputs`` already chosen),
    keep them with their inputs, and anchor their root; the contract takes it in the day before
    the ISP's gate closure only. Meters with too little history have no baseline (an offer naming
    the method for them cannot be settled with it). None when no meter has one. Anchoring twice
    answers the first anchor (the contract keeps one per ISP)."""
    with session(engine) as s:
        existing = s.get(StoredBaselineAnchor, (market, isp_start))
        if existing is not None:
            s.expunge(existing)
            return existing
    if inputs is None:
        chosen = metered_before(engine, isp_start) if meters is None else list(meters)
        inputs = {m: standard_inputs(engine, m, isp_start) for m in chosen}
    rows = [StoredBaseline(market=market, isp_start=isp_start, meter=m, baseline_wh=value_of(i),
                           days_back=i.days_back, nets=",".join(str(v) for v in i.nets))
            for m, i in sorted(inputs.items()) if i is not None and len(i.nets) >= MIN_DAYS]
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
    """``meter``'s anchored standard baseline for ``isp_start``, its inputs and its proof
    (JSON-ready): ``witness`` is what a settlement presents (``MeterOracle.verifyBaseline``: the
    inputs hash, then the Merkle proof), ``daysBack`` and ``nets`` what a dispute reveals."""
    with session(engine) as s:
        anchor = s.get(StoredBaselineAnchor, (market, isp_start))
        if anchor is None:
            raise BaselineError(f"no standard baselines anchored for the ISP starting at {isp_start} in market {market}",
                                hint="the oracle anchors them with `flexledger oracle baselines`")
        rows = _rows(s, market, isp_start)
        index = next((i for i, r in enumerate(rows) if r.meter.lower() == meter.lower()), None)
        if index is None:
            raise BaselineError(f"{meter} has no standard baseline for the ISP starting at {isp_start}",
                                hint="the method needs at least 3 similar days of anchored readings before the ISP")
        tree = _tree(rows)
        if tree.root != anchor.root:
            raise BaselineError(f"the stored baselines of ISP {isp_start} no longer give their anchored root")
        inputs = inputs_of(rows[index])
        proof = ["0x" + p.hex() for p in tree.proof(index)]
        return {"meter": rows[index].meter, "ispStart": isp_start, "baselineWh": rows[index].baseline_wh,
                "daysBack": inputs.days_back, "nets": list(inputs.nets), "inputsHash": "0x" + inputs.hash().hex(),
                "proof": proof, "witness": ["0x" + inputs.hash().hex(), *proof], "root": "0x" + anchor.root.hex()}


def day_inputs(engine: Engine, day_start: int, isp_seconds: int) -> dict[int, dict[str, BaselineInputs | None]]:
    """The inputs of the standard baseline of every meter with history for each ISP of the day
    starting at ``day_start``, from one read of the anchored history before the day."""
    history: dict[str, dict[int, int]] = defaultdict(dict)
    with session(engine) as s:
        rows = s.execute(select(StoredReading.meter, StoredReading.isp_start, StoredReading.import_wh,
                                StoredReading.export_wh)
                         .where(StoredReading.isp_start < day_start, StoredReading.isp_start >= day_start - LOOKBACK * DAY,
                                StoredReading.anchored.is_(True)))
        for meter, isp, imported, exported in rows:
            history[meter][isp] = imported - exported
    out: dict[int, dict[str, BaselineInputs | None]] = {}
    for t in range(day_start, day_start + DAY, isp_seconds):
        out[t] = {}
        for m, h in history.items():
            inputs = rolling_inputs(h, t)
            out[t][m] = inputs if len(inputs.nets) >= MIN_DAYS else None
    return out


def day_baselines(engine: Engine, day_start: int, isp_seconds: int) -> dict[int, dict[str, int | None]]:
    """The standard baseline of every meter with history for each ISP of the day starting at
    ``day_start`` (``day_inputs``' values)."""
    return {t: {m: None if i is None else value_of(i) for m, i in by_meter.items()}
            for t, by_meter in day_inputs(engine, day_start, isp_seconds).items()}


def anchor_day_baselines(engine: Engine, oracle: MeterOracleClient, market: int, day_start: int,
                         isp_seconds: int) -> tuple[list[StoredBaselineAnchor], list[int]]:
    """Anchor the standard baselines of every ISP of a market day (those with any meter's), in
    the day before its gate closure: the anchors, and the ISPs whose transaction failed (run
    again: anchored ISPs are skipped)."""
    anchored, failed = [], []
    for t, inputs in day_inputs(engine, day_start, isp_seconds).items():
        try:
            done = anchor_baselines(engine, oracle, market, t, inputs=inputs)
        except MeterOracleBaselineWindow:
            raise  # outside the day before the gate closure: another round will not help
        except ChainError as exc:
            log.warning("anchoring the standard baselines of ISP %s failed, kept for the next round: %s", t, exc)
            failed.append(t)
            continue
        if done is not None:
            anchored.append(done)
    return anchored, failed
