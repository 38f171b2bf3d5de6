"""What the Oracle twin works out when a receivables document is saved: numbered from its
source, dated, billed to the customer account named by BillToCustomerNumber, totalled from
its lines; a complete invoice has one installment on its payment terms, and a receipt (a
twin-only control) lowers what is due until the installment is Closed.

Simplifications, each ⚠ a choice of the twin:
- every party has a Receivables customer account numbered like the party, with its primary
  bill-to site (Oracle's REST APIs cannot create accounts or sites);
- no tax and no freight: EnteredAmount is the sum of the lines;
- an invoice is Complete unless the request says Incomplete;
- a credit memo is complete at once, is negative (as Oracle keeps credits), and nothing
  applies it, so it shows no balance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from handoff.connectors.oracle.twin_schema import (
    INVALID,
    PAYMENT_TERMS,
    REQUIRED,
    TRANSACTION_TYPES,
    TwinFault,
    invalid,
)

INVOICES, CREDIT_MEMOS = "receivablesInvoices", "receivablesCreditMemos"
INVOICE_LINES, CREDIT_MEMO_LINES = "receivablesInvoiceLines", "receivablesCreditMemoLines"
INSTALLMENTS = "receivablesInvoiceInstallments"
COMPLETE, INCOMPLETE = "Complete", "Incomplete"
DEFAULT_TERMS = "30 Net"
NUMBER_PREFIXES = {INVOICES: "", CREDIT_MEMOS: "CM"}
FIRST_NUMBER = 10001

Record = dict[str, Any]


def opened(resource: str, record: Record, accounts: Iterable[Record], number: int, today: date,
           new_id: Any) -> Record:
    """A new document with what Oracle fills in, its lines numbered and totalled."""
    if record["TransactionType"] not in TRANSACTION_TYPES[resource]:
        raise invalid("TransactionType", record["TransactionType"])
    account = next((a for a in accounts if a.get("PartyNumber") == record["BillToCustomerNumber"]),
                   None)
    if account is None:
        raise TwinFault(400, f"The bill-to customer account {record['BillToCustomerNumber']} "
                        "doesn't exist.", "/BillToCustomerNumber", INVALID)
    day = record.get("TransactionDate") or today.isoformat()
    defaults: Record = {"TransactionNumber": f"{NUMBER_PREFIXES[resource]}{FIRST_NUMBER + number}",
                        "TransactionDate": day, "AccountingDate": day,
                        "BillToCustomerName": account["OrganizationName"],
                        "BillToPartyId": account["PartyId"]}
    if resource == CREDIT_MEMOS:
        record = defaults | record
        lines = _credit_lines(record.get(CREDIT_MEMO_LINES) or [], new_id)
        return record | {CREDIT_MEMO_LINES: lines, "EnteredAmount": _sum(lines, "LineAmountCredit")}
    defaults |= {"PaymentTerms": DEFAULT_TERMS, "InvoiceStatus": COMPLETE}
    record = defaults | record
    lines = _invoice_lines(record.get(INVOICE_LINES) or [], new_id)
    total = _sum(lines, "LineAmount")
    if total < 0:
        raise TwinFault(400, "The invoice total can't be negative: use a credit memo.",
                        f"/{INVOICE_LINES}", INVALID)
    record = record | {INVOICE_LINES: lines, "EnteredAmount": total, "InvoiceBalanceAmount": total,
                       "DueDate": due_date(record), INSTALLMENTS: []}
    return with_installments(record, new_id) if record["InvoiceStatus"] == COMPLETE else record


def changed(current: Record, changes: Mapping[str, Any], new_id: Any) -> Record:
    """An invoice or credit memo PATCHed: Oracle lets only the status, the terms and the date
    change, and a complete invoice keeps its terms and date."""
    record = current | dict(changes)
    was, now = current.get("InvoiceStatus"), record.get("InvoiceStatus")
    if was == COMPLETE and any(name in changes and changes[name] != current.get(name)
                               for name in ("PaymentTerms", "TransactionDate")):
        raise TwinFault(400, "You can't change the payment terms or the date of a complete "
                        "transaction. Make it incomplete first.", code=INVALID)
    if "PaymentTerms" in changes or "TransactionDate" in changes:
        record["DueDate"] = due_date(record) if "DueDate" in current else None
        if "TransactionDate" in changes:
            record["AccountingDate"] = record["TransactionDate"]
    if was == INCOMPLETE and now == COMPLETE:
        return with_installments(record, new_id)
    if was == COMPLETE and now == INCOMPLETE:
        if record["InvoiceBalanceAmount"] != record["EnteredAmount"]:
            raise TwinFault(400, "You can't make a transaction with activity against it "
                            "incomplete.", code=INVALID)
        return record | {INSTALLMENTS: []}
    return record


def receipt(record: Record, amount: Decimal) -> Record:
    """A receipt applied to the invoice: the balance and the installment fall by `amount`."""
    if record.get("InvoiceStatus") != COMPLETE:
        raise TwinFault(400, "A receipt applies only to a complete invoice.", code=INVALID)
    if not 0 < amount <= record["InvoiceBalanceAmount"]:
        raise invalid("Amount", amount)
    [installment] = record[INSTALLMENTS]
    balance = installment["InstallmentBalanceDue"] - amount
    installment = installment | {"InstallmentBalanceDue": balance,
                                 "InstallmentStatus": "Closed" if balance == 0 else "Open"}
    return record | {"InvoiceBalanceAmount": record["InvoiceBalanceAmount"] - amount,
                     INSTALLMENTS: [installment]}


def with_installments(record: Record, new_id: Any) -> Record:
    installment = {"InstallmentId": new_id(), "InstallmentNumber": 1,
                   "InstallmentDueDate": record["DueDate"], "OriginalAmount": record["EnteredAmount"],
                   "InstallmentBalanceDue": record["InvoiceBalanceAmount"],
                   "InstallmentStatus": "Open" if record["InvoiceBalanceAmount"] else "Closed"}
    return record | {INSTALLMENTS: [installment]}


def due_date(record: Record) -> str:
    days = PAYMENT_TERMS[record.get("PaymentTerms") or DEFAULT_TERMS]
    return (date.fromisoformat(record["TransactionDate"]) + timedelta(days)).isoformat()


def _invoice_lines(lines: list[Record], new_id: Any) -> list[Record]:
    if not lines:
        raise TwinFault(400, "A transaction needs at least one line.", f"/{INVOICE_LINES}", REQUIRED)
    return [{"CustomerTransactionLineId": new_id(), "LineNumber": n + 1, "Quantity": 1} | line
            | {"LineAmount": line.get("Quantity", 1) * line["UnitSellingPrice"]}
            for n, line in enumerate(lines)]


def _credit_lines(lines: list[Record], new_id: Any) -> list[Record]:
    if not lines:
        raise TwinFault(400, "A transaction needs at least one line.", f"/{CREDIT_MEMO_LINES}",
                        REQUIRED)
    result = []
    for n, line in enumerate(lines):
        path = f"/{CREDIT_MEMO_LINES}/{n}/LineAmountCredit"
        amount = line.get("LineAmountCredit")
        if amount is None and line.get("UnitSellingPrice") is not None:
            amount = line.get("LineQuantityCredit", -1) * line["UnitSellingPrice"]
        if amount is None:
            raise TwinFault(400, "Attribute LineAmountCredit in receivablesCreditMemoLines is "
                            "required.", path, REQUIRED)
        if amount >= 0:
            raise TwinFault(400, f"The credit amount {amount} must be negative.", path, INVALID)
        result.append({"CustomerTransactionLineId": new_id(), "LineNumber": n + 1} | line
                      | {"LineAmountCredit": amount})
    return result


def _sum(lines: list[Record], name: str) -> Decimal:
    return sum((Decimal(line[name]) for line in lines), Decimal(0))
