"""Counts derived from the tables themselves, so they can never drift from the facts."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.store.sql import read_counters
from handoff.store.tables import exceptions, inbox_events, intake_rejections


def counts(conn: Connection) -> dict[str, int]:
    inbox = inbox_events.c
    outcomes = _grouped(conn, inbox.outcome)
    kinds = _grouped(conn, exceptions.c.kind)
    return {
        "events_accepted": sum(outcomes.values()),
        **{f"events_{outcome}": n for outcome, n in outcomes.items()},
        "duplicates_suppressed": conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(inbox.deliveries - 1), 0))).scalar_one(),
        "events_rejected": conn.execute(
            sa.select(sa.func.count()).select_from(intake_rejections)).scalar_one(),
        **kinds,
        **read_counters(conn),
    }


def _grouped(conn: Connection, column: sa.Column[str]) -> dict[str, int]:
    return {value: n for value, n in conn.execute(
        sa.select(column, sa.func.count()).group_by(column))}
