"""The relay's offer queue: signed offers by digest, with their status on the way to the OrderBook.

Revision ID: relay_0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "relay_0001"
down_revision = None
branch_labels = ("relay",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "relay_offers",
        sa.Column("digest", sa.String(length=66), nullable=False),
        sa.Column("submitter", sa.String(length=42), nullable=False),
        sa.Column("signer", sa.String(length=42), nullable=False),
        sa.Column("market", sa.BigInteger(), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=False),
        sa.Column("packed", sa.LargeBinary(length=93), nullable=False),
        sa.Column("signature", sa.LargeBinary(length=65), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("queued_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("from_block", sa.BigInteger(), nullable=True),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("reason", sa.String(length=200), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_relay_offers")),
    )
    for column in ("signer", "status", "subject", "submitter"):
        op.create_index(op.f(f"ix_relay_offers_{column}"), "relay_offers", [column], unique=False)


def downgrade() -> None:
    for column in ("signer", "status", "subject", "submitter"):
        op.drop_index(op.f(f"ix_relay_offers_{column}"), table_name="relay_offers")
    op.drop_table("relay_offers")
