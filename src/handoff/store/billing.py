"""Persistence of billing: what delivery said of each milestone, the time it recorded, and
the billing documents (invoices, credit notes) the ERP made."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.domain import (
    Customer,
    Invoice,
    InvoiceStatus,
    MilestoneProgress,
    MilestoneStatus,
    Money,
    Opportunity,
    ProvisioningStatus,
    TimeEntry,
    TimeEntryStatus,
)
from handoff.domain.terms import DealTerms
from handoff.engine.payloads import parse_customer, parse_opportunity
from handoff.store.sql import upsert
from handoff.store.tables import (
    customers,
    invoices,
    milestone_progress,
    opportunities,
    provisioning,
    time_entries,
)
from handoff.store.terms import latest_plans


@dataclass(frozen=True, slots=True)
class BilledDocument:
    """An invoice or credit note the ERP made for one line of a deal."""

    document_id: str
    line_id: str
    invoice: Invoice


@dataclass(frozen=True, slots=True)
class BillingSnapshot:
    opportunity: Opportunity
    correlation_id: str
    provisioning_status: ProvisioningStatus | None
    project_target_id: str | None
    customer_target_id: str | None = None
    note: str = ""  # what billing last said about this deal (blocked, ignored progress)
    terms: DealTerms | None = None  # approved, once provisioned
    customer: Customer | None = None
    progress: dict[str, MilestoneProgress] = field(default_factory=dict)  # by milestone id
    time: list[TimeEntry] = field(default_factory=list)
    documents: dict[str, BilledDocument] = field(default_factory=dict)  # by document id


@dataclass(frozen=True, slots=True)
class InvoiceRecord:
    """One billing document to save: which deal and line it bills, in which system."""

    opportunity_id: str
    document_id: str
    line_id: str
    system: str
    invoice: Invoice


_opp, _prov, _ms, _inv = opportunities.c, provisioning.c, milestone_progress.c, invoices.c
DEAL = (sa.select(_opp.data, _opp.correlation_id, _prov.status, _prov.project_target_id,
                  _prov.customer_target_id, _prov.billing_note, customers.c.data.label("customer"))
        .outerjoin(provisioning, _prov.opportunity_id == _opp.id)
        .outerjoin(customers, customers.c.id == _opp.account_id)
        .where(_opp.id == sa.bindparam("b_id")))
PROGRESS = sa.select(milestone_progress).where(_ms.opportunity_id == sa.bindparam("b_id"))
TIME = sa.select(time_entries).where(time_entries.c.opportunity_id == sa.bindparam("b_id"))
INVOICES = sa.select(invoices).where(_inv.opportunity_id == sa.bindparam("b_id"))


def load_billing(conn: Connection, opportunity_id: str) -> BillingSnapshot | None:
    """None while the deal itself is unknown (progress may arrive first)."""
    deal = conn.execute(DEAL, {"b_id": opportunity_id}).first()
    if deal is None:
        return None
    key = {"b_id": opportunity_id}
    return BillingSnapshot(
        opportunity=parse_opportunity(deal.data),
        correlation_id=deal.correlation_id,
        provisioning_status=ProvisioningStatus(deal.status) if deal.status else None,
        project_target_id=deal.project_target_id,
        customer_target_id=deal.customer_target_id,
        note=deal.billing_note or "",
        terms=plan.terms if (plan := latest_plans(conn, [opportunity_id]).get(opportunity_id))
        else None,
        customer=parse_customer(deal.customer) if deal.customer else None,
        progress={row.milestone_id: _progress(row) for row in conn.execute(PROGRESS, key)},
        time=[time_entry_of(row) for row in conn.execute(TIME, key)],
        documents={row.document_id: BilledDocument(row.document_id, row.line_id, invoice_of(row))
                   for row in conn.execute(INVOICES, key)},
    )


def save_invoices(conn: Connection, records: Sequence[InvoiceRecord], now: datetime) -> None:
    if records:
        rows = [_invoice_row(record, now) for record in records]
        upsert(conn, invoices, rows, ("opportunity_id", "document_id"))


def time_entry_of(row: sa.Row) -> TimeEntry:
    return TimeEntry(
        opportunity_id=row.opportunity_id, entry_id=row.entry_id, work_date=row.work_date,
        hours=row.hours, rate=Money(row.rate, row.currency), status=TimeEntryStatus(row.status),
        version=row.version, person=row.person)


def invoice_of(row: sa.Row) -> Invoice:
    def money(amount: object) -> Money:
        return Money(amount, row.currency)  # type: ignore[arg-type]

    return Invoice(
        external_id=row.external_id, target_id=row.target_id, number=row.number,
        status=InvoiceStatus(row.status), untaxed=money(row.untaxed), tax=money(row.tax),
        total=money(row.total), amount_due=money(row.amount_due), invoice_date=row.invoice_date,
        due_date=row.due_date)


def _progress(row: sa.Row) -> MilestoneProgress:
    return MilestoneProgress(
        opportunity_id=row.opportunity_id, milestone_id=row.milestone_id,
        status=MilestoneStatus(row.status), version=row.version, achieved_on=row.achieved_on,
        accepted_on=row.accepted_on)


def _invoice_row(record: InvoiceRecord, now: datetime) -> dict[str, object]:
    inv = record.invoice
    return {
        "opportunity_id": record.opportunity_id, "document_id": record.document_id,
        "line_id": record.line_id,
        "external_id": inv.external_id, "system": record.system, "target_id": inv.target_id,
        "number": inv.number, "status": inv.status.value, "currency": inv.total.currency,
        "untaxed": inv.untaxed.amount, "tax": inv.tax.amount, "total": inv.total.amount,
        "amount_due": inv.amount_due.amount, "invoice_date": inv.invoice_date,
        "due_date": inv.due_date, "observed_at": now,
    }
