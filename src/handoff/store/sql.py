"""Statements built once and executed with parameters: SQLAlchemy then reuses the compiled
SQL, which is most of the cost of a small statement. Also the few whose spelling differs
between SQLite and PostgreSQL."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from handoff.store.tables import counters

SetClause = Callable[[sa.Table, Any], Mapping[str, Any]]


@functools.cache
def upsert_statement(dialect: str, table: sa.Table, keys: tuple[str, ...],
                     update: tuple[str, ...], set_clause: SetClause | None = None) -> Any:
    """INSERT … ON CONFLICT (keys) DO UPDATE: the `update` columns take the inserted values,
    unless `set_clause(table, excluded)` says otherwise."""
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(table)
    changes = (set_clause(table, insert.excluded) if set_clause
               else {c: insert.excluded[c] for c in update})
    return insert.on_conflict_do_update(index_elements=list(keys), set_=dict(changes))


def upsert(conn: Connection, table: sa.Table, rows: Mapping[str, Any] | Sequence[Mapping[str, Any]],
           keys: tuple[str, ...], update: tuple[str, ...] | None = None,
           set_clause: SetClause | None = None) -> None:
    """Insert each row (all with the same columns), or update the existing one: `update`
    columns (default: all but the keys), or what `set_clause` computes."""
    batch = [rows] if isinstance(rows, Mapping) else list(rows)
    if update is None:
        update = tuple(sorted(c for c in batch[0] if c not in keys))
    stmt = upsert_statement(conn.dialect.name, table, keys, update, set_clause)
    conn.execute(stmt, [dict(row) for row in batch] if len(batch) > 1 else dict(batch[0]))


def _add_to_counter(table: sa.Table, excluded: Any) -> Mapping[str, Any]:
    return {"value": table.c.value + excluded.value}


def bump(conn: Connection, name: str, by: int = 1) -> None:
    """Add to a counter that cannot be derived from the tables (e.g. retries)."""
    upsert(conn, counters, {"name": name, "value": by}, ("name",), set_clause=_add_to_counter)


def read_counters(conn: Connection) -> dict[str, int]:
    return {row.name: row.value for row in conn.execute(sa.select(counters))}
