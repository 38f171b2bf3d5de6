"""Statements built once and executed with parameters: SQLAlchemy then reuses the compiled
SQL, which is most of the cost of a small statement. Also the few whose spelling differs
between SQLite and PostgreSQL."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

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


class IdList(sa.TypeDecorator[list[str]]):
    """A list of ids as one parameter: a text array on PostgreSQL, JSON text on SQLite."""

    impl = sa.Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> Any:
        return dialect.type_descriptor(postgresql.ARRAY(sa.Text) if dialect.name == "postgresql"
                                       else sa.Text())

    def process_bind_param(self, value: list[str] | None, dialect: Any) -> Any:
        return value if dialect.name == "postgresql" else orjson.dumps(value or []).decode()


class _OneOf(ColumnElement[bool]):
    type = sa.types.NullType()  # no "= 1" appended where booleans are integers (SQLite)
    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement),
                           ("values", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: ColumnElement[Any], values: sa.BindParameter[Any]) -> None:
        self.column, self.values = column, values


def one_of(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """`column IN (the list bound as `name`)`, compiled once for any number of values: an
    expanding IN is compiled anew on every call, which costs more than the query."""
    return _OneOf(column, sa.bindparam(name, type_=IdList()))


@compiles(_OneOf, "postgresql")
def _one_of_array(element: _OneOf, compiler: Any, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} = ANY({compiler.process(element.values, **kw)})"


@compiles(_OneOf)
def _one_of_json(element: _OneOf, compiler: Any, **kw: Any) -> str:
    return (f"{compiler.process(element.column, **kw)} IN "
            f"(SELECT value FROM json_each({compiler.process(element.values, **kw)}))")
