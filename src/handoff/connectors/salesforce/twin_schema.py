"""The sandbox org's schema: which sObjects and fields exist, and what a write may put in them.

Field names are matched case-insensitively, as Salesforce does, and always answered in their
declared spelling. Values are checked the way the REST API checks them and refused with the
error codes it uses.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

SANDBOX_USER_ID = "005RO00000A1b2cYAB"  # the owner of records created without OwnerId
CORPORATE_CURRENCY = "USD"

# StageName → (IsClosed, IsWon), as in a default Salesforce sales process.
OPPORTUNITY_STAGES: dict[str, tuple[bool, bool]] = {
    "Prospecting": (False, False),
    "Qualification": (False, False),
    "Needs Analysis": (False, False),
    "Value Proposition": (False, False),
    "Id. Decision Makers": (False, False),
    "Perception Analysis": (False, False),
    "Proposal/Price Quote": (False, False),
    "Negotiation/Review": (False, False),
    "Closed Won": (True, True),
    "Closed Lost": (True, False),
}
APPROVAL_VALUES = ("Draft", "Pending", "Approved", "Rejected")

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")
_CURRENCY_CODE = re.compile(r"[A-Z]{3}\Z")
_ID = re.compile(r"[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?\Z")


class SalesforceApiError(Exception):
    """A refusal as Salesforce words it: a JSON error array for one call, or a per-record
    error (`statusCode`) inside an sObject Collections result."""

    def __init__(self, code: str, message: str, fields: Iterable[str] = (), status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = list(fields)
        self.status = status

    def as_rest_error(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        return body | ({"fields": self.fields} if self.fields else {})

    def as_record_error(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


def not_found(message: str = "The requested resource does not exist") -> SalesforceApiError:
    return SalesforceApiError("NOT_FOUND", message, status=404)


@dataclass(frozen=True, slots=True)
class Field:
    """One field. `kind` is id, text, picklist, currency, date, datetime, boolean or reference."""

    name: str
    kind: str
    writable: bool = True
    length: int = 255
    values: frozenset[str] = frozenset()
    references: str = ""  # key prefix of the referenced sObject
    external_id: bool = False

    def coerce(self, value: Any) -> Any:
        """The value to store for a write, or a SalesforceApiError saying why not."""
        if value is None:
            return None
        check = _CHECKS[self.kind]
        return check(self, value)


def _parser_error(f: Field, value: Any, wanted: str) -> SalesforceApiError:
    # Salesforce refuses a wrongly typed JSON value while parsing, before it knows the field.
    return SalesforceApiError(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {wanted} from {type(value).__name__} value {value!r} "
        f"or request may be missing a required field",
    )


def _text(f: Field, value: Any) -> str:
    if not isinstance(value, str):
        raise _parser_error(f, value, "string")
    if len(value) > f.length:
        raise SalesforceApiError(
            "STRING_TOO_LONG",
            f"{f.name}: data value too large: {value[:40]}… (max length={f.length})",
            [f.name],
        )
    return value


def _picklist(f: Field, value: Any) -> str:
    if not isinstance(value, str):
        raise _parser_error(f, value, "string")
    if value not in f.values:
        raise SalesforceApiError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{f.name}: bad value for restricted picklist field: {value}",
            [f.name],
        )
    return value


def _double(f: Field, value: Any) -> float:
    # Salesforce number and currency fields are doubles on the wire; numeric strings are
    # accepted too.
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _parser_error(f, value, "double")
    try:
        return float(value)
    except ValueError:
        raise _parser_error(f, value, "double") from None


def _date(f: Field, value: Any) -> str:
    if not isinstance(value, str) or not _DATE.match(value):
        raise _parser_error(f, value, "date")
    return value


def _boolean(f: Field, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _parser_error(f, value, "boolean")
    return value


def _reference(f: Field, value: Any) -> str:
    if not isinstance(value, str) or not _ID.match(value) or not value.startswith(f.references):
        raise SalesforceApiError(
            "MALFORMED_ID", f"{f.name}: id value of incorrect type: {value}", [f.name]
        )
    return value


def _currency_code(f: Field, value: Any) -> str:
    if not isinstance(value, str) or not _CURRENCY_CODE.match(value):
        raise SalesforceApiError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{f.name}: bad value for restricted picklist field: {value}",
            [f.name],
        )
    return value


_CHECKS = {
    "text": _text,
    "picklist": _picklist,
    "currency": _double,
    "double": _double,
    "date": _date,
    "boolean": _boolean,
    "reference": _reference,
    "currency_code": _currency_code,
}


@dataclass(frozen=True)
class SObjectType:
    name: str
    key_prefix: str
    fields: Mapping[str, Field]
    required: tuple[str, ...]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    derive: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None  # computed on save
    _by_lower: dict[str, Field] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_lower", {n.lower(): f for n, f in self.fields.items()})

    def field(self, name: str) -> Field | None:
        return self._by_lower.get(name.lower())

    def writable_values(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Body fields under their declared names, checked and coerced; `attributes` ignored."""
        values = {}
        for name, value in body.items():
            if name == "attributes":
                continue
            f = self.field(name)
            if f is None:
                raise SalesforceApiError(
                    "INVALID_FIELD", f"No such column '{name}' on sobject of type {self.name}",
                    [name],
                )
            if not f.writable:
                raise SalesforceApiError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {f.name}. Please check the security "
                    "settings of this field and verify that it is read/write for your profile "
                    "or permission set.",
                    [f.name],
                )
            values[f.name] = f.coerce(value)
        return values

    def missing_required(self, record: Mapping[str, Any]) -> SalesforceApiError | None:
        missing = [name for name in self.required if record.get(name) is None]
        if not missing:
            return None
        return SalesforceApiError(
            "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]",
            missing,
        )


