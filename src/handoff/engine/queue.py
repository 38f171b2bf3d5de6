"""The reconcile queue: business keys that need a controller to look at them.

- A key is held once however often it changes: enqueue bumps its generation.
- A claim is a lease: one worker per key; an expired lease returns the key to the queue.
- A key that changed while being worked on is handed out again (generation check on done).
- On PostgreSQL claims use FOR UPDATE SKIP LOCKED, so many workers on many hosts never
  wait for each other; on SQLite the write lock taken at BEGIN serialises claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.store.sql import insert_or_update
from handoff.store.tables import reconcile_queue as q
from handoff.store.types import UtcDateTime


@dataclass(frozen=True, slots=True)
class Claim:
    key: str
    generation: int
    attempts: int


def enqueue(conn: Connection, key: str, now: datetime) -> None:
    """Due now; if already queued, bump the generation and pull it forward."""
    insert_or_update(
        conn, q,
        {"key": key, "generation": 1, "due_at": now, "attempts": 0, "enqueued_at": now},
        ["key"],
        {"generation": q.c.generation + 1, "due_at": _earliest(conn, q.c.due_at, now)},
    )


def _earliest(conn: Connection, column: sa.Column[datetime], now: datetime) -> sa.ColumnElement[datetime]:
    smallest = sa.func.min if conn.dialect.name == "sqlite" else sa.func.least
    return smallest(column, sa.literal(now, UtcDateTime))


def claim(conn: Connection, owner: str, limit: int, now: datetime, lease: timedelta) -> list[Claim]:
    due = (
        sa.select(q.c.key)
        .where(q.c.due_at <= now, sa.or_(q.c.lease_expires.is_(None), q.c.lease_expires < now))
        .order_by(q.c.due_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    stmt = (
        sa.update(q)
        .where(q.c.key.in_(due.scalar_subquery()))
        .values(lease_owner=owner, lease_expires=now + lease)
        .returning(q.c.key, q.c.generation, q.c.attempts)
    )
    return [Claim(r.key, r.generation, r.attempts) for r in conn.execute(stmt)]


def complete(conn: Connection, claim: Claim, owner: str) -> bool:
    """Done with this generation. False if the key changed meanwhile: it stays queued and
    is released at once, so the newer state is reconciled too."""
    done = conn.execute(
        sa.delete(q).where(q.c.key == claim.key, q.c.generation == claim.generation,
                           q.c.lease_owner == owner)
    )
    if done.rowcount:
        return True
    _release(conn, claim.key, owner, attempts=0)
    return False


def retry_later(conn: Connection, claim: Claim, owner: str, due_at: datetime, error: str) -> None:
    conn.execute(
        sa.update(q).where(q.c.key == claim.key, q.c.lease_owner == owner)
        .values(due_at=due_at, attempts=claim.attempts + 1, lease_owner=None,
                lease_expires=None, last_error=error[:2000])
    )


def remove(conn: Connection, key: str) -> None:
    """Take a key out (parked or dead-lettered): a replay or a new change puts it back."""
    conn.execute(sa.delete(q).where(q.c.key == key))


def _release(conn: Connection, key: str, owner: str, attempts: int) -> None:
    conn.execute(
        sa.update(q).where(q.c.key == key, q.c.lease_owner == owner)
        .values(lease_owner=None, lease_expires=None, attempts=attempts)
    )


def depth(conn: Connection) -> int:
    return conn.execute(sa.select(sa.func.count()).select_from(q)).scalar_one()


def next_due(conn: Connection) -> datetime | None:
    return conn.execute(sa.select(sa.func.min(q.c.due_at))).scalar_one()
