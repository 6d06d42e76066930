"""Keeping what arrives: each payload is verified, then kept once (or counted as refused).

``ingest`` is what the MQTT consumer calls for every message, inside one database transaction,
before the message is acknowledged to the broker: a crash between the two means the broker
delivers it again, and the store keeps it once."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .store import StoredAnchor, count_rejection, store_reading
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
