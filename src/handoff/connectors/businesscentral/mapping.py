"""Canonical records -> Business Central request bodies, and BC's sales invoices and credit
memos -> handoff's `Invoice`. Pure functions: no I/O, so a value that cannot be mapped is
refused (DataError naming the field) before any call is made.

Where handoff's external ids live. API v2.0 has no external-id field on customers, projects or
sales documents, so each key goes into a field the API can `$filter` on:

    customer             number                   (No., Code[20]: the primary key, unique)
    project              number                   (No., Code[20]: the primary key, unique)
    sales invoice        externalDocumentNumber   (External Document No., Code[35])
    sales credit memo    externalDocumentNumber   (External Document No., Code[35])

Code fields are upper-cased by BC and short, so a key is written as it is only when it fits,
is already upper case and holds none of the characters BC's filters treat specially;
otherwise as a compact form that is just as deterministic: handoff's prefix, `~`, and the
start of the key's SHA-256 in base32 (`HO-P-~K3V4…`). Either way the same external id always
names the same record. A compact key cannot be read back into its deal id (see
`deal_of_project_number`). Money stays `Decimal` both ways (exact JSON numbers).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from handoff.connectors.businesscentral.errors import SYSTEM
from handoff.connectors.businesscentral.settings import BusinessCentralSettings
from handoff.connectors.ports import DocumentFigures, ProjectFigures
from handoff.domain import Customer, Invoice, InvoiceRequest, InvoiceStatus, Money, Project
from handoff.domain.ids import PROJECT_PREFIX, deal_of_project
from handoff.errors import DataError

NUMBER_LENGTH = 20  # customers' and projects' No. (Code[20])
DOCUMENT_KEY_LENGTH = 35  # External Document No. (Code[35])
NAME_LENGTH = 100  # Name / Description (Text[100])
COMPACT = "~"
# Characters BC's AL filters give a meaning (wildcards, ranges, or, and, quotes) or that a
# Code field would not keep: a key holding one is written in its compact form.
_NOT_VERBATIM = frozenset("&|()*@<>=.'\"~ ") | frozenset("\t\r\n")
HANDOFF_PREFIXES = ("HO-CN-", "HO-C-", "HO-P-", "HO-I-", "HO-M-")
INVOICE_PREFIX, CREDIT_NOTE_PREFIX = "HO-I-", "HO-CN-"
_CODE_FIELDS = frozenset({"number", "currencyCode", "externalDocumentNumber"})


@dataclass(frozen=True, slots=True)
class DocumentKind:
    """A sales invoice or a sales credit memo, as the API names its parts."""

    entity_set: str
    lines: str
    date_field: str
    key_prefix: str  # handoff's prefix of the external ids this kind carries
    sign: int  # handoff counts a credit memo's amounts negative


INVOICES = DocumentKind("salesInvoices", "salesInvoiceLines", "invoiceDate", INVOICE_PREFIX, 1)
CREDIT_MEMOS = DocumentKind("salesCreditMemos", "salesCreditMemoLines", "creditMemoDate",
                            CREDIT_NOTE_PREFIX, -1)

# salesInvoice.status and salesCreditMemo.status (⚠ " " and "Corrective": read as their nearest
# handoff state; a corrective document is posted, a canceled one is void).
_STATUSES: Mapping[str, InvoiceStatus] = {
    " ": InvoiceStatus.DRAFT, "": InvoiceStatus.DRAFT, "Draft": InvoiceStatus.DRAFT,
    "In Review": InvoiceStatus.DRAFT, "Open": InvoiceStatus.POSTED, "Corrective": InvoiceStatus.POSTED,
    "Paid": InvoiceStatus.PAID, "Canceled": InvoiceStatus.CANCELLED,
}
_DUE_UNLESS_SETTLED = ("Draft", "In Review", "Open", "Corrective", " ", "")


# --- keys ---------------------------------------------------------------------------------

def bc_key(external_id: str, width: int) -> str:
    """handoff's external id as BC keeps it in a Code field of `width` characters."""
    if not external_id or external_id != external_id.strip() or not external_id.isprintable():
        raise DataError(f"external id {external_id!r} is empty or holds spaces or control characters",
                        system=SYSTEM, field="external_id")
    if (len(external_id) <= width and external_id == external_id.upper()
            and not _NOT_VERBATIM.intersection(external_id)):
        return external_id
    prefix = next((p for p in HANDOFF_PREFIXES if external_id.startswith(p)), "")
    digest = base64.b32encode(hashlib.sha256(external_id.encode()).digest()).decode()
    return f"{prefix}{COMPACT}{digest[:width - len(prefix) - 1]}"


