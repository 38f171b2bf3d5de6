"""What the NetSuite twin knows about record types: the fields handoff uses, which of them
are references and into what, the values NetSuite insists on, and the reference data every
account starts with. Validation raises `TwinFault`, NetSuite's error answer (§1.6).

⚠ The ids of job billing types, job types and entity statuses are the twin's own choice;
real accounts list theirs (currency ids 1-4 are NetSuite's usual ones).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

TEXT, BOOLEAN, DATE, NUMBER = "text", "boolean", "date", "number"
READ_ONLY = frozenset({"id", "links", "refName", "dateCreated", "lastModifiedDate"})
EXTERNAL_ID = re.compile(r"[A-Za-z0-9_-]+")
PREFIX = "Error while accessing a resource. "


class TwinFault(Exception):
    """An error answer in NetSuite's format."""

    def __init__(self, status: int, code: str, detail: str, path: str | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail, self.path = status, code, detail, path
        self.headers = dict(headers or {})

    def at(self, path: str) -> TwinFault:
        """The same fault naming another path: a field on a line is `item.items[0].item`."""
        return TwinFault(self.status, self.code, self.detail, path, self.headers)


WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})


@dataclass(frozen=True)
class RecordType:
    name: str
    fields: Mapping[str, str]      # plain field -> kind
    references: Mapping[str, str]  # reference field -> the record type or list it points into
    required: Mapping[str, str]    # field -> label NetSuite names when it is missing
    sublists: Mapping[str, RecordType] = field(default_factory=dict)  # name -> its lines
    computed: frozenset[str] = frozenset()  # NetSuite's own values: read back, ignored on write
    writes: frozenset[str] = WRITES


CUSTOMER = RecordType(
    "customer",
    fields={"externalId": TEXT, "entityId": TEXT, "companyName": TEXT, "isPerson": BOOLEAN,
            "firstName": TEXT, "lastName": TEXT, "email": TEXT},
    references={"subsidiary": "subsidiary", "currency": "currency", "parent": "customer",
                "entityStatus": "customerStatus"},
    required={"companyName": "Company Name"},
)
JOB = RecordType(
    "job",
    fields={"externalId": TEXT, "entityId": TEXT, "companyName": TEXT, "altName": TEXT,
            "startDate": DATE, "projectedEndDate": DATE, "endDate": DATE, "jobPrice": NUMBER},
    references={"parent": "customer", "subsidiary": "subsidiary", "currency": "currency",
                "jobType": "jobType", "entityStatus": "jobStatus",
                "jobBillingType": "jobBillingType"},
    required={"companyName": "Project Name", "parent": "Customer"},
)
TRANSACTION_TOTALS = frozenset({"tranId", "subtotal", "taxTotal", "total", "amountPaid",
                                "amountRemaining", "status"})
ITEM_LINE = RecordType(
    "item", fields={"quantity": NUMBER, "rate": NUMBER, "amount": NUMBER, "description": TEXT},
    references={"item": "serviceItem"}, required={"item": "Item"},
)


def _sales_transaction(name: str, statuses: str) -> RecordType:
    """An invoice or a credit memo: both bill a customer (and project) by item lines."""
    return RecordType(
        name,
        fields={"externalId": TEXT, "tranDate": DATE, "dueDate": DATE, "memo": TEXT},
        references={"entity": "customer", "job": "job", "currency": "currency",
                    "subsidiary": "subsidiary", "status": statuses},
        required={"entity": "Customer"},
        sublists={"item": ITEM_LINE}, computed=TRANSACTION_TOTALS,
    )


INVOICE = _sales_transaction("invoice", "invoiceStatus")
CREDIT_MEMO = _sales_transaction("creditMemo", "creditMemoStatus")
APPLY_LINE = RecordType("apply", fields={"apply": BOOLEAN, "amount": NUMBER},
                        references={"doc": "invoice"}, required={"doc": "Invoice"})
# ⚠ The twin applies a payment when it is created and never changes it afterwards.
CUSTOMER_PAYMENT = RecordType(
    "customerPayment",
    fields={"externalId": TEXT, "tranDate": DATE, "payment": NUMBER, "memo": TEXT},
    references={"customer": "customer", "currency": "currency"},
    required={"customer": "Customer", "payment": "Payment Amount"},
    sublists={"apply": APPLY_LINE}, computed=frozenset({"tranId", "applied", "unapplied"}),
    writes=frozenset({"POST"}),
)
CURRENCY = RecordType("currency", {"name": TEXT, "symbol": TEXT, "isBaseCurrency": BOOLEAN}, {}, {})
SUBSIDIARY = RecordType("subsidiary", {"name": TEXT}, {}, {})
SERVICE_ITEM = RecordType("serviceItem", {"itemId": TEXT, "displayName": TEXT}, {}, {})

TRANSACTION_TYPES = {t.name: t for t in (INVOICE, CREDIT_MEMO, CUSTOMER_PAYMENT)}
WRITABLE_TYPES = {t.name: t for t in (CUSTOMER, JOB)} | TRANSACTION_TYPES
RECORD_TYPES = WRITABLE_TYPES | {t.name: t for t in (CURRENCY, SUBSIDIARY, SERVICE_ITEM)}

