"""Canonical records -> NetSuite request bodies, and NetSuite's invoices and credit memos ->
handoff's `Invoice`. Pure functions: no I/O, so a value that cannot be mapped is refused
(DataError naming the field) before any call is made.

Money stays `Decimal` both ways; `exact_json` writes and reads it as exact JSON numbers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from handoff.connectors.netsuite.errors import SYSTEM
from handoff.connectors.netsuite.settings import NetSuiteSettings
from handoff.connectors.ports import DocumentFigures, ProjectFigures
from handoff.domain import Customer, Invoice, InvoiceRequest, InvoiceStatus, Money, Project
from handoff.domain.ids import PROJECT_PREFIX, deal_of_project
from handoff.errors import DataError

_EXTERNAL_ID = re.compile(r"[A-Za-z0-9_-]+")
_NOT_IN_EXTERNAL_IDS = re.compile(r"[^A-Za-z0-9-]")
_ESCAPED = re.compile(r"_([0-9a-f]+)_")

INVOICE, CREDIT_MEMO = "invoice", "creditMemo"
# SuiteScript's CustInvc / CustCred status letters (⚠ invoice D, E, V and credit memo V: no
# REST source names them). NetSuite posts a document when it saves it, so Open is posted.
_STATUSES: Mapping[str, Mapping[str, InvoiceStatus]] = {
    INVOICE: {"A": InvoiceStatus.POSTED, "B": InvoiceStatus.PAID, "D": InvoiceStatus.DRAFT,
              "E": InvoiceStatus.CANCELLED, "V": InvoiceStatus.CANCELLED},
    CREDIT_MEMO: {"A": InvoiceStatus.POSTED, "B": InvoiceStatus.PAID,
                  "V": InvoiceStatus.CANCELLED},
}


# Reconciliation's bulk reads (SuiteQL; twin_suiteql.py says what the twin answers).
PROJECT_QUERY = ("SELECT id, externalid, currency, jobprice FROM job "
                 f"WHERE externalid LIKE '{PROJECT_PREFIX}%' ORDER BY id")
JOB_IDS_QUERY = f"SELECT id, externalid FROM job WHERE externalid LIKE '{PROJECT_PREFIX}%' ORDER BY id"
DOCUMENT_QUERY = ("SELECT id, type, status, currency, foreigntotal, taxtotal, foreignamountremaining, "
                  "job FROM transaction WHERE type IN ('CustInvc', 'CustCred') ORDER BY id")
SUITEQL_TYPES = {"CustInvc": INVOICE, "CustCred": CREDIT_MEMO}


def project_figures_from(row: Mapping[str, Any], settings: NetSuiteSettings) -> ProjectFigures:
    price = row.get("jobprice")
    return ProjectFigures(deal_of_project(row["externalid"]), _currency_or_id(row.get("currency"), settings),
                          None if price is None else Decimal(str(price)))


def document_figures_from(row: Mapping[str, Any], deal_id: str,
                          settings: NetSuiteSettings) -> DocumentFigures:
    """A SuiteQL transaction row as handoff counts it (a credit memo's amounts negative)."""
    record_type = SUITEQL_TYPES[row["type"]]
    sign = -1 if record_type == CREDIT_MEMO else 1
    total, tax = Decimal(str(row.get("foreigntotal", 0))), Decimal(str(row.get("taxtotal") or 0))
    letter = str(row.get("status", "")).rpartition(":")[2]
    status = _STATUSES[record_type].get(letter)
    return DocumentFigures(
        deal_id=deal_id, document_id=str(row["id"]),
        currency=_currency_or_id(row.get("currency"), settings),
        status=status.value if status else f"unknown {letter}",
        total=sign * total, untaxed=sign * (total - tax),
        amount_due=sign * Decimal(str(row.get("foreignamountremaining") or 0)))


def _currency_or_id(currency_id: Any, settings: NetSuiteSettings) -> str:
    """The ISO code of a NetSuite currency id; an id not configured is named as it is, so a
    reconciliation shows it as a currency that does not match rather than stopping."""
    codes = {internal_id: code for code, internal_id in settings.currency_ids.items()}
    return codes.get(str(currency_id), f"NetSuite currency {currency_id}")


def customer_body(
    external_id: str, customer: Customer, settings: NetSuiteSettings
) -> dict[str, Any]:
    return {
        "externalId": checked_external_id(external_id),
        "companyName": customer.name,
        "currency": _ref(_mapped("currency", customer.currency, settings.currency_ids)),
        "subsidiary": _ref(_subsidiary_id(customer.legal_entity, settings)),
    }


def project_body(
    project: Project, customer_target_id: str, settings: NetSuiteSettings
) -> dict[str, Any]:
    return {
        "externalId": checked_external_id(project.external_id),
        "companyName": project.name,
        "parent": _ref(customer_target_id),
        "currency": _ref(_mapped("currency", project.value.currency, settings.currency_ids)),
        "subsidiary": _ref(_subsidiary_id(project.legal_entity, settings)),
        "jobBillingType": _ref(
            _mapped("billing_method", project.billing_method, settings.billing_type_ids)
        ),
        "entityStatus": _ref(_mapped("status", project.status, settings.project_status_ids)),
        "startDate": project.start_date.isoformat(),
        "jobPrice": project.value.amount,
    }


def document_type(request: InvoiceRequest) -> str:
    return CREDIT_MEMO if request.is_credit else INVOICE


def invoice_body(
    request: InvoiceRequest, customer_id: str, project_id: str, settings: NetSuiteSettings
) -> dict[str, Any]:
    """One service line billing the milestone; a credit memo's amounts are positive, as
    NetSuite keeps them."""
    amount = abs(request.line.amount.amount)
    line = {"item": _ref(settings.service_item_id), "quantity": 1, "rate": amount,
            "amount": amount, "description": request.line.name}
    return {
        "externalId": document_external_id(request.external_id),
        "entity": _ref(customer_id),
        "job": _ref(project_id),
        "tranDate": request.invoice_date.isoformat(),
        "currency": _ref(_mapped("currency", request.line.amount.currency, settings.currency_ids)),
        "item": {"items": [line]},
    }


def invoice_from(record: Mapping[str, Any], record_type: str, settings: NetSuiteSettings) -> Invoice:
    """An invoice or credit memo as handoff counts it: a credit's amounts are negative."""
    currency = _currency_code(record["currency"]["id"], settings)

    def money(value: Any) -> Money:
        amount = Decimal(str(value))
        # 0 - x, not -x: a settled credit is due 0, never -0.
        return Money(Decimal(0) - amount if record_type == CREDIT_MEMO else amount, currency)

    total, tax = record["total"], record.get("taxTotal", 0)
    return Invoice(
        external_id=_handoff_external_id(record.get("externalId", "")),
        target_id=str(record["id"]), number=record.get("tranId"),
        status=_status(record, record_type),
        untaxed=money(total - tax), tax=money(tax), total=money(total),
        amount_due=money(record["amountRemaining"]),
        invoice_date=_date(record.get("tranDate")), due_date=_date(record.get("dueDate")),
    )


def document_external_id(external_id: str) -> str:
    """handoff's document id in the characters NetSuite allows: any other one (`#` in
    `HO-I-<deal>-<line>#2`, `_` itself) becomes `_<hex code>_`, so distinct ids stay distinct."""
    return _NOT_IN_EXTERNAL_IDS.sub(lambda m: f"_{ord(m[0]):x}_", external_id)


def _handoff_external_id(netsuite_external_id: str) -> str:
    return _ESCAPED.sub(lambda m: chr(int(m[1], 16)), netsuite_external_id)


def checked_external_id(external_id: str) -> str:
    """NetSuite external ids hold letters, digits, `_` and `-` only."""
    if not _EXTERNAL_ID.fullmatch(external_id):
        raise DataError(
            f"external id {external_id!r} may hold only letters, digits, '_' and '-'",
            system=SYSTEM, field="external_id",
        )
    return external_id


def _subsidiary_id(legal_entity: str | None, settings: NetSuiteSettings) -> str:
    if legal_entity is None and settings.default_subsidiary_id:
        return settings.default_subsidiary_id
    return _mapped("legal_entity", legal_entity, settings.subsidiary_ids)


def _mapped(field: str, value: str | None, ids: Mapping[str, str]) -> str:
    if value is None or value not in ids:
        raise DataError(f"no NetSuite id configured for {field} {value!r}", system=SYSTEM,
                        field=field)
    return ids[value]


def _ref(internal_id: str) -> dict[str, str]:
    return {"id": internal_id}


def _status(record: Mapping[str, Any], record_type: str) -> InvoiceStatus:
    status = record["status"]
    known = _STATUSES[record_type].get(status["id"])
    if known is None:
        raise DataError(f"NetSuite {record_type} {record['id']} has status {status['id']} "
                        f"({status.get('refName')}), unknown to handoff", system=SYSTEM,
                        field="status")
    return known


def _currency_code(currency_id: str, settings: NetSuiteSettings) -> str:
    codes = {internal_id: code for code, internal_id in settings.currency_ids.items()}
    if currency_id not in codes:
        raise DataError(f"no currency configured for NetSuite currency id {currency_id!r}",
                        system=SYSTEM, field="currency")
    return codes[currency_id]


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None
