"""The API's tables: sign-in nonces (EIP-4361, single use) and API keys (stored hashed).

Revision ID: api_0001
Revises:
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "api_0001"
down_revision = None
branch_labels = ("api",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_nonces",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("issued_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.Column("used_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("nonce", name=op.f("pk_api_nonces")),
    )
    op.create_index(op.f("ix_api_nonces_expires_at"), "api_nonces", ["expires_at"], unique=False)
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("party", sa.String(length=42), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("revoked_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index(op.f("ix_api_keys_party"), "api_keys", ["party"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_api_keys_party"), table_name="api_keys")
    op.drop_table("api_keys")
    op.drop_index(op.f("ix_api_nonces_expires_at"), table_name="api_nonces")
    op.drop_table("api_nonces")
