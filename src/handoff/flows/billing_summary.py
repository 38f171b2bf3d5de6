"""What the CRM is told about a deal's billing: billed, paid and open to date (net of credit
notes), how many days the oldest unpaid invoice is overdue, the invoice numbers, the latest
document and why anything is held."""

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
CURRENCIES_OF = sa.select(opportunities.c.id, opportunities.c.data).where(
    opportunities.c.id.in_(sa.bindparam("b_ids", expanding=True)))
COUNTED = (InvoiceStatus.POSTED, InvoiceStatus.PAID)


def billing_summaries(conn: Connection, deals: Sequence[sa.Row],
                      today: date) -> dict[str, BillingSummary]:
    """Summaries of the deals (rows with `opportunity_id` and `billing_note`) that have
    invoices or lines held; the others are left out, and their data is not even read
    (the write-back of a provisioning-only deal pays one small query per batch)."""
    by_deal: dict[str, list[Invoice]] = {}
    for row in conn.execute(INVOICES_OF, {"b_ids": [d.opportunity_id for d in deals]}):
        by_deal.setdefault(row.opportunity_id, []).append(invoice_of(row))
    notes = {d.opportunity_id: d.billing_note for d in deals
             if d.opportunity_id in by_deal or d.billing_note}
    if not notes:
        return {}
    currency = {row.id: row.data["currency"] for row in conn.execute(CURRENCIES_OF,
                                                                     {"b_ids": list(notes)})}
    return {deal: summarize(by_deal.get(deal, []), currency[deal], today, note)
            for deal, note in notes.items()}


def summarize(documents: list[Invoice], currency: str, today: date,
              held: str = "") -> BillingSummary:
    counted = [i for i in documents if i.status in COUNTED]

    def total(amounts: list[Decimal]) -> Money:
        return Money(sum(amounts, Decimal(0)), currency)

    latest = max(documents, key=lambda i: (i.invoice_date or date.min, i.number or ""),
                 default=None)
    return BillingSummary(
        invoiced=total([i.total.amount for i in counted]),
        paid=total([i.paid.amount for i in counted]),  # a credit note applied counts against
        open_balance=total([i.amount_due.amount for i in counted]),
        days_overdue=max((_days_late(i, today) for i in counted), default=0),
        invoice_numbers=tuple(i.number for i in sorted(counted, key=_order) if i.number),
        last_invoice=f"{latest.number or latest.target_id} {latest.status}" if latest else "",
        held=held)


def _days_late(invoice: Invoice, today: date) -> int:
    if invoice.amount_due.amount <= 0 or invoice.due_date is None:
        return 0
    return max((today - invoice.due_date).days, 0)


def _order(invoice: Invoice) -> tuple[date, str]:
    return invoice.invoice_date or date.min, invoice.number or ""


def billing_fingerprint(summary: BillingSummary | None) -> str | None:
    """What the CRM was last told of billing; None when there is nothing to tell."""
    if summary is None:
        return None
    text = "|".join(map(str, (summary.invoiced.quantized(), summary.paid.quantized(),
                              summary.open_balance.quantized(), summary.invoiced.currency,
                              summary.days_overdue, ",".join(summary.invoice_numbers),
                              summary.last_invoice, summary.held)))
    return hashlib.sha256(text.encode()).hexdigest()[:32]
