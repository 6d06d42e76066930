"""The relayer: queued offers to the OrderBook in batches, with the aggregator's key, through the
market's relay function (:func:`flexledger.book.order_book.relay_offers`).

Each step is recorded before the next, so that a relayer killed at any point resumes without
sending an offer twice into the book or losing one:

1. claim: the batch's rows go ``sending`` with the head's block number (committed);
2. broadcast: ``on_sent`` records the transaction hash and each offer's position (``sent``);
3. mined: each offer ``accepted``, or ``skipped`` with the contract's reason.

``reconcile`` (at start, and after a failed batch) finishes what a crash left: a ``sent`` batch is
read from its receipt; a ``sending`` row, which may or may not have gone out, is looked for among
the ``OffersAccepted`` events since its block, and queued again only if absent. The chain itself
stops the worst case: an offer's nonce is used once, so a second send of an accepted offer is
skipped (``OrderBookStaleNonce``), never accepted twice.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

from hexbytes import HexBytes
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from web3.exceptions import TransactionNotFound

from flexledger.book.order_book import RelayOutcome, SignedOffer, batch_outcomes, relay_offers
from flexledger.chain.client import TxResult, wait_for
from flexledger.chain.errors import ContractRevertError, TransactionError
from flexledger.errors import FlexledgerError
from flexledger.relay.queue import ACCEPTED, QUEUED, SENDING, SENT, SKIPPED
from flexledger.relay.tables import QueuedOffer
from flexledger.rules.orders import Offer, unpack_accepted

if TYPE_CHECKING:
    from flexledger.deployment import Deployment

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5  # a batch the node keeps refusing: its offers end skipped, with the node's reason
PENDING_WAIT = 60.0  # seconds to let the relay account's pending transactions be mined before reconciling
STUCK_AFTER = 120.0  # seconds a sent batch may wait for its block before it is sent again at a higher fee


class Relayer:
    """Relays the queue of ``sessions``' database with ``deployment``'s signer (the aggregator)."""

    def __init__(self, sessions: sessionmaker[Session], deployment: Deployment, *, batch: int = 200,
                 pending_wait: float = PENDING_WAIT, stuck_after: float = STUCK_AFTER) -> None:
        if deployment.signer is None:
            raise FlexledgerError("the relayer needs the aggregator's key", hint="start it with --key KEYSTORE")
        self.sessions, self.deployment, self.batch = sessions, deployment, batch
        self.pending_wait, self.stuck_after = pending_wait, stuck_after
        self.book = deployment.order_book
        self.separator = deployment.book_separator

    def _digest(self, offer: Offer) -> str:
        return "0x" + offer.digest(self.separator).hex()

    def step(self) -> int:
        """Relay one batch of the oldest queued offers; how many were relayed (0: the queue is empty)."""
        conn = self.deployment.conn
        with self.sessions() as session:
            # oldest first, each subject's nonces in order (the book takes them strictly increasing)
            rows = list(session.scalars(select(QueuedOffer).where(QueuedOffer.status == QUEUED)
                                        .order_by(QueuedOffer.queued_at, QueuedOffer.subject, QueuedOffer.nonce)
                                        .limit(self.batch)))
            if not rows:
                return 0
            head = conn.w3.eth.block_number
            now = int(time.time())
            for row in rows:
                row.status, row.from_block, row.attempts, row.updated_at = SENDING, head, row.attempts + 1, now
                row.tx_hash = row.position = None
            session.commit()
            by_digest = {row.digest: row for row in rows}
            signed = [SignedOffer(Offer.unpack(row.packed), row.signature) for row in rows]

            def on_sent(tx_hash: str, batch: list[SignedOffer]) -> None:
                for position, offer in enumerate(batch):
                    row = by_digest[self._digest(offer.offer)]
                    row.status, row.tx_hash, row.position, row.updated_at = SENT, tx_hash, position, int(time.time())
                session.commit()

            try:
                report = relay_offers(self.book, signed, batch_size=len(signed), on_sent=on_sent)
            except Exception as exc:  # the node refused the batch, or went away: the rows say where it stopped
                log.warning("relaying a batch of %d offers failed: %s", len(rows), exc)
                session.rollback()
                self.reconcile()  # first: what went out anyway is found accepted, the rest queued again
                self._give_up_after_attempts(session, [row.digest for row in rows], str(exc))
                return len(rows)
            self._record(session, by_digest, report.outcomes)
            return len(rows)

    def _record(self, session: Session, rows: dict[str, QueuedOffer], outcomes: list[RelayOutcome]) -> None:
        now = int(time.time())
        for outcome in outcomes:
            row = rows[self._digest(outcome.offer)]
            row.tx_hash, row.updated_at = outcome.tx_hash, now
            if outcome.accepted:
                row.status, row.reason = ACCEPTED, None
            else:
                row.status, row.reason = SKIPPED, type(outcome.reason).__name__ if outcome.reason else "skipped"
        session.commit()

    def _give_up_after_attempts(self, session: Session, digests: list[str], why: str) -> None:
        """Rows queued again after MAX_ATTEMPTS tries end skipped, with the node's last word."""
        session.expire_all()  # reconcile changed them in its own session
        for row in session.scalars(select(QueuedOffer).where(QueuedOffer.digest.in_(digests),
                                                             QueuedOffer.status == QUEUED)):
            if row.attempts >= MAX_ATTEMPTS:
                row.status, row.reason, row.updated_at = SKIPPED, f"relay failed: {why}"[:200], int(time.time())
        session.commit()

    def reconcile(self) -> None:
        """Settle every row a crash or a failed batch left ``sending`` or ``sent`` (see the module)."""
        self._wait_for_pending()
        with self.sessions() as session:
            sent = list(session.scalars(select(QueuedOffer).where(QueuedOffer.status == SENT)))
            for tx_hash in sorted({str(row.tx_hash) for row in sent}):
                batch = sorted((r for r in sent if r.tx_hash == tx_hash), key=lambda r: r.position or 0)
                mined = self._mined(session, tx_hash, batch)
                if mined is None:  # dropped or reverted: the offers are as if never sent
                    for row in batch:
                        row.status, row.tx_hash, row.position = SENDING, None, None
                    continue
                outcomes = batch_outcomes(mined, [SignedOffer(Offer.unpack(r.packed), r.signature) for r in batch])
                self._record(session, {r.digest: r for r in batch}, outcomes)
            session.commit()
            sending = list(session.scalars(select(QueuedOffer).where(QueuedOffer.status == SENDING)))
            if not sending:
                return
            landed = self._accepted_since(min(int(r.from_block or 0) for r in sending))
            now = int(time.time())
            for row in sending:
                if row.digest in landed:
                    row.status, row.tx_hash, row.reason = ACCEPTED, landed[row.digest], None
                elif row.status == SENDING:
                    row.status = QUEUED
                row.updated_at = now
            session.commit()

    def _wait_for_pending(self) -> None:
        """Until the relay account has nothing pending: a transaction still in the pool may yet
        accept the offers a reconcile would otherwise queue again."""
        signer = self.deployment.signer
        assert signer is not None
        eth = self.deployment.conn.w3.eth
        deadline = time.monotonic() + self.pending_wait
        while eth.get_transaction_count(signer.account.address, "pending") > eth.get_transaction_count(
                signer.account.address, "latest") and time.monotonic() < deadline:
            time.sleep(0.2)
        signer.forget_nonce()

    def _mined(self, session: Session, tx_hash: str, batch: list[QueuedOffer]) -> TxResult | None:
        """The mined batch with its events; None when the node no longer knows the transaction or it
        reverted (nothing of it went in). One still pending after ``stuck_after`` is sent again at a
        higher fee (the rows follow the new hash), and that one is awaited."""
        conn = self.deployment.conn
        try:
            conn.w3.eth.get_transaction(HexBytes(tx_hash))
        except TransactionNotFound:
            return None
        try:
            return wait_for(conn, TxResult(tx_hash, "OrderBook", "submitOffers"), timeout=self.stuck_after)
        except ContractRevertError:  # the whole batch reverted: none of its offers went in
            return None
        except TransactionError:  # not mined in time: stuck, most likely under a rise of the base fee
            signer = self.deployment.signer
            assert signer is not None
            try:
                replacement = "0x" + signer.replace(tx_hash).hex().removeprefix("0x")
            except Exception as exc:  # mined meanwhile ("nonce too low"): the first is the one
                log.info("replacing %s was refused (%s): waiting for it", tx_hash, exc)
                replacement = tx_hash
            for row in batch:
                row.tx_hash, row.updated_at = replacement, int(time.time())
            session.commit()
            log.warning("relay transaction %s stuck: sent again at a higher fee as %s", tx_hash, replacement)
            try:
                return wait_for(conn, TxResult(replacement, "OrderBook", "submitOffers"))
            except ContractRevertError:
                return None

    def _accepted_since(self, block: int) -> dict[str, str]:
        """Digest -> transaction hash of every offer the book accepted from ``block`` on."""
        out: dict[str, str] = {}
        for event in self.book.events("OffersAccepted", from_block=block):
            for _seller, offer in unpack_accepted(bytes(event.args["offers"])):
                out[self._digest(offer)] = event.tx_hash
        return out

    def run(self, stop: threading.Event, *, interval: float = 0.5) -> None:
        """Reconcile, then relay until ``stop`` is set, resting ``interval`` when the queue is empty."""
        self.reconcile()
        while not stop.is_set():
            try:
                if self.step() == 0:
                    stop.wait(interval)
            except FlexledgerError as exc:  # the node or the database away: try again shortly
                log.warning("relayer: %s", exc)
                stop.wait(interval)
