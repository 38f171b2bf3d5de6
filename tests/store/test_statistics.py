"""Intake keeps PostgreSQL's planner statistics fresh while a new database fills: without
them the planner finds a set's events by their source alone and scans every event of it."""

from __future__ import annotations

import sqlalchemy as sa

from handoff.engine.clock import utcnow
from handoff.engine.group_commit import GroupCommit
from handoff.engine.inbox import accept, parse_body
from handoff.store.db import Database
from handoff.store.statistics import GrowthAnalyzer
from tests.factories import event, opportunity_data


def analyses(db: Database) -> int:
    with db.reading() as conn:
        return conn.execute(sa.text("SELECT analyze_count FROM pg_stat_user_tables "
                                    "WHERE relname = 'inbox_events'")).scalar_one()


LOOKUP = ("EXPLAIN SELECT body_hash FROM inbox_events "
          "WHERE source = '/crm/salesforce' AND event_id = ANY(ARRAY['e1', 'e2', 'e3'])")


def lookup_plan(db: Database) -> str:
    with db.reading() as conn:
        return "\n".join(conn.execute(sa.text(LOOKUP)).scalars())


def test_the_intake_tables_are_analyzed_each_time_the_events_stored_double(db: Database) -> None:
    statistics = GrowthAnalyzer(db.engine, first=10, last=40)
    marks = []
    for stored in [4, 5, 1, 9, 1, 30, 100]:  # 4, 9, 10 | 19, 20 | 50 | 150
        statistics.stored(stored)
        statistics.wait(timeout=30)
        marks.append(statistics.analyzed)
    expected = [0, 0, 1, 1, 2, 3, 3] if db.is_postgres else [0] * 7  # 10, 20, 40; none past 40
    assert marks == expected


def test_a_new_postgres_finds_events_by_source_and_id_once_intake_has_stored_some(db: Database) -> None:
    db.statistics = GrowthAnalyzer(db.engine, first=500)
    before = analyses(db) if db.is_postgres else 0
    commits = GroupCommit(db)
    for start in range(0, 1500, 100):
        batch = [parse_body(event(opportunity_data(f"006{n:015d}"), event_id=f"e{n}"))
                 for n in range(start, start + 100)]
        commits.submit(batch).result(timeout=30)
    db.statistics.wait(timeout=30)
    if not db.is_postgres:
        assert db.statistics.analyzed == 0  # SQLite plans by its indexes alone
        return
    assert db.statistics.analyzed == 2 and analyses(db) >= before + 2
    plan = lookup_plan(db)
    assert "event_id" in plan.split("Cond:", 1)[1].split("\n")[0], plan  # an index condition, not a filter


def test_events_taken_one_by_one_outside_the_http_intake_count_too(db: Database) -> None:
    db.statistics = GrowthAnalyzer(db.engine, first=3)
    for n in range(3):  # as a poller or a webhook hands them in
        accept(db, event(opportunity_data(f"006{n:015d}"), event_id=f"p{n}"), utcnow())
    db.statistics.wait(timeout=30)
    assert db.statistics.analyzed == (1 if db.is_postgres else 0)
