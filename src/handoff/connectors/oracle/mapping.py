"""Canonical records -> Oracle Fusion request bodies and queries, and Oracle's receivables
invoices and credit memos -> handoff's `Invoice`. Pure functions: no I/O, so a value that
cannot be mapped is refused (DataError naming the field) before any call is made.

Money stays `Decimal` both ways (`exact_json` writes and reads exact JSON numbers). Oracle
keeps a credit memo's amounts negative, as handoff does, so no sign is turned.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from handoff.connectors.oracle.errors import SYSTEM
from handoff.connectors.oracle.settings import OracleSettings
from handoff.connectors.ports import DocumentFigures, ProjectFigures
from handoff.domain import Customer, Invoice, InvoiceRequest, InvoiceStatus, Money, Project
from handoff.domain.ids import PROJECT_PREFIX, deal_of_project
from handoff.domain.money import MINOR_UNITS
from handoff.errors import DataError

ACCOUNTS, PROJECTS = "accounts", "projects"
INVOICES, CREDIT_MEMOS = "receivablesInvoices", "receivablesCreditMemos"
LINES = {INVOICES: "receivablesInvoiceLines", CREDIT_MEMOS: "receivablesCreditMemoLines"}
CURRENCY = {INVOICES: "InvoiceCurrencyCode", CREDIT_MEMOS: "CreditMemoCurrency"}
PILLARS = {ACCOUNTS: "crmRestApi", PROJECTS: "fscmRestApi", INVOICES: "fscmRestApi",
           CREDIT_MEMOS: "fscmRestApi"}
COMPLETE, INCOMPLETE = "Complete", "Incomplete"
# ⚠ InvoiceStatus values beyond these two are unconfirmed; a paid invoice is Complete with
# nothing left due.
_INVOICE_STATUSES: Mapping[str, InvoiceStatus] = {COMPLETE: InvoiceStatus.POSTED,
                                                  INCOMPLETE: InvoiceStatus.DRAFT}
DOCUMENT_PREFIXES = {INVOICES: "HO-I-", CREDIT_MEMOS: "HO-CN-"}  # domain/ids.py
CROSS_REFERENCE_LENGTH = 150  # ⚠ RA_CUSTOMER_TRX.CT_REFERENCE, by EBS's data model

# Reconciliation's bulk reads: only what is counted, and the lines for the untaxed amount.
PROJECT_FIELDS = "ProjectId,SourceProjectReference,ProjectCurrencyCode,ProjectValue"
DOCUMENT_FIELDS = {
    INVOICES: "CustomerTransactionId,CrossReference,InvoiceCurrencyCode,InvoiceStatus,"
              "EnteredAmount,InvoiceBalanceAmount;receivablesInvoiceLines:Quantity,UnitSellingPrice",
    CREDIT_MEMOS: "CustomerTransactionId,CrossReference,CreditMemoCurrency,EnteredAmount;"
                  "receivablesCreditMemoLines:LineAmountCredit,LineQuantityCredit,UnitSellingPrice",
}


# --- queries (`q` in expression syntax, REST framework version 2 and later) -------------------

def quoted(value: str) -> str:
    """A string literal for `q` (⚠ doubling a quote inside it is unconfirmed; handoff's ids
    hold none)."""
    return "'" + value.replace("'", "''") + "'"


def customer_query(external_id: str, settings: OracleSettings) -> str:
    return (f"SourceSystem={quoted(settings.source_system)} and "
            f"SourceSystemReferenceValue={quoted(external_id)}")


def project_query(external_id: str, settings: OracleSettings) -> str:
    return (f"SourceApplicationCode={quoted(settings.source_system)} and "
            f"SourceProjectReference={quoted(external_id)}")


def handoff_projects_query(settings: OracleSettings) -> str:
    return (f"SourceApplicationCode={quoted(settings.source_system)} and "
            f"SourceProjectReference LIKE {quoted(PROJECT_PREFIX + '%')}")


def document_query(external_id: str) -> str:
    return f"CrossReference={quoted(checked_reference(external_id))}"


def handoff_documents_query(resource: str) -> str:
    return f"CrossReference LIKE {quoted(DOCUMENT_PREFIXES[resource] + '%')}"


# --- request bodies -----------------------------------------------------------------------

def customer_body(external_id: str, customer: Customer, settings: OracleSettings) -> dict[str, Any]:
    """A new account (an organization party) carrying handoff's id as its source-system
    reference."""
    return {"SourceSystem": settings.source_system,
            "SourceSystemReferenceValue": checked_reference(external_id),
            **customer_changes(customer)}


def customer_changes(customer: Customer) -> dict[str, Any]:
    """What a PATCH of an existing account sets."""
    return {"OrganizationName": customer.name, "Type": "ZCA_CUSTOMER",
            "CurrencyCode": customer.currency}


def project_body(project: Project, customer_target_id: str, settings: OracleSettings) -> dict[str, Any]:
    """A new project under its business unit, its customer (a party, by number) attached."""
    return {
        "ProjectName": project.name,
        "SourceApplicationCode": settings.source_system,
        "SourceProjectReference": checked_reference(project.external_id),
        "ProjectCurrencyCode": project.value.currency,
        "ProjectType": _mapped("billing_method", project.billing_method, settings.project_types),
        "BusinessUnitName": business_unit(project.legal_entity, settings),
        **project_changes(project, settings),
        "ProjectCustomers": [{"PartyNumber": customer_target_id}],
    }


def project_changes(project: Project, settings: OracleSettings) -> dict[str, Any]:
    """What a PATCH of an existing project sets (Oracle keeps a project's currency, type,
    business unit and customers as created)."""
    return {"ProjectName": project.name, "ProjectStartDate": project.start_date.isoformat(),
            "ProjectValue": project.value.amount,
            "ProjectStatus": _mapped("status", project.status, settings.project_statuses)}


def document_resource(request: InvoiceRequest) -> str:
    return CREDIT_MEMOS if request.is_credit else INVOICES


def document_body(request: InvoiceRequest, party_number: str, business_unit_name: str,
                  settings: OracleSettings) -> dict[str, Any]:
    """One line billing the milestone: a receivables invoice, or an on-account credit memo
    (negative, as Oracle keeps credits) for a credit. handoff's document id is the
    CrossReference, the field it is found by."""
    amount, day = request.line.amount.amount, request.invoice_date.isoformat()
    header = {"BusinessUnit": business_unit_name, "TransactionSource": settings.transaction_source,
              "TransactionDate": day, "AccountingDate": day, "BillToCustomerNumber": party_number,
              "CrossReference": checked_reference(request.external_id)}
    memo_line = {"MemoLine": settings.memo_line} if settings.memo_line else {}
    if request.is_credit:
        line = {"LineNumber": 1, "LineDescription": request.line.name, "LineAmountCredit": amount}
        return header | {"TransactionType": settings.credit_memo_type,
                         "CreditMemoCurrency": request.line.amount.currency,
                         LINES[CREDIT_MEMOS]: [line | memo_line]}
    line = {"LineNumber": 1, "Description": request.line.name, "Quantity": 1,
            "UnitSellingPrice": amount}
    return header | {"TransactionType": settings.invoice_type,
                     "InvoiceCurrencyCode": request.line.amount.currency,
                     "PaymentTerms": settings.payment_terms,
                     "InvoiceStatus": COMPLETE if request.post else INCOMPLETE,
                     LINES[INVOICES]: [line | memo_line]}


def business_unit(legal_entity: str | None, settings: OracleSettings) -> str:
    if legal_entity is None and settings.default_business_unit:
        return settings.default_business_unit
    return _mapped("legal_entity", legal_entity, settings.business_units)


def checked_reference(external_id: str) -> str:
    """handoff's id as a reference field holds it: text of at most 150 characters."""
    if not external_id or len(external_id) > CROSS_REFERENCE_LENGTH or not external_id.isprintable():
        raise DataError(f"external id {external_id!r} must be 1 to {CROSS_REFERENCE_LENGTH} "
                        "printable characters", system=SYSTEM, field="external_id")
    return external_id


