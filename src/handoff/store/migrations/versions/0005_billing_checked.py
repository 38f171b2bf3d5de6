"""When billing last read a deal's open invoices from the ERP: the month-end freshness check.

Revision ID: 0005
Revises: 0004
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('provisioning', sa.Column('billing_checked_at', sa.DateTime(timezone=True),
                                            nullable=True))


def downgrade() -> None:
    op.drop_column('provisioning', 'billing_checked_at')