def _stage_flags(record: Mapping[str, Any]) -> dict[str, Any]:
    is_closed, is_won = OPPORTUNITY_STAGES.get(record.get("StageName") or "", (False, False))
    return {"IsClosed": is_closed, "IsWon": is_won}


def _fields(*fields: Field) -> dict[str, Field]:
    return {f.name: f for f in fields}


def _system_fields() -> tuple[Field, ...]:
    return (
        Field("Id", "id", writable=False),
        Field("IsDeleted", "boolean", writable=False),
        Field("OwnerId", "reference", references="005"),
        Field("CurrencyIsoCode", "currency_code"),
        Field("CreatedDate", "datetime", writable=False),
        Field("LastModifiedDate", "datetime", writable=False),
        Field("LastModifiedById", "reference", references="005", writable=False),
        Field("SystemModstamp", "datetime", writable=False),
        Field("Handoff_Key__c", "text", length=80, external_id=True),
        Field("Legal_Entity__c", "text", length=80),
    )


def _approval(name: str) -> Field:
    return Field(name, "picklist", values=frozenset(APPROVAL_VALUES))


OPPORTUNITY = SObjectType(
    name="Opportunity",
    key_prefix="006",
    fields=_fields(
        *_system_fields(),
        Field("Name", "text", length=120),
        Field("AccountId", "reference", references="001"),
        Field("StageName", "picklist", values=frozenset(OPPORTUNITY_STAGES)),
        Field("IsWon", "boolean", writable=False),
        Field("IsClosed", "boolean", writable=False),
        Field("Amount", "currency"),
        Field("CloseDate", "date"),
        Field("Description", "text", length=32000),
        Field("Billing_Method__c", "picklist",
              values=frozenset({"Fixed Fee", "Time and Materials", "Milestone"})),
        _approval("Contract_Status__c"),
        _approval("SOW_Status__c"),
        Field("Handoff_Project_Id__c", "text", length=80),
        Field("Handoff_Status__c", "text", length=40),
        Field("Handoff_Status_Detail__c", "text", length=255),
        Field("Handoff_Invoiced_Amount__c", "currency"),
        Field("Handoff_Paid_Amount__c", "currency"),
        Field("Handoff_Billing_Status__c", "text", length=255),
        Field("Handoff_Open_Balance__c", "currency"),
        Field("Handoff_Days_Overdue__c", "double"),
        Field("Handoff_Invoice_Numbers__c", "text", length=255),
    ),
    required=("Name", "StageName", "CloseDate"),
    defaults={"CurrencyIsoCode": CORPORATE_CURRENCY, "OwnerId": SANDBOX_USER_ID},
    derive=_stage_flags,
)

ACCOUNT = SObjectType(
    name="Account",
    key_prefix="001",
    fields=_fields(
        *_system_fields(),
        Field("Name", "text", length=255),
        Field("Description", "text", length=32000),
        Field("Tax_Jurisdiction__c", "text", length=80),
        Field("Validation_Status__c", "picklist",
              values=frozenset({"Unvalidated", "Valid", "Invalid"})),
    ),
    required=("Name",),
    defaults={"CurrencyIsoCode": CORPORATE_CURRENCY, "OwnerId": SANDBOX_USER_ID},
)

SOBJECTS: dict[str, SObjectType] = {t.name: t for t in (OPPORTUNITY, ACCOUNT)}


def sobject_type(name: str) -> SObjectType:
    """The sObject named in a URL; Salesforce answers 404 NOT_FOUND for an unknown one."""
    for candidate in SOBJECTS.values():
        if candidate.name.lower() == name.lower():
            return candidate
    raise not_found()


def format_datetime(value: datetime) -> str:
    """Salesforce's own rendering: `2026-11-26T10:00:00.000+0000`."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"
