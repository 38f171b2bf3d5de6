"""Persistence of a deal's approved plan versions and its amendments."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.domain.terms import Amendment, AmendmentStatus, DealTerms, parse_terms, terms_data
from handoff.store.audit import AuditEntry
from handoff.store.sql import execute_many, upsert
from handoff.store.tables import amendments, plan_versions


@dataclass(frozen=True, slots=True)
class PlanVersion:
    """Approved terms: v1 when the deal was provisioned, one more per approved amendment."""

    opportunity_id: str
    version: int
    terms: DealTerms
    amendment_id: str | None = None


_pv, _am = plan_versions.c, amendments.c
PLANS_OF = (sa.select(plan_versions).where(_pv.opportunity_id.in_(sa.bindparam("b_ids", expanding=True)))
            .order_by(_pv.opportunity_id, _pv.version))
AMENDMENTS_OF = (sa.select(amendments)
                 .where(_am.opportunity_id.in_(sa.bindparam("b_ids", expanding=True)))
                 .order_by(_am.opportunity_id, _am.requested_at, _am.id))
AMENDMENT = sa.select(amendments).where(_am.id == sa.bindparam("b_id"))
PENDING = (sa.select(amendments).where(_am.status == AmendmentStatus.PENDING.value)
           .order_by(_am.requested_at, _am.id))


def latest_plans(conn: Connection, opportunity_ids: Sequence[str]) -> dict[str, PlanVersion]:
    """Each deal's current approved terms (deals not provisioned yet have none)."""
    if not opportunity_ids:
        return {}
    rows = conn.execute(PLANS_OF, {"b_ids": list(opportunity_ids)})
    return {row.opportunity_id: _plan(row) for row in rows}  # ordered: the last one wins


def amendments_by_deal(conn: Connection, opportunity_ids: Sequence[str],
                       ) -> dict[str, tuple[Amendment, ...]]:
    """Each deal's amendments, oldest first."""
    found: dict[str, list[Amendment]] = {}
    if opportunity_ids:
        for row in conn.execute(AMENDMENTS_OF, {"b_ids": list(opportunity_ids)}):
            found.setdefault(row.opportunity_id, []).append(amendment_of(row))
    return {deal: tuple(items) for deal, items in found.items()}


def load_amendment(conn: Connection, amendment_id: str, *, for_update: bool = False,
                   ) -> Amendment | None:
    stmt = AMENDMENT.with_for_update() if for_update else AMENDMENT
    row = conn.execute(stmt, {"b_id": amendment_id}).first()
    return None if row is None else amendment_of(row)


def pending_amendments(conn: Connection) -> list[Amendment]:
    return [amendment_of(row) for row in conn.execute(PENDING)]


INSERT_PLAN_VERSION = sa.insert(plan_versions)


def save_plan_versions(conn: Connection, plans: Iterable[PlanVersion], now: datetime) -> None:
    rows = [{"opportunity_id": p.opportunity_id, "version": p.version, "terms": terms_data(p.terms),
             "amendment_id": p.amendment_id, "created_at": now} for p in plans]
    execute_many(conn, INSERT_PLAN_VERSION, rows)


def save_amendments(conn: Connection, items: Iterable[Amendment]) -> None:
    """New amendments, or new statuses of known ones (the request itself never changes)."""
    for item in items:
        upsert(conn, amendments, _amendment_row(item), ("id",),
               update=("status", "decided_by", "decided_at", "decision_reason"))


def amendment_audit(amendment: Amendment, actor: str) -> AuditEntry:
    """The audit log's entry for an amendment's request or decision: terms before and after."""
    return AuditEntry(actor, f"amendment.{amendment.status}", amendment.opportunity_id,
                      amendment.correlation_id, terms_data(amendment.before),
                      {"amendment": amendment.id, **terms_data(amendment.after)})


def amendment_of(row: sa.Row) -> Amendment:
    return Amendment(
        id=row.id, opportunity_id=row.opportunity_id, correlation_id=row.correlation_id,
        status=AmendmentStatus(row.status), base_version=row.base_version,
        before=parse_terms(row.before), after=parse_terms(row.after), requester=row.requester,
        reason=row.reason, origin=row.origin, requested_at=row.requested_at,
        decided_by=row.decided_by, decided_at=row.decided_at, decision_reason=row.decision_reason)


def _plan(row: sa.Row) -> PlanVersion:
    return PlanVersion(row.opportunity_id, row.version, parse_terms(row.terms), row.amendment_id)


def _amendment_row(item: Amendment) -> dict[str, object]:
    return {
        "id": item.id, "opportunity_id": item.opportunity_id, "correlation_id": item.correlation_id,
        "status": item.status.value, "base_version": item.base_version,
        "before": terms_data(item.before), "after": terms_data(item.after),
        "requester": item.requester, "reason": item.reason, "origin": item.origin,
        "requested_at": item.requested_at, "decided_by": item.decided_by,
        "decided_at": item.decided_at, "decision_reason": item.decision_reason}
