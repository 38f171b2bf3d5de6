"""Month-end readiness: may finance close the period on what the systems show?

Each check answers yes or no with the figures behind it: the reconcile queue is drained, no
deal is parked longer than allowed, there is no dead letter, the invoice status every CRM
record shows was read from the ERP recently enough, and a reconciliation run during the
period found nothing that is not acknowledged. `handoff month-end` exits non-zero
while any check fails (docs/RUNBOOK.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.domain import InvoiceStatus
from handoff.engine import queue
from handoff.errors import IntakeError
from handoff.store import reconciliation
from handoff.store.db import Database
from handoff.store.tables import exceptions, invoices, provisioning

PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
OPEN = (InvoiceStatus.POSTED.value, InvoiceStatus.DRAFT.value)
_exc = exceptions.c
PARKED_SINCE = (sa.select(_exc.business_key, _exc.created_at)
                .where(_exc.kind == "parked", _exc.resolved_at.is_(None),
                       _exc.created_at < sa.bindparam("b_before"))
                .order_by(_exc.created_at))
DEAD_LETTERS = (sa.select(_exc.business_key).where(_exc.kind == "dead_letter",
                                                   _exc.resolved_at.is_(None))
                .order_by(_exc.created_at))
STALE_BILLING = (sa.select(invoices.c.opportunity_id).distinct()
                 .join(provisioning, provisioning.c.opportunity_id == invoices.c.opportunity_id)
                 .where(invoices.c.status.in_(OPEN),
                        sa.or_(provisioning.c.billing_checked_at.is_(None),
                               provisioning.c.billing_checked_at < sa.bindparam("b_before")))
                 .order_by(invoices.c.opportunity_id))


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass(frozen=True, slots=True)
class MonthEnd:
    period: str
    checks: tuple[Check, ...]

    @property
    def ready(self) -> bool:
        return all(check.ok for check in self.checks)


def check_period(period: str) -> str:
    if not PERIOD.match(period):
        raise IntakeError(f"--period {period!r}: use YYYY-MM, e.g. 2026-11", status=422)
    return period


def month_end(db: Database, period: str, now: datetime, parked_for: timedelta,
              freshness: timedelta) -> MonthEnd:
    with db.reading() as conn:
        checks = (_drained(conn), _parked(conn, now, parked_for), _dead_letters(conn),
                  _fresh(conn, now, freshness), _reconciled(conn, check_period(period)))
    return MonthEnd(period, checks)


def _drained(conn: Connection) -> Check:
    depth = queue.depth(conn)
    return Check("queues drained", depth == 0,
                 "nothing waits" if depth == 0 else f"{depth} key(s) still queued: run a worker")


def _parked(conn: Connection, now: datetime, parked_for: timedelta) -> Check:
    rows = list(conn.execute(PARKED_SINCE, {"b_before": now - parked_for}))
    days = parked_for / timedelta(days=1)
    if not rows:
        return Check(f"nothing parked over {days:g} days", True, "none")
    return Check(f"nothing parked over {days:g} days", False,
                 f"{len(rows)} parked: {_some(r.business_key for r in rows)}; decide, then "
                 "`handoff replay --kind parked`")


def _dead_letters(conn: Connection) -> Check:
    keys = list(conn.execute(DEAD_LETTERS).scalars())
    if not keys:
        return Check("no dead letters", True, "none")
    return Check("no dead letters", False, f"{len(keys)}: {_some(keys)}; fix the cause, then "
                 "`handoff replay --kind dead_letter`")


def _fresh(conn: Connection, now: datetime, freshness: timedelta) -> Check:
    deals = list(conn.execute(STALE_BILLING, {"b_before": now - freshness}).scalars())
    hours = freshness / timedelta(hours=1)
    name = f"invoice status read within {hours:g} h"
    if not deals:
        return Check(name, True, "every open invoice's status is current in the CRM")
    return Check(name, False, f"{len(deals)} deal(s) with open invoices not read since: "
                 f"{_some(deals)}; run a worker (its schedule reads them)")


def _reconciled(conn: Connection, period: str) -> Check:
    """The latest reconciliation, which must have run since the period began."""
    name = "reconciliation clean or acknowledged"
    run = reconciliation.latest_run(conn)
    start = datetime.strptime(f"{period}-01", "%Y-%m-%d").replace(tzinfo=UTC)
    if run is None or run.started_at < start:
        return Check(name, False, f"no reconciliation since {start:%Y-%m-%d}: run `handoff reconcile`")
    open_findings = [f for f in reconciliation.findings(conn, run.id) if f.acknowledged is None]
    if not open_findings:
        return Check(name, True, f"run {run.id} ({run.started_at:%Y-%m-%d %H:%M} UTC): "
                     f"{run.total} discrepancies, none unacknowledged")
    return Check(name, False, f"run {run.id}: {len(open_findings)} not acknowledged: "
                 f"{_some(f'{f.deal_id} {f.kind}' for f in open_findings)}; repair or "
                 "`handoff reconcile ack DEAL CLASS`")


def _some(keys: object, shown: int = 5) -> str:
    items = list(keys)  # type: ignore[call-overload]
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more
