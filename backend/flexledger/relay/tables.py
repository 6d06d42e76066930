"""The offer queue's table (the Alembic branch ``relay``)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from flexledger.database.engine import Base


class QueuedOffer(Base):
    """One signed offer, keyed by its EIP-712 digest (so a second submission cannot queue it twice).

    ``status``: queued, sending (claimed by a batch, maybe broadcast), sent (``tx_hash`` known),
    accepted, skipped (``reason``: the contract's error). ``from_block`` is the head when the batch
    was claimed: a restarted relayer looks for the offer's acceptance from there.
    """

    __tablename__ = "relay_offers"

    digest: Mapped[str] = mapped_column(String(66), primary_key=True)
    submitter: Mapped[str] = mapped_column(String(42), index=True)
    signer: Mapped[str] = mapped_column(String(42), index=True)
    market: Mapped[int] = mapped_column(BigInteger)
    subject: Mapped[str] = mapped_column(String(32), index=True)  # "asset:<id>" or "portfolio:<id>" (uint64 ids)
    nonce: Mapped[int] = mapped_column(BigInteger)
    packed: Mapped[bytes] = mapped_column(LargeBinary(93))
    signature: Mapped[bytes] = mapped_column(LargeBinary(65))
    status: Mapped[str] = mapped_column(String(16), index=True)
    queued_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    from_block: Mapped[int | None] = mapped_column(BigInteger)
    position: Mapped[int | None] = mapped_column(Integer)  # its index in the sent batch (OfferSkipped's index)
    tx_hash: Mapped[str | None] = mapped_column(String(66))
    reason: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
