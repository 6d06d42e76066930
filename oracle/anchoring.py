"""Anchoring: after an ISP ends (plus a grace period for late deliveries), its readings' Merkle
tree (OpenZeppelin standard format) is built and its root anchored in MeterOracle; proofs for
any kept reading come from the same tree. A failed anchor is retried on the next round: the
readings stay in the store until their root is on chain."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from flexledger.chain.bindings import MeterOracleClient
from flexledger.chain.errors import ChainError
from flexledger.errors import FlexledgerError

from .merkle import StandardMerkleTree
from .readings import LEAF_ENCODING
from .store import StoredAnchor, StoredReading, mark_anchored, readings_of_isp, session

log = logging.getLogger(__name__)


class ProofError(FlexledgerError):
    """No kept reading, or no anchor, for that meter and ISP."""


def tree_of(rows: list[StoredReading]) -> StandardMerkleTree:
    return StandardMerkleTree.of([r.reading().leaf_values(bytes(r.signature)) for r in rows], LEAF_ENCODING)


def due_isps(engine: Engine, now: int, isp_seconds: int, grace: int) -> list[int]:
    """ISPs with readings not yet anchored, ended at least ``grace`` seconds ago."""
    with session(engine) as s:
        rows = s.scalars(select(StoredReading.isp_start).where(StoredReading.anchored.is_(False),
                                                               StoredReading.late.is_(False)).distinct())
        return sorted(t for t in rows if t + isp_seconds + grace <= now)


def anchor_isp(engine: Engine, oracle: MeterOracleClient, market: int, isp_start: int) -> StoredAnchor | None:
    """Anchor one ISP's root; None (and it stays due) when the transaction fails. Readings of the
    ISP kept while the transaction waited are flagged late: the root is exactly what the store
    says is in it."""
    with session(engine) as s:
        existing = s.get(StoredAnchor, (market, isp_start))
        if existing is not None:  # a reading slipped in after the anchor: late, like any other
            mark_anchored(s, isp_start, [])
            s.expunge(existing)
            return existing
        rows = readings_of_isp(s, isp_start)
        if not rows:
            return None
        tree = tree_of(rows)
        try:
            tx = oracle.anchor_root(market, isp_start, tree.root, len(rows))
        except ChainError as exc:
            log.warning("anchoring ISP %s failed, kept for the next round: %s", isp_start, exc)
            return None
        event = tx.event("RootAnchored").args
        anchor = StoredAnchor(market=market, isp_start=isp_start, root=tree.root, leaf_count=len(rows),
                              oracle=event["oracle"], anchored_at=event["anchoredAt"], tx_hash=tx.tx_hash)
        s.add(anchor)
        late = mark_anchored(s, isp_start, rows)
        if late:
            log.info("ISP %s: %d readings kept while its anchor was on its way are flagged late", isp_start, late)
        s.flush()
        s.expunge(anchor)
        return anchor


NO_ANCHOR = {"market": 0, "root": "0x" + "00" * 32, "oracle": "0x" + "00" * 20, "leafCount": 0, "anchoredAt": 0,
             "txHash": None}


def proof_for(engine: Engine, meter: str, isp_start: int) -> dict[str, Any]:
    """A kept reading of ``meter`` for ``isp_start``, its signature, its proof and its ISP's anchor
    (JSON-ready). A reading kept but in no root (late) comes with a zero anchor and no proof: the
    settlement takes it on the meter's signature alone (``MeterOracle.verifyReading``)."""
    with session(engine) as s:
        rows = readings_of_isp(s, isp_start)
        index = next((i for i, r in enumerate(rows) if r.meter.lower() == meter.lower()), None)
        if index is None:
            return _unanchored(s, meter, isp_start)
        anchor = s.get(StoredAnchor, (s.scalar(select(StoredAnchor.market).where(
            StoredAnchor.isp_start == isp_start)), isp_start))
        if anchor is None:
            raise ProofError(f"the ISP starting at {isp_start} is not anchored yet")
        tree = tree_of(rows)
        if tree.root != anchor.root:
            raise ProofError(f"the stored readings of ISP {isp_start} no longer give its anchored root")
        r = rows[index]
        return {
            "meter": r.meter, "ispStart": r.isp_start, "sequence": r.sequence, "importWh": r.import_wh,
            "exportWh": r.export_wh, "signature": "0x" + bytes(r.signature).hex(),
            "proof": ["0x" + p.hex() for p in tree.proof(index)],
            "anchor": {"market": anchor.market, "root": "0x" + anchor.root.hex(), "oracle": anchor.oracle,
                       "leafCount": anchor.leaf_count, "anchoredAt": anchor.anchored_at, "txHash": anchor.tx_hash},
        }


def _unanchored(s: Session, meter: str, isp_start: int) -> dict[str, Any]:
    """The first reading kept of ``meter`` for ``isp_start`` that is in no root (late), unanchored."""
    rows = s.scalars(select(StoredReading).where(StoredReading.isp_start == isp_start)
                     .order_by(StoredReading.received_at, StoredReading.sequence))
    r = next((r for r in rows if r.meter.lower() == meter.lower()), None)
    if r is None:
        raise ProofError(f"no reading of {meter} for the ISP starting at {isp_start} is kept",
                         hint="check the meter and the ISP; a reading the oracle never received can be brought "
                              "from the meter's own signed record")
    return {"meter": r.meter, "ispStart": r.isp_start, "sequence": r.sequence, "importWh": r.import_wh,
            "exportWh": r.export_wh, "signature": "0x" + bytes(r.signature).hex(), "proof": [],
            "anchor": dict(NO_ANCHOR)}


@dataclass
class AnchorRound:
    anchored: list[int]
    failed: list[int]


def anchor_due(engine: Engine, oracle: MeterOracleClient, market: int, now: int, *, isp_seconds: int,
               grace: int) -> AnchorRound:
    done: list[int] = []
    failed: list[int] = []
    for isp in due_isps(engine, now, isp_seconds, grace):
        (done if anchor_isp(engine, oracle, market, isp) else failed).append(isp)
    return AnchorRound(done, failed)
