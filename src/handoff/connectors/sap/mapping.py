"""Canonical records -> SAP request bodies, and SAP's billing documents and open items ->
handoff's `Invoice`. Pure functions: no I/O, so a value that cannot be mapped is refused
(DataError naming the field) before any call is made.

Where handoff's external ids live (SAP has no external-id field on these records):

    customer   A_BusinessPartner.BusinessPartnerIDByExtSystem (20 characters, filterable)
    project    A_EnterpriseProject.Project, SAP's own project ID (24, upper case)
    milestone  A_EnterpriseProjectElement.ProjectElement, the WBS element ID (24, upper case)

An id that does not fit is shortened the same way every time: its first characters, `-`, and
ten characters of its SHA-256 (`key_within`); a project id never is (its deal must be read back
from it), so a longer one is refused. SAP keeps project and WBS element IDs in upper case
(their metadata's display format), so handoff writes them so; a Salesforce id read back from
one gets its letter case again from its own checksum (`deal_of_project_key`).

Money stays `Decimal`: SAP sends decimals as strings with the scale of the property
("12345.670"), read here to the currency's minor units, exactly.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from handoff.connectors.ports import DocumentFigures, ProjectFigures
from handoff.connectors.sap.odata import date_value, parse_date, parse_decimal
from handoff.connectors.sap.settings import SYSTEM, Organization, SapSettings
from handoff.domain import Customer, Invoice, InvoiceStatus, Milestone, Money, Project
from handoff.domain.ids import PROJECT_PREFIX, deal_of_project
from handoff.domain.money import MINOR_UNITS
from handoff.errors import DataError

PARTNER_KEY_LENGTH = 20   # BusinessPartnerIDByExtSystem
PROJECT_KEY_LENGTH = 24   # Project, ProjectElement
NAME_LINE = 40            # OrganizationBPName1..4
NAME_LINES = 4
DESCRIPTION_LENGTH = 60   # ProjectDescription, ProjectElementDescription
DIGEST_LENGTH = 10
CUSTOMER_ACCOUNT = "D"    # FinancialAccountType of a customer line item
DEBIT = "S"               # DebitCreditCode: S (Soll) debit, H (Haben) credit

PARTNER_FIELDS = tuple(f"OrganizationBPName{n}" for n in range(1, NAME_LINES + 1))
PROJECT_FIELDS = ("ProjectDescription", "ProjectStartDate", "ProjectEndDate", "ResponsibleCostCenter",
                  "ProfitCenter", "CustomerUUID")
ELEMENT_FIELDS = ("ProjectElementDescription", "WBSElementIsBillingElement")
DOCUMENT_FIELDS = ("BillingDocument", "SDDocumentCategory", "BillingDocumentType", "BillingDocumentDate",
                   "BillingDocumentIsCancelled", "TotalNetAmount", "TaxAmount", "TotalGrossAmount",
                   "TransactionCurrency", "CompanyCode", "FiscalYear", "AccountingDocument",
                   "AccountingTransferStatus", "InvoiceClearingStatus", "SoldToParty")
OPEN_ITEM_FIELDS = ("CompanyCode", "FiscalYear", "AccountingDocument", "AccountingDocumentItem",
                    "FinancialAccountType", "IsCleared", "ClearingDate", "NetDueDate", "DebitCreditCode",
                    "AmountInTransactionCurrency", "TransactionCurrency", "InvoiceReference",
                    "InvoiceReferenceFiscalYear", "BillingDocument")

_SALESFORCE_FLAGS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_UPPER_ID = re.compile(r"[A-Z0-9]{18}")


# --- where the keys live -------------------------------------------------------------------

def key_within(external_id: str, width: int) -> str:
    """The id itself when it fits in `width` characters; else its head, `-` and a digest of
    the whole id, `width` long: deterministic, so a look-up finds what an earlier call wrote."""
    if len(external_id) <= width:
        return external_id
    digest = base64.b32encode(hashlib.sha256(external_id.encode()).digest()).decode()[:DIGEST_LENGTH]
    return f"{external_id[:width - DIGEST_LENGTH - 1]}-{digest}"


def partner_key(external_id: str) -> str:
    """The customer's key in BusinessPartnerIDByExtSystem (HO-C-<18-char account> is 23 long)."""
    return key_within(_checked(external_id, "external_id"), PARTNER_KEY_LENGTH)


def project_key(external_id: str) -> str:
    """SAP's project ID for handoff's project: the external id in upper case; one longer than
    SAP's 24 characters (a Dynamics GUID deal) is shortened the same way every time, which
    keeps upserts idempotent but cannot be read back into the deal for reconciliation."""
    return key_within(_checked(external_id, "external_id").upper(), PROJECT_KEY_LENGTH)


