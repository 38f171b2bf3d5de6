"""What the Oracle twin knows about its resources: the attributes handoff uses and their kinds,
which are Oracle's own (read-only), which a PATCH may change, the children, finders, the keys
an upsert matches on, and the pod's reference data. Validation raises `TwinFault`, Oracle's
error answer (twin.py renders it by REST framework version).

⚠ Attribute lists follow Oracle's REST reference and its examples where they show them;
ProjectValue, InvoiceBalanceAmount, the installment balance and the `o:errorCode` values are
the twin's choices. Reference data (business units, project types and statuses, terms,
transaction sources and types, memo lines) is each pod's own; these are the twin's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

TEXT, NUMBER, INTEGER, DATE, DATETIME = "text", "number", "integer", "date", "datetime"
VERSION = "11.13.18.05"
FSCM, CRM = "fscmRestApi", "crmRestApi"
REQUIRED, INVALID, NOT_UPDATABLE, UNKNOWN = "JBO-27014", "JBO-27008", "JBO-27020", "JBO-25058"


class TwinFault(Exception):
    """An error answer: status, detail, and the attribute at fault as a JSON pointer."""

    def __init__(self, status: int, detail: str, path: str | None = None, code: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.path, self.code = status, detail, path, code
        self.headers = dict(headers or {})

    def under(self, prefix: str) -> TwinFault:
        """The same fault on a child row: `/LineAmountCredit` -> `/lines/0/LineAmountCredit`."""
        return TwinFault(self.status, self.detail, prefix + (self.path or ""), self.code, self.headers)


@dataclass(frozen=True)
class Resource:
    name: str
    pillar: str
    key: str                               # the attribute that names an item in its URL
    fields: Mapping[str, str]              # attribute -> kind, in the order Oracle shows them
    read_only: frozenset[str]              # Oracle's own values: refused on POST and PATCH
    required: tuple[str, ...] = ()
    updatable: frozenset[str] | None = None  # None: every writable attribute
    children: Mapping[str, Resource] = field(default_factory=dict)
    finders: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    upsert_keys: tuple[tuple[str, ...], ...] = ()   # what Upsert-Mode matches on, in order
    unique_keys: tuple[tuple[str, ...], ...] = ()   # what no two rows may share

    def writable(self, name: str, patch: bool) -> bool:
        if name in self.read_only or name not in self.fields:
            return False
        return not patch or self.updatable is None or name in self.updatable


WHO = {"CreationDate": DATETIME, "LastUpdateDate": DATETIME}
WHO_COLUMNS = frozenset(WHO)

ACCOUNTS = Resource(
    "accounts", CRM, "PartyNumber",
    fields={"PartyId": INTEGER, "PartyNumber": TEXT, "OrganizationName": TEXT, "Type": TEXT,
            "CurrencyCode": TEXT, "SourceSystem": TEXT, "SourceSystemReferenceValue": TEXT, **WHO},
    read_only=frozenset({"PartyId"}) | WHO_COLUMNS,
    required=("OrganizationName",),
    updatable=frozenset({"OrganizationName", "Type", "CurrencyCode"}),
    finders={"PrimaryKey": ("PartyNumber",)},
    upsert_keys=(("PartyNumber",), ("SourceSystem", "SourceSystemReferenceValue")),
    unique_keys=(("PartyNumber",), ("SourceSystem", "SourceSystemReferenceValue")),
)
PROJECT_CUSTOMERS = Resource(
    "ProjectCustomers", FSCM, "ProjectPartyId",
    fields={"ProjectPartyId": INTEGER, "PartyId": INTEGER, "PartyNumber": TEXT, "PartyName": TEXT},
    read_only=frozenset({"ProjectPartyId", "PartyId", "PartyName"}), required=("PartyNumber",),
)
PROJECTS = Resource(
    "projects", FSCM, "ProjectId",
    fields={"ProjectId": INTEGER, "ProjectNumber": TEXT, "ProjectName": TEXT,
            "ProjectDescription": TEXT, "ProjectStartDate": DATE, "ProjectEndDate": DATE,
            "ProjectCurrencyCode": TEXT, "ProjectValue": NUMBER, "ProjectType": TEXT,
            "ProjectStatus": TEXT, "BusinessUnitName": TEXT, "SourceApplicationCode": TEXT,
            "SourceProjectReference": TEXT, **WHO},
    read_only=frozenset({"ProjectId", "ProjectNumber"}) | WHO_COLUMNS,
    required=("ProjectName", "ProjectStartDate", "ProjectCurrencyCode", "ProjectType",
              "BusinessUnitName"),
    updatable=frozenset({"ProjectName", "ProjectDescription", "ProjectStartDate", "ProjectEndDate",
                         "ProjectValue", "ProjectStatus"}),
    children={"ProjectCustomers": PROJECT_CUSTOMERS},
    finders={"PrimaryKey": ("ProjectId",)},
    upsert_keys=(("ProjectId",), ("ProjectNumber",), ("SourceApplicationCode", "SourceProjectReference")),
    unique_keys=(("ProjectNumber",), ("SourceApplicationCode", "SourceProjectReference")),
)
INVOICE_LINES = Resource(
    "receivablesInvoiceLines", FSCM, "CustomerTransactionLineId",
    fields={"CustomerTransactionLineId": INTEGER, "LineNumber": INTEGER, "Description": TEXT,
            "Quantity": NUMBER, "UnitSellingPrice": NUMBER, "MemoLine": TEXT, "LineAmount": NUMBER},
    read_only=frozenset({"CustomerTransactionLineId", "LineAmount"}),
    required=("Description", "UnitSellingPrice"),
)
INSTALLMENTS = Resource(
    "receivablesInvoiceInstallments", FSCM, "InstallmentId",
    fields={"InstallmentId": INTEGER, "InstallmentNumber": INTEGER, "InstallmentDueDate": DATE,
            "OriginalAmount": NUMBER, "InstallmentBalanceDue": NUMBER, "InstallmentStatus": TEXT},
    read_only=frozenset({"InstallmentId", "InstallmentNumber", "InstallmentBalanceDue",
                         "InstallmentStatus"}),
)
DOCUMENT_HEADER = {"CustomerTransactionId": INTEGER, "TransactionNumber": TEXT,
                   "TransactionDate": DATE, "AccountingDate": DATE, "BusinessUnit": TEXT,
                   "TransactionSource": TEXT, "TransactionType": TEXT,
                   "BillToCustomerNumber": TEXT, "BillToCustomerName": TEXT,
                   "BillToPartyId": INTEGER, "CrossReference": TEXT}
DOCUMENT_REQUIRED = ("BusinessUnit", "TransactionSource", "TransactionType", "BillToCustomerNumber")
INVOICES = Resource(
    "receivablesInvoices", FSCM, "CustomerTransactionId",
    fields={**DOCUMENT_HEADER, "DueDate": DATE, "InvoiceCurrencyCode": TEXT, "PaymentTerms": TEXT,
            "PurchaseOrder": TEXT, "Comments": TEXT, "InvoiceStatus": TEXT, "EnteredAmount": NUMBER,
            "InvoiceBalanceAmount": NUMBER, **WHO},
    read_only=frozenset({"CustomerTransactionId", "TransactionNumber", "DueDate", "BillToCustomerName",
                         "BillToPartyId", "EnteredAmount", "InvoiceBalanceAmount"}) | WHO_COLUMNS,
    required=(*DOCUMENT_REQUIRED, "InvoiceCurrencyCode"),
    updatable=frozenset({"InvoiceStatus", "PaymentTerms", "TransactionDate"}),  # Oracle's list
    children={"receivablesInvoiceLines": INVOICE_LINES, "receivablesInvoiceInstallments": INSTALLMENTS},
    finders={"PrimaryKey": ("CustomerTransactionId",),
             # ⚠ invoiceSearch's variables beyond those in Oracle's example are the twin's choice
             "invoiceSearch": ("TransactionNumber", "BillToCustomerNumber", "BillToCustomerName",
                               "InvoiceStatus", "DueDate", "TransactionDate", "CrossReference",
                               "PurchaseOrder")},
    upsert_keys=(("CustomerTransactionId",),),
)
CREDIT_MEMO_LINES = Resource(
    "receivablesCreditMemoLines", FSCM, "CustomerTransactionLineId",
    fields={"CustomerTransactionLineId": INTEGER, "LineNumber": INTEGER, "LineDescription": TEXT,
            "LineQuantityCredit": NUMBER, "UnitSellingPrice": NUMBER, "LineAmountCredit": NUMBER,
            "MemoLine": TEXT},
    read_only=frozenset({"CustomerTransactionLineId"}), required=("LineDescription",),
)
CREDIT_MEMOS = Resource(
    "receivablesCreditMemos", FSCM, "CustomerTransactionId",
    fields={**DOCUMENT_HEADER, "CreditMemoCurrency": TEXT, "CreditReason": TEXT,
            "EnteredAmount": NUMBER, **WHO},
    read_only=frozenset({"CustomerTransactionId", "TransactionNumber", "BillToCustomerName",
                         "BillToPartyId", "EnteredAmount"}) | WHO_COLUMNS,
    required=(*DOCUMENT_REQUIRED, "CreditMemoCurrency"),
    updatable=frozenset({"TransactionDate", "CreditReason"}),
    children={"receivablesCreditMemoLines": CREDIT_MEMO_LINES},
    finders={"PrimaryKey": ("CustomerTransactionId",)},
    upsert_keys=(("CustomerTransactionId",),),
)
RESOURCES = {r.name: r for r in (ACCOUNTS, PROJECTS, INVOICES, CREDIT_MEMOS)}

# The pod's reference data (Oracle refers to it by name).
CURRENCIES = frozenset({"USD", "EUR", "GBP", "CAD", "AUD", "CHF", "JPY"})
BUSINESS_UNITS = ("US1 Business Unit", "UK1 Business Unit", "DE1 Business Unit")
PROJECT_TYPES = ("Fixed Price", "Milestone Billing", "Time and Materials", "Internal")
PROJECT_STATUSES = ("Unapproved", "Submitted", "Approved", "Rejected", "Pending Close", "Closed")
ACCOUNT_TYPES = ("ZCA_CUSTOMER", "ZCA_PROSPECT")
PAYMENT_TERMS = {"30 Net": 30, "45 Net": 45, "Immediate": 0}
TRANSACTION_SOURCES = ("Manual",)
TRANSACTION_TYPES = {"receivablesInvoices": ("Invoice",), "receivablesCreditMemos": ("Credit Memo",)}
MEMO_LINES = ("Professional Services", "Travel Expenses")
INVOICE_STATUSES = ("Complete", "Incomplete")
LISTS: Mapping[str, tuple[str, ...] | frozenset[str] | Mapping[str, int]] = {
    "CurrencyCode": CURRENCIES, "ProjectCurrencyCode": CURRENCIES, "InvoiceCurrencyCode": CURRENCIES,
    "CreditMemoCurrency": CURRENCIES, "BusinessUnitName": BUSINESS_UNITS, "BusinessUnit": BUSINESS_UNITS,
    "ProjectType": PROJECT_TYPES, "ProjectStatus": PROJECT_STATUSES, "Type": ACCOUNT_TYPES,
    "PaymentTerms": PAYMENT_TERMS, "TransactionSource": TRANSACTION_SOURCES,
    "MemoLine": MEMO_LINES, "InvoiceStatus": INVOICE_STATUSES,
}

Record = dict[str, Any]


def clean_body(resource: Resource, body: Mapping[str, Any], patch: bool) -> Record:
    """The attributes of a request body, checked one by one; children as lists of rows."""
    values: Record = {}
    for name, value in body.items():
        if name in resource.children:
            if patch:
                raise TwinFault(400, f"The child {name} cannot be changed by a PATCH of its "
                                "parent; use the child resource.", f"/{name}", NOT_UPDATABLE)
            values[name] = _clean_rows(resource.children[name], name, value)
            continue
        if name not in resource.fields:
            raise TwinFault(400, f"The attribute {name} is not valid for the resource "
                            f"{resource.name}.", f"/{name}", UNKNOWN)
        if not resource.writable(name, patch):
            raise TwinFault(400, f"Attribute {name} in {resource.name} is read only.",
                            f"/{name}", NOT_UPDATABLE)
        values[name] = None if value is None else checked_value(resource, name, value)
    return values


def require(resource: Resource, record: Mapping[str, Any]) -> None:
    for name in resource.required:
        if record.get(name) in (None, ""):
            raise TwinFault(400, f"Attribute {name} in {resource.name} is required.", f"/{name}",
                            REQUIRED)


def checked_value(resource: Resource, name: str, value: Any) -> Any:
    kind = resource.fields[name]
    if not _KIND_CHECKS[kind](value):
        raise invalid(name, value)
    allowed = LISTS.get(name)
    if allowed is not None and value not in allowed:
        raise invalid(name, value)
    return value


def invalid(name: str, value: Any) -> TwinFault:
    return TwinFault(400, f"The value {value} of the attribute {name} is not valid.", f"/{name}",
                     INVALID)


def _clean_rows(child: Resource, name: str, rows: Any) -> list[Record]:
    if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
        raise invalid(name, rows)
    cleaned = []
    for n, row in enumerate(rows):
        try:
            values = clean_body(child, row, patch=False)
            require(child, values)
        except TwinFault as fault:
            raise fault.under(f"/{name}/{n}") from None
        cleaned.append(values)
    return cleaned


def _is_date(value: Any) -> bool:
    try:
        return isinstance(value, str) and date.fromisoformat(value).isoformat() == value
    except ValueError:
        return False


_KIND_CHECKS: Mapping[str, Callable[[Any], bool]] = {
    TEXT: lambda value: isinstance(value, str),
    NUMBER: lambda value: isinstance(value, int | Decimal) and not isinstance(value, bool),
    INTEGER: lambda value: isinstance(value, int) and not isinstance(value, bool),
    DATE: _is_date,
    DATETIME: lambda value: isinstance(value, str),
}
