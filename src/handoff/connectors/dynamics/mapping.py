"""Dataverse opportunities and accounts ↔ the `data` of handoff's canonical CloudEvents. Pure
functions.

A Dataverse row is the Web API's JSON: `{"@odata.etag": "W/\"4711\"", "opportunityid": "…",
"name": "…", "estimatedvalue": 1000.1, "_parentaccountid_value": "…", …}`, read with
`Prefer: odata.include-annotations="*"` so choice columns come with their labels
(`statuscode@OData.Community.Display.V1.FormattedValue`) and lookups with the table they point
to (`…@Microsoft.Dynamics.CRM.lookuplogicalname`). Numbers are parsed as Decimal (`loads`), so
money never passes through a float; `dumps` writes Decimals digit for digit. The canonical
data has exactly the keys the Salesforce mapping produces, so the flows cannot tell the CRMs
apart.

A currency is a lookup to `transactioncurrencies`; the caller passes the GUID → ISO code table.
Choice columns are read by their label ("Time and Materials") or, for text columns, by their
value ("time_and_materials"); a value handoff does not know passes through unchanged so
canonical validation refuses that one record with the field named, instead of failing a feed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from handoff.connectors.dynamics.settings import DEFAULT_COLUMNS, ColumnNames
from handoff.connectors.exact_json import dumps, loads  # noqa: F401 (the client reads them here)
from handoff.connectors.ports import CrmStatusUpdate, DealFigures
from handoff.connectors.values import exact_amount, finite_decimal, text_of, to_canonical
from handoff.domain import ApprovalStatus, BillingMethod, ValidationStatus
from handoff.errors import DataError

SYSTEM = "dynamics"
TEXT_LIMIT = 2000  # characters of a multiple-lines-of-text column as the maker portal creates it
MODIFIED = "modifiedon"
FORMATTED = "@OData.Community.Display.V1.FormattedValue"
LOOKUP_TABLE = "@Microsoft.Dynamics.CRM.lookuplogicalname"

OPPORTUNITIES, ACCOUNTS, CURRENCIES = "opportunities", "accounts", "transactioncurrencies"
OPPORTUNITY_ID, ACCOUNT_ID, CURRENCY_ID = "opportunityid", "accountid", "transactioncurrencyid"

# Opportunity statecode and statuscode (the status reason belongs to one state).
STATE_OPEN, STATE_WON, STATE_LOST = 0, 1, 2
STATUS_LABELS = {1: "In Progress", 2: "On Hold", 3: "Won", 4: "Canceled", 5: "Out-Sold"}

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_ENTITY_ID = re.compile(r"\(([0-9a-fA-F-]{36})\)\s*\Z")


# --- which columns to ask for ---------------------------------------------------------------

def opportunity_columns_to_read(cols: ColumnNames = DEFAULT_COLUMNS) -> list[str]:
    """Everything `opportunity_event_data` needs (lookups in their `_x_value` form)."""
    return _unique((OPPORTUNITY_ID, "name", "_parentaccountid_value", "_customerid_value",
                    "statecode", "statuscode", cols.amount, "_transactioncurrencyid_value",
                    cols.close_date, cols.billing_method, cols.contract_status, cols.sow_status,
                    cols.legal_entity, "_ownerid_value", "description", "_modifiedby_value",
                    MODIFIED))


def write_back_columns(cols: ColumnNames = DEFAULT_COLUMNS) -> list[str]:
    return [cols.project_id, cols.status, cols.status_detail, cols.invoiced_amount,
            cols.paid_amount, cols.open_balance, cols.days_overdue, cols.invoice_numbers,
            cols.billing_status]


def figure_columns(cols: ColumnNames = DEFAULT_COLUMNS) -> list[str]:
    """What reconciliation compares: the sale, its approvals and the billing written back."""
    return _unique((OPPORTUNITY_ID, cols.amount, "_transactioncurrencyid_value", "statecode",
                    cols.contract_status, cols.sow_status, cols.invoiced_amount, cols.paid_amount))


def account_columns_to_read(cols: ColumnNames = DEFAULT_COLUMNS) -> list[str]:
    return _unique((ACCOUNT_ID, "name", "_transactioncurrencyid_value", cols.tax_jurisdiction,
                    cols.account_legal_entity, cols.validation_status, MODIFIED))


# --- Dataverse → canonical ------------------------------------------------------------------

def opportunity_event_data(record: Mapping[str, Any], currencies: Mapping[str, str],
                           cols: ColumnNames = DEFAULT_COLUMNS) -> dict[str, Any]:
    """An opportunity as `handoff.opportunity.changed` data. `currencies` maps
    transactioncurrency ids to ISO codes."""
    return {
        "id": str(record[OPPORTUNITY_ID]),
        "name": text_of(record, "name"),
        "account_id": account_of(record),
        "stage": stage(record),
        "is_won": is_won(record),
        "amount": money_text(record.get(cols.amount)),
        "currency": currency_of(record, currencies),
        "close_date": date_text(record.get(cols.close_date)),
        "billing_method": to_canonical(BillingMethod, choice_text(record, cols.billing_method)),
        "contract_status": to_canonical(ApprovalStatus, choice_text(record, cols.contract_status)),
        "sow_status": to_canonical(ApprovalStatus, choice_text(record, cols.sow_status)),
        "legal_entity": text_of(record, cols.legal_entity),
        "owner": text_of(record, "_ownerid_value"),
        "description": text_of(record, "description"),
        "modified_by": text_of(record, "_modifiedby_value"),  # an amendment's requester
        "version": version(record),
    }


def customer_event_data(record: Mapping[str, Any], currencies: Mapping[str, str],
                        cols: ColumnNames = DEFAULT_COLUMNS) -> dict[str, Any]:
    """An account as `handoff.customer.changed` data."""
    validation = choice_text(record, cols.validation_status) or ValidationStatus.UNVALIDATED.value
    return {
        "id": str(record[ACCOUNT_ID]),
        "name": text_of(record, "name"),
        "currency": currency_of(record, currencies),
        "tax_jurisdiction": text_of(record, cols.tax_jurisdiction),
        "legal_entity": text_of(record, cols.account_legal_entity),
        "validation_status": to_canonical(ValidationStatus, validation),
        "version": version(record),
    }


def deal_figures(record: Mapping[str, Any], currencies: Mapping[str, str],
                 cols: ColumnNames = DEFAULT_COLUMNS) -> DealFigures:
    return DealFigures(
        deal_id=str(record[OPPORTUNITY_ID]), currency=currency_of(record, currencies),
        sold_value=_decimal(record, cols.amount), is_won=is_won(record),
        contract_status=to_canonical(ApprovalStatus, choice_text(record, cols.contract_status)),
        sow_status=to_canonical(ApprovalStatus, choice_text(record, cols.sow_status)),
        invoiced=_decimal(record, cols.invoiced_amount), paid=_decimal(record, cols.paid_amount))


def account_of(record: Mapping[str, Any]) -> str | None:
    """The opportunity's account: `parentaccountid`, else `customerid` when it is an account
    (a polymorphic lookup that may name a contact)."""
    parent = text_of(record, "_parentaccountid_value")
    if parent:
        return parent
    customer = text_of(record, "_customerid_value")
    table = record.get("_customerid_value" + LOOKUP_TABLE)
    return customer if customer and table in (None, "account") else None


def is_won(record: Mapping[str, Any]) -> bool:
    return _int(record.get("statecode")) == STATE_WON


def stage(record: Mapping[str, Any]) -> str | None:
    """The status reason's label ("In Progress", "Won", "Out-Sold"): what the record shows."""
    label = record.get("statuscode" + FORMATTED)
    if label:
        return str(label)
    status = _int(record.get("statuscode"))
    return STATUS_LABELS.get(status, str(status)) if status is not None else None


