"""Salesforce records ↔ the `data` of handoff's canonical CloudEvents. Pure functions.

Picklist values Salesforce shows to people ("Time and Materials") become handoff's enum
values ("time_and_materials"); a value handoff does not know passes through unchanged so
canonical validation refuses that one record with the field named, instead of failing a feed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from handoff.connectors.ports import CrmStatusUpdate, DealFigures
from handoff.domain import ApprovalStatus, BillingMethod, ValidationStatus
from handoff.errors import DataError

STATUS_DETAIL_LENGTH = 255  # length of Handoff_Status_Detail__c

BILLING_METHODS = {
    "Fixed Fee": BillingMethod.FIXED_FEE,
    "Time and Materials": BillingMethod.TIME_AND_MATERIALS,
    "Milestone": BillingMethod.MILESTONE,
}
APPROVAL_STATUSES = {status.value.capitalize(): status for status in ApprovalStatus}
VALIDATION_STATUSES = {status.value.capitalize(): status for status in ValidationStatus}

# Fields to ask for when reading records whose event data is wanted.
OPPORTUNITY_FIELDS = (
    "Id", "Name", "AccountId", "StageName", "IsWon", "Amount", "CurrencyIsoCode", "CloseDate",
    "Billing_Method__c", "Contract_Status__c", "SOW_Status__c", "Legal_Entity__c", "OwnerId",
    "Description", "LastModifiedById", "SystemModstamp",
)
# What reconciliation compares: the sale, its approvals and the billing handoff wrote back.
FIGURE_FIELDS = (
    "Id", "Amount", "CurrencyIsoCode", "IsWon", "Contract_Status__c", "SOW_Status__c",
    "Handoff_Invoiced_Amount__c", "Handoff_Paid_Amount__c",
)
ACCOUNT_FIELDS = (
    "Id", "Name", "CurrencyIsoCode", "Tax_Jurisdiction__c", "Legal_Entity__c",
    "Validation_Status__c", "SystemModstamp",
)


def opportunity_event_data(record: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": record["Id"],
        "name": record.get("Name"),
        "account_id": record.get("AccountId"),
        "stage": record.get("StageName"),
        "is_won": bool(record.get("IsWon")),
        "amount": decimal_text(record.get("Amount")),
        "currency": record.get("CurrencyIsoCode"),
        "close_date": record.get("CloseDate"),
        "billing_method": _to_canonical(BILLING_METHODS, record.get("Billing_Method__c")),
        "contract_status": _to_canonical(APPROVAL_STATUSES, record.get("Contract_Status__c")),
        "sow_status": _to_canonical(APPROVAL_STATUSES, record.get("SOW_Status__c")),
        "legal_entity": record.get("Legal_Entity__c"),
        "owner": record.get("OwnerId"),
        "description": record.get("Description"),
        "modified_by": record.get("LastModifiedById"),  # an amendment's requester
        "version": version(record),
    }


def deal_figures(record: Mapping[str, Any]) -> DealFigures:
    return DealFigures(
        deal_id=record["Id"], currency=record.get("CurrencyIsoCode"),
        sold_value=_decimal(record.get("Amount")), is_won=bool(record.get("IsWon")),
        contract_status=_to_canonical(APPROVAL_STATUSES, record.get("Contract_Status__c")),
        sow_status=_to_canonical(APPROVAL_STATUSES, record.get("SOW_Status__c")),
        invoiced=_decimal(record.get("Handoff_Invoiced_Amount__c")),
        paid=_decimal(record.get("Handoff_Paid_Amount__c")))


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def customer_event_data(record: Mapping[str, Any]) -> dict[str, Any]:
    validation = record.get("Validation_Status__c") or "Unvalidated"
    return {
        "id": record["Id"],
        "name": record.get("Name"),
        "currency": record.get("CurrencyIsoCode"),
        "tax_jurisdiction": record.get("Tax_Jurisdiction__c"),
        "legal_entity": record.get("Legal_Entity__c"),
        "validation_status": _to_canonical(VALIDATION_STATUSES, validation),
        "version": version(record),
    }


def write_back_fields(update: CrmStatusUpdate) -> dict[str, Any]:
    """The Opportunity fields that show where provisioning stands (no project id clears it)
    and, once the deal has invoices, what is billed, paid and open, how late, and the invoice
    numbers (amounts as exact decimal text in the deal's currency, which Salesforce accepts
    for currency fields)."""
    fields: dict[str, Any] = {
        "Handoff_Project_Id__c": update.project_id,
        "Handoff_Status__c": update.status.value,
        "Handoff_Status_Detail__c": update.detail[:STATUS_DETAIL_LENGTH],
    }
    if billing := update.billing:
        fields |= {
            "Handoff_Invoiced_Amount__c": str(billing.invoiced.quantized()),
            "Handoff_Paid_Amount__c": str(billing.paid.quantized()),
            "Handoff_Billing_Status__c": billing.describe()[:STATUS_DETAIL_LENGTH],
            "Handoff_Open_Balance__c": str(billing.open_balance.quantized()),
            "Handoff_Days_Overdue__c": billing.days_overdue,
            "Handoff_Invoice_Numbers__c": ", ".join(billing.invoice_numbers)[:STATUS_DETAIL_LENGTH],
        }
    return fields


def opportunity_record(data: Mapping[str, Any]) -> dict[str, Any]:
    """Writable Opportunity fields from canonical event data (the keys present in `data`)."""
    converters = {
        "name": ("Name", str),
        "account_id": ("AccountId", str),
        "stage": ("StageName", str),
        "amount": ("Amount", wire_amount),
        "currency": ("CurrencyIsoCode", str),
        "close_date": ("CloseDate", str),
        "billing_method": ("Billing_Method__c", lambda v: _to_salesforce(BILLING_METHODS, v)),
        "contract_status": ("Contract_Status__c", lambda v: _to_salesforce(APPROVAL_STATUSES, v)),
        "sow_status": ("SOW_Status__c", lambda v: _to_salesforce(APPROVAL_STATUSES, v)),
        "legal_entity": ("Legal_Entity__c", str),
        "owner": ("OwnerId", str),
        "description": ("Description", str),
    }
    return _convert(data, converters)


def account_record(data: Mapping[str, Any]) -> dict[str, Any]:
    """Writable Account fields from canonical customer event data."""
    converters = {
        "name": ("Name", str),
        "currency": ("CurrencyIsoCode", str),
        "tax_jurisdiction": ("Tax_Jurisdiction__c", str),
        "legal_entity": ("Legal_Entity__c", str),
        "validation_status": (
            "Validation_Status__c", lambda v: _to_salesforce(VALIDATION_STATUSES, v)
        ),
    }
    return _convert(data, converters)


def decimal_text(value: Any) -> str | None:
    """A Salesforce number as exact decimal text. JSON numbers may arrive as float or Decimal;
    `str` of either gives back the digits Salesforce sent."""
    return None if value is None else format(Decimal(str(value)), "f")


def wire_amount(value: Any) -> float:
    """Salesforce currency fields are doubles: refuse an amount a double cannot carry exactly."""
    exact = Decimal(str(value))
    as_double = float(exact)
    if Decimal(repr(as_double)) != exact:
        raise DataError(f"amount {value} has more digits than Salesforce keeps",
                        system="salesforce", field="amount")
    return as_double


def version(record: Mapping[str, Any]) -> str:
    """SystemModstamp (`2026-11-26T10:00:00.000+0000`) as ISO-8601 UTC with milliseconds."""
    stamp = datetime.strptime(record["SystemModstamp"], "%Y-%m-%dT%H:%M:%S.%f%z")
    return stamp.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _to_canonical(table: Mapping[str, Any], value: str | None) -> str | None:
    if value is None:
        return None
    found = table.get(value)
    return found.value if found is not None else value


def _to_salesforce(table: Mapping[str, Any], value: str | None) -> str | None:
    labels = {canonical.value: label for label, canonical in table.items()}
    return labels.get(value, value) if value is not None else None


def _convert(data: Mapping[str, Any], converters: Mapping[str, tuple[str, Any]]) -> dict[str, Any]:
    record = {}
    for key, (field, convert) in converters.items():
        if key in data:
            record[field] = None if data[key] is None else convert(data[key])
    return record
