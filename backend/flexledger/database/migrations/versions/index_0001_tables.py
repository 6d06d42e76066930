"""index: the indexer's tables (blocks, checkpoint, events and the typed tables of flexledger.index.tables).

uint64 columns are BIGINT (flexledger.index.columns.U64 keeps the values from 2**63 as their two's
complement) and uint256 ones VARCHAR(78) of decimal digits (U256): what the types store.

Revision ID: index_0001
Revises:
Create Date: 2026-12-07 23:49:17.810336
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = 'index_0001'
down_revision = None
branch_labels = ('index',)
depends_on = None


def upgrade() -> None:
    op.create_table('anchored_baselines',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('market', sa.BigInteger(), nullable=True),
    sa.Column('isp_start', sa.BigInteger(), nullable=True),
    sa.Column('oracle', sa.String(length=42), nullable=True),
    sa.Column('root', sa.String(length=66), nullable=True),
    sa.Column('leaf_count', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_anchored_baselines'))
    )
    with op.batch_alter_table('anchored_baselines', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_anchored_baselines_block_number'), ['block_number'], unique=False)

    op.create_table('anchored_roots',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('market', sa.BigInteger(), nullable=True),
    sa.Column('isp_start', sa.BigInteger(), nullable=True),
    sa.Column('oracle', sa.String(length=42), nullable=True),
    sa.Column('root', sa.String(length=66), nullable=True),
    sa.Column('leaf_count', sa.BigInteger(), nullable=True),
    sa.Column('anchored_at', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_anchored_roots'))
    )
    with op.batch_alter_table('anchored_roots', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_anchored_roots_block_number'), ['block_number'], unique=False)

    op.create_table('asset_mappings',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.BigInteger(), nullable=True),
    sa.Column('zone_id', sa.BigInteger(), nullable=True),
    sa.Column('up_w', sa.BigInteger(), nullable=True),
    sa.Column('down_w', sa.BigInteger(), nullable=True),
    sa.Column('dso', sa.String(length=42), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_asset_mappings'))
    )
    with op.batch_alter_table('asset_mappings', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_asset_mappings_block_number'), ['block_number'], unique=False)

    op.create_table('assets',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('asset_id', sa.BigInteger(), nullable=True),
    sa.Column('owner', sa.String(length=42), nullable=True),
    sa.Column('meter', sa.String(length=42), nullable=True),
    sa.Column('asset_type', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_assets'))
    )
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_assets_block_number'), ['block_number'], unique=False)

    op.create_table('awards',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('entry', sa.Integer(), nullable=False),
    sa.Column('result_id', sa.BigInteger(), nullable=False),
    sa.Column('seller', sa.String(length=42), nullable=False),
    sa.Column('offer_digest', sa.String(length=66), nullable=False),
    sa.Column('request_id', sa.BigInteger(), nullable=False),
    sa.Column('isp_start', sa.BigInteger(), nullable=False),
    sa.Column('power_w', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', 'entry', name=op.f('pk_awards'))
    )
    with op.batch_alter_table('awards', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_awards_block_number'), ['block_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_awards_offer_digest'), ['offer_digest'], unique=False)
        batch_op.create_index(batch_op.f('ix_awards_result_id'), ['result_id'], unique=False)

    op.create_table('baseline_disputes',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('offer_digest', sa.String(length=66), nullable=True),
    sa.Column('oracle_account', sa.String(length=42), nullable=True),
    sa.Column('meter', sa.String(length=42), nullable=True),
    sa.Column('isp_start', sa.BigInteger(), nullable=True),
    sa.Column('kind', sa.Integer(), nullable=True),
    sa.Column('fix', sa.String(length=66), nullable=True),
    sa.Column('baseline_wh', sa.BigInteger(), nullable=True),
    sa.Column('inputs_hash', sa.String(length=66), nullable=True),
    sa.Column('disputer', sa.String(length=42), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_baseline_disputes'))
    )
    with op.batch_alter_table('baseline_disputes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_baseline_disputes_block_number'), ['block_number'], unique=False)

    op.create_table('blocks',
    sa.Column('number', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.String(length=66), nullable=False),
    sa.Column('parent_hash', sa.String(length=66), nullable=False),
    sa.Column('timestamp', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('number', name=op.f('pk_blocks')),
    sa.UniqueConstraint('hash', name=op.f('uq_blocks_hash'))
    )
    op.create_table('checkpoint',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoint'))
    )
    op.create_table('clearing_results',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('result_id', sa.BigInteger(), nullable=True),
    sa.Column('market', sa.BigInteger(), nullable=True),
    sa.Column('day', sa.BigInteger(), nullable=True),
    sa.Column('author', sa.String(length=42), nullable=True),
    sa.Column('book_digest', sa.String(length=66), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_clearing_results'))
    )
    with op.batch_alter_table('clearing_results', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_clearing_results_block_number'), ['block_number'], unique=False)

    op.create_table('credential_revocations',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=42), nullable=True),
    sa.Column('role', sa.String(length=66), nullable=True),
    sa.Column('issuer', sa.String(length=42), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_credential_revocations'))
    )
    with op.batch_alter_table('credential_revocations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credential_revocations_block_number'), ['block_number'], unique=False)

    op.create_table('credentials',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('subject', sa.String(length=42), nullable=True),
    sa.Column('role', sa.String(length=66), nullable=True),
    sa.Column('valid_from', sa.BigInteger(), nullable=True),
    sa.Column('valid_until', sa.BigInteger(), nullable=True),
    sa.Column('credential_hash', sa.String(length=66), nullable=True),
    sa.Column('issuer', sa.String(length=42), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_credentials'))
    )
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credentials_block_number'), ['block_number'], unique=False)

    op.create_table('day_finalisations',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('market', sa.BigInteger(), nullable=True),
    sa.Column('day', sa.BigInteger(), nullable=True),
    sa.Column('result_id', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_day_finalisations'))
    )
    with op.batch_alter_table('day_finalisations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_day_finalisations_block_number'), ['block_number'], unique=False)

    op.create_table('dispatchers',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('market_id', sa.BigInteger(), nullable=True),
    sa.Column('previous', sa.String(length=42), nullable=True),
    sa.Column('dispatcher', sa.String(length=42), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_dispatchers'))
    )
    with op.batch_alter_table('dispatchers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dispatchers_block_number'), ['block_number'], unique=False)

    op.create_table('escrow_payments',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.BigInteger(), nullable=True),
    sa.Column('to', sa.String(length=42), nullable=True),
    sa.Column('amount', sa.String(length=78), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_escrow_payments'))
    )
    with op.batch_alter_table('escrow_payments', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_escrow_payments_block_number'), ['block_number'], unique=False)

    op.create_table('events',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('contract', sa.String(length=64), nullable=False),
    sa.Column('address', sa.String(length=42), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('args', sa.JSON(), nullable=False),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_events'))
    )
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_events_block_number'), ['block_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_events_name'), ['name'], unique=False)

    op.create_table('lights',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('entry', sa.Integer(), nullable=False),
    sa.Column('market_id', sa.BigInteger(), nullable=False),
    sa.Column('zone_id', sa.BigInteger(), nullable=False),
    sa.Column('isp_start', sa.BigInteger(), nullable=False),
    sa.Column('direction', sa.Integer(), nullable=False),
    sa.Column('colour', sa.Integer(), nullable=False),
    sa.Column('capability_w', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', 'entry', name=op.f('pk_lights'))
    )
    with op.batch_alter_table('lights', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lights_block_number'), ['block_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_lights_zone_id'), ['zone_id'], unique=False)

    op.create_table('markets',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('market_id', sa.BigInteger(), nullable=True),
    sa.Column('isp_seconds', sa.BigInteger(), nullable=True),
    sa.Column('gate_closure_seconds', sa.BigInteger(), nullable=True),
    sa.Column('day_offset_seconds', sa.BigInteger(), nullable=True),
    sa.Column('tolerance_bps', sa.Integer(), nullable=True),
    sa.Column('penalty_factor_bps', sa.BigInteger(), nullable=True),
    sa.Column('pricing_rule', sa.Integer(), nullable=True),
    sa.Column('challenge_window_seconds', sa.BigInteger(), nullable=True),
    sa.Column('dispute_window_seconds', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_markets'))
    )
    with op.batch_alter_table('markets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_markets_block_number'), ['block_number'], unique=False)

    op.create_table('meter_equivocations',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('offer_digest', sa.String(length=66), nullable=True),
    sa.Column('meter', sa.String(length=42), nullable=True),
    sa.Column('market', sa.BigInteger(), nullable=True),
    sa.Column('isp_start', sa.BigInteger(), nullable=True),
    sa.Column('disputer', sa.String(length=42), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_meter_equivocations'))
    )
    with op.batch_alter_table('meter_equivocations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_meter_equivocations_block_number'), ['block_number'], unique=False)

    op.create_table('offer_skips',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('index', sa.String(length=78), nullable=True),
    sa.Column('offer_digest', sa.String(length=66), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_offer_skips'))
    )
    with op.batch_alter_table('offer_skips', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_offer_skips_block_number'), ['block_number'], unique=False)

    op.create_table('offers',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('entry', sa.Integer(), nullable=False),
    sa.Column('digest', sa.String(length=66), nullable=False),
    sa.Column('seller', sa.String(length=42), nullable=False),
    sa.Column('day_start', sa.BigInteger(), nullable=False),
    sa.Column('market', sa.BigInteger(), nullable=False),
    sa.Column('asset', sa.BigInteger(), nullable=False),
    sa.Column('portfolio', sa.BigInteger(), nullable=False),
    sa.Column('start', sa.BigInteger(), nullable=False),
    sa.Column('isps', sa.Integer(), nullable=False),
    sa.Column('direction', sa.Integer(), nullable=False),
    sa.Column('power_w', sa.BigInteger(), nullable=False),
    sa.Column('price', sa.String(length=78), nullable=False),
    sa.Column('mode', sa.Integer(), nullable=False),
    sa.Column('min_power_w', sa.BigInteger(), nullable=False),
    sa.Column('baseline_method', sa.Integer(), nullable=False),
    sa.Column('baseline', sa.String(length=66), nullable=False),
    sa.Column('expiry', sa.BigInteger(), nullable=False),
    sa.Column('nonce', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', 'entry', name=op.f('pk_offers'))
    )
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_offers_block_number'), ['block_number'], unique=False)
        batch_op.create_index('ix_offers_subject', ['market', 'asset', 'portfolio'], unique=False)
        batch_op.create_index(batch_op.f('ix_offers_digest'), ['digest'], unique=False)

    op.create_table('omission_claims',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('market', sa.BigInteger(), nullable=True),
    sa.Column('isp_start', sa.BigInteger(), nullable=True),
    sa.Column('meter', sa.String(length=42), nullable=True),
    sa.Column('oracle_account', sa.String(length=42), nullable=True),
    sa.Column('claimant', sa.String(length=42), nullable=True),
    sa.Column('answer_by', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_omission_claims'))
    )
    with op.batch_alter_table('omission_claims', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_omission_claims_block_number'), ['block_number'], unique=False)

    op.create_table('portfolios',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('portfolio_id', sa.BigInteger(), nullable=True),
    sa.Column('aggregator', sa.String(length=42), nullable=True),
    sa.Column('zone_id', sa.BigInteger(), nullable=True),
    sa.Column('assets', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_portfolios'))
    )
    with op.batch_alter_table('portfolios', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_portfolios_block_number'), ['block_number'], unique=False)

    op.create_table('reading_disputes',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('offer_digest', sa.String(length=66), nullable=True),
    sa.Column('oracle_account', sa.String(length=42), nullable=True),
    sa.Column('isp_start', sa.BigInteger(), nullable=True),
    sa.Column('disputer', sa.String(length=42), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_reading_disputes'))
    )
    with op.batch_alter_table('reading_disputes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_reading_disputes_block_number'), ['block_number'], unique=False)

    op.create_table('refunds',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.BigInteger(), nullable=True),
    sa.Column('buyer', sa.String(length=42), nullable=True),
    sa.Column('amount', sa.String(length=78), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_refunds'))
    )
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_refunds_block_number'), ['block_number'], unique=False)

    op.create_table('request_cancellations',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.BigInteger(), nullable=True),
    sa.Column('market', sa.BigInteger(), nullable=True),
    sa.Column('day_start', sa.BigInteger(), nullable=True),
    sa.Column('refund', sa.String(length=78), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_request_cancellations'))
    )
    with op.batch_alter_table('request_cancellations', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_request_cancellations_block_number'), ['block_number'], unique=False)

    op.create_table('requests',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.BigInteger(), nullable=True),
    sa.Column('market', sa.BigInteger(), nullable=True),
    sa.Column('day_start', sa.BigInteger(), nullable=True),
    sa.Column('buyer', sa.String(length=42), nullable=True),
    sa.Column('zone', sa.BigInteger(), nullable=True),
    sa.Column('start', sa.BigInteger(), nullable=True),
    sa.Column('isps', sa.Integer(), nullable=True),
    sa.Column('direction', sa.Integer(), nullable=True),
    sa.Column('power_w', sa.BigInteger(), nullable=True),
    sa.Column('max_price', sa.String(length=78), nullable=True),
    sa.Column('product', sa.Integer(), nullable=True),
    sa.Column('purpose', sa.Integer(), nullable=True),
    sa.Column('escrow', sa.String(length=78), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_requests'))
    )
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_requests_block_number'), ['block_number'], unique=False)

    op.create_table('result_challenges',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('result_id', sa.BigInteger(), nullable=True),
    sa.Column('offer_digest', sa.String(length=66), nullable=True),
    sa.Column('newer_digest', sa.String(length=66), nullable=True),
    sa.Column('prover', sa.String(length=42), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_result_challenges'))
    )
    with op.batch_alter_table('result_challenges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_result_challenges_block_number'), ['block_number'], unique=False)

    op.create_table('result_closures',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('result_id', sa.BigInteger(), nullable=True),
    sa.Column('market', sa.BigInteger(), nullable=True),
    sa.Column('day', sa.BigInteger(), nullable=True),
    sa.Column('replaced', sa.BigInteger(), nullable=True),
    sa.Column('dso_value', sa.String(length=78), nullable=True),
    sa.Column('tso_value', sa.String(length=78), nullable=True),
    sa.Column('challenge_ends', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_result_closures'))
    )
    with op.batch_alter_table('result_closures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_result_closures_block_number'), ['block_number'], unique=False)

    op.create_table('settlement_finals',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('offer_digest', sa.String(length=66), nullable=True),
    sa.Column('result_id', sa.BigInteger(), nullable=True),
    sa.Column('claimed', sa.String(length=78), nullable=True),
    sa.Column('from_bond', sa.String(length=78), nullable=True),
    sa.Column('debt', sa.String(length=78), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_settlement_finals'))
    )
    with op.batch_alter_table('settlement_finals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlement_finals_block_number'), ['block_number'], unique=False)

    op.create_table('settlements',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('entry', sa.Integer(), nullable=False),
    sa.Column('offer_digest', sa.String(length=66), nullable=False),
    sa.Column('result_id', sa.BigInteger(), nullable=False),
    sa.Column('seller', sa.String(length=42), nullable=False),
    sa.Column('settled_at', sa.BigInteger(), nullable=False),
    sa.Column('request_id', sa.BigInteger(), nullable=False),
    sa.Column('isp_start', sa.BigInteger(), nullable=False),
    sa.Column('payment', sa.String(length=78), nullable=False),
    sa.Column('claim', sa.String(length=78), nullable=False),
    sa.Column('uncovered', sa.String(length=78), nullable=False),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', 'entry', name=op.f('pk_settlements'))
    )
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_settlements_block_number'), ['block_number'], unique=False)
        batch_op.create_index(batch_op.f('ix_settlements_offer_digest'), ['offer_digest'], unique=False)

    op.create_table('token_transfers',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('from', sa.String(length=42), nullable=True),
    sa.Column('to', sa.String(length=42), nullable=True),
    sa.Column('value', sa.String(length=78), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_token_transfers'))
    )
    with op.batch_alter_table('token_transfers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_token_transfers_block_number'), ['block_number'], unique=False)

    op.create_table('withdrawals',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('account', sa.String(length=42), nullable=True),
    sa.Column('amount', sa.String(length=78), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_withdrawals'))
    )
    with op.batch_alter_table('withdrawals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_withdrawals_block_number'), ['block_number'], unique=False)

    op.create_table('zones',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('zone_id', sa.BigInteger(), nullable=True),
    sa.Column('parent', sa.BigInteger(), nullable=True),
    sa.Column('operator', sa.String(length=42), nullable=True),
    sa.Column('depth', sa.Integer(), nullable=True),
    sa.Column('max_asset_power_w', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', name=op.f('pk_zones'))
    )
    with op.batch_alter_table('zones', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_zones_block_number'), ['block_number'], unique=False)

    op.create_table('offer_replacements',
    sa.Column('block_number', sa.BigInteger(), nullable=False),
    sa.Column('block_hash', sa.String(length=66), nullable=False),
    sa.Column('tx_hash', sa.String(length=66), nullable=False),
    sa.Column('log_index', sa.Integer(), nullable=False),
    sa.Column('entry', sa.Integer(), nullable=False),
    sa.Column('replaced_digest', sa.String(length=66), nullable=False),
    sa.Column('by_digest', sa.String(length=66), nullable=False),
    sa.PrimaryKeyConstraint('block_hash', 'tx_hash', 'log_index', 'entry', 'replaced_digest',
                            name=op.f('pk_offer_replacements'))
    )
    op.create_index(op.f('ix_offer_replacements_block_number'), 'offer_replacements', ['block_number'], unique=False)
    op.create_index(op.f('ix_offer_replacements_by_digest'), 'offer_replacements', ['by_digest'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_offer_replacements_by_digest'), table_name='offer_replacements')
    op.drop_index(op.f('ix_offer_replacements_block_number'), table_name='offer_replacements')
    op.drop_table('offer_replacements')
    with op.batch_alter_table('zones', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_zones_block_number'))

    op.drop_table('zones')
    with op.batch_alter_table('withdrawals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_withdrawals_block_number'))

    op.drop_table('withdrawals')
    with op.batch_alter_table('token_transfers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_token_transfers_block_number'))

    op.drop_table('token_transfers')
    with op.batch_alter_table('settlements', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settlements_offer_digest'))
        batch_op.drop_index(batch_op.f('ix_settlements_block_number'))

    op.drop_table('settlements')
    with op.batch_alter_table('settlement_finals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_settlement_finals_block_number'))

    op.drop_table('settlement_finals')
    with op.batch_alter_table('result_closures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_result_closures_block_number'))

    op.drop_table('result_closures')
    with op.batch_alter_table('result_challenges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_result_challenges_block_number'))

    op.drop_table('result_challenges')
    with op.batch_alter_table('requests', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_requests_block_number'))

    op.drop_table('requests')
    with op.batch_alter_table('request_cancellations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_request_cancellations_block_number'))

    op.drop_table('request_cancellations')
    with op.batch_alter_table('refunds', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_refunds_block_number'))

    op.drop_table('refunds')
    with op.batch_alter_table('reading_disputes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_reading_disputes_block_number'))

    op.drop_table('reading_disputes')
    with op.batch_alter_table('portfolios', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_portfolios_block_number'))

    op.drop_table('portfolios')
    with op.batch_alter_table('omission_claims', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_omission_claims_block_number'))

    op.drop_table('omission_claims')
    with op.batch_alter_table('offers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_offers_digest'))
        batch_op.drop_index('ix_offers_subject')
        batch_op.drop_index(batch_op.f('ix_offers_block_number'))

    op.drop_table('offers')
    with op.batch_alter_table('offer_skips', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_offer_skips_block_number'))

    op.drop_table('offer_skips')
    with op.batch_alter_table('meter_equivocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_meter_equivocations_block_number'))

    op.drop_table('meter_equivocations')
    with op.batch_alter_table('markets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_markets_block_number'))

    op.drop_table('markets')
    with op.batch_alter_table('lights', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lights_zone_id'))
        batch_op.drop_index(batch_op.f('ix_lights_block_number'))

    op.drop_table('lights')
    with op.batch_alter_table('events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_events_name'))
        batch_op.drop_index(batch_op.f('ix_events_block_number'))

    op.drop_table('events')
    with op.batch_alter_table('escrow_payments', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_escrow_payments_block_number'))

    op.drop_table('escrow_payments')
    with op.batch_alter_table('dispatchers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dispatchers_block_number'))

    op.drop_table('dispatchers')
    with op.batch_alter_table('day_finalisations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_day_finalisations_block_number'))

    op.drop_table('day_finalisations')
    with op.batch_alter_table('credentials', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credentials_block_number'))

    op.drop_table('credentials')
    with op.batch_alter_table('credential_revocations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credential_revocations_block_number'))

    op.drop_table('credential_revocations')
    with op.batch_alter_table('clearing_results', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_clearing_results_block_number'))

    op.drop_table('clearing_results')
    op.drop_table('checkpoint')
    op.drop_table('blocks')
    with op.batch_alter_table('baseline_disputes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_baseline_disputes_block_number'))

    op.drop_table('baseline_disputes')
    with op.batch_alter_table('awards', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_awards_result_id'))
        batch_op.drop_index(batch_op.f('ix_awards_offer_digest'))
        batch_op.drop_index(batch_op.f('ix_awards_block_number'))

    op.drop_table('awards')
    with op.batch_alter_table('assets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_assets_block_number'))

    op.drop_table('assets')
    with op.batch_alter_table('asset_mappings', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_asset_mappings_block_number'))

    op.drop_table('asset_mappings')
    with op.batch_alter_table('anchored_roots', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_anchored_roots_block_number'))

    op.drop_table('anchored_roots')
    with op.batch_alter_table('anchored_baselines', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_anchored_baselines_block_number'))

    op.drop_table('anchored_baselines')
