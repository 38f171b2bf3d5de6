"""What the CRM is told about a deal's invoices: invoiced and paid totals, how many of the
sold milestones are invoiced, and the latest invoice."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.connectors.ports import BillingSummary
from handoff.domain import Invoice, InvoiceStatus, Money
from handoff.store.billing import invoice_of
from handoff.store.tables import invoices, opportunities

INVOICES_OF = sa.select(invoices).where(
    invoices.c.opportunity_id.in_(sa.bindparam("b_ids", expanding=True)))
DEALS_OF = sa.select(opportunities.c.id, opportunities.c.data).where(
    opportunities.c.id.in_(sa.bindparam("b_ids", expanding=True)))
COUNTED = (InvoiceStatus.POSTED, InvoiceStatus.PAID)


def billing_summaries(conn: Connection, deals: Sequence[sa.Row]) -> dict[str, BillingSummary]:
    """Summaries of the deals (rows with `opportunity_id` and `billing_note`) that have
    invoices or milestones held; the others are left out, and their data is not even read
    (the write-back of a provisioning-only deal pays one small query per batch)."""
    by_deal: dict[str, list[Invoice]] = {}
    for row in conn.execute(INVOICES_OF, {"b_ids": [d.opportunity_id for d in deals]}):
        by_deal.setdefault(row.opportunity_id, []).append(invoice_of(row))
    notes = {d.opportunity_id: d.billing_note for d in deals
             if d.opportunity_id in by_deal or d.billing_note}
    if not notes:
        return {}
    data = {row.id: row.data for row in conn.execute(DEALS_OF, {"b_ids": list(notes)})}
    return {deal: summarize(by_deal.get(deal, []), data[deal], note) for deal, note in notes.items()}


def summarize(deal_invoices: list[Invoice], deal: dict, held: str = "") -> BillingSummary:
    counted = [i for i in deal_invoices if i.status in COUNTED]
    currency = deal["currency"]
    latest = max(deal_invoices, key=lambda i: (i.invoice_date or date.min, i.number or ""),
                 default=None)
    return BillingSummary(
        invoiced=Money(sum((i.total.amount for i in counted), Decimal(0)), currency),
        paid=Money(sum((i.paid.amount for i in counted), Decimal(0)), currency),
        invoiced_milestones=len(counted), milestones=len(deal.get("milestones") or ()),
        last_invoice=f"{latest.number or latest.target_id} {latest.status}" if latest else "",
        held=held)


def billing_fingerprint(summary: BillingSummary | None) -> str | None:
    """What the CRM was last told of billing; None when there is nothing to tell."""
    if summary is None:
        return None
    text = (f"{summary.invoiced.quantized()}|{summary.paid.quantized()}|{summary.invoiced.currency}|"
            f"{summary.invoiced_milestones}|{summary.milestones}|{summary.last_invoice}|"
            f"{summary.held}")
    return hashlib.sha256(text.encode()).hexdigest()[:32]