def entity_number(external_id: str) -> str:
    """A customer's or project's No.: handoff's key (HO-C-…, HO-P-…)."""
    return bc_key(external_id, NUMBER_LENGTH)


def document_key(external_id: str) -> str:
    """A sales document's External Document No.: handoff's key (HO-I-…, HO-CN-…)."""
    return bc_key(external_id, DOCUMENT_KEY_LENGTH)


def deal_of_project_number(number: str) -> str:
    """The deal a project's No. names; a compact key (or a project not made by handoff) is
    named by its No. itself, since it cannot be read back."""
    if number.startswith(PROJECT_PREFIX) and COMPACT not in number:
        return deal_of_project(number)
    return number


def deal_of_document_key(key: str) -> str:
    """The deal of HO-I-<deal>-<document> / HO-CN-<deal>-<document> (deal ids hold no `-`,
    as Salesforce's and HubSpot's do not); a compact key is named by itself."""
    for prefix in (INVOICE_PREFIX, CREDIT_NOTE_PREFIX):
        if key.startswith(prefix) and COMPACT not in key:
            deal, _, _ = key[len(prefix):].partition("-")
            return deal
    return key


def odata_string(value: str) -> str:
    """A string literal for `$filter`: quoted, with quotes doubled."""
    return "'" + value.replace("'", "''") + "'"


# --- request bodies -------------------------------------------------------------------------

def customer_body(external_id: str, customer: Customer,
                  settings: BusinessCentralSettings) -> dict[str, Any]:
    _check_legal_entity(customer.legal_entity, settings)
    return {"number": entity_number(external_id), "displayName": _name("name", customer.name),
            "type": "Company", "currencyCode": customer.currency}


def project_body(project: Project, settings: BusinessCentralSettings) -> dict[str, Any]:
    """API v2.0 projects carry a number and a name only: no customer, value, dates or status."""
    _check_legal_entity(project.legal_entity, settings)
    return {"number": entity_number(project.external_id),
            "displayName": _name("name", project.name)}


def document_kind(request: InvoiceRequest) -> DocumentKind:
    return CREDIT_MEMOS if request.is_credit else INVOICES


def document_body(request: InvoiceRequest, customer_id: str, project_number: str) -> dict[str, Any]:
    """The document's header. An invoice names the project's No. as the customer's reference
    ("Your Reference", printed on it); API v2.0 credit memos have no such field."""
    kind = document_kind(request)
    body = {"externalDocumentNumber": document_key(request.external_id), "customerId": customer_id,
            kind.date_field: request.invoice_date.isoformat(),
            "postingDate": request.invoice_date.isoformat(),
            "currencyCode": request.line.amount.currency}
    if kind is INVOICES:
        body["customerPurchaseOrderReference"] = project_number
    return body


def line_body(request: InvoiceRequest, settings: BusinessCentralSettings) -> dict[str, Any]:
    """One line billing the milestone; a credit memo's amounts are positive, as BC keeps them."""
    return {"lineType": settings.line_type, "lineObjectNumber": settings.line_object_number,
            "description": _name("line.name", request.line.name), "quantity": 1,
            "unitPrice": abs(request.line.amount.amount)}


