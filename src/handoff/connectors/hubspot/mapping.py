"""HubSpot deals and companies ↔ the `data` of handoff's canonical CloudEvents. Pure functions.

A HubSpot object is `{"id": "512", "properties": {"dealname": "…", "amount": "1000", …}}`;
every property value is a string (or null). The canonical data has exactly the keys the
Salesforce mapping produces, so the flows cannot tell the CRMs apart.

Enumeration values are read by their internal value or their label ("Time and Materials",
"time_and_materials"); handoff writes its own values, so the portal's options should use
them as internal values (docs/connectors/hubspot.md). A value handoff does not know passes
through unchanged so canonical validation refuses that one record with the field named,
instead of failing a feed. Amounts stay exact decimal text; no float is ever involved.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from handoff.connectors.hubspot.settings import DEFAULT_PROPERTIES, PropertyNames
from handoff.connectors.ports import CrmStatusUpdate, DealFigures
from handoff.connectors.values import exact_amount, finite_decimal, text_of, to_canonical
from handoff.domain import ApprovalStatus, BillingMethod, ValidationStatus
from handoff.errors import DataError

SYSTEM = "hubspot"
TEXT_LIMIT = 65_536  # characters a HubSpot string property holds (unconfirmed)
MODIFIED = "hs_lastmodifieddate"
OBJECT_ID = "hs_object_id"
DEAL_TO_PRIMARY_COMPANY = 5  # association type ids (HUBSPOT_DEFINED)
DEAL_TO_COMPANY = 341

# Standard properties, the same in every portal.
DEAL_STANDARD = (
    "dealname", "amount", "dealstage", "pipeline", "closedate", "hubspot_owner_id",
    "description", "hs_updated_by_user_id", MODIFIED, OBJECT_ID,
)
COMPANY_STANDARD = ("name", MODIFIED, OBJECT_ID)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


# --- which properties to ask for --------------------------------------------------------------

def deal_properties_to_read(props: PropertyNames = DEFAULT_PROPERTIES) -> list[str]:
    """Everything `opportunity_event_data` needs."""
    return _unique(DEAL_STANDARD + (props.currency, props.billing_method, props.contract_status,
                                    props.sow_status, props.legal_entity))


def write_back_properties(props: PropertyNames = DEFAULT_PROPERTIES) -> list[str]:
    return [props.project_id, props.status, props.status_detail, props.invoiced_amount,
            props.paid_amount, props.open_balance, props.days_overdue, props.invoice_numbers,
            props.billing_status]


def figure_properties(props: PropertyNames = DEFAULT_PROPERTIES) -> list[str]:
    """What reconciliation compares: the sale, its approvals and the billing written back."""
    return _unique((OBJECT_ID, "amount", "dealstage", props.currency, props.contract_status,
                    props.sow_status, props.invoiced_amount, props.paid_amount))


def company_properties_to_read(props: PropertyNames = DEFAULT_PROPERTIES) -> list[str]:
    return _unique(COMPANY_STANDARD + (props.company_currency, props.tax_jurisdiction,
                                       props.company_legal_entity, props.validation_status))


# --- HubSpot → canonical ----------------------------------------------------------------------

def opportunity_event_data(record: Mapping[str, Any], account_id: str | None,
                           won_stages: Iterable[str],
                           props: PropertyNames = DEFAULT_PROPERTIES) -> dict[str, Any]:
    """A deal as `handoff.opportunity.changed` data. `account_id` is the id of the deal's
    (primary) associated company: associations are not properties, the caller reads them."""
    p = record.get("properties") or {}
    stage = text_of(p, "dealstage")
    return {
        "id": str(record["id"]),
        "name": text_of(p, "dealname"),
        "account_id": account_id,
        "stage": stage,
        "is_won": stage is not None and stage in set(won_stages),
        "amount": decimal_text(p.get("amount")),
        "currency": text_of(p, props.currency),
        "close_date": date_text(p.get("closedate")),
        "billing_method": to_canonical(BillingMethod, text_of(p, props.billing_method)),
        "contract_status": to_canonical(ApprovalStatus, text_of(p, props.contract_status)),
        "sow_status": to_canonical(ApprovalStatus, text_of(p, props.sow_status)),
        "legal_entity": text_of(p, props.legal_entity),
        "owner": text_of(p, "hubspot_owner_id"),
        "description": text_of(p, "description"),
        "modified_by": text_of(p, "hs_updated_by_user_id"),  # an amendment's requester
        "version": version(record),
    }


def customer_event_data(record: Mapping[str, Any],
                        props: PropertyNames = DEFAULT_PROPERTIES) -> dict[str, Any]:
    """A company as `handoff.customer.changed` data."""
    p = record.get("properties") or {}
    validation = text_of(p, props.validation_status) or ValidationStatus.UNVALIDATED.value
    return {
        "id": str(record["id"]),
        "name": text_of(p, "name"),
        "currency": text_of(p, props.company_currency),
        "tax_jurisdiction": text_of(p, props.tax_jurisdiction),
        "legal_entity": text_of(p, props.company_legal_entity),
        "validation_status": to_canonical(ValidationStatus, validation),
        "version": version(record),
    }


def deal_figures(record: Mapping[str, Any], won_stages: Iterable[str],
                 props: PropertyNames = DEFAULT_PROPERTIES) -> DealFigures:
    p = record.get("properties") or {}
    stage = text_of(p, "dealstage")
    return DealFigures(
        deal_id=str(record["id"]), currency=text_of(p, props.currency),
        sold_value=_decimal(p, "amount"), is_won=stage is not None and stage in set(won_stages),
        contract_status=to_canonical(ApprovalStatus, text_of(p, props.contract_status)),
        sow_status=to_canonical(ApprovalStatus, text_of(p, props.sow_status)),
        invoiced=_decimal(p, props.invoiced_amount), paid=_decimal(p, props.paid_amount))


def primary_company(associations: Iterable[Mapping[str, Any]]) -> str | None:
    """The company a deal belongs to, from v4 association results (`toObjectId`,
    `associationTypes`): the one labelled primary (type 5), else the lowest id."""
    found: list[tuple[bool, int, str]] = []
    for target in associations:
        to_id = str(target.get("toObjectId") or target.get("to_object_id") or "")
        if not to_id:
            continue
        types = target.get("associationTypes") or target.get("association_types") or []
        primary = any(int(_get(t, "typeId", "type_id") or 0) == DEAL_TO_PRIMARY_COMPANY
                      for t in types)
        found.append((not primary, int(to_id) if to_id.isdigit() else 0, to_id))
    return min(found)[2] if found else None



def won_stages_from_pipelines(pipelines: Iterable[Mapping[str, Any]]) -> frozenset[str]:
    """Stage ids of every deal pipeline that are closed with probability 1 (won). Metadata
    values are strings in the payloads seen ("true", "1.0"); booleans and numbers work too."""
    won = set()
    for pipeline in pipelines:
        for stage in pipeline.get("stages") or ():
            metadata = stage.get("metadata") or {}
            closed = str(metadata.get("isClosed", "")).strip().lower() == "true"
            try:
                certain = Decimal(str(metadata.get("probability"))) == 1
            except InvalidOperation:
                certain = False
            if closed and certain:
                won.add(str(stage["id"]))
    return frozenset(won)


# --- canonical → HubSpot ----------------------------------------------------------------------

def write_back_fields(update: CrmStatusUpdate,
                      props: PropertyNames = DEFAULT_PROPERTIES) -> dict[str, str]:
    """The deal properties that show where provisioning stands (no project id clears it: an
    empty string clears a HubSpot value) and, once the deal has invoices, what is billed, paid
    and open, how late, and the invoice numbers. Amounts are exact decimal text in the deal's
    currency."""
    fields = {
        props.project_id: update.project_id or "",
        props.status: update.status.value,
        props.status_detail: update.detail[:TEXT_LIMIT],
    }
    if billing := update.billing:
        fields |= {
            props.invoiced_amount: _plain(billing.invoiced.quantized()),
            props.paid_amount: _plain(billing.paid.quantized()),
            props.open_balance: _plain(billing.open_balance.quantized()),
            props.days_overdue: str(int(billing.days_overdue)),
            props.invoice_numbers: ", ".join(billing.invoice_numbers)[:TEXT_LIMIT],
            props.billing_status: billing.describe()[:TEXT_LIMIT],
        }
    return fields


def deal_properties(data: Mapping[str, Any],
                    props: PropertyNames = DEFAULT_PROPERTIES) -> dict[str, str]:
    """Writable deal properties from canonical event data (the keys present in `data`; None
    clears). `account_id` is no property: pass it to the connector as the deal's company."""
    converters = {
        "name": ("dealname", str),
        "stage": ("dealstage", str),
        "amount": ("amount", wire_amount),
        "currency": (props.currency, str),
        "close_date": ("closedate", wire_date),
        "billing_method": (props.billing_method, str),
        "contract_status": (props.contract_status, str),
        "sow_status": (props.sow_status, str),
        "legal_entity": (props.legal_entity, str),
        "owner": ("hubspot_owner_id", str),
        "description": ("description", str),
    }
    return _convert(data, converters)