def _mapped(field: str, value: str | None, names: Mapping[str, str]) -> str:
    if value is None or value not in names:
        raise DataError(f"no Oracle name configured for {field} {value!r}", system=SYSTEM,
                        field=field)
    return names[value]


# --- reading documents back ---------------------------------------------------------------

def invoice_from(record: Mapping[str, Any], resource: str) -> Invoice:
    """A receivables invoice or credit memo as handoff counts it. The untaxed amount is the
    sum of the lines; tax is what the total holds beyond it (handoff sends no freight)."""
    currency = _currency(record, resource)
    total = _money(record, "EnteredAmount", currency)
    untaxed = Money.rounded(_untaxed(record, resource), currency)
    due = _amount_due(record, resource, currency)
    return Invoice(
        external_id=str(record.get("CrossReference") or ""),
        target_id=str(record["CustomerTransactionId"]), number=record.get("TransactionNumber"),
        status=_status(record, resource, total.amount, due.amount),
        untaxed=untaxed, tax=Money(total.amount - untaxed.amount, currency), total=total,
        amount_due=due, invoice_date=_date(record.get("TransactionDate")),
        due_date=_date(record.get("DueDate")),
    )


def lines_of(record: Mapping[str, Any], resource: str) -> list[Mapping[str, Any]] | None:
    """The lines of a document read with its lines: an array (framework versions 1-2) or a
    collection (3 and later); None when the record was read without them."""
    lines = record.get(LINES[resource])
    if isinstance(lines, Mapping):
        lines = lines.get("items")
    return list(lines) if isinstance(lines, list) else None


