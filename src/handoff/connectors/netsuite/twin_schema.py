"""What the NetSuite twin knows about record types: the fields handoff uses, which of them
are references and into what, the values NetSuite insists on, and the reference data every
account starts with. Validation raises `TwinFault`, NetSuite's error answer (§1.6).

⚠ The ids of job billing types, job types and entity statuses are the twin's own choice;
real accounts list theirs (currency ids 1-4 are NetSuite's usual ones).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


@dataclass(frozen=True)
class RecordType:
    name: str
    fields: Mapping[str, str]      # plain field -> kind
    references: Mapping[str, str]  # reference field -> the record type or list it points into
    required: Mapping[str, str]    # field -> label NetSuite names when it is missing


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
CURRENCY = RecordType("currency", {"name": TEXT, "symbol": TEXT, "isBaseCurrency": BOOLEAN}, {}, {})
SUBSIDIARY = RecordType("subsidiary", {"name": TEXT}, {}, {})

WRITABLE_TYPES = {t.name: t for t in (CUSTOMER, JOB)}
RECORD_TYPES = {t.name: t for t in (CUSTOMER, JOB, CURRENCY, SUBSIDIARY)}

REFERENCE_RECORDS: Mapping[str, list[dict[str, Any]]] = {
    "currency": [
        {"id": "1", "name": "US Dollar", "symbol": "USD", "isBaseCurrency": True},
        {"id": "2", "name": "British pound", "symbol": "GBP", "isBaseCurrency": False},
        {"id": "3", "name": "Canadian Dollar", "symbol": "CAD", "isBaseCurrency": False},
        {"id": "4", "name": "Euro", "symbol": "EUR", "isBaseCurrency": False},
    ],
    "subsidiary": [{"id": "1", "name": "Parent Company"}, {"id": "2", "name": "US01"},
                   {"id": "3", "name": "UK01"}, {"id": "4", "name": "DE01"}],
}
SELECT_LISTS: Mapping[str, Mapping[str, str]] = {
    "customerStatus": {"6": "LEAD-Unqualified", "7": "LEAD-Qualified",
                       "8": "PROSPECT-In Discussion", "13": "CUSTOMER-Closed Won"},
    "jobStatus": {"1": "Closed", "2": "In Progress", "3": "Not Awarded", "4": "Pending",
                  "5": "Awarded"},
    "jobBillingType": {"1": "Charge-Based", "2": "Fixed Bid, Interval",
                       "3": "Fixed Bid, Milestone", "4": "Time and Materials", "5": "None"},
    "jobType": {"1": "Professional Services", "2": "Internal"},
}

# resolve(target, reference) -> internal id, or None when nothing matches
Resolver = Callable[[str, Mapping[str, Any]], str | None]


def clean_body(
    record_type: RecordType, body: Mapping[str, Any], resolve: Resolver
) -> dict[str, Any]:
    """The writable values of a request body, references resolved to internal ids.
    Read-only fields are ignored; `null` stays None (it clears the field)."""
    return {name: _clean_value(record_type, name, value, resolve)
            for name, value in body.items() if name not in READ_ONLY}


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
