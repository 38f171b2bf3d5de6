"""A snapshot built from what each system lists: the CRM's deals, the ERP's projects and
billing documents, and handoff's own approved invoice plans. The rows are staged as they
arrive (in batches, so a long listing never sits in Python's memory), then one SQL statement
per relation aggregates them into the three relations the engine compares.

The invoice plan comes from handoff's store because no ERP handoff writes to holds a priced
one (a NetSuite job has a price, not a schedule; Tryton's milestone tasks are priced only when
billed): what remains on it is the approved plan's total less what handoff has invoiced, and
the ERP's own invoices are compared with that (docs/decisions/0007).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import astuple, dataclass, fields
from decimal import Decimal
from itertools import islice
from typing import Any

import duckdb

from handoff.connectors.ports import DealFigures, DocumentFigures, ProjectFigures
from handoff.domain import ApprovalStatus, InvoiceStatus
from handoff.reconcile.snapshot import AMOUNT, COLUMNS, ROW_TYPES, Snapshot

BATCH = 5000
COUNTED = (InvoiceStatus.POSTED.value, InvoiceStatus.PAID.value)  # as the CRM is told


@dataclass(frozen=True, slots=True)
class PlanFigures:
    """handoff's approved invoice plan of a deal: its total, and what handoff invoiced on it
    (untaxed, net of credit notes)."""

    deal_id: str
    currency: str
    planned: Decimal
    invoiced: Decimal


@dataclass(frozen=True, slots=True)
class CrmRow:
    deal_id: str
    currency: str | None
    sold_value: Decimal | None
    approved: bool
    invoiced: Decimal | None
    paid: Decimal | None


STAGES: dict[str, tuple[type, str]] = {
    "stage_crm": (CrmRow, f"deal_id VARCHAR, currency VARCHAR, sold_value {AMOUNT}, approved BOOLEAN, "
                          f"invoiced {AMOUNT}, paid {AMOUNT}"),
    "stage_projects": (ProjectFigures, f"deal_id VARCHAR, currency VARCHAR, value {AMOUNT}"),
    "stage_plans": (PlanFigures, f"deal_id VARCHAR, currency VARCHAR, planned {AMOUNT}, invoiced {AMOUNT}"),
    "stage_documents": (DocumentFigures, f"deal_id VARCHAR, document_id VARCHAR, currency VARCHAR, "
                                         f"status VARCHAR, total {AMOUNT}, untaxed {AMOUNT}, "
                                         f"amount_due {AMOUNT}"),
}
# 'none' nothing invoiced, 'paid' nothing left to pay, else 'posted': the same words for the
# CRM's figures and the ERP's, so they compare
STATUS = ("CASE WHEN coalesce({invoiced}, 0) = 0 THEN 'none' "
          "WHEN coalesce({paid}, 0) >= {invoiced} THEN 'paid' ELSE 'posted' END")
RELATIONS = {
    "crm_deals": f"""SELECT deal_id, coalesce(currency, '') AS currency,
        coalesce(sold_value, 0) AS sold_value, approved,
        coalesce(invoiced, 0) AS invoiced, coalesce(paid, 0) AS paid,
        {STATUS.format(invoiced='invoiced', paid='paid')} AS invoice_status FROM stage_crm""",
    "erp_projects": """SELECT p.deal_id, p.currency, p.value AS project_value,  -- NULL: not held there
        coalesce(plan.planned - plan.invoiced, 0) AS planned_remaining
        FROM stage_projects p LEFT JOIN stage_plans plan USING (deal_id)""",
    "billing": f"""WITH counted AS (
            SELECT * FROM stage_documents WHERE status IN {COUNTED}
        ), per_deal AS (
            SELECT deal_id,
                   CASE WHEN count(DISTINCT currency) > 1
                        THEN string_agg(DISTINCT currency, '/' ORDER BY currency)
                        ELSE min(currency) END AS currency,
                   sum(total) AS invoiced, sum(untaxed) AS untaxed,
                   -sum(least(total, 0)) AS credited, sum(total - amount_due) AS paid
            FROM counted GROUP BY deal_id
        )
        SELECT deal_id, currency, invoiced, untaxed, credited, paid,
               {STATUS.format(invoiced='invoiced', paid='paid')} AS invoice_status FROM per_deal""",
}


def crm_row(figures: DealFigures, approval_gates: tuple[str, ...]) -> CrmRow:
    """A deal is approved once won and through the deal's own release gates that are on."""
    wanted = {"contract_approved": figures.contract_status, "sow_approved": figures.sow_status}
    approved = figures.is_won and all(status == ApprovalStatus.APPROVED.value
                                      for gate, status in wanted.items() if gate in approval_gates)
    return CrmRow(figures.deal_id, figures.currency, figures.sold_value, approved, figures.invoiced,
                  figures.paid)


def build_snapshot(deals: Iterable[CrmRow], projects: Iterable[ProjectFigures],
                   plans: Iterable[PlanFigures], documents: Iterable[DocumentFigures],
                   progress: Callable[[str, int], None] = lambda _stage, _rows: None) -> Snapshot:
    """Stage each listing as it is read, then make the three relations in SQL."""
    connection = duckdb.connect()
    for (stage, (row_type, columns)), rows in zip(STAGES.items(), (deals, projects, plans, documents),
                                                   strict=True):
        connection.execute(f"CREATE TEMP TABLE {stage} ({columns})")
        progress(stage, stage_rows(connection, stage, row_type, rows))
    for relation in ROW_TYPES:
        connection.execute(f"CREATE TABLE {relation} ({COLUMNS[relation]})")
        connection.execute(f"INSERT INTO {relation} {RELATIONS[relation]}")
    return Snapshot(connection)


def stage_rows(connection: duckdb.DuckDBPyConnection, stage: str, row_type: type,
               rows: Iterable[Any]) -> int:
    names = [f.name for f in fields(row_type)]
    insert = f"INSERT INTO {stage} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    staged = 0
    for batch in batches((astuple(row) for row in rows), BATCH):
        connection.executemany(insert, batch)
        staged += len(batch)
    return staged


def batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch
