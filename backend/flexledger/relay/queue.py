"""Offer intake: signed offers checked at once against the chain's state and queued durably in SQL,
each by its EIP-712 digest (a digest is queued once, whoever sends it again).

All or nothing per submission: one bad offer refuses the whole list with each offender's reason,
so a client never has to find out which of its offers went in.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flexledger.book.offers import ChainReads, SignedOfferError, judge_offers, read_signed
from flexledger.errors import FlexledgerError
from flexledger.relay.tables import QueuedOffer
from flexledger.rules.orders import Offer

if TYPE_CHECKING:
    from flexledger.book.order_book import SignedOffer
    from flexledger.deployment import Deployment

QUEUED, SENDING, SENT, ACCEPTED, SKIPPED = "queued", "sending", "sent", "accepted", "skipped"
PENDING = (QUEUED, SENDING, SENT)  # not yet judged by the chain


class OffersRefusedError(FlexledgerError):
    """Offers the relay will not queue; ``problems`` lists each refused offer's index and reason
    (``code``: not_an_offer, duplicate or the OrderBook's custom error name)."""

    def __init__(self, message: str, problems: list[dict[str, Any]], *, status: int = 422, hint: str | None = None):
        super().__init__(message, hint=hint)
        self.problems, self.status = problems, status


def subject_of(offer: Offer) -> str:
    return f"asset:{offer.asset}" if offer.asset else f"portfolio:{offer.portfolio}"


def _subject_key(subject: str) -> tuple[int, int]:
    kind, _, number = subject.partition(":")
    return (int(number), 0) if kind == "asset" else (0, int(number))


@dataclass(frozen=True)
class Intake:
    """Offers read and judged, ready to queue (``digests`` and ``signers`` by position)."""

    offers: list[SignedOffer]
    digests: list[str]
    signers: list[str]


def check_offers(session: Session, deployment: Deployment, items: Sequence[Any], *, relayer: str,
                 chain: ChainReads | None = None) -> Intake:
    """Read and judge ``items`` (``{"typedData", "signature"}`` each) as the OrderBook would if
    ``relayer`` sent them in the next block, after the offers already waiting in the queue;
    OffersRefusedError lists every offer that would be refused (nothing is queued then). ``chain``
    keeps the latest block's reads between calls (a server's many lists)."""
    domain = deployment.book_domain
    separator = domain.separator()
    offers: list[SignedOffer] = []
    problems: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        try:
            offers.append(read_signed(item, domain, f"offer {i}"))
        except SignedOfferError as exc:
            problems.append({"index": i, "code": "not_an_offer", "reason": exc.message})
    if problems:
        raise OffersRefusedError(f"{len(problems)} of {len(items)} offers cannot be read", problems,
                           hint=SignedOfferError.hint)
    digests = ["0x" + s.offer.digest(separator).hex() for s in offers]
    known = dict(session.execute(select(QueuedOffer.digest, QueuedOffer.status)
                                 .where(QueuedOffer.digest.in_(set(digests)))).all())
    first: dict[str, int] = {}
    for i, digest in enumerate(digests):
        if digest in known or digest in first:
            status = known.get(digest, f"given first as offer {first.get(digest)}")
            problems.append({"index": i, "code": "duplicate", "digest": digest, "reason": f"already {status}"})
        first.setdefault(digest, i)
    if problems:
        raise OffersRefusedError("offers already submitted (each digest is queued once)", problems, status=409,
                           hint="follow them at GET /v1/offers/{digest}")
    reads = (chain or ChainReads(deployment)).latest()
    verdicts = judge_offers(deployment, offers, relayer=relayer, now=reads.timestamp + 1, reads=reads,
                            last_nonces=_waiting_nonces(session, {subject_of(s.offer) for s in offers}))
    # the reason is the custom error the contract would skip the offer with (OrderBookInvalidPower, ...)
    problems = [{"index": i, "code": v.problem, "reason": v.problem}
                for i, v in enumerate(verdicts) if v.problem is not None]
    if problems:
        raise OffersRefusedError(f"{len(problems)} of {len(items)} offers would be refused by the OrderBook", problems)
    return Intake(offers, digests, [str(v.signer) for v in verdicts])


def _waiting_nonces(session: Session, subjects: set[str]) -> dict[tuple[int, int], int]:
    """The highest nonce of each subject's offers still on their way: a later offer must exceed it."""
    rows = session.execute(select(QueuedOffer.subject, func.max(QueuedOffer.nonce))
                           .where(QueuedOffer.subject.in_(subjects), QueuedOffer.status.in_(PENDING))
                           .group_by(QueuedOffer.subject)).all()
    return {_subject_key(subject): int(nonce) for subject, nonce in rows}


def enqueue(session: Session, intake: Intake, *, submitter: str) -> list[QueuedOffer]:
    """Queue the checked offers in one transaction (OffersRefusedError 409 when a concurrent submission
    queued one of them first)."""
    now = int(time.time())
    rows = [QueuedOffer(digest=digest, submitter=submitter, signer=signer, market=s.offer.market,
                        subject=subject_of(s.offer), nonce=s.offer.nonce, packed=s.offer.pack(), signature=s.signature,
                        status=QUEUED, queued_at=now, updated_at=now, attempts=0)
            for s, digest, signer in zip(intake.offers, intake.digests, intake.signers, strict=True)]
    session.add_all(rows)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise OffersRefusedError("an offer was queued by another submission meanwhile", [], status=409,
                           hint="follow it at GET /v1/offers/{digest}") from None
    return rows


def offer_status(session: Session, digest: str) -> QueuedOffer | None:
    return session.get(QueuedOffer, digest.lower())