def company_properties(data: Mapping[str, Any],
                       props: PropertyNames = DEFAULT_PROPERTIES) -> dict[str, str]:
    """Writable company properties from canonical customer event data."""
    converters = {
        "name": ("name", str),
        "currency": (props.company_currency, str),
        "tax_jurisdiction": (props.tax_jurisdiction, str),
        "legal_entity": (props.company_legal_entity, str),
        "validation_status": (props.validation_status, str),
    }
    return _convert(data, converters)


# --- values -----------------------------------------------------------------------------------

def decimal_text(value: Any) -> str | None:
    """A HubSpot number as exact decimal text; text that is no number passes through."""
    if value is None or value == "":
        return None
    number = finite_decimal(value)
    return str(value) if number is None else _plain(number)


def wire_amount(value: Any) -> str:
    """An amount as HubSpot takes it: exact decimal text (never a float's digits)."""
    return _plain(exact_amount(value, SYSTEM))


def wire_date(value: Any) -> str:
    """A calendar date as HubSpot's date/datetime properties take it: midnight UTC in ms."""
    day = value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
    return str(ms_epoch(datetime(day.year, day.month, day.day, tzinfo=UTC)))


def date_text(value: Any) -> str | None:
    """`closedate` (ISO datetime, ISO date or ms since the epoch) as `YYYY-MM-DD`, the UTC
    day. Text that is no date passes through for canonical validation to name."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    if _DATE.match(text):
        return text
    try:
        return parse_timestamp(text).date().isoformat()
    except ValueError:
        return text


def version(record: Mapping[str, Any]) -> str:
    """`hs_lastmodifieddate` (else `updatedAt`) as ISO-8601 UTC with milliseconds."""
    stamp = (record.get("properties") or {}).get(MODIFIED) or record.get("updatedAt")
    if stamp is None:
        raise DataError("the record has no modification date", system=SYSTEM, field=MODIFIED)
    return iso_millis(parse_timestamp(stamp))


def parse_timestamp(value: Any) -> datetime:
    """A HubSpot moment: ISO-8601 text, milliseconds since the epoch, or a datetime."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        if text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso_millis(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ms_epoch(moment: datetime) -> int:
    """Milliseconds since the epoch, floored: search filters compare in ms."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime is ambiguous; give a timezone")
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000




# --- helpers ----------------------------------------------------------------------------------



def _decimal(properties: Mapping[str, Any], name: str) -> Decimal | None:
    value = text_of(properties, name)
    if value is None:
        return None
    try:
        return Decimal(value.strip())
    except InvalidOperation:
        raise DataError(f"{name} = {value!r} is not a number", system=SYSTEM, field=name) from None


def _plain(number: Decimal) -> str:
    return format(number, "f")


def _get(mapping: Any, *names: str) -> Any:
    for name in names:
        value = mapping.get(name) if isinstance(mapping, Mapping) else getattr(mapping, name, None)
        if value is not None:
            return value
    return None


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def _convert(data: Mapping[str, Any], converters: Mapping[str, tuple[str, Any]]) -> dict[str, str]:
    record = {}
    for key, (prop, convert) in converters.items():
        if key in data:
            record[prop] = "" if data[key] is None else convert(data[key])
    return record
