"""The reconcile queue: business keys that need a controller to look at them.

- A key is held once however often it changes: enqueue bumps its generation.
- A claim is a lease: one worker per key; an expired lease returns the key to the queue.
- A key that changed while being worked on is handed out again (generation check on done).
- On PostgreSQL claims use FOR UPDATE SKIP LOCKED, so many workers on many hosts never
  wait for each other; on SQLite the write lock taken at BEGIN serialises claims.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.store.sql import execute_many, one_of, upsert
from handoff.store.tables import reconcile_queue as q

_KEY = sa.bindparam("b_key")
_OWNER = sa.bindparam("b_owner")
COMPLETE = sa.delete(q).where(q.c.key == _KEY, q.c.generation == sa.bindparam("b_generation"),
                              q.c.lease_owner == _OWNER)
RELEASE = sa.update(q).where(q.c.key == _KEY, q.c.lease_owner == _OWNER)
RELEASE_CHANGED = sa.update(q).where(one_of(q.c.key, "b_keys"), q.c.lease_owner == _OWNER)
EXTEND = (sa.update(q).where(one_of(q.c.key, "b_keys"), q.c.lease_owner == _OWNER)
          .values(lease_expires=sa.bindparam("b_until", type_=q.c.due_at.type)))
DEPTH = sa.select(sa.func.count()).select_from(q)
NEXT_DUE = sa.select(sa.func.min(q.c.due_at))


@dataclass(frozen=True, slots=True)
class Claim:
    key: str
    generation: int
    attempts: int


def _requeue(table: sa.Table, excluded: Any) -> dict[str, Any]:
    """A key already queued: one more generation, due at the earlier of the two times."""
    sooner = sa.case((excluded.due_at < table.c.due_at, excluded.due_at), else_=table.c.due_at)
    # `+ 1` spelled in the SQL, not bound: a statement whose every parameter is a row's value
    # goes to the driver's executemany (store/sql.py), several times cheaper per key
    return {"generation": table.c.generation + sa.literal_column("1"), "due_at": sooner}


def enqueue(conn: Connection, key: str, now: datetime) -> None:
    enqueue_many(conn, [key], now)


def enqueue_many(conn: Connection, keys: Sequence[str], now: datetime) -> None:
    rows = [{"key": key, "generation": 1, "due_at": now, "attempts": 0, "enqueued_at": now}
            for key in keys]
    if rows:
        upsert(conn, q, rows, ("key",), set_clause=_requeue)


@functools.cache
def _claim_statement(dialect: str) -> Any:
    now = sa.bindparam("b_now", type_=q.c.due_at.type)
    due = (sa.select(q.c.key)
           .where(q.c.key.startswith(sa.bindparam("b_prefix")), q.c.due_at <= now,
                  sa.or_(q.c.lease_expires.is_(None), q.c.lease_expires < now))
           .order_by(q.c.due_at).limit(sa.bindparam("b_limit")))
    if dialect == "postgresql":
        due = due.with_for_update(skip_locked=True)
    return (sa.update(q).where(q.c.key.in_(due.scalar_subquery()))
            .values(lease_owner=_OWNER, lease_expires=sa.bindparam("b_until", type_=q.c.due_at.type))
            .returning(q.c.key, q.c.generation, q.c.attempts))


def claim(conn: Connection, owner: str, limit: int, now: datetime, lease: timedelta,
          prefix: str = "") -> list[Claim]:
    """Lease up to `limit` due keys starting with `prefix` (a controller's keys)."""
    rows = conn.execute(_claim_statement(conn.dialect.name),
                        {"b_now": now, "b_limit": limit, "b_owner": owner, "b_until": now + lease,
                         "b_prefix": prefix})
    return [Claim(r.key, r.generation, r.attempts) for r in rows]


def complete(conn: Connection, claims: Sequence[Claim], owner: str) -> None:
    """Done with these generations. A key that changed meanwhile stays queued and is
    released at once, so its newer state is reconciled too."""
    if not claims:
        return
    done = execute_many(conn, COMPLETE, [{"b_key": c.key, "b_generation": c.generation,
                                          "b_owner": owner} for c in claims])
    if done.rowcount == len(claims) and (len(claims) == 1
                                         or conn.dialect.supports_sane_multi_rowcount):
        return  # the common case: every key done, none changed meanwhile
    conn.execute(RELEASE_CHANGED, {"b_keys": [c.key for c in claims], "b_owner": owner,
                                   "lease_owner": None, "lease_expires": None, "attempts": 0})


def extend(conn: Connection, keys: Sequence[str], owner: str, until: datetime) -> None:
    """Renew the leases this owner still holds (a key another worker took over is left be)."""
    if keys:
        conn.execute(EXTEND, {"b_keys": list(keys), "b_owner": owner, "b_until": until})


def release(conn: Connection, claims: Sequence[Claim], owner: str) -> None:
    """Give claimed keys back untouched: due now for any worker."""
    execute_many(conn, RELEASE, [{"b_key": c.key, "b_owner": owner, "lease_owner": None,
                                  "lease_expires": None} for c in claims])


def retry_later_many(conn: Connection, retries: Sequence[tuple[Claim, datetime, str]],
                     owner: str) -> None:
    """Each key due again at its time, one attempt more, with the error that delayed it."""
    if retries:
        execute_many(conn, RELEASE, [
            {"b_key": claim.key, "b_owner": owner, "due_at": due_at, "attempts": claim.attempts + 1,
             "lease_owner": None, "lease_expires": None, "last_error": error[:2000]}
            for claim, due_at, error in retries])


def depth(conn: Connection) -> int:
    return conn.execute(DEPTH).scalar_one()


def next_due(conn: Connection) -> datetime | None:
    return conn.execute(NEXT_DUE).scalar_one()
