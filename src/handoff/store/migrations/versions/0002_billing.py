"""Billing: milestone progress from delivery and the invoices each milestone became.

Revision ID: 0002
Revises: 0001
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0002'
down_revision: str | Sequence[str] | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('provisioning', sa.Column('billing_written_back', sa.String(length=64),
                                            nullable=True))
    op.add_column('provisioning', sa.Column('billing_note', sa.Text(), server_default='',
                                            nullable=False))
    op.create_table('milestone_progress',
    sa.Column('opportunity_id', sa.String(length=64), nullable=False),
    sa.Column('milestone_id', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('achieved_on', sa.Date(), nullable=True),
    sa.Column('accepted_on', sa.Date(), nullable=True),
    sa.Column('version', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('opportunity_id', 'milestone_id')
    )
    op.create_table('invoices',
    sa.Column('opportunity_id', sa.String(length=64), nullable=False),
    sa.Column('milestone_id', sa.String(length=64), nullable=False),
    sa.Column('external_id', sa.String(length=160), nullable=False),
    sa.Column('system', sa.String(length=40), nullable=False),
    sa.Column('target_id', sa.String(length=64), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('untaxed', sa.String(length=40), nullable=False),
    sa.Column('tax', sa.String(length=40), nullable=False),
    sa.Column('total', sa.String(length=40), nullable=False),
    sa.Column('amount_due', sa.String(length=40), nullable=False),
    sa.Column('invoice_date', sa.Date(), nullable=True),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('observed_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('opportunity_id', 'milestone_id')
    )


def downgrade() -> None:
    op.drop_table('invoices')
    op.drop_table('milestone_progress')
    op.drop_column('provisioning', 'billing_note')
    op.drop_column('provisioning', 'billing_written_back')