def currency_of(record: Mapping[str, Any], currencies: Mapping[str, str]) -> str | None:
    currency_id = text_of(record, "_transactioncurrencyid_value")
    return currencies.get(currency_id.lower()) if currency_id else None


def choice_text(record: Mapping[str, Any], column: str) -> str | None:
    """A choice column's label (its integer value when no label came), or a text column's text."""
    value = record.get(column)
    if isinstance(value, int) and not isinstance(value, bool):
        label = record.get(column + FORMATTED)
        return str(label) if label else str(value)
    return text_of(record, column)


# --- canonical → Dataverse ------------------------------------------------------------------

def write_back_fields(update: CrmStatusUpdate, cols: ColumnNames = DEFAULT_COLUMNS) -> dict[str, Any]:
    """The opportunity columns that show where provisioning stands (no project id clears it:
    null clears a Dataverse column) and, once the deal has invoices, what is billed, paid and
    open (Currency columns, exact Decimals written as JSON numbers), how late (a whole
    number), and the invoice numbers."""
    fields: dict[str, Any] = {
        cols.project_id: update.project_id or None,
        cols.status: update.status.value,
        cols.status_detail: update.detail[:TEXT_LIMIT],
    }
    if billing := update.billing:
        fields |= {
            cols.invoiced_amount: billing.invoiced.quantized(),
            cols.paid_amount: billing.paid.quantized(),
            cols.open_balance: billing.open_balance.quantized(),
            cols.days_overdue: int(billing.days_overdue),
            cols.invoice_numbers: ", ".join(billing.invoice_numbers)[:TEXT_LIMIT],
            cols.billing_status: billing.describe()[:TEXT_LIMIT],
        }
    return fields


