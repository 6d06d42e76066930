"""Anchoring: after an ISP ends (plus a grace period for late deliveries), its readings' Merkle
tree (OpenZeppelin standard format) is built and its root anchored in MeterOracle; proofs for
any kept reading come from the same tree. A failed anchor is retried on the next round: the
readings stay in the store until their root is on chain.

An anchor counts once it is deep enough in the chain (``confirmations`` blocks, or the node's
finalized block): until then it is pending and each round checks it again; one that a
reorganisation took away is anchored again. An ISP another oracle anchored first (a pair of
oracles for one market) is never retried: the chain's anchor is taken, and when its root is not
this store's, the ISP is ``foreign`` (its readings here cannot be proven)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from eth_abi import encode
from eth_utils import keccak
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from web3.exceptions import TransactionNotFound

from flexledger.chain.bindings import MeterOracleClient
from flexledger.chain.errors import ChainError
from flexledger.chain.revert_errors import MeterOracleAlreadyAnchored
from flexledger.chain.structs import Anchor
from flexledger.errors import FlexledgerError

from .merkle import StandardMerkleTree
from .readings import LEAF_ENCODING
from .store import (
    CONFIRMED,
    FOREIGN,
    PENDING,
    StoredAnchor,
    StoredReading,
    bind_market,
    kept_reading,
    mark_anchored,
    readings_of_isp,
    session,
    unmark_anchored,
)

log = logging.getLogger(__name__)
GONE = "gone"
RECHECK_BLOCKS = 64  # how far back confirmed anchors are looked for again (deeper reorganisations are not)


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


def anchor_struct(anchor: StoredAnchor) -> Anchor:
    """The stored anchor as ``MeterOracle.Anchor``."""
    return Anchor(anchor.root, anchor.oracle, anchor.leaf_count, anchor.anchored_at)


def anchor_hash(anchor: StoredAnchor) -> bytes:
    """What ``MeterOracle.anchorHash`` holds for ``anchor``: ``keccak256(abi.encode(Anchor))``."""
    return keccak(encode([Anchor.ABI_TYPE], [anchor_struct(anchor).to_abi()]))


def _topic(value: int) -> str:
    return "0x" + value.to_bytes(32, "big").hex()


def chain_anchor(oracle: MeterOracleClient, market: int, isp_start: int) -> StoredAnchor | None:
    """The anchor the chain holds now for the ISP (from its ``RootAnchored`` event), None if none."""
    stored = bytes(oracle.anchor_hash(market, isp_start))
    if not any(stored):
        return None
    for e in reversed(oracle.events("RootAnchored", topics=[_topic(market), _topic(isp_start)])):
        anchor = StoredAnchor(market=market, isp_start=isp_start, root=bytes(e.args["root"]),
                              leaf_count=int(e.args["leafCount"]), oracle=str(e.args["oracle"]),
                              anchored_at=int(e.args["anchoredAt"]), tx_hash=e.tx_hash, block_number=e.block_number)
        if anchor_hash(anchor) == stored:
            return anchor
    return None  # the node's logs lag its state: asked again next round


def _depth_block(oracle: MeterOracleClient, confirmations: int | None) -> int:
    """The newest block an anchor must be in to count: ``confirmations`` below the head, or the
    node's ``finalized`` block (None)."""
    eth = oracle.conn.w3.eth
    if confirmations is None:
        return int(eth.get_block("finalized")["number"])
    return int(eth.block_number) - confirmations


