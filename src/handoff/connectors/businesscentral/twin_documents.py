"""What the Business Central twin works out for sales documents: a draft invoice or credit memo
is numbered from its draft series and dated, its lines priced (quantity × unit price, rounded to
the cent), its totals summed; `Microsoft.NAV.post` turns a draft with something to post into an
Open document with its posted number, and a customer payment (twin-only, as a posted and
applied payment would) lowers what remains due on an invoice until it is Paid.

The twin charges no tax (`totalTaxAmount` 0, prices exclude tax) and gives no discounts; its
payment terms are Net 30 unless the request sets `dueDate`. Credit memos stay Open once posted:
nothing applies them yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from handoff.connectors.businesscentral.twin_schema import (
    NO_DATE,
    SALES_INVOICES,
    EntitySet,
    Record,
    bad_request,
    dialog,
)

TERMS_DAYS = 30
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Series:
    """A document kind's number series: drafts, then posted documents."""

    draft: str
    posted: str

    def draft_number(self, made: int) -> str:
        return f"{self.draft}{100001 + made}"


SERIES: Mapping[str, Series] = {
    "salesInvoices": Series("S-INV", "PS-INV"),
    "salesCreditMemos": Series("S-CR", "PS-CR"),
}
POSTED_FIRST = {"salesInvoices": 103001, "salesCreditMemos": 104001}


def document_date_field(entity: EntitySet) -> str:
    return "invoiceDate" if entity is SALES_INVOICES else "creditMemoDate"


def opened(entity: EntitySet, values: Record, customer: Record, number: str, today: date) -> Record:
    """A new draft with what BC fills in: its draft number, today's date, the posting date
    and (invoices) the due date of the terms, the customer's currency."""
    date_field = document_date_field(entity)
    document_date = values.get(date_field, today.isoformat())
    defaults = {"number": number, date_field: document_date, "postingDate": document_date,
                "dueDate": (date.fromisoformat(document_date) + timedelta(TERMS_DAYS)).isoformat()
                if entity is SALES_INVOICES else document_date,
                "currencyCode": customer.get("currencyCode", ""), "status": "Draft",
                "customerPurchaseOrderReference": "", "externalDocumentNumber": ""}
    if entity is not SALES_INVOICES:
        defaults.pop("customerPurchaseOrderReference")
    return defaults | values


def priced(line: Record, reference: Mapping[str, list[Record]]) -> Record:
    """A line with its object resolved (item or G/L account, by id or number) and its amounts."""
    line_type = line.get("lineType", "Item")
    if line_type == "Comment":
        return line | {"quantity": Decimal(0), "unitPrice": Decimal(0)} | _amounts(Decimal(0))
    if line_type not in ("Item", "Account"):
        raise bad_request(f"The sandbox twin bills lines of type Item, Account or Comment, "
                          f"not {line_type!r}.")
    table = "items" if line_type == "Item" else "accounts"
    id_field = "itemId" if line_type == "Item" else "accountId"
    found = _object(reference[table], line.get(id_field), line.get("lineObjectNumber"))
    if found is None:
        raise dialog("Item does not exist." if line_type == "Item" else "Account does not exist.")
    if found.get("blocked"):
        raise dialog(f"You cannot sell {'Item' if line_type == 'Item' else 'G/L Account'} "
                     f"{found['number']} because the Blocked check box is selected.")
    quantity = line.get("quantity", Decimal(0))
    unit_price = line.get("unitPrice", Decimal(str(found.get("unitPrice", 0))))
    if quantity < 0 or unit_price < 0:
        raise dialog("The \"quantity\" and the \"unitPrice\" of a line must not be negative.")
    amount = (quantity * unit_price).quantize(CENT, ROUND_HALF_UP)
    return line | {"lineType": line_type, id_field: found["id"], "lineObjectNumber": found["number"],
                   "quantity": quantity, "unitPrice": unit_price,
                   "description": line.get("description", found["displayName"])} | _amounts(amount)


def with_totals(document: Record, lines: list[Record]) -> Record:
    total = sum((line["amountExcludingTax"] for line in lines), Decimal(0))
    return document | {"totalAmountExcludingTax": total, "totalTaxAmount": Decimal(0),
                       "totalAmountIncludingTax": total}


def posted(entity: EntitySet, document: Record, lines: list[Record], customer: Record,
           number: str) -> Record:
    """A draft posted: Open with its posted number, all of its total still due."""
    if document["status"] != "Draft":
        kind = "invoice" if entity is SALES_INVOICES else "credit memo"
        raise dialog(f"The action can be applied to a draft {kind} only.")
    if not any(line["lineType"] != "Comment" and line["quantity"] for line in lines):
        raise dialog("There is nothing to post.")
    blocked = customer.get("blocked", " ")
    if blocked in ("Invoice", "All"):
        raise dialog(f"You cannot post this type of document when Customer {customer['number']} is "
                     f"blocked with type {blocked}")
    total = document["totalAmountIncludingTax"]
    return document | {"number": number, "status": "Open" if total else "Paid", "remaining": total,
                       "posted": True}


def paid(invoice: Record, amount: Any) -> Record:
    """An Open invoice after a customer payment of `amount` applied to it."""
    if isinstance(amount, bool) or not isinstance(amount, int | Decimal | str):
        raise bad_request("amount must be a number (or decimal text)")
    try:
        amount = Decimal(str(amount))
    except ArithmeticError:
        raise bad_request(f"amount {amount!r} is not a number") from None
    if invoice["status"] != "Open":
        raise dialog(f"Invoice {invoice['number']} is {invoice['status']}: only an Open invoice "
                     "can be paid.")
    if not amount.is_finite() or amount <= 0 or amount > invoice["remaining"]:
        raise dialog(f"The payment of {amount} must be positive and at most the remaining amount "
                     f"{invoice['remaining']}.")
    remaining = invoice["remaining"] - amount
    return invoice | {"remaining": remaining, "status": "Paid" if remaining == 0 else "Open"}


def remaining_amount(document: Record) -> Decimal:
    """As the API page works it out: the total of a draft, what is left of a posted invoice,
    nothing of a canceled one."""
    if document["status"] == "Canceled":
        return Decimal(0)
    return document.get("remaining", document["totalAmountIncludingTax"]) if document.get("posted") \
        else document["totalAmountIncludingTax"]


def due_date_ok(document: Record, date_field: str) -> None:
    if document.get("dueDate", NO_DATE) < document[date_field]:
        raise dialog("The \"dueDate\" must not be before the document date.")


def _object(rows: list[Record], object_id: str | None, number: str | None) -> Record | None:
    for row in rows:
        if (object_id and row["id"] == object_id) or (not object_id and number and row["number"] == number):
            return row
    return None


def _amounts(amount: Decimal) -> Record:
    return {"amountExcludingTax": amount, "totalTaxAmount": Decimal(0), "amountIncludingTax": amount,
            "netAmount": amount, "netTaxAmount": Decimal(0), "netAmountIncludingTax": amount,
            "taxPercent": Decimal(0), "discountAmount": Decimal(0), "discountPercent": Decimal(0),
            "invoiceDiscountAllocation": Decimal(0)}