def changed_fields(record: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of `body` the record does not already hold (Code fields compare as BC keeps
    them, upper case)."""
    def held(name: str, value: Any) -> bool:
        if name in _CODE_FIELDS:
            return str(record.get(name, "")).upper() == str(value).upper()
        return record.get(name) == value

    return {name: value for name, value in body.items() if not held(name, value)}


# --- what BC shows --------------------------------------------------------------------------

def invoice_from(record: Mapping[str, Any], kind: DocumentKind) -> Invoice:
    """An invoice or credit memo as handoff counts it: a credit's amounts are negative. The
    external id is BC's key; callers that know handoff's own put it back."""
    currency = _currency(record)
    total, untaxed = _amount(record, "totalAmountIncludingTax"), _amount(record, "totalAmountExcludingTax")

    def money(value: Decimal) -> Money:
        # 0 - x, not -x: a settled credit is due 0, never -0.
        return Money(Decimal(0) - value if kind.sign < 0 else value, currency)

    return Invoice(
        external_id=str(record.get("externalDocumentNumber", "")), target_id=str(record["id"]),
        number=record.get("number") or None, status=_status(record, kind),
        untaxed=money(untaxed), tax=money(_amount(record, "totalTaxAmount")), total=money(total),
        amount_due=money(amount_due(record, kind)),
        invoice_date=_date(record.get(kind.date_field)), due_date=_date(record.get("dueDate")),
    )


def amount_due(record: Mapping[str, Any], kind: DocumentKind) -> Decimal:
    """An invoice's `remainingAmount`. A credit memo has none in API v2.0: its total while it
    is open, nothing once Paid (applied) or Canceled (⚠ a partly applied one shows its total)."""
    if kind is INVOICES:
        return _amount(record, "remainingAmount")
    if record.get("status") in _DUE_UNLESS_SETTLED:
        return _amount(record, "totalAmountIncludingTax")
    return Decimal(0)


def project_figures_from(record: Mapping[str, Any]) -> ProjectFigures:
    """API v2.0 projects show no currency or value: reconciliation sees that the project exists."""
    return ProjectFigures(deal_of_project_number(str(record["number"])), None, None)


def document_figures_from(record: Mapping[str, Any], kind: DocumentKind) -> DocumentFigures:
    status = _STATUSES.get(str(record.get("status")))
    total, untaxed = _amount(record, "totalAmountIncludingTax"), _amount(record, "totalAmountExcludingTax")
    return DocumentFigures(
        deal_id=deal_of_document_key(str(record.get("externalDocumentNumber", ""))),
        document_id=str(record["id"]), currency=str(record.get("currencyCode") or ""),
        status=status.value if status else f"unknown {record.get('status')}",
        total=kind.sign * total, untaxed=kind.sign * untaxed,
        amount_due=kind.sign * amount_due(record, kind))


def _check_legal_entity(legal_entity: str | None, settings: BusinessCentralSettings) -> None:
    """A company is one legal entity: records of another cannot go to it."""
    if legal_entity is not None and legal_entity not in settings.legal_entities:
        known = ", ".join(settings.legal_entities) or "none configured"
        raise DataError(f"legal entity {legal_entity!r} is not the Business Central company "
                        f"{settings.company_id} (its legal entities: {known})", system=SYSTEM,
                        field="legal_entity")


def _name(field: str, value: str) -> str:
    if not value or len(value) > NAME_LENGTH:
        raise DataError(f"{field} must be 1 to {NAME_LENGTH} characters for Business Central, "
                        f"not {len(value)}", system=SYSTEM, field=field)
    return value


def _status(record: Mapping[str, Any], kind: DocumentKind) -> InvoiceStatus:
    status = _STATUSES.get(str(record.get("status")))
    if status is None:
        raise DataError(f"Business Central {kind.entity_set} {record.get('id')} has status "
                        f"{record.get('status')!r}, unknown to handoff", system=SYSTEM, field="status")
    return status


def _currency(record: Mapping[str, Any]) -> str:
    code = record.get("currencyCode")
    if not code:
        raise DataError(f"Business Central document {record.get('id')} shows no currency code",
                        system=SYSTEM, field="currencyCode")
    return str(code)


def _amount(record: Mapping[str, Any], name: str) -> Decimal:
    value = record.get(name, 0)
    if isinstance(value, float | bool) or value is None:
        raise DataError(f"{name} {value!r} is not an exact amount", system=SYSTEM, field=name)
    return Decimal(str(value))


def _date(value: str | None) -> date | None:
    # BC shows "0001-01-01" for a date not set.
    return date.fromisoformat(value) if value and value != "0001-01-01" else None