def _settle_status(s: Session, oracle: MeterOracleClient, anchor: StoredAnchor, confirmations: int | None) -> str:
    """Check a pending anchor against the chain and update it: ``confirmed`` once the chain holds
    it ``confirmations`` deep (or final); ``pending`` while it is there but not deep enough, or its
    transaction still waits to be mined again; ``foreign`` when the chain holds another root for the
    ISP; ``gone`` (the anchor deleted, its readings due again) when a reorganisation took it away."""
    expected = anchor_hash(anchor)
    depth = _depth_block(oracle, confirmations)
    if anchor.block_number is not None and depth >= anchor.block_number and \
            bytes(oracle.anchor_hash(anchor.market, anchor.isp_start, block=depth)) == expected:
        anchor.status = CONFIRMED
        return CONFIRMED
    latest = bytes(oracle.anchor_hash(anchor.market, anchor.isp_start))
    if latest == expected:
        return PENDING
    if any(latest):  # another anchor took its place: ours mined again later, or another oracle's
        found = chain_anchor(oracle, anchor.market, anchor.isp_start)
        if found is None:
            return PENDING
        _adopt(anchor, found)
        return anchor.status
    tx = _transaction(oracle, anchor.tx_hash)
    if tx is not None and tx.get("blockNumber") is None:
        return PENDING  # back in the node's pool after the reorganisation: it may be mined again
    log.warning("the anchor of ISP %s (tx %s) is no longer on chain: a reorganisation; anchoring it again",
                anchor.isp_start, anchor.tx_hash)
    unmark_anchored(s, anchor.isp_start)
    s.delete(anchor)
    if oracle.signer is not None:
        oracle.signer.forget_nonce()  # the dropped transaction's nonce is free again
    return GONE


def _transaction(oracle: MeterOracleClient, tx_hash: str) -> dict[str, Any] | None:
    try:
        return dict(oracle.conn.w3.eth.get_transaction(tx_hash))  # type: ignore[arg-type]
    except TransactionNotFound:
        return None


def _adopt(anchor: StoredAnchor, found: StoredAnchor) -> None:
    """Take the chain's anchor of the ISP for this store's: the same root (this store's readings are
    in it: pending, to be confirmed), or another (``foreign``: they cannot be proven against it)."""
    same = found.root == anchor.root
    anchor.root, anchor.leaf_count, anchor.oracle = found.root, found.leaf_count, found.oracle
    anchor.anchored_at, anchor.tx_hash, anchor.block_number = found.anchored_at, found.tx_hash, found.block_number
    anchor.status = PENDING if same else FOREIGN
    if not same:
        log.warning("ISP %s was anchored by oracle %s with another root (%d leaves): the readings this store keeps "
                    "for it cannot be proven against it", anchor.isp_start, found.oracle, found.leaf_count)


def anchor_isp(engine: Engine, oracle: MeterOracleClient, market: int, isp_start: int, *,
               confirmations: int | None = 0) -> StoredAnchor | None:
    """Anchor one ISP's root; None (and it stays due) when the transaction fails. Readings of the
    ISP kept while the transaction waited are flagged late: the root is exactly what the store
    says is in it. An ISP another oracle already anchored (its pair, or a race) is not retried:
    its anchor is taken as this store's, ``foreign`` when its root is not this store's root. The
    anchor is ``pending`` until it is ``confirmations`` blocks deep (or final, with None)."""
    with session(engine) as s:
        bind_market(s, market)
        existing = s.get(StoredAnchor, (market, isp_start))
        if existing is not None:  # a reading slipped in after the anchor: late, like any other
            mark_anchored(s, isp_start, [])
            s.expunge(existing)
            return existing
        rows = readings_of_isp(s, isp_start)
        if not rows:
            return None
        tree = tree_of(rows)
        anchor = StoredAnchor(market=market, isp_start=isp_start, root=tree.root, leaf_count=len(rows))
        try:
            found = chain_anchor(oracle, market, isp_start)
            if found is None:
                tx = oracle.anchor_root(market, isp_start, tree.root, len(rows))
                event = tx.event("RootAnchored")
                anchor.oracle, anchor.anchored_at = event.args["oracle"], event.args["anchoredAt"]
                anchor.tx_hash, anchor.block_number, anchor.status = tx.tx_hash, event.block_number, PENDING
        except MeterOracleAlreadyAnchored:  # another oracle's transaction came first
            found = chain_anchor(oracle, market, isp_start)
            if found is None:
                return None
        except ChainError as exc:
            log.warning("anchoring ISP %s failed, kept for the next round: %s", isp_start, exc)
            return None
        if found is not None:
            _adopt(anchor, found)
        s.add(anchor)
        late = mark_anchored(s, isp_start, rows)
        if late:
            log.info("ISP %s: %d readings kept while its anchor was on its way are flagged late", isp_start, late)
        s.flush()
        if anchor.status == PENDING and _settle_status(s, oracle, anchor, confirmations) == GONE:
            return None
        s.flush()
        s.expunge(anchor)
        return anchor


