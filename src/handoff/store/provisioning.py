"""Persistence of the provisioning flow: what it knows of each deal and what it did."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.domain import Customer, Opportunity, ProvisioningStatus
from handoff.engine.payloads import parse_customer, parse_opportunity
from handoff.store.sql import insert_or_update
from handoff.store.tables import customers, hops, opportunities, provisioning


@dataclass(frozen=True, slots=True)
class ProvisioningState:
    status: ProvisioningStatus = ProvisioningStatus.WAITING
    detail: str = ""
    customer_target_id: str | None = None
    customer_synced_version: datetime | None = None
    project_target_id: str | None = None
    written_back: str | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    opportunity: Opportunity
    customer: Customer | None
    state: ProvisioningState
    correlation_id: str


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


def load_snapshot(conn: Connection, opportunity_id: str) -> Snapshot | None:
    opp_row = conn.execute(
        sa.select(opportunities.c.data, opportunities.c.correlation_id)
        .where(opportunities.c.id == opportunity_id)).first()
    if opp_row is None:
        return None
    opp = parse_opportunity(opp_row.data)
    cust_row = conn.execute(
        sa.select(customers.c.data).where(customers.c.id == opp.account_id)).first()
    state_row = conn.execute(
        sa.select(provisioning).where(provisioning.c.opportunity_id == opportunity_id)).first()
    return Snapshot(
        opportunity=opp,
        customer=parse_customer(cust_row.data) if cust_row else None,
        state=_state(state_row),
        correlation_id=opp_row.correlation_id,
    )


def _state(row: sa.Row | None) -> ProvisioningState:
    if row is None:
        return ProvisioningState()
    return ProvisioningState(
        status=ProvisioningStatus(row.status), detail=row.detail,
        customer_target_id=row.customer_target_id,
        customer_synced_version=row.customer_synced_version,
        project_target_id=row.project_target_id, written_back=row.written_back,
    )


def save_state(conn: Connection, opportunity_id: str, now: datetime, **fields: object) -> None:
    values = {"updated_at": now, **fields}
    insert_or_update(
        conn, provisioning,
        {"opportunity_id": opportunity_id, "status": ProvisioningStatus.WAITING.value, **values},
        ["opportunity_id"], values)


def record_hop(conn: Connection, hop: Hop) -> None:
    conn.execute(sa.insert(hops).values(
        opportunity_id=hop.opportunity_id, correlation_id=hop.correlation_id, step=hop.step,
        system=hop.system, outcome=hop.outcome, target_id=hop.target_id, attempt=hop.attempt,
        started_at=hop.started_at, finished_at=hop.finished_at, detail=hop.detail[:4000]))