def element_key(project: str, milestone_id: str) -> str:
    """The WBS element of one milestone: `<project>.<milestone>`, shortened when too long. WBS
    element IDs are unique in the whole system, hence the project in it."""
    return key_within(f"{project}.{_checked(milestone_id, 'milestones.id')}".upper(), PROJECT_KEY_LENGTH)


def deal_of_project_key(key: str) -> str:
    """The deal a project ID names: handoff's prefix taken off, and an 18-character Salesforce
    id given back its letter case (its last three characters encode which letters of the first
    fifteen are capitals, so upper-casing loses nothing)."""
    deal = deal_of_project(key)
    return _salesforce_case(deal) or deal


def _salesforce_case(upper: str) -> str | None:
    if not _UPPER_ID.fullmatch(upper):
        return None
    chars = list(upper[:15].lower())
    for block, flag in enumerate(upper[15:]):
        bits = _SALESFORCE_FLAGS.find(flag)
        if bits < 0:
            return None
        for n in range(5):
            if bits >> n & 1:
                if not chars[block * 5 + n].isalpha():
                    return None  # a capital flagged on a digit: not a Salesforce id
                chars[block * 5 + n] = chars[block * 5 + n].upper()
    return "".join(chars) + upper[15:]


def is_handoff_project(key: str) -> bool:
    return key.startswith(PROJECT_PREFIX)


def _checked(value: str, field: str) -> str:
    if not value or not value.isprintable() or value != value.strip():
        raise DataError(f"{value!r} cannot be an SAP key (empty, surrounding spaces or control "
                        "characters)", system=SYSTEM, field=field)
    return value


# --- customers -------------------------------------------------------------------------------

def organization(legal_entity: str | None, settings: SapSettings) -> Organization:
    name = legal_entity if legal_entity is not None else settings.default_legal_entity
    if name is None or name not in settings.organizations:
        raise DataError(f"no SAP organization configured for legal entity {legal_entity!r}",
                        system=SYSTEM, field="legal_entity")
    return settings.organizations[name]


def partner_body(key: str, customer: Customer, settings: SapSettings) -> dict[str, Any]:
    """A new business partner (organisation) in the customer roles, with its customer's
    company data and, where a sales organisation is configured, its sales area and currency
    (deep insert: one call)."""
    org = organization(customer.legal_entity, settings)
    body: dict[str, Any] = {
        "BusinessPartnerCategory": "2",
        "BusinessPartnerGrouping": settings.business_partner_grouping,
        **partner_names(customer.name),
        "BusinessPartnerIDByExtSystem": key,
    }
    if settings.customer_roles:
        body["to_BusinessPartnerRole"] = [{"BusinessPartnerRole": role} for role in settings.customer_roles]
        body["to_Customer"] = _customer_data(customer, org)
    return body


def _customer_data(customer: Customer, org: Organization) -> dict[str, Any]:
    company: dict[str, Any] = {"CompanyCode": org.company_code,
                               "ReconciliationAccount": org.reconciliation_account}
    if org.payment_terms:
        company["PaymentTerms"] = org.payment_terms
    data: dict[str, Any] = {"to_CustomerCompany": [company]}
    if org.sales_organization:
        area = {"SalesOrganization": org.sales_organization, "DistributionChannel": org.distribution_channel,
                "Division": org.division, "Currency": customer.currency}
        if org.payment_terms:
            area["CustomerPaymentTerms"] = org.payment_terms
        data["to_CustomerSalesArea"] = [area]
    return data


def partner_names(name: str) -> dict[str, str]:
    """The name in SAP's four 40-character lines, broken between words where it can be."""
    lines: list[str] = []
    for word in name.split():
        while len(word) > NAME_LINE:
            lines.append(word[:NAME_LINE])
            word = word[NAME_LINE:]
        if lines and len(lines[-1]) + 1 + len(word) <= NAME_LINE:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    if not lines or len(lines) > NAME_LINES:
        raise DataError(f"name {name!r} does not fit SAP's {NAME_LINES} lines of {NAME_LINE} characters",
                        system=SYSTEM, field="name")
    return {field: lines[n] if n < len(lines) else "" for n, field in enumerate(PARTNER_FIELDS)}


