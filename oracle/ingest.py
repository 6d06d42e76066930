"""Keeping what arrives: each payload is verified, then kept once (or counted as refused).

``ingest`` is what the MQTT consumer calls for every message, inside one database transaction,
before the message is acknowledged to the broker: a crash between the two means the broker
delivers it again, and the store keeps it once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .store import StoredAnchor, count_rejection, store_reading, store_readings
from .verify import Reason, Verifier

STORED, LATE = "stored", "late"


def ingest(s: Session, verifier: Verifier, market: int, payload: bytes, now: int) -> str:
    """What became of ``payload``: ``stored``, ``late`` (kept, flagged, in no root), or a refusal reason."""
    verdict = verifier.check(payload, now)
    if verdict.reason is not None:
        count_rejection(s, verdict.reason)
        return verdict.reason
    reading = verdict.reading
    assert reading is not None
    anchored = s.scalar(select(StoredAnchor.root).where(StoredAnchor.market == market,
                                                        StoredAnchor.isp_start == reading.isp_start)) is not None
    if not store_reading(s, reading, verdict.signature, now, late=anchored):
        count_rejection(s, Reason.DUPLICATE)
        return Reason.DUPLICATE
    if anchored:
        count_rejection(s, LATE)  # counted with the refusals: it is in no root
        return LATE
    return STORED


def ingest_batch(s: Session, verifier: Verifier, market: int, payloads: list[bytes], now: int) -> list[str]:
    """``ingest`` for many payloads in one transaction: one query for the anchored ISPs, one insert
    for the readings, one update per refusal reason (what lets the consumer keep up with meters)."""
    verdicts = verifier.check_many(payloads, now)
    good = [(i, v) for i, v in enumerate(verdicts) if v.reason is None]
    outcomes: list[str] = [v.reason or STORED for v in verdicts]
    isps = {v.reading.isp_start for _, v in good if v.reading is not None}
    anchored = set(s.scalars(select(StoredAnchor.isp_start).where(StoredAnchor.market == market,
                                                                  StoredAnchor.isp_start.in_(isps)))) if isps else set()
    rows = []
    for i, v in good:
        assert v.reading is not None
        late = v.reading.isp_start in anchored
        rows.append((i, v.reading, v.signature, late))
    kept = store_readings(s, [(r, sig, late) for _, r, sig, late in rows], now)
    for (i, _r, _sig, late), new in zip(rows, kept, strict=True):
        outcomes[i] = (LATE if late else STORED) if new else Reason.DUPLICATE
    refused: dict[str, int] = {}
    for outcome in outcomes:
        if outcome != STORED:
            refused[outcome] = refused.get(outcome, 0) + 1
    for reason, n in refused.items():
        count_rejection(s, reason, n)
    return outcomes