def confirm_anchors(engine: Engine, oracle: MeterOracleClient, market: int,
                    confirmations: int | None = 0) -> dict[str, list[int]]:
    """Check every pending anchor of the market against the chain (``_settle_status``), and the
    confirmed ones of the last ``RECHECK_BLOCKS`` blocks too (with few confirmations, 0 on a
    development chain, a reorganisation can still take those away): the ISPs by what became of
    their anchors (a confirmed one still there is not reported again)."""
    done: dict[str, list[int]] = {CONFIRMED: [], PENDING: [], FOREIGN: [], GONE: []}
    recent = int(oracle.conn.w3.eth.block_number) - RECHECK_BLOCKS
    with session(engine) as s:
        bind_market(s, market)
        for anchor in s.scalars(select(StoredAnchor).where(
                StoredAnchor.market == market,
                (StoredAnchor.status == PENDING) | ((StoredAnchor.status == CONFIRMED)
                                                    & (StoredAnchor.block_number > recent)))).all():
            was = anchor.status
            now = _settle_status(s, oracle, anchor, confirmations)
            if not (was == CONFIRMED and now in (CONFIRMED, PENDING) and anchor.status == CONFIRMED):
                done[now].append(anchor.isp_start)
    return done
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
        if anchor.status == PENDING:
            raise ProofError(f"the anchor of the ISP starting at {isp_start} is not confirmed yet",
                             hint="it counts once deep enough in the chain; the oracle's next round checks it")
        if anchor.status == FOREIGN:
            raise ProofError(f"the ISP starting at {isp_start} was anchored by oracle {anchor.oracle} with a root "
                             "this store's readings do not give", hint="ask that oracle's store for the proof")
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
    r = kept_reading(s, meter, isp_start)
    if r is None:
        raise ProofError(f"no reading of {meter} for the ISP starting at {isp_start} is kept",
                         hint="check the meter and the ISP; a reading the oracle never received can be brought "
                              "from the meter's own signed record")
    return {"meter": r.meter, "ispStart": r.isp_start, "sequence": r.sequence, "importWh": r.import_wh,
            "exportWh": r.export_wh, "signature": "0x" + bytes(r.signature).hex(), "proof": [],
            "anchor": dict(NO_ANCHOR)}


@dataclass
class AnchorRound:
    anchored: list[int]  # confirmed in this round
    failed: list[int]
    pending: list[int] = field(default_factory=list)  # on chain, not deep enough yet
    reorged: list[int] = field(default_factory=list)  # anchors a reorganisation took away: due again
    foreign: list[int] = field(default_factory=list)  # another oracle anchored another root first


def anchor_due(engine: Engine, oracle: MeterOracleClient, market: int, now: int, *, isp_seconds: int,
               grace: int, confirmations: int | None = 0) -> AnchorRound:
    """One round: the pending anchors checked again (those a reorganisation took away are due
    again), then every due ISP anchored. ``confirmations``: how many blocks deep an anchor must be
    to count (None: the node's finalized block)."""
    checked = confirm_anchors(engine, oracle, market, confirmations)
    done = AnchorRound(checked[CONFIRMED], [], checked[PENDING], checked[GONE], checked[FOREIGN])
    for isp in due_isps(engine, now, isp_seconds, grace):
        anchor = anchor_isp(engine, oracle, market, isp, confirmations=confirmations)
        if anchor is None:
            done.failed.append(isp)
        else:
            {CONFIRMED: done.anchored, PENDING: done.pending, FOREIGN: done.foreign}[anchor.status].append(isp)
    return done