def partner_changes(current: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    """What an update must send: only the names that differ (an empty line clears one)."""
    return {f: body[f] for f in PARTNER_FIELDS if (current.get(f) or "") != body[f]}


# --- projects ----------------------------------------------------------------------------------

def project_fields(project: Project, customer_uuid: str, settings: SapSettings) -> dict[str, Any]:
    """The project's fields handoff keeps in step (end date: see `project_changes`)."""
    org = organization(project.legal_entity, settings)
    return {
        "ProjectDescription": project.name[:DESCRIPTION_LENGTH],
        "ProjectStartDate": date_value(project.start_date),
        "ProjectEndDate": date_value(planned_end(project, settings)),
        "ResponsibleCostCenter": org.cost_center,
        "ProfitCenter": org.profit_center,
        "CustomerUUID": customer_uuid,
    }


def planned_end(project: Project, settings: SapSettings) -> date:
    return project.start_date + timedelta(days=settings.project_duration_days)


def project_create_body(project: Project, key: str, fields: Mapping[str, Any],
                        settings: SapSettings) -> dict[str, Any]:
    """A new project with a WBS element per milestone of its schedule (deep insert: one call).
    Profile and currency are set once: SAP fixes them when the project is made."""
    return {"Project": key, **fields, "ProjectProfileCode": settings.project_profile_code,
            "ProjectCurrency": project.value.currency, "EntProjectIsConfidential": False,
            "to_EnterpriseProjectElement": element_bodies(project, key, settings)}


def project_changes(current: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """What an update must send. The planned finish is SAP's to move once the project exists
    (planning happens there); it is only pushed out when a later start would pass it."""
    changes = {f: v for f, v in fields.items()
               if f != "ProjectEndDate" and not same_value(f, current.get(f), v)}
    start, end = parse_date(fields["ProjectStartDate"]), parse_date(current.get("ProjectEndDate"))
    if "ProjectStartDate" in changes and start and end and end < start:
        changes["ProjectEndDate"] = fields["ProjectEndDate"]
    return changes


def element_bodies(project: Project, key: str, settings: SapSettings) -> list[dict[str, Any]]:
    return [element_body(project, key, milestone, settings) for milestone in project.milestones]


def element_body(project: Project, key: str, milestone: Milestone, settings: SapSettings) -> dict[str, Any]:
    """A milestone as a billing WBS element under the project, planned over the project."""
    return {"ProjectElement": element_key(key, milestone.id),
            "ProjectElementDescription": (milestone.name or milestone.id)[:DESCRIPTION_LENGTH],
            "PlannedStartDate": date_value(project.start_date),
            "PlannedEndDate": date_value(planned_end(project, settings)),
            "WBSElementIsBillingElement": True}


def element_changes(current: Mapping[str, Any], body: Mapping[str, Any]) -> dict[str, Any]:
    return {f: body[f] for f in ELEMENT_FIELDS if not same_value(f, current.get(f), body[f])}


def status_change(current: str | None, wanted: str, settings: SapSettings) -> str | None:
    """The processing status to set, if any. Statuses only move forward (pending, active,
    closed): a project released or closed in SAP is never taken back by handoff."""
    order = list(settings.status_codes.values())
    if current == wanted or current not in order or wanted not in order:
        return None
    return wanted if order.index(wanted) > order.index(current) else None


def same_value(field: str, current: Any, wanted: Any) -> bool:
    """Dates compare as days, GUIDs whatever their letter case."""
    if field.endswith("Date"):
        return parse_date(current) == parse_date(wanted)
    if field.endswith("UUID"):
        return str(current or "").lower() == str(wanted or "").lower()
    return current == wanted


def project_figures_from(row: Mapping[str, Any]) -> ProjectFigures:
    """An enterprise project holds no contract value: the value lives in SAP's sales order and
    billing plan, which handoff neither writes nor reads, so `value` is None."""
    return ProjectFigures(deal_of_project_key(row["Project"]), row.get("ProjectCurrency") or None, None)


# --- billing documents ---------------------------------------------------------------------------

def is_credit(document: Mapping[str, Any], settings: SapSettings) -> bool:
    return document.get("SDDocumentCategory") in settings.credit_memo_categories


def is_cancellation(document: Mapping[str, Any], settings: SapSettings) -> bool:
    """A cancellation document: the document it cancels shows as cancelled, so it is not
    counted again itself."""
    return document.get("SDDocumentCategory") in settings.cancellation_categories


def belongs_to(item: Mapping[str, Any], document: Mapping[str, Any]) -> bool:
    """A customer line item of the document's accounting document, or one referring to it (a
    residual item or a partial payment)."""
    if item.get("FinancialAccountType") != CUSTOMER_ACCOUNT or not document.get("AccountingDocument"):
        return False
    if item.get("CompanyCode") != document.get("CompanyCode"):
        return False
    own = (item.get("AccountingDocument") == document["AccountingDocument"]
           and item.get("FiscalYear") == document.get("FiscalYear"))
    year = document.get("FiscalYear")
    referring = (item.get("InvoiceReference") == document["AccountingDocument"]
                 and item.get("InvoiceReferenceFiscalYear", year) == year)
    return own or referring


def invoice_from(document: Mapping[str, Any], items: Iterable[Mapping[str, Any]],
                 settings: SapSettings) -> Invoice:
    """A billing document as handoff counts it (a credit memo's amounts negative). SAP's
    billing run made it, so it carries no handoff external id: `external_id` is empty."""
    currency = _currency(document)
    sign = -1 if is_credit(document, settings) else 1
    own = [item for item in items if belongs_to(item, document)]
    total = sign * _amount(document, "TotalGrossAmount", currency)
    status, due = _status_and_due(document, own, total, settings)
    return Invoice(
        external_id="", target_id=document["BillingDocument"], number=document["BillingDocument"],
        status=status,
        untaxed=_money(sign * _amount(document, "TotalNetAmount", currency), currency),
        tax=_money(sign * _amount(document, "TaxAmount", currency), currency),
        total=_money(total, currency), amount_due=_money(due, currency),
        invoice_date=parse_date(document.get("BillingDocumentDate")), due_date=_due_date(document, own),
    )


def document_figures_from(document: Mapping[str, Any], items: Iterable[Mapping[str, Any]], deal_id: str,
                          settings: SapSettings) -> DocumentFigures:
    invoice = invoice_from(document, items, settings)
    return DocumentFigures(deal_id=deal_id, document_id=invoice.target_id, currency=invoice.total.currency,
                           status=invoice.status.value, total=invoice.total.amount,
                           untaxed=invoice.untaxed.amount, amount_due=invoice.amount_due.amount)


def _status_and_due(document: Mapping[str, Any], items: list[Mapping[str, Any]], total: Decimal,
                    settings: SapSettings) -> tuple[InvoiceStatus, Decimal]:
    """Cancelled; not yet in accounting (draft); else posted, and paid once every customer item
    of it is cleared (⚠ handoff's reading of the open items, not SAP's own words)."""
    if document.get("BillingDocumentIsCancelled"):
        return InvoiceStatus.CANCELLED, Decimal(0)
    if document.get("AccountingTransferStatus") not in settings.posted_transfer_statuses:
        return InvoiceStatus.DRAFT, total
    if not items:  # posted, but no customer item visible to this user: nothing known as paid
        return InvoiceStatus.POSTED, total
    due = sum((_signed(item, document) for item in items if not item.get("IsCleared")), Decimal(0))
    return (InvoiceStatus.PAID if due == 0 else InvoiceStatus.POSTED), due


def _signed(item: Mapping[str, Any], document: Mapping[str, Any]) -> Decimal:
    amount = abs(_amount(item, "AmountInTransactionCurrency", _currency(document)))
    return amount if item.get("DebitCreditCode") == DEBIT else -amount


def _due_date(document: Mapping[str, Any], items: list[Mapping[str, Any]]) -> date | None:
    own = [parse_date(i.get("NetDueDate")) for i in items
           if i.get("AccountingDocument") == document.get("AccountingDocument")]
    return min((d for d in own if d), default=None)


def _currency(document: Mapping[str, Any]) -> str:
    currency = document.get("TransactionCurrency")
    if currency not in MINOR_UNITS:
        raise DataError(f"SAP document {document.get('BillingDocument')} is in currency {currency!r}, "
                        "unknown to handoff", system=SYSTEM, field="TransactionCurrency")
    return str(currency)


def _amount(record: Mapping[str, Any], field: str, currency: str) -> Decimal:
    """A decimal at the currency's minor units: SAP's "12345.670" is 12345.67 USD; a digit
    beyond them that is not 0 is refused, never rounded away."""
    try:
        amount = parse_decimal(record.get(field, "0"))
    except ValueError as exc:
        raise DataError(str(exc), system=SYSTEM, field=field) from None
    step = Decimal(1).scaleb(-MINOR_UNITS[currency])
    exact = amount.quantize(step)
    if exact != amount:
        raise DataError(f"{field} {amount} has more decimals than {currency} allows", system=SYSTEM,
                        field=field)
    return exact


def _money(amount: Decimal, currency: str) -> Money:
    # 0 + x: a settled credit is due 0.00, never -0.00.
    return Money((Decimal(0) + amount).quantize(Decimal(1).scaleb(-MINOR_UNITS[currency])), currency)
