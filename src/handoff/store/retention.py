"""Retention: the inbox's events and intake's refusals are removed once older than
`[retention]` keeps them, CHUNK rows at a time, each chunk its own short transaction (so
SQLite's write lock is never held for long), written to the archive first when there is one.

An inbox event is removed only when
- its outcome is final (applied, unchanged, stale): its effect is in the canonical state, which
  is versioned, so the same event delivered again later is unchanged or stale and enqueues
  nothing;
- no key of its deal is queued and no exception of its deal is open (for a customer's event:
  of any of the customer's deals), so a deal still being worked on, or held, keeps every event.
The lineage keeps, per subject, how many events went, when, and to which archive
(inbox_pruned); the counters keep the totals by outcome, so /metrics' counters never go down.
Old rows are found by bisection on the key, which grows with time: an index on received_at
would cost intake on every event (docs/decisions/0011-retention.md).
"""

from __future__ import annotations

import functools
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from handoff.config import RetentionSettings
from handoff.engine.exceptions import KINDS
from handoff.engine.inbox import Outcome
from handoff.engine.keys import DEAL_PREFIXES
from handoff.engine.payloads import CUSTOMER_CHANGED
from handoff.store.archive import Archive
from handoff.store.db import Database
from handoff.store.sql import bump
from handoff.store.tables import (
    exceptions,
    inbox_events,
    inbox_pruned,
    intake_rejections,
    opportunities,
    reconcile_queue,
)

CHUNK = 1000
FINAL = frozenset({Outcome.APPLIED.value, Outcome.UNCHANGED.value, Outcome.STALE.value})
PRUNED_EVENTS = "pruned_events_"  # + outcome: counters of the inbox events removed
PRUNED_DUPLICATES = "pruned_duplicates"
PRUNED_REJECTIONS = "pruned_rejections"

