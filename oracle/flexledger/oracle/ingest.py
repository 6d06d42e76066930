"""Keeping what arrives: each payload is verified, then kept once (or counted as refused).

``ingest_batch`` is what the MQTT consumer calls (through ``ingest_isolating``), inside one
database transaction, before the messages are acknowledged to the broker: a crash between the
two means the broker delivers them again, and the store keeps each once.

A reading is kept per meter and ISP: the first one received is the one that can go into the
ISP's root; the same signed values again are a ``duplicate``; other values signed for a meter and
ISP already kept are ``conflicting``, kept apart as evidence and never anchored.

One message must never hold up the others: a batch that fails for anything but a lost database
or chain connection is stored again in halves, down to one message, and a message that fails alone is
quarantined (kept aside, counted) and acknowledged. Only a connection error leaves the batch
unacknowledged, to be tried again."""

from __future__ import annotations

import logging

from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from flexledger.chain.errors import RpcUnreachableError

from .store import (
    CONFLICTING,
    NEW,
    QuarantinedMessage,
    StoredAnchor,
    StoreMarketError,
    bind_market,
    count_rejection,
    quarantine,
    session,
    store_readings,
)
from .verify import Reason, Verdict, Verifier

log = logging.getLogger(__name__)
STORED, LATE = "stored", "late"
MAX_QUARANTINED = 10_000  # messages kept in quarantine; later ones are counted only


def ingest(s: Session, verifier: Verifier, market: int, payload: bytes, now: int) -> str:
    """What became of ``payload``: ``stored``, ``late`` (kept, flagged, in no root), or a refusal reason."""
    return ingest_batch(s, verifier, market, [payload], now)[0]


def ingest_batch(s: Session, verifier: Verifier, market: int, payloads: list[bytes], now: int) -> list[str]:
    """``ingest`` for many payloads in one transaction: one query for the anchored ISPs, one insert
    for the readings, one update per refusal reason (what lets the consumer keep up with meters)."""
    bind_market(s, market)
    return _keep(s, market, verifier.check_many(payloads, now), now)


def _keep(s: Session, market: int, verdicts: list[Verdict], now: int) -> list[str]:
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
    for (i, _r, _sig, late), what in zip(rows, kept, strict=True):
        if what == NEW:
            outcomes[i] = LATE if late else STORED
        else:
            outcomes[i] = Reason.CONFLICTING if what == CONFLICTING else Reason.DUPLICATE
    refused: dict[str, int] = {}
    for outcome in outcomes:
        if outcome != STORED:
            refused[outcome] = refused.get(outcome, 0) + 1
    for reason, n in refused.items():
        count_rejection(s, reason, n)
    return outcomes


def is_connection_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the database or the chain is out of reach, which
    trying again later cures, rather than something in the data, which it never does."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sa_exc.OperationalError | sa_exc.InterfaceError | sa_exc.DisconnectionError
                      | sa_exc.TimeoutError | RpcUnreachableError | ConnectionError | TimeoutError):
            return True
        if isinstance(seen, sa_exc.DBAPIError) and seen.connection_invalidated:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def ingest_isolating(engine: Engine, verifier: Verifier, market: int, payloads: list[bytes], now: int) -> list[str]:
    """``ingest_batch`` in its own transaction; when it fails for a reason in the data, each half of
    the batch again (down to single payloads), and one that fails alone is quarantined (``quarantined``). A connection error is
    raised: nothing of the batch may be acknowledged then (a part may be stored: it comes back a
    ``duplicate``)."""
    try:
        with session(engine) as s:
            return ingest_batch(s, verifier, market, payloads, now)
    except Exception as exc:
        if is_connection_error(exc) or isinstance(exc, StoreMarketError):  # no message's fault: try again
            raise
        failure = exc
    if len(payloads) > 1:  # halves, so that one bad message costs a few transactions, not one per message
        log.warning("a batch of %d readings failed (%s); storing it in halves", len(payloads), _first_line(failure))
        half = len(payloads) // 2
        return [*ingest_isolating(engine, verifier, market, payloads[:half], now),
                *ingest_isolating(engine, verifier, market, payloads[half:], now)]
    log.error("quarantined a message that cannot be stored (%s)", _first_line(failure))
    with session(engine) as s:
        if (s.scalar(select(func.count()).select_from(QuarantinedMessage)) or 0) < MAX_QUARANTINED:
            quarantine(s, payloads[0], failure, now)  # beyond that it is only counted: the disk is not the sender's
        count_rejection(s, Reason.QUARANTINED)
    return [Reason.QUARANTINED]


def _first_line(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]}"
