"""Persistence of the provisioning flow: what it knows of each deal and what it did."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.domain import (
    BillingMethod,
    Customer,
    Milestone,
    Money,
    Opportunity,
    Project,
    ProvisioningStatus,
)
from handoff.domain.terms import Amendment, AmendmentStatus, DealTerms, parse_terms
from handoff.engine.payloads import parse_customer, parse_opportunity
from handoff.store.sql import execute_many, one_of, upsert
from handoff.store.tables import (
    customers,
    hops,
    milestone_progress,
    opportunities,
    provisioning,
    time_entries,
)
from handoff.store.terms import PlanVersion, amendments_by_deal, latest_plans


@dataclass(frozen=True, slots=True)
class ProvisioningState:
    status: ProvisioningStatus = ProvisioningStatus.WAITING
    detail: str = ""
    customer_external_id: str | None = None
    customer_target_id: str | None = None
    customer_synced_version: datetime | None = None
    project_external_id: str | None = None
    project_target_id: str | None = None
    written_back: str | None = None
    project_sent: Project | None = None  # the project as last sent to the ERP
    crm_terms: DealTerms | None = None   # the CRM's financial terms as last compared


@dataclass(frozen=True, slots=True)
class Snapshot:
    opportunity: Opportunity
    customer: Customer | None
    state: ProvisioningState
    correlation_id: str
    plan: PlanVersion | None = None  # the approved terms, once provisioned
    amendments: tuple[Amendment, ...] = ()  # oldest first
    delivered: bool = False  # delivery reported progress or time on the deal

    @property
    def open_amendment(self) -> Amendment | None:
        return next((a for a in reversed(self.amendments) if a.status is AmendmentStatus.PENDING), None)


@dataclass(frozen=True, slots=True)
class Hop:
    opportunity_id: str
    correlation_id: str
    step: str
    system: str
    outcome: str
    attempt: int
    started_at: datetime
    finished_at: datetime
    target_id: str | None = None
    detail: str = ""


_opp, _cust, _prov = opportunities.c, customers.c, provisioning.c
# Whether delivery has reported on the deal (progress, time): billing then has work to look at.
_DELIVERED = sa.or_(
    sa.exists().where(milestone_progress.c.opportunity_id == _opp.id),
    sa.exists().where(time_entries.c.opportunity_id == _opp.id)).label("delivered")
_SNAPSHOT = (
    sa.select(_opp.id, _opp.data, _opp.correlation_id, _cust.data.label("customer"), _DELIVERED,
              provisioning)
    .select_from(opportunities)
    .outerjoin(customers, _cust.id == _opp.account_id)
    .outerjoin(provisioning, _prov.opportunity_id == _opp.id)
)
SNAPSHOT = _SNAPSHOT.where(_opp.id == sa.bindparam("b_id"))
SNAPSHOTS = _SNAPSHOT.where(one_of(_opp.id, "b_ids"))
RECORD_HOP = sa.insert(hops)


def load_snapshot(conn: Connection, opportunity_id: str) -> Snapshot | None:
    return load_snapshots(conn, [opportunity_id]).get(opportunity_id)


CORRELATIONS = (sa.select(opportunities.c.id, opportunities.c.correlation_id)
                .where(one_of(opportunities.c.id, "b_ids")))


def correlation_ids(conn: Connection, opportunity_ids: list[str]) -> dict[str, str]:
    """Each known deal's correlation id (set when its first event is accepted, never changed)."""
    if not opportunity_ids:
        return {}
    return {row.id: row.correlation_id for row in conn.execute(CORRELATIONS, {"b_ids": opportunity_ids})}


def load_snapshots(conn: Connection, opportunity_ids: list[str]) -> dict[str, Snapshot]:
    """Many deals in three queries (a worker's freshly claimed keys): the deals with their
    customers and state, their plan versions, their amendments."""
    rows = list(conn.execute(SNAPSHOTS, {"b_ids": opportunity_ids})) if opportunity_ids else []
    provisioned = [row.id for row in rows if row.project_target_id is not None]
    plans = latest_plans(conn, provisioned)
    amendments = amendments_by_deal(conn, provisioned)
    return {row.id: _snapshot(row, plans.get(row.id), amendments.get(row.id, ())) for row in rows}


def _snapshot(row: sa.Row, plan: PlanVersion | None, amendments: tuple[Amendment, ...]) -> Snapshot:
    return Snapshot(
        opportunity=parse_opportunity(row.data),
        customer=parse_customer(row.customer) if row.customer else None,
        state=_state(row),
        correlation_id=row.correlation_id,
        plan=plan,
        amendments=amendments,
        delivered=bool(row.delivered),
    )


def _state(row: sa.Row) -> ProvisioningState:
    if row.status is None:
        return ProvisioningState()
    return ProvisioningState(
        status=ProvisioningStatus(row.status), detail=row.detail,
        customer_external_id=row.customer_external_id, customer_target_id=row.customer_target_id,
        customer_synced_version=row.customer_synced_version,
        project_external_id=row.project_external_id, project_target_id=row.project_target_id,
        written_back=row.written_back,
        project_sent=parse_project(row.project_sent) if row.project_sent else None,
        crm_terms=parse_terms(row.crm_terms) if row.crm_terms else None,
    )


def project_data(project: Project) -> dict[str, object]:
    return {"external_id": project.external_id, "opportunity_id": project.opportunity_id,
            "name": project.name, "customer_external_id": project.customer_external_id,
            "value": str(project.value.quantized()), "currency": project.value.currency,
            "billing_method": project.billing_method.value,
            "start_date": project.start_date.isoformat(), "legal_entity": project.legal_entity,
            "milestones": [{"id": m.id, "name": m.name, "amount": str(m.amount.quantized())}
                           for m in project.milestones]}


def parse_project(data: dict[str, Any]) -> Project:
    return Project(
        external_id=data["external_id"], opportunity_id=data["opportunity_id"], name=data["name"],
        customer_external_id=data["customer_external_id"],
        value=Money.parse(data["value"], data["currency"]),
        billing_method=BillingMethod(data["billing_method"]),
        start_date=date.fromisoformat(data["start_date"]), legal_entity=data.get("legal_entity"),
        milestones=tuple(Milestone(m["id"], m["name"], Money.parse(m["amount"], data["currency"]))
                         for m in data.get("milestones", ())))


def save_states(conn: Connection, states: Mapping[str, Mapping[str, object]],
                now: datetime) -> None:
    """Several deals' fields; deals changing the same fields share one statement."""
    by_fields: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for opportunity_id, fields in states.items():
        row = {"opportunity_id": opportunity_id, "status": ProvisioningStatus.WAITING.value,
               **fields, "updated_at": now}
        by_fields.setdefault(tuple(sorted(fields)), []).append(row)
    for changed, rows in by_fields.items():
        upsert(conn, provisioning, rows, ("opportunity_id",), update=(*changed, "updated_at"))


def record_hops(conn: Connection, batch: list[Hop]) -> None:
    if batch:
        execute_many(conn, RECORD_HOP, [_hop_row(hop) for hop in batch])


def _hop_row(hop: Hop) -> dict[str, object]:
    return {"opportunity_id": hop.opportunity_id, "correlation_id": hop.correlation_id,
            "step": hop.step, "system": hop.system, "outcome": hop.outcome,
            "target_id": hop.target_id, "attempt": hop.attempt, "started_at": hop.started_at,
            "finished_at": hop.finished_at, "detail": hop.detail[:4000]}
