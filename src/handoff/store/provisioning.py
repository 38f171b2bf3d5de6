"""Persistence of the provisioning flow: what it knows of each deal and what it did."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.domain import Customer, Opportunity, ProvisioningStatus
from handoff.engine.payloads import parse_customer, parse_opportunity
from handoff.store.sql import upsert
from handoff.store.tables import customers, hops, opportunities, provisioning


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


_opp, _cust, _prov = opportunities.c, customers.c, provisioning.c
_SNAPSHOT = (
    sa.select(_opp.id, _opp.data, _opp.correlation_id, _cust.data.label("customer"), provisioning)
    .select_from(opportunities)
    .outerjoin(customers, _cust.id == _opp.account_id)
    .outerjoin(provisioning, _prov.opportunity_id == _opp.id)
)
SNAPSHOT = _SNAPSHOT.where(_opp.id == sa.bindparam("b_id"))
SNAPSHOTS = _SNAPSHOT.where(_opp.id.in_(sa.bindparam("b_ids", expanding=True)))
RECORD_HOP = sa.insert(hops)


def load_snapshot(conn: Connection, opportunity_id: str) -> Snapshot | None:
    row = conn.execute(SNAPSHOT, {"b_id": opportunity_id}).first()
    return None if row is None else _snapshot(row)


def load_snapshots(conn: Connection, opportunity_ids: list[str]) -> dict[str, Snapshot]:
    """Many deals in one query (a worker's freshly claimed keys)."""
    rows = conn.execute(SNAPSHOTS, {"b_ids": opportunity_ids}) if opportunity_ids else []
    return {row.id: _snapshot(row) for row in rows}


def _snapshot(row: sa.Row) -> Snapshot:
    return Snapshot(
        opportunity=parse_opportunity(row.data),
        customer=parse_customer(row.customer) if row.customer else None,
        state=_state(row),
        correlation_id=row.correlation_id,
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
    )


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
        conn.execute(RECORD_HOP, [_hop_row(hop) for hop in batch])


def _hop_row(hop: Hop) -> dict[str, object]:
    return {"opportunity_id": hop.opportunity_id, "correlation_id": hop.correlation_id,
            "step": hop.step, "system": hop.system, "outcome": hop.outcome,
            "target_id": hop.target_id, "attempt": hop.attempt, "started_at": hop.started_at,
            "finished_at": hop.finished_at, "detail": hop.detail[:4000]}
