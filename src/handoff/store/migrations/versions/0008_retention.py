"""What the lineage keeps of inbox events that retention removed.

Revision ID: 0008
Revises: 0007
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'inbox_pruned',
        sa.Column('subject', sa.String(255), primary_key=True),
        sa.Column('events', sa.BigInteger, nullable=False),
        sa.Column('deliveries', sa.BigInteger, nullable=False),
        sa.Column('first_received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_received_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('archive', sa.Text),
        sa.Column('pruned_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('inbox_pruned')
