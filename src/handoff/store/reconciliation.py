"""Persistence of reconciliation runs, their findings, and acknowledgements.

A finding is acknowledged by (deal, class): the acknowledgement holds for every later run
that finds the same thing, and is cleared by the first run that no longer does, so a
discrepancy that comes back has to be looked at again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from handoff.reconcile.engine import Discrepancy
from handoff.store.db import Database
from handoff.store.tables import reconcile_acks, reconcile_findings, reconcile_runs

_run, _finding, _ack = reconcile_runs.c, reconcile_findings.c, reconcile_acks.c
OPEN_ACKS = sa.select(reconcile_acks).where(_ack.cleared_at.is_(None))


@dataclass(frozen=True, slots=True)
class Run:
    id: int
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime | None
    as_of: date | None
    contracts: int | None
    counts: dict[str, int]
    total: int | None
    snapshot: str | None
    error: str | None


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    deal_id: str
    kind: str
    by: str
    reason: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Finding:
    run_id: int
    deal_id: str
    kind: str
    currency: str
    amounts: dict[str, Decimal]
    explanation: str
    repair: str
    acknowledged: Acknowledgement | None = None


def start_run(db: Database, trigger: str, now: datetime, scheduled_for: datetime | None = None,
              as_of: date | None = None) -> int | None:
    """A new run's id; None when a run for this cron fire time exists (another server
    started it)."""
    try:
        with db.transaction() as conn:
            return conn.execute(reconcile_runs.insert().values(
                trigger=trigger, scheduled_for=scheduled_for, as_of=as_of, status="running",
                started_at=now).returning(_run.id)).scalar_one()
    except IntegrityError:
        return None


def finish_run(conn: Connection, run_id: int, found: list[Discrepancy], counts: dict[str, int],
               contracts: int, snapshot: str | None, now: datetime) -> None:
    conn.execute(reconcile_runs.update().where(_run.id == run_id).values(
        status="done", finished_at=now, contracts=contracts, counts=counts,
        total=sum(counts.values()), snapshot=snapshot))
    if found:
        conn.execute(reconcile_findings.insert(), [finding_row(run_id, d) for d in found])
    clear_acknowledgements(conn, {(d.deal_id, d.kind.value) for d in found}, now)


def fail_run(db: Database, run_id: int, error: str, now: datetime) -> None:
    with db.transaction() as conn:
        conn.execute(reconcile_runs.update().where(_run.id == run_id).values(
            status="failed", finished_at=now, error=error))


def finding_row(run_id: int, d: Discrepancy) -> dict[str, Any]:
    return {"run_id": run_id, "deal_id": d.deal_id, "kind": d.kind.value, "currency": d.currency,
            "amounts": {name: str(amount) for name, amount in d.amounts.items()},
            "explanation": d.explanation, "repair": d.repair}


def clear_acknowledgements(conn: Connection, still_found: set[tuple[str, str]], now: datetime) -> None:
    gone = [row.id for row in conn.execute(OPEN_ACKS) if (row.deal_id, row.kind) not in still_found]
    if gone:
        conn.execute(reconcile_acks.update().where(_ack.id.in_(gone)).values(cleared_at=now))


def runs(conn: Connection, limit: int = 30) -> list[Run]:
    """The latest runs, newest first."""
    rows = conn.execute(sa.select(reconcile_runs).order_by(_run.id.desc()).limit(limit))
    return [run_of(row) for row in rows]


def load_run(conn: Connection, run_id: int) -> Run | None:
    row = conn.execute(sa.select(reconcile_runs).where(_run.id == run_id)).first()
    return run_of(row) if row else None


def latest_run(conn: Connection, before: datetime | None = None,
               with_snapshot: bool = False) -> Run | None:
    """The latest finished run (started before `before`, and still with its snapshot, when
    asked)."""
    query = sa.select(reconcile_runs).where(_run.status == "done")
    if before is not None:
        query = query.where(_run.started_at < before)
    if with_snapshot:
        query = query.where(_run.snapshot.is_not(None))
    row = conn.execute(query.order_by(_run.id.desc()).limit(1)).first()
    return run_of(row) if row else None


def findings(conn: Connection, run_id: int) -> list[Finding]:
    """A run's findings by deal, each with its acknowledgement when one is open."""
    acks = {(row.deal_id, row.kind): ack_of(row) for row in conn.execute(OPEN_ACKS)}
    rows = conn.execute(sa.select(reconcile_findings).where(_finding.run_id == run_id)
                        .order_by(_finding.deal_id, _finding.kind))
    return [Finding(row.run_id, row.deal_id, row.kind, row.currency,
                    {name: Decimal(value) for name, value in row.amounts.items()},
                    row.explanation, row.repair, acks.get((row.deal_id, row.kind)))
            for row in rows]


def acknowledge(conn: Connection, deal_id: str, kind: str, user: str, reason: str,
                now: datetime) -> Acknowledgement:
    conn.execute(reconcile_acks.update().where(_ack.deal_id == deal_id, _ack.kind == kind,
                                               _ack.cleared_at.is_(None)).values(cleared_at=now))
    conn.execute(reconcile_acks.insert().values(deal_id=deal_id, kind=kind, acknowledged_by=user,
                                                reason=reason, acknowledged_at=now))
    return Acknowledgement(deal_id, kind, user, reason, now)


def snapshots_in_use(conn: Connection) -> set[str]:
    return set(conn.execute(sa.select(_run.snapshot).where(_run.snapshot.is_not(None))).scalars())


def run_of(row: sa.Row) -> Run:
    return Run(row.id, row.trigger, row.status, row.started_at, row.finished_at, row.as_of,
               row.contracts, dict(row.counts or {}), row.total, row.snapshot, row.error)


def ack_of(row: sa.Row) -> Acknowledgement:
    return Acknowledgement(row.deal_id, row.kind, row.acknowledged_by, row.reason, row.acknowledged_at)


def forget_snapshots(conn: Connection, paths: Iterable[str]) -> None:
    conn.execute(reconcile_runs.update().where(_run.snapshot.in_(list(paths))).values(snapshot=None))
