"""Parked, quarantined and dead-lettered keys: what a person looks at, and replay."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.engine import queue
from handoff.store.db import Database
from handoff.store.tables import exceptions as exc_table

KINDS = ("parked", "quarantined", "dead_letter")


_OPEN_OF_KEY = sa.and_(exc_table.c.business_key == sa.bindparam("b_key"),
                      exc_table.c.kind == sa.bindparam("b_kind"), exc_table.c.resolved_at.is_(None))
OPEN_OF_KEY = sa.select(exc_table.c.id).where(_OPEN_OF_KEY)
UPDATE_OPEN = sa.update(exc_table).where(_OPEN_OF_KEY)


def open_exception(conn: Connection, key: str, kind: str, error: BaseException,
                   attempts: int, now: datetime) -> None:
    """One open exception per key and kind: a key given up again before anyone replayed it
    (its deal changed meanwhile) updates the open one with the latest error."""
    values = {"error": type(error).__name__, "message": str(error)[:4000],
              "field": getattr(error, "field", None), "system": getattr(error, "system", None),
              "attempts": attempts}
    where = {"b_key": key, "b_kind": kind}
    if conn.execute(OPEN_OF_KEY, where).first() is not None:
        conn.execute(UPDATE_OPEN, {**where, **values})
    else:
        conn.execute(sa.insert(exc_table).values(business_key=key, kind=kind, created_at=now,
                                                 **values))


def open_exceptions(conn: Connection, kinds: Iterable[str] = KINDS) -> list[sa.Row]:
    return list(conn.execute(
        sa.select(exc_table)
        .where(exc_table.c.kind.in_(list(kinds)), exc_table.c.resolved_at.is_(None))
        .order_by(exc_table.c.id)))


def replay(db: Database, now: datetime, kinds: Iterable[str] = KINDS,
           keys: Iterable[str] | None = None, ids: Iterable[int] | None = None) -> list[str]:
    """Resolve open exceptions (of these kinds; of these keys or ids, when given) as
    "replayed" and put their keys back on the queue."""
    with db.transaction() as conn:
        where = _open_where(kinds, keys, ids)
        replayed = sorted(set(conn.execute(sa.select(exc_table.c.business_key).where(*where))
                              .scalars()))
        conn.execute(sa.update(exc_table).where(*where)
                     .values(resolved_at=now, resolution="replayed"))
        for key in replayed:
            queue.enqueue(conn, key, now)
    return replayed


def resolve(db: Database, exception_id: int, now: datetime) -> sa.Row | None:
    """Close an open exception without replaying it (a person fixed it, or it no longer
    matters); the closed row, or None when no open exception has that id."""
    with db.transaction() as conn:
        where = _open_where(KINDS, None, [exception_id])
        done = conn.execute(sa.update(exc_table).where(*where)
                            .values(resolved_at=now, resolution="resolved")).rowcount
        return conn.execute(sa.select(exc_table).where(exc_table.c.id == exception_id)).first() \
            if done else None


def _open_where(kinds: Iterable[str], keys: Iterable[str] | None,
                ids: Iterable[int] | None) -> list[Any]:
    where = [exc_table.c.kind.in_(list(kinds)), exc_table.c.resolved_at.is_(None)]
    if keys is not None:
        where.append(exc_table.c.business_key.in_(list(keys)))
    if ids is not None:
        where.append(exc_table.c.id.in_(list(ids)))
    return where
