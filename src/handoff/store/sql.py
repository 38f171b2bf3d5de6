"""The few statements whose spelling differs between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from handoff.store.tables import counters


def insert_or_update(
    conn: Connection, table: sa.Table, values: Mapping[str, Any], keys: Sequence[str],
    update: Mapping[str, Any],
) -> None:
    """INSERT … ON CONFLICT (keys) DO UPDATE SET update — one statement, no race."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = dialect.insert(table).values(**values)
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=dict(update)))


def bump(conn: Connection, name: str, by: int = 1) -> None:
    """Add to a named counter (events accepted, duplicates suppressed, retries, …)."""
    if by:
        insert_or_update(conn, counters, {"name": name, "value": by}, ["name"],
                         {"value": counters.c.value + by})


def read_counters(conn: Connection) -> dict[str, int]:
    return {row.name: row.value for row in conn.execute(sa.select(counters))}
