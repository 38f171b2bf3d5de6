"""execute_many: many rows in one statement, straight to the driver on SQLite, through
SQLAlchemy elsewhere — the same rows stored either way, the same errors raised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from handoff.engine import queue
from handoff.store.db import Database
from handoff.store.provisioning import RECORD_HOP
from handoff.store.sql import execute_many, sqlite_utc_text, upsert
from handoff.store.tables import counters, hops, reconcile_queue
from handoff.store.types import UtcDateTime

NOW = datetime(2026, 3, 1, 12, 30, 15, 250, tzinfo=UTC)


def hop_row(n: int, at: datetime = NOW) -> dict[str, object]:
    return {"opportunity_id": f"006{n:015d}", "correlation_id": "c" * 32, "step": "upsert_project",
            "system": "netsuite", "outcome": "ok", "target_id": str(n), "attempt": 1,
            "started_at": at, "finished_at": at + timedelta(milliseconds=n), "detail": f"hop {n}"}


def added(table: sa.Table, excluded: Any) -> dict[str, Any]:
    return {"value": table.c.value + excluded.value}


@pytest.mark.parametrize("moment", [
    NOW, datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(2024, 2, 29, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5))), None])
def test_utc_times_become_the_text_sqlalchemy_would_store(moment: datetime | None) -> None:
    dialect = sqlite.dialect()
    assert sqlite_utc_text(moment) == UtcDateTime().dialect_impl(dialect).bind_processor(dialect)(moment)


def test_rows_are_stored_as_sqlalchemy_stores_them(db: Database) -> None:
    rows = [hop_row(n) for n in range(5)]
    with db.transaction() as conn:
        execute_many(conn, RECORD_HOP, rows[:3])
        conn.execute(RECORD_HOP, rows[3:])
    with db.reading() as conn:
        stored = conn.execute(sa.select(hops).order_by(hops.c.id)).mappings().all()
    assert [{k: row[k] for k in rows[0]} for row in stored] == rows


def test_the_rowcount_counts_every_row_and_upserts_take_their_set_clause(db: Database) -> None:
    with db.transaction() as conn:
        queue.enqueue_many(conn, ["opportunity:1", "opportunity:2"], NOW)
        queue.enqueue_many(conn, ["opportunity:2", "opportunity:3"], NOW - timedelta(hours=1))
        claims = queue.claim(conn, "me", 10, NOW, timedelta(minutes=1), "opportunity:")
        for _ in range(3):
            upsert(conn, counters, {"name": "retries", "value": 2}, ("name",), set_clause=added)
        done = execute_many(conn, queue.COMPLETE, [
            {"b_key": c.key, "b_generation": c.generation, "b_owner": "me"} for c in claims])
        assert done.rowcount == 3
        assert conn.execute(sa.select(counters.c.value)).scalar_one() == 6
        assert conn.execute(sa.select(sa.func.count()).select_from(reconcile_queue)).scalar_one() == 0
    assert {c.key: c.generation for c in claims} == {
        "opportunity:1": 1, "opportunity:2": 2, "opportunity:3": 1}


def test_a_value_its_type_refuses_raises_what_sqlalchemy_raises(db: Database) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), db.transaction() as conn:
        execute_many(conn, RECORD_HOP, [hop_row(1), hop_row(2, at=datetime(2026, 3, 1))])


def test_nothing_to_write_runs_nothing(db: Database) -> None:
    with db.transaction() as conn:
        assert execute_many(conn, RECORD_HOP, []) is None
