"""The lifecycle: approved plan versions, amendments, time entries, poll cursors; invoices
keyed by billing document (a line may have a true-up invoice or a credit note after an
amendment).

Revision ID: 0004
Revises: 0003
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('provisioning', sa.Column('project_sent', sa.JSON(), nullable=True))
    op.add_column('provisioning', sa.Column('crm_terms', sa.JSON(), nullable=True))
    with op.batch_alter_table('invoices', recreate='always') as batch:
        batch.alter_column('milestone_id', new_column_name='document_id',
                           existing_type=sa.String(length=64), type_=sa.String(length=80),
                           existing_nullable=False)
        batch.add_column(sa.Column('line_id', sa.String(length=64), nullable=True))
    op.execute("UPDATE invoices SET line_id = document_id")
    with op.batch_alter_table('invoices') as batch:
        batch.alter_column('line_id', existing_type=sa.String(length=64), nullable=False)
    op.create_table('plan_versions',
    sa.Column('opportunity_id', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('terms', sa.JSON(), nullable=False),
    sa.Column('amendment_id', sa.String(length=100), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('opportunity_id', 'version')
    )
    op.create_table('amendments',
    sa.Column('id', sa.String(length=100), nullable=False),
    sa.Column('opportunity_id', sa.String(length=64), nullable=False),
    sa.Column('correlation_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('base_version', sa.Integer(), nullable=False),
    sa.Column('before', sa.JSON(), nullable=False),
    sa.Column('after', sa.JSON(), nullable=False),
    sa.Column('requester', sa.String(length=128), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('origin', sa.String(length=20), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_by', sa.String(length=128), nullable=True),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decision_reason', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_amendments_deal', 'amendments', ['opportunity_id', 'status'])
    op.create_table('time_entries',
    sa.Column('opportunity_id', sa.String(length=64), nullable=False),
    sa.Column('entry_id', sa.String(length=64), nullable=False),
    sa.Column('work_date', sa.Date(), nullable=False),
    sa.Column('hours', sa.String(length=40), nullable=False),
    sa.Column('rate', sa.String(length=40), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('person', sa.String(length=128), nullable=True),
    sa.Column('version', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('opportunity_id', 'entry_id')
    )
    op.create_table('poll_cursors',
    sa.Column('system', sa.String(length=40), nullable=False),
    sa.Column('object', sa.String(length=64), nullable=False),
    sa.Column('cursor', sa.String(length=64), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('system', 'object')
    )


def downgrade() -> None:
    op.drop_table('poll_cursors')
    op.drop_table('time_entries')
    op.drop_index('ix_amendments_deal', table_name='amendments')
    op.drop_table('amendments')
    op.drop_table('plan_versions')
    with op.batch_alter_table('invoices', recreate='always') as batch:
        batch.drop_column('line_id')
        batch.alter_column('document_id', new_column_name='milestone_id')
    op.drop_column('provisioning', 'crm_terms')
    op.drop_column('provisioning', 'project_sent')