def project_figures_from(row: Mapping[str, Any]) -> ProjectFigures:
    value = row.get("ProjectValue")
    return ProjectFigures(deal_of_project(row["SourceProjectReference"]), row.get("ProjectCurrencyCode"),
                          None if value is None else Decimal(str(value)))


def document_figures_from(row: Mapping[str, Any], resource: str, deal_id: str) -> DocumentFigures:
    """A bulk-read document as handoff counts it (a credit memo's amounts negative); a status
    handoff does not know is named as it is, so reconciliation shows it rather than stopping."""
    currency = str(row.get(CURRENCY[resource]))
    total = _decimal(row.get("EnteredAmount"))
    due = total if resource == CREDIT_MEMOS else _decimal(row.get("InvoiceBalanceAmount"))
    try:
        status = _status(row, resource, total, due).value
    except DataError:
        status = f"unknown {row.get('InvoiceStatus')}"
    return DocumentFigures(deal_id=deal_id, document_id=str(row["CustomerTransactionId"]),
                           currency=currency, status=status, total=total,
                           untaxed=_untaxed(row, resource), amount_due=due)


def deal_of_document(reference: str, resource: str, deals: Iterable[str]) -> str | None:
    """The deal a document's CrossReference (`HO-I-<deal>-<line>`) names, among handoff's
    deals: the longest that fits, since a deal id may itself hold a `-`."""
    prefix = DOCUMENT_PREFIXES[resource]
    if not reference.startswith(prefix):
        return None
    rest = reference[len(prefix):]
    fitting = [deal for deal in deals if rest.startswith(deal + "-")]
    return max(fitting, key=len, default=None)


def _untaxed(record: Mapping[str, Any], resource: str) -> Decimal:
    total = Decimal(0)
    for line in lines_of(record, resource) or ():
        if resource == CREDIT_MEMOS and line.get("LineAmountCredit") is not None:
            total += Decimal(str(line["LineAmountCredit"]))
        else:
            quantity = line.get("LineQuantityCredit" if resource == CREDIT_MEMOS else "Quantity")
            total += Decimal(str(1 if quantity is None else quantity)) * _decimal(
                line.get("UnitSellingPrice"))
    return total


def _amount_due(record: Mapping[str, Any], resource: str, currency: str) -> Money:
    """An invoice's InvoiceBalanceAmount (⚠ named so only by Oracle's own examples outside the
    receivables reference); a credit memo shows no balance over REST (⚠), so it is counted
    unapplied: all of it still to be used."""
    if resource == CREDIT_MEMOS:
        return _money(record, "EnteredAmount", currency)
    return _money(record, "InvoiceBalanceAmount", currency)


def _status(record: Mapping[str, Any], resource: str, total: Decimal, due: Decimal) -> InvoiceStatus:
    if resource == CREDIT_MEMOS:
        return InvoiceStatus.POSTED  # ⚠ a credit memo made over REST is complete at once
    known = _INVOICE_STATUSES.get(record.get("InvoiceStatus") or "")
    if known is None:
        raise DataError(f"Oracle invoice {record.get('CustomerTransactionId')} has status "
                        f"{record.get('InvoiceStatus')!r}, unknown to handoff", system=SYSTEM,
                        field="InvoiceStatus")
    if known is InvoiceStatus.POSTED and due == 0 and total != 0:
        return InvoiceStatus.PAID
    return known


def _currency(record: Mapping[str, Any], resource: str) -> str:
    code = record.get(CURRENCY[resource])
    if code not in MINOR_UNITS:
        raise DataError(f"Oracle document {record.get('CustomerTransactionId')} is in currency "
                        f"{code!r}, unknown to handoff", system=SYSTEM, field=CURRENCY[resource])
    return code


def _money(record: Mapping[str, Any], name: str, currency: str) -> Money:
    value = record.get(name)
    if value is None:
        raise DataError(f"Oracle document {record.get('CustomerTransactionId')} has no {name}",
                        system=SYSTEM, field=name)
    # Rounded to the currency's minor unit: the value itself when Oracle writes it so.
    return Money.rounded(Decimal(str(value)), currency)


def _decimal(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(str(value))


def _date(value: Any) -> date | None:
    return date.fromisoformat(str(value)[:10]) if value else None