REFERENCE_RECORDS: Mapping[str, list[dict[str, Any]]] = {
    "currency": [
        {"id": "1", "name": "US Dollar", "symbol": "USD", "isBaseCurrency": True},
        {"id": "2", "name": "British pound", "symbol": "GBP", "isBaseCurrency": False},
        {"id": "3", "name": "Canadian Dollar", "symbol": "CAD", "isBaseCurrency": False},
        {"id": "4", "name": "Euro", "symbol": "EUR", "isBaseCurrency": False},
    ],
    "subsidiary": [{"id": "1", "name": "Parent Company"}, {"id": "2", "name": "US01"},
                   {"id": "3", "name": "UK01"}, {"id": "4", "name": "DE01"}],
    "serviceItem": [{"id": "1", "itemId": "Professional Services",
                     "displayName": "Professional Services"}],
}
SELECT_LISTS: Mapping[str, Mapping[str, str]] = {
    "customerStatus": {"6": "LEAD-Unqualified", "7": "LEAD-Qualified",
                       "8": "PROSPECT-In Discussion", "13": "CUSTOMER-Closed Won"},
    "jobStatus": {"1": "Closed", "2": "In Progress", "3": "Not Awarded", "4": "Pending",
                  "5": "Awarded"},
    "jobBillingType": {"1": "Charge-Based", "2": "Fixed Bid, Interval",
                       "3": "Fixed Bid, Milestone", "4": "Time and Materials", "5": "None"},
    "jobType": {"1": "Professional Services", "2": "Internal"},
    # SuiteScript's CustInvc / CustCred letters (⚠ D, E, V: not in the REST API Browser)
    "invoiceStatus": {"A": "Open", "B": "Paid In Full", "D": "Pending Approval",
                      "E": "Rejected", "V": "Voided"},
    "creditMemoStatus": {"A": "Open", "B": "Fully Applied", "V": "Voided"},
}

# resolve(target, reference) -> internal id, or None when nothing matches
Resolver = Callable[[str, Mapping[str, Any]], str | None]


def clean_body(
    record_type: RecordType, body: Mapping[str, Any], resolve: Resolver
) -> dict[str, Any]:
    """The writable values of a request body, references resolved to internal ids, sublists
    as lists of lines. Read-only fields are ignored; `null` stays None (it clears the field)."""
    return {name: _clean_value(record_type, name, value, resolve)
            for name, value in body.items()
            if name not in READ_ONLY and name not in record_type.computed}


def references_in(record_type: RecordType, record: Mapping[str, Any], target: str) -> Iterator[str]:
    """The internal ids the record points at in `target`, on its lines too."""
    for name, points_into in record_type.references.items():
        if points_into == target and name in record:
            yield record[name]
    for name, line_type in record_type.sublists.items():
        for line in record.get(name, ()):
            yield from references_in(line_type, line, target)


def require_values(record_type: RecordType, record: Mapping[str, Any]) -> None:
    missing = [label for name, label in record_type.required.items()
               if record.get(name) in (None, "")]
    if missing:
        raise TwinFault(400, "USER_ERROR",
                        f"{PREFIX}Please enter value(s) for: {', '.join(missing)}")


def check_external_id(external_id: str) -> str:
    if not EXTERNAL_ID.fullmatch(external_id):
        raise invalid_value("externalId", external_id)
    return external_id


def invalid_value(field: str, value: Any) -> TwinFault:
    return TwinFault(400, "INVALID_CONTENT", f"{PREFIX}You have entered an Invalid Field Value "
                     f"{value} for the following field: {field}", path=field)


def _clean_value(record_type: RecordType, name: str, value: Any, resolve: Resolver) -> Any:
    if name in record_type.sublists and value is not None:
        return _clean_sublist(record_type.sublists[name], name, value, resolve)
    target = record_type.references.get(name)
    if target:
        return None if value is None else _resolve(name, value, target, resolve)
    kind = record_type.fields.get(name)
    if kind is None:
        raise TwinFault(400, "NONEXISTENT_FIELD", f"{PREFIX}Field '{name}' does not exist on "
                        f"record type {record_type.name}.", path=name)
    if value is None:
        return None
    if not _KIND_CHECKS[kind](value):
        raise invalid_value(name, value)
    return check_external_id(value) if name == "externalId" else value


def _clean_sublist(line_type: RecordType, name: str, value: Any,
                   resolve: Resolver) -> list[dict[str, Any]]:
    """`{"items": [line, …]}`; a fault on a line names its path, e.g. `item.items[0].item`."""
    lines = value.get("items") if isinstance(value, Mapping) else None
    if not isinstance(lines, list) or not all(isinstance(line, Mapping) for line in lines):
        raise invalid_value(name, value)
    return [_clean_line(line_type, f"{name}.items[{n}]", line, resolve)
            for n, line in enumerate(lines)]


def _clean_line(line_type: RecordType, path: str, line: Mapping[str, Any],
                resolve: Resolver) -> dict[str, Any]:
    try:
        cleaned = {k: v for k, v in clean_body(line_type, line, resolve).items() if v is not None}
        require_values(line_type, cleaned)
    except TwinFault as fault:
        raise (fault.at(f"{path}.{fault.path}") if fault.path else fault) from None
    return cleaned


def _resolve(name: str, value: Any, target: str, resolve: Resolver) -> str:
    internal_id = resolve(target, value) if isinstance(value, Mapping) else None
    if internal_id is None:
        shown = value.get("id", value.get("externalId")) if isinstance(value, Mapping) else value
        raise invalid_value(name, shown)
    return internal_id


def _is_date(value: Any) -> bool:
    try:
        return isinstance(value, str) and date.fromisoformat(value).isoformat() == value
    except ValueError:
        return False


_KIND_CHECKS: Mapping[str, Callable[[Any], bool]] = {
    TEXT: lambda value: isinstance(value, str),
    BOOLEAN: lambda value: isinstance(value, bool),
    NUMBER: lambda value: isinstance(value, int | Decimal) and not isinstance(value, bool),
    DATE: _is_date,
}