def opportunity_columns(data: Mapping[str, Any], currency_ids: Mapping[str, str] | None = None,
                        cols: ColumnNames = DEFAULT_COLUMNS) -> dict[str, Any]:
    """Writable opportunity columns from canonical event data (the keys present in `data`;
    None clears). `account_id` binds both the account and the potential customer; `currency`
    binds the transactioncurrency of that ISO code (`currency_ids`: code → id). `stage` and
    `is_won` are no columns: an opportunity is won with the WinOpportunity action."""
    converters = {
        "name": ("name", str),
        "amount": (cols.amount, wire_amount),
        "close_date": (cols.close_date, wire_date),
        "billing_method": (cols.billing_method, str),
        "contract_status": (cols.contract_status, str),
        "sow_status": (cols.sow_status, str),
        "legal_entity": (cols.legal_entity, str),
        "description": ("description", str),
    }
    record = _convert(data, converters)
    if data.get("account_id"):
        account = f"/{ACCOUNTS}({checked_guid(data['account_id'], 'account_id')})"
        record |= {"parentaccountid@odata.bind": account, "customerid_account@odata.bind": account}
    if data.get("currency"):
        record |= _currency_bind(str(data["currency"]), currency_ids)
    return record


def account_columns(data: Mapping[str, Any], currency_ids: Mapping[str, str] | None = None,
                    cols: ColumnNames = DEFAULT_COLUMNS) -> dict[str, Any]:
    """Writable account columns from canonical customer event data."""
    converters = {
        "name": ("name", str),
        "tax_jurisdiction": (cols.tax_jurisdiction, str),
        "legal_entity": (cols.account_legal_entity, str),
        "validation_status": (cols.validation_status, str),
    }
    record = _convert(data, converters)
    if data.get("currency"):
        record |= _currency_bind(str(data["currency"]), currency_ids)
    return record


def _currency_bind(code: str, currency_ids: Mapping[str, str] | None) -> dict[str, str]:
    currency_id = (currency_ids or {}).get(code.upper())
    if currency_id is None:
        raise DataError(f"currency {code!r} is not a transaction currency of the environment",
                        system=SYSTEM, field="currency")
    return {"transactioncurrencyid@odata.bind": f"/{CURRENCIES}({currency_id})"}


