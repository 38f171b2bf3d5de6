"""Reconciliation runs, their findings, and acknowledgements of findings.

Revision ID: 0006
Revises: 0005
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | Sequence[str] | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUTO_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def upgrade() -> None:
    op.create_table(
        'reconcile_runs',
        sa.Column('id', AUTO_ID, primary_key=True),
        sa.Column('trigger', sa.String(20), nullable=False),
        sa.Column('scheduled_for', sa.DateTime(timezone=True), unique=True),
        sa.Column('as_of', sa.Date),
        sa.Column('status', sa.String(20), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('finished_at', sa.DateTime(timezone=True)),
        sa.Column('contracts', sa.Integer),
        sa.Column('counts', sa.JSON),
        sa.Column('total', sa.Integer),
        sa.Column('snapshot', sa.Text),
        sa.Column('error', sa.Text),
    )
    op.create_table(
        'reconcile_findings',
        sa.Column('run_id', sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column('deal_id', sa.String(64), primary_key=True),
        sa.Column('kind', sa.String(40), primary_key=True),
        sa.Column('currency', sa.String(40), nullable=False),
        sa.Column('amounts', sa.JSON, nullable=False),
        sa.Column('explanation', sa.Text, nullable=False),
        sa.Column('repair', sa.Text, nullable=False),
    )
    op.create_table(
        'reconcile_acks',
        sa.Column('id', AUTO_ID, primary_key=True),
        sa.Column('deal_id', sa.String(64), nullable=False),
        sa.Column('kind', sa.String(40), nullable=False),
        sa.Column('acknowledged_by', sa.String(128), nullable=False),
        sa.Column('reason', sa.Text, nullable=False),
        sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('cleared_at', sa.DateTime(timezone=True)),
    )
    op.create_index('ix_reconcile_acks_open', 'reconcile_acks', ['deal_id', 'kind', 'cleared_at'])


def downgrade() -> None:
    op.drop_index('ix_reconcile_acks_open', 'reconcile_acks')
    for table in ('reconcile_acks', 'reconcile_findings', 'reconcile_runs'):
        op.drop_table(table)
