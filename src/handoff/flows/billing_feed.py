"""The analytics feed of billing: one JSON Lines row per billing document (invoice or credit
note) as handoff last saw it in the ERP — amounts as exact decimal text, times in UTC — for a
warehouse to load."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from typing import IO, Any

import orjson
import sqlalchemy as sa

from handoff.store.billing import invoice_of
from handoff.store.db import Database
from handoff.store.tables import invoices, opportunities

ROWS = (sa.select(invoices, opportunities.c.correlation_id, opportunities.c.account_id)
        .join(opportunities, opportunities.c.id == invoices.c.opportunity_id)
        .order_by(invoices.c.observed_at, invoices.c.opportunity_id, invoices.c.document_id))


def feed_rows(db: Database, since: datetime | None = None) -> Iterator[dict[str, Any]]:
    """Invoices observed at or after `since` (all when None), oldest first."""
    query = ROWS if since is None else ROWS.where(invoices.c.observed_at >= since)
    with db.reading() as conn:
        for row in conn.execute(query):
            invoice = invoice_of(row)
            yield {
                "opportunity_id": row.opportunity_id, "account_id": row.account_id,
                "document_id": row.document_id, "line_id": row.line_id,
                "kind": "credit_note" if invoice.total.is_negative else "invoice",
                "correlation_id": row.correlation_id,
                "system": row.system, "external_id": invoice.external_id,
                "target_id": invoice.target_id, "number": invoice.number,
                "status": invoice.status.value, "currency": invoice.total.currency,
                "untaxed": str(invoice.untaxed.amount), "tax": str(invoice.tax.amount),
                "total": str(invoice.total.amount), "paid": str(invoice.paid.amount),
                "amount_due": str(invoice.amount_due.amount),
                "invoice_date": _day(invoice.invoice_date), "due_date": _day(invoice.due_date),
                "observed_at": row.observed_at.isoformat(),
            }


def write_feed(db: Database, out: IO[bytes], since: datetime | None = None) -> int:
    count = 0
    for row in feed_rows(db, since):
        out.write(orjson.dumps(row) + b"\n")
        count += 1
    return count


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None
