"""Alembic environment: runs on the connection handed over by handoff.store.db.upgrade,
or on HANDOFF_DATABASE_URL when invoked from the alembic command line."""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from handoff.store.tables import metadata

config = context.config


def run(connection: sa.engine.Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    url = os.environ.get("HANDOFF_DATABASE_URL", "sqlite:///.handoff/handoff.db")
    with sa.create_engine(url).begin() as conn:
        run(conn)
