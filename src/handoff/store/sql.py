"""Statements built once and executed with parameters: SQLAlchemy then reuses the compiled
SQL, which is most of the cost of a small statement. Also the few whose spelling differs
between SQLite and PostgreSQL, and `execute_many`: the worker's writes of many rows at once."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.visitors import InternalTraversal

from handoff.store.tables import counters
from handoff.store.types import UtcDateTime

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
    execute_many(conn, stmt, batch)


def execute_many(conn: Connection, stmt: Any, rows: Sequence[Mapping[str, Any]]) -> Any:
    """`stmt` (built once, not per call) for each row (all with the same keys); returns the
    result (its rowcount counts every row's). On SQLite the rows go to the driver's
    executemany as tuples, each value through its column type's own bind processor, the SQL
    compiled once per statement and set of keys: SQLAlchemy's per-row parameter handling,
    most of the cost of a small write, is skipped. On PostgreSQL SQLAlchemy executes it as
    usual (an INSERT then goes as multi-row VALUES batches, faster there than the driver's
    executemany)."""
    if not rows:
        return None
    driver = (_driver_form(conn.dialect, stmt, tuple(rows[0]))
              if conn.dialect.name == "sqlite" else None)
    if driver is None:
        return conn.execute(stmt, [dict(row) for row in rows] if len(rows) > 1 else dict(rows[0]))
    sql, converters = driver
    try:
        params = [tuple([row[name] if convert is None else convert(row[name])
                         for name, convert in converters]) for row in rows]
    except Exception as exc:  # a value its type refuses: the error SQLAlchemy raises for it
        raise sa.exc.StatementError(str(exc), sql, None, exc) from exc
    return conn.exec_driver_sql(sql, params)


Converter = Callable[[Any], Any]


@functools.lru_cache(maxsize=512)
def _driver_form(dialect: Any, stmt: Any, keys: tuple[str, ...],
                 ) -> tuple[str, tuple[tuple[str, Converter | None], ...]] | None:
    """The positional SQL of `stmt` for rows with these keys, and for each `?` the row key it
    takes and that parameter's bind processor; None when the statement needs more than its
    rows give (Python-side column defaults, expanding IN lists, a key it has no slot for)."""
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
    binds = compiled.binds
    if (not compiled.positional or compiled.insert_prefetch or compiled.update_prefetch
            or any(bind.expanding for bind in binds.values())):
        return None
    names = tuple(compiled.positiontup or ())
    if set(names) != set(keys):  # SQLAlchemy itself then says what does not fit
        return None
    return compiled.string, tuple((name, _converter(binds[name].type, dialect)) for name in names)


def _converter(type_: Any, dialect: Any) -> Converter | None:
    """What SQLAlchemy would do to a value of this type before it goes to the driver; for a
    UTC time on SQLite the same text in one step instead of three calls (a deal writes
    about twenty)."""
    if isinstance(type_, UtcDateTime) and dialect.name == "sqlite":
        return sqlite_utc_text
    processor: Converter | None = type_.dialect_impl(dialect).bind_processor(dialect)
    return processor


def sqlite_utc_text(value: datetime | None) -> str | None:
    """A UtcDateTime as SQLite stores it: UTC, naive, `YYYY-MM-DD HH:MM:SS.ffffff` (what the
    type's process_bind_param and SQLite's DATETIME processor give together)."""
    global _last_utc_text
    last, text = _last_utc_text
    if value is last:  # a set of rows mostly carries one `now`: converted once
        return text
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: handoff stores UTC-aware times only")
    text = value.astimezone(UTC).isoformat(" ", "microseconds")[:-6]  # without its "+00:00"
    _last_utc_text = (value, text)  # one tuple, swapped whole: safe between threads
    return text


_last_utc_text: tuple[datetime | None, str | None] = (None, None)


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