# --- addressing -----------------------------------------------------------------------------

def is_guid(value: Any) -> bool:
    return isinstance(value, str) and bool(_GUID.match(value))


def checked_guid(value: Any, field: str) -> str:
    """A row id as it may go into a URL; anything else is the record's fault."""
    if not is_guid(value):
        raise DataError(f"{value!r} is not a Dataverse row id (a GUID)", system=SYSTEM, field=field)
    return str(value).lower()


def key_segment(column: str, value: str) -> str:
    """An alternate-key segment, `handoff_key='O''Brien%20%26%20Co'`: single quotes doubled
    (OData string literals), then percent-encoded for the path."""
    literal = "'" + str(value).replace("'", "''") + "'"
    return f"{column}={quote(literal, safe=chr(39))}"


def entity_id(header: str | None) -> str | None:
    """The row id at the end of an `OData-EntityId` (or `Location`) header."""
    match = _ENTITY_ID.search(header or "")
    return match.group(1).lower() if match else None


def odata_datetime(moment: datetime) -> str:
    """A `$filter` DateTimeOffset literal. Dataverse keeps `modifiedon` in whole seconds:
    flooring `since` re-reads at most a second of changes and never misses one."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime is ambiguous; give a timezone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- values ---------------------------------------------------------------------------------

def money_text(value: Any) -> str | None:
    """A Currency or Decimal value as exact decimal text, the zeros Dataverse pads with
    dropped (`5000000.0000` → "5000000", `1000.1000` → "1000.1": a currency's minor units are
    canonical validation's business); text that is no number passes through."""
    if value is None or value == "":
        return None
    number = finite_decimal(value)
    if number is None:
        return str(value)
    return format(number.normalize() if number else Decimal(0), "f")


def wire_amount(value: Any) -> Decimal:
    """An amount as a Currency column takes it: an exact Decimal (never a float's digits)."""
    return exact_amount(value, SYSTEM)


def wire_date(value: Any) -> str:
    """A calendar date as a Date-only column takes it: `YYYY-MM-DD`."""
    day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    return day.isoformat()


def date_text(value: Any) -> str | None:
    """A Date-only value (`2026-11-26`; a date-and-time value's UTC day) as `YYYY-MM-DD`.
    Text that is no date passes through for canonical validation to name."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text).isoformat()
        return parse_timestamp(text).date().isoformat()
    except ValueError:
        return text


def version(record: Mapping[str, Any]) -> str:
    """`modifiedon` as ISO-8601 UTC with milliseconds (always .000: Dataverse keeps seconds)."""
    stamp = record.get(MODIFIED)
    if not stamp:
        raise DataError("the record has no modification date", system=SYSTEM, field=MODIFIED)
    try:
        return iso_millis(parse_timestamp(stamp))
    except ValueError:
        raise DataError(f"modifiedon = {stamp!r} is not a moment", system=SYSTEM, field=MODIFIED) from None


def parse_timestamp(value: Any) -> datetime:
    """A Dataverse moment: ISO-8601 text (`2026-11-26T10:00:00Z`) or a datetime."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso_millis(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")






# --- helpers --------------------------------------------------------------------------------



def _int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _decimal(record: Mapping[str, Any], name: str) -> Decimal | None:
    value = record.get(name)
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value).strip())
    except InvalidOperation:
        raise DataError(f"{name} = {value!r} is not a number", system=SYSTEM, field=name) from None


def _unique(names: tuple[str, ...]) -> list[str]:
    return list(dict.fromkeys(names))


def _convert(data: Mapping[str, Any], converters: Mapping[str, tuple[str, Any]]) -> dict[str, Any]:
    record = {}
    for key, (column, convert) in converters.items():
        if key in data:
            record[column] = None if data[key] is None else convert(data[key])
    return record
