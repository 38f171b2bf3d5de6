"""What the NetSuite twin works out when a customer transaction is saved: an invoice or credit
memo is numbered, dated and posted at once (status Open) with totals from its item lines; a
customer payment lowers what remains due on the invoices it applies to, and an invoice with
nothing left to pay is Paid In Full.

The twin charges no tax (`taxTotal` 0) and bills on its default terms, Net 30, unless the
request sets `dueDate`. Credit memos are positive, as in NetSuite; nothing applies them yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from handoff.connectors.netsuite.twin_schema import PREFIX, TwinFault, invalid_value

TERMS_DAYS = 30
FIRST_NUMBER = 10001
NUMBER_PREFIXES = {"invoice": "INV", "creditMemo": "CM", "customerPayment": "PYMT"}
OPEN, PAID = "A", "B"

Record = dict[str, Any]
Records = Mapping[str, Mapping[str, Record]]  # record type -> internal id -> record


def opened(type_name: str, record: Record, records: Records, number: int, today: date) -> Record:
    """A new transaction with what NetSuite fills in: its number, today's date, its customer's
    currency and subsidiary, and (invoices) the due date of its terms."""
    customer = records["customer"][record.get("entity") or record["customer"]]
    tran_date = record.get("tranDate", today.isoformat())
    defaults = {"tranId": f"{NUMBER_PREFIXES[type_name]}{number}", "tranDate": tran_date,
                "currency": customer["currency"]}
    if type_name != "customerPayment":
        defaults["subsidiary"] = customer["subsidiary"]
    if type_name == "invoice":
        defaults["dueDate"] = (date.fromisoformat(tran_date) + timedelta(TERMS_DAYS)).isoformat()
    return defaults | record


def settled(type_name: str, record: Record, records: Records, now: str) -> Record:
    """The transaction with its totals worked out; a payment applied to its invoices (`now`
    is their new lastModifiedDate)."""
    if type_name == "customerPayment":
        return _applied(record, records, now)
    _check_project(record, records)
    lines = [_with_amount(line) for line in record.get("item", ())]
    if not lines:
        raise TwinFault(400, "USER_ERROR", f"{PREFIX}You must enter at least one line item for "
                        "this transaction.")
    total = sum((line["amount"] for line in lines), Decimal(0))
    if total < 0:
        raise TwinFault(400, "USER_ERROR", f"{PREFIX}The total can not be negative.")
    return _with_remaining(record | {"item": lines, "subtotal": total, "taxTotal": Decimal(0),
                                     "total": total}, record.get("amountPaid", Decimal(0)))


def _check_project(record: Record, records: Records) -> None:
    job = record.get("job")
    if job is not None and records["job"][job]["parent"] != record["entity"]:
        raise invalid_value("job", job)


def _with_amount(line: Record) -> Record:
    """A line's amount is what was sent, else quantity × rate."""
    quantity = line.get("quantity", 1)
    if "amount" in line:
        return line | {"quantity": quantity}
    if "rate" not in line:
        raise TwinFault(400, "USER_ERROR", f"{PREFIX}Please enter value(s) for: Amount")
    return line | {"quantity": quantity, "amount": quantity * line["rate"]}


def _with_remaining(record: Record, paid: Decimal) -> Record:
    remaining = record["total"] - paid
    if remaining < 0:
        raise TwinFault(400, "USER_ERROR", f"{PREFIX}The total can not be less than the amount "
                        "already paid.")
    return record | {"amountPaid": paid, "amountRemaining": remaining,
                     "status": PAID if remaining == 0 else OPEN}


def _applied(payment: Record, records: Records, now: str) -> Record:
    """Checks every line before changing any invoice: a refused payment changes nothing."""
    if payment["payment"] <= 0:
        raise invalid_value("payment", payment["payment"])
    amounts: dict[str, Decimal] = {}  # invoice id -> applied to it
    for n, line in enumerate(payment.get("apply", ())):
        if line.get("apply"):
            amounts[line["doc"]] = amounts.get(line["doc"], Decimal(0)) + line.get("amount", 0)
            _check_applicable(f"apply.items[{n}]", line, amounts[line["doc"]], payment, records)
    applied = sum(amounts.values(), Decimal(0))
    if applied > payment["payment"]:
        raise TwinFault(400, "USER_ERROR", f"{PREFIX}The amount applied can not exceed the "
                        "payment amount.")
    for doc, amount in amounts.items():
        invoice = records["invoice"][doc]
        invoice.update(_with_remaining(invoice, invoice["amountPaid"] + amount),
                       lastModifiedDate=now)
    return payment | {"applied": applied, "unapplied": payment["payment"] - applied}


def _check_applicable(path: str, line: Record, total_applied: Decimal, payment: Record,
                      records: Records) -> None:
    """The line's invoice is the paying customer's, and owes at least what is applied to it."""
    invoice = records["invoice"][line["doc"]]
    if invoice["entity"] != payment["customer"]:
        raise invalid_value("doc", line["doc"]).at(f"{path}.doc")
    if line.get("amount", 0) <= 0 or total_applied > invoice["amountRemaining"]:
        raise invalid_value("amount", line.get("amount")).at(f"{path}.amount")