Rows = Sequence[sa.Row[Any]]


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one table lost, or in a dry run would lose."""

    table: str
    cutoff: datetime | None  # rows received before it are old enough; None: kept for ever
    rows: int = 0
    held: int = 0  # old enough, but kept: their deal is queued or has an open exception
    archive: Path | None = None
    dry_run: bool = False

    def describe(self) -> str:
        if self.cutoff is None:
            return f"{self.table}: kept for ever (retention of 0 days)"
        line = (f"{self.table}: {'would remove' if self.dry_run else 'removed'} {self.rows:,} "
                f"row(s) received before {self.cutoff:%Y-%m-%d %H:%M:%S} UTC")
        if self.archive:
            line += f", archived in {self.archive}"
        if self.held:
            line += f"; kept {self.held:,} as old, of deals still queued or held"
        return line


@dataclass(frozen=True, slots=True)
class _Kind:
    """A table retention prunes: its growing key, its time, and what keeping it means."""

    table: sa.Table
    key: sa.Column[int]
    received: sa.Column[datetime]
    brief: tuple[sa.Column[Any], ...]  # the columns a decision needs
    held: Callable[[Connection, Rows], set[int]]
    removed: Callable[[Connection, Rows, Path | None, datetime], None]


def prune(db: Database, settings: RetentionSettings, now: datetime, *, dry_run: bool = False,
          chunk: int = CHUNK, pause_ratio: float = 0.0) -> list[Pruned]:
    """Prune each table; after each chunk, rest `pause_ratio` times as long as it took (a
    server pruning in the background leaves intake most of the write lock)."""
    archive_dir = Path(settings.archive_dir) if settings.archive_dir and not dry_run else None
    return [_prune(db, kind, days, now, archive_dir, dry_run, chunk, pause_ratio)
            for kind, days in ((INBOX, settings.inbox_days), (REJECTIONS, settings.rejections_days))]


def _prune(db: Database, kind: _Kind, days: float, now: datetime, archive_dir: Path | None,
           dry_run: bool, chunk: int, pause_ratio: float) -> Pruned:
    if not days:
        return Pruned(kind.table.name, None)
    cutoff = now - timedelta(days=days)
    with db.reading() as conn:
        last = last_key_before(conn, kind.key, kind.received, cutoff)
    archive = Archive(archive_dir, kind.table.name, now) if archive_dir else None
    after, removed, held = 0, 0, 0
    while after < last:
        started = time.monotonic()
        seen, gone, after = _chunk(db, kind, (after, last, cutoff, chunk), archive, dry_run, now)
        if not seen:
            break
        removed, held = removed + gone, held + seen - gone
        time.sleep(pause_ratio * (time.monotonic() - started))
    written = archive.path if archive is not None and archive.rows else None
    return Pruned(kind.table.name, cutoff, removed, held, written, dry_run)


def _chunk(db: Database, kind: _Kind, bounds: tuple[int, int, datetime, int], archive: Archive | None,
           dry_run: bool, now: datetime) -> tuple[int, int, int]:
    """One transaction: the next old rows after a key, those not held removed. Rows looked at,
    rows removed, the last key looked at."""
    after, last, cutoff, chunk = bounds
    with db.reading() if dry_run else db.transaction() as conn:
        rows = conn.execute(_old_rows(kind, conn, full=archive is not None, lock=not dry_run),
                            {"b_after": after, "b_last": last, "b_cutoff": cutoff, "b_limit": chunk}).all()
        if not rows:
            return 0, 0, after
        keep = kind.held(conn, rows)
        gone = [row for row in rows if getattr(row, kind.key.name) not in keep]
        if gone and not dry_run:
            _remove(conn, kind, gone, archive, now)
    return len(rows), len(gone), getattr(rows[-1], kind.key.name)


def _old_rows(kind: _Kind, conn: Connection, full: bool, lock: bool) -> sa.Select[Any]:
    """The next chunk of old rows by key; several servers pruning at once on PostgreSQL each
    take rows the others have not locked."""
    query = (sa.select(*(kind.table.columns if full else kind.brief))
             .where(kind.key > sa.bindparam("b_after"), kind.key <= sa.bindparam("b_last"),
                    kind.received < sa.bindparam("b_cutoff", type_=kind.received.type))
             .order_by(kind.key).limit(sa.bindparam("b_limit")))
    return query.with_for_update(skip_locked=True) if lock and conn.dialect.name == "postgresql" else query


def _remove(conn: Connection, kind: _Kind, rows: Rows, archive: Archive | None, now: datetime) -> None:
    """Archived (and synced to disk) first, accounted for, then deleted."""
    if archive is not None:
        names = [str(name) for name in rows[0]._fields]
        archive.write([dict(zip(names, row, strict=True)) for row in rows])
    kind.removed(conn, rows, archive.path if archive else None, now)
    keys = [getattr(row, kind.key.name) for row in rows]
    conn.execute(sa.delete(kind.table).where(kind.key.in_(keys)))


def last_key_before(conn: Connection, key: sa.Column[int], received: sa.Column[datetime],
                    cutoff: datetime) -> int:
    """The greatest key of a row received before `cutoff` (0: none), by bisection on the key,
    a few dozen look-ups by primary key. Keys grow with time; where two rows' times cross
    (concurrent transactions), a row at the edge waits for the next run."""
    low, high = conn.execute(sa.select(sa.func.min(key), sa.func.max(key))).one()
    found = 0
    while low is not None and low <= high:
        middle = (low + high) // 2
        row = conn.execute(sa.select(key, received).where(key >= middle).order_by(key).limit(1)).one()
        if row[1] < cutoff:
            found, low = row[0], row[0] + 1
        else:
            high = middle - 1
    return found


# --- the inbox ---------------------------------------------------------------------------

def _busy_statement() -> sa.Select[Any]:
    """The subjects of the events in a range of keys whose deal (a customer's event: one of
    its deals) has a key in the reconcile queue or an open exception; one statement, looked
    up by primary key in the queue."""
    i, o, q, x = inbox_events.c, opportunities.c, reconcile_queue.c, exceptions.c
    in_range = sa.and_(i.seq > sa.bindparam("b_after"), i.seq <= sa.bindparam("b_last"))
    deals = sa.union_all(
        sa.select(i.subject.label("subject"), i.subject.label("deal"))
        .where(in_range, i.type != CUSTOMER_CHANGED),
        sa.select(i.subject, o.id).select_from(inbox_events.join(opportunities, o.account_id == i.subject))
        .where(in_range, i.type == CUSTOMER_CHANGED),
    ).subquery("deals")
    keys = [sa.literal(prefix) + deals.c.deal for prefix in DEAL_PREFIXES]
    return sa.select(deals.c.subject).distinct().where(sa.or_(
        sa.exists().where(q.key.in_(keys)),
        sa.exists().where(x.kind.in_(KINDS), x.resolved_at.is_(None), x.business_key.in_(keys))))


BUSY = _busy_statement()


def _inbox_held(conn: Connection, rows: Rows) -> set[int]:
    """Events not yet final, and those of deals (or customers of deals) queued or held."""
    busy = set(conn.execute(BUSY, {"b_after": rows[0].seq - 1, "b_last": rows[-1].seq}).scalars())
    return {row.seq for row in rows if row.outcome not in FINAL or row.subject in busy}


def _inbox_removed(conn: Connection, rows: Rows, archive: Path | None, now: datetime) -> None:
    """The lineage's summary per subject (from the rows, before they are deleted), and the
    totals /metrics counts."""
    conn.execute(_summarize_statement(conn.dialect.name), {
        "b_keys": [row.seq for row in rows], "b_archive": str(archive) if archive else None, "b_now": now})
    for outcome, count in Counter(row.outcome for row in rows).items():
        bump(conn, PRUNED_EVENTS + outcome, count)
    repeats = sum(row.deliveries - 1 for row in rows)
    if repeats:
        bump(conn, PRUNED_DUPLICATES, repeats)


@functools.cache
def _summarize_statement(dialect: str) -> Any:
    i = inbox_events.c
    summary = (sa.select(i.subject, sa.func.count(), sa.func.sum(i.deliveries), sa.func.min(i.received_at),
                         sa.func.max(i.received_at), sa.cast(sa.bindparam("b_archive"), sa.Text),
                         sa.bindparam("b_now", type_=inbox_pruned.c.pruned_at.type))
               .where(i.seq.in_(sa.bindparam("b_keys", expanding=True))).group_by(i.subject))
    insert = (postgresql if dialect == "postgresql" else sqlite).insert(inbox_pruned).from_select(
        ["subject", "events", "deliveries", "first_received_at", "last_received_at", "archive",
         "pruned_at"], summary)
    return insert.on_conflict_do_update(index_elements=["subject"],
                                        set_=_add_to_summary(inbox_pruned, insert.excluded))


def _add_to_summary(table: sa.Table, new: Any) -> dict[str, Any]:
    c = table.c
    return {"events": c.events + new.events, "deliveries": c.deliveries + new.deliveries,
            "first_received_at": sa.case((new.first_received_at < c.first_received_at,
                                          new.first_received_at), else_=c.first_received_at),
            "last_received_at": sa.case((new.last_received_at > c.last_received_at,
                                         new.last_received_at), else_=c.last_received_at),
            "archive": sa.func.coalesce(new.archive, c.archive), "pruned_at": new.pruned_at}


def pruned_of(conn: Connection, subject: str) -> dict[str, Any] | None:
    """What the lineage keeps of a subject's pruned events, or None."""
    row = conn.execute(sa.select(inbox_pruned).where(inbox_pruned.c.subject == subject)).first()
    return None if row is None else {k: v for k, v in row._mapping.items() if k != "subject"}


# --- intake's refusals -------------------------------------------------------------------

def _rejections_removed(conn: Connection, rows: Rows, archive: Path | None, now: datetime) -> None:
    bump(conn, PRUNED_REJECTIONS, len(rows))


ib, rj = inbox_events.c, intake_rejections.c
INBOX = _Kind(inbox_events, ib.seq, ib.received_at,
              (ib.seq, ib.received_at, ib.subject, ib.type, ib.outcome, ib.deliveries),
              _inbox_held, _inbox_removed)
REJECTIONS = _Kind(intake_rejections, rj.id, rj.received_at, (rj.id, rj.received_at),
                   lambda conn, rows: set(), _rejections_removed)
