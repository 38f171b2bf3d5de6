"""The lineage of one deal, end to end: events in, decisions, every hop to every system,
exceptions, and what is still queued. Found by any id the deal is known by."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.engine.keys import billing_key, crm_key, opportunity_key
from handoff.store.db import Database
from handoff.store.retention import pruned_of
from handoff.store.tables import (
    amendments,
    customers,
    exceptions,
    hops,
    inbox_events,
    invoices,
    milestone_progress,
    opportunities,
    plan_versions,
    provisioning,
    reconcile_queue,
)


def find_opportunity_id(conn: Connection, business_id: str) -> str | None:
    """An opportunity id, a project's external or target id, a correlation id, an invoice's
    (or credit note's) number, external id or ERP id, or an amendment to the contract's terms."""
    if conn.execute(sa.select(opportunities.c.id).where(opportunities.c.id == business_id)).first():
        return business_id
    p = provisioning.c
    by_target = conn.execute(sa.select(p.opportunity_id).where(
        sa.or_(p.project_external_id == business_id, p.project_target_id == business_id))).first()
    if by_target:
        return by_target.opportunity_id
    by_correlation = conn.execute(sa.select(opportunities.c.id)
                                  .where(opportunities.c.correlation_id == business_id)).first()
    if by_correlation:
        return by_correlation.id
    i = invoices.c
    by_invoice = conn.execute(sa.select(i.opportunity_id).where(sa.or_(
        i.number == business_id, i.external_id == business_id, i.target_id == business_id))).first()
    if by_invoice:
        return by_invoice.opportunity_id
    by_amendment = conn.execute(sa.select(amendments.c.opportunity_id)
                                .where(amendments.c.id == business_id)).first()
    return by_amendment.opportunity_id if by_amendment else None


def trace(db: Database, business_id: str) -> dict[str, Any] | None:
    with db.reading() as conn:
        opportunity_id = find_opportunity_id(conn, business_id)
        if opportunity_id is None:
            return None
        return _lineage(conn, opportunity_id)


def _lineage(conn: Connection, opportunity_id: str) -> dict[str, Any]:
    opp = conn.execute(sa.select(opportunities).where(opportunities.c.id == opportunity_id)).one()
    state = conn.execute(sa.select(provisioning)
                         .where(provisioning.c.opportunity_id == opportunity_id)).first()
    customer = conn.execute(sa.select(customers.c.data)
                            .where(customers.c.id == opp.account_id)).first()
    keys = [opportunity_key(opportunity_id), crm_key(opportunity_id), billing_key(opportunity_id)]
    return {
        "opportunity_id": opportunity_id,
        "correlation_id": opp.correlation_id,
        "status": state.status if state else "received",
        "detail": state.detail if state else "",
        "opportunity": opp.data,
        "customer": customer.data if customer else None,
        "targets": _targets(state),
        **_billing(conn, opportunity_id, opp.data.get("milestones") or []),
        "events": _rows(conn, sa.select(
            inbox_events.c.received_at, inbox_events.c.source, inbox_events.c.event_id,
            inbox_events.c.type, inbox_events.c.outcome, inbox_events.c.deliveries)
            .where(inbox_events.c.subject == opportunity_id).order_by(inbox_events.c.seq)),
        "events_pruned": _pruned(conn, opportunity_id),
        "hops": [_hop(h) for h in _rows(conn, sa.select(hops).where(
            hops.c.opportunity_id == opportunity_id).order_by(hops.c.id))],
        "exceptions": _rows(conn, sa.select(exceptions)
                            .where(exceptions.c.business_key.in_(keys))
                            .order_by(exceptions.c.id)),
        "queued": _rows(conn, sa.select(
            reconcile_queue.c.key, reconcile_queue.c.due_at, reconcile_queue.c.attempts,
            reconcile_queue.c.last_error).where(reconcile_queue.c.key.in_(keys))),
    }


def _pruned(conn: Connection, opportunity_id: str) -> dict[str, Any] | None:
    """The deal's events retention removed: how many, received when, archived where."""
    pruned = pruned_of(conn, opportunity_id)
    return None if pruned is None else {k: _iso(v) for k, v in pruned.items()}


def _targets(state: sa.Row | None) -> dict[str, Any]:
    if state is None:
        return {}
    return {
        "customer": {"external_id": state.customer_external_id, "id": state.customer_target_id},
        "project": {"external_id": state.project_external_id, "id": state.project_target_id},
        "provisioned_at": _iso(state.provisioned_at),
    }


def _billing(conn: Connection, opportunity_id: str,
             sold: list[dict[str, Any]]) -> dict[str, Any]:
    """The approved plan versions, the amendments, the schedule (as approved, else as sold)
    with delivery's progress, and every billing document."""
    plans = _rows(conn, sa.select(plan_versions).where(
        plan_versions.c.opportunity_id == opportunity_id).order_by(plan_versions.c.version))
    schedule = plans[-1]["terms"]["milestones"] if plans else sold
    progress = {r["milestone_id"]: r for r in _rows(conn, sa.select(milestone_progress).where(
        milestone_progress.c.opportunity_id == opportunity_id))}
    return {
        "plan_versions": [{"version": p["version"], "amendment_id": p["amendment_id"],
                           "created_at": p["created_at"], "value": p["terms"]["value"],
                           "currency": p["terms"]["currency"]} for p in plans],
        "amendments": [_amendment(r) for r in _rows(conn, sa.select(amendments).where(
            amendments.c.opportunity_id == opportunity_id).order_by(amendments.c.requested_at))],
        "milestones": [{**line, **{k: progress.get(line["id"], {}).get(k) for k in
                                   ("status", "achieved_on", "accepted_on")}} for line in schedule],
        "documents": [_document(r) for r in _rows(conn, sa.select(invoices).where(
            invoices.c.opportunity_id == opportunity_id).order_by(invoices.c.observed_at))],
    }


def _amendment(row: dict[str, Any]) -> dict[str, Any]:
    before, after = row.pop("before"), row.pop("after")
    return {**row, "changes": {k: {"before": before[k], "after": after[k]}
                               for k in after if before.get(k) != after[k]}}


def _document(row: dict[str, Any]) -> dict[str, Any]:
    keep = ("document_id", "line_id", "external_id", "system", "target_id", "number", "status",
            "currency", "untaxed", "tax", "total", "amount_due", "invoice_date", "due_date")
    return {k: row[k] for k in keep}


def _hop(row: dict[str, Any]) -> dict[str, Any]:
    started, finished = row.pop("started_at"), row.pop("finished_at")
    row.pop("id", None)
    row.pop("opportunity_id", None)
    return {**row, "started_at": started, "duration_ms": _millis(started, finished)}


def _millis(started: str, finished: str) -> int:
    return round((datetime.fromisoformat(finished) - datetime.fromisoformat(started))
                 .total_seconds() * 1000)


def _rows(conn: Connection, stmt: sa.Select) -> list[dict[str, Any]]:
    return [{k: _iso(v) for k, v in row._mapping.items()} for row in conn.execute(stmt)]


def _iso(value: Any) -> Any:
    """JSON-ready: times and dates as ISO text, amounts as exact decimal text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value) if isinstance(value, Decimal) else value
