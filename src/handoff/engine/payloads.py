"""The data of handoff's own CloudEvent types, to and from the canonical model.

One codec both ways: intake validates with it, the store keeps what it writes, controllers
read records back through it. A field that is wrong raises IntakeError naming the field.
"""

from __future__ import annotations

import enum
from datetime import UTC, date, datetime
from typing import Any, TypeVar

from handoff.domain import (
    ApprovalStatus,
    BillingMethod,
    BillingPeriod,
    Contract,
    Customer,
    Milestone,
    MilestoneProgress,
    MilestoneStatus,
    Money,
    Opportunity,
    TimeEntry,
    TimeEntryStatus,
    ValidationStatus,
)
from handoff.domain.money import MoneyError
from handoff.errors import IntakeError

OPPORTUNITY_CHANGED = "handoff.opportunity.changed"
CUSTOMER_CHANGED = "handoff.customer.changed"
MILESTONE_CHANGED = "handoff.milestone.changed"
TIME_ENTRY_CHANGED = "handoff.time_entry.changed"
EVENT_TYPES = (OPPORTUNITY_CHANGED, CUSTOMER_CHANGED, MILESTONE_CHANGED, TIME_ENTRY_CHANGED)

E = TypeVar("E", bound=enum.Enum)


def _invalid(field: str, problem: str) -> IntakeError:
    return IntakeError(f"data.{field}: {problem}", status=422, field=f"data.{field}")


def _text(data: dict[str, Any], field: str, *, required: bool = True,
          where: str = "") -> str | None:
    """`where` prefixes the field in errors when `data` is nested (`milestones[0]`)."""
    value = data.get(field)
    name = f"{where}.{field}" if where else field
    if value is None or value == "":
        if required:
            raise _invalid(name, "is required")
        return None
    if not isinstance(value, str):
        raise _invalid(name, f"must be a string, not {type(value).__name__}")
    return value


def _choice(data: dict[str, Any], field: str, kind: type[E], default: E | None = None) -> E:
    value = data.get(field)
    if value is None and default is not None:
        return default
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in kind)
        raise _invalid(field, f"{value!r} is not one of: {allowed}") from None


def _optional_date(data: dict[str, Any], field: str) -> date | None:
    return _date(data, field) if data.get(field) not in (None, "") else None


def _date(data: dict[str, Any], field: str) -> date:
    value = _text(data, field)
    try:
        return date.fromisoformat(value or "")
    except ValueError:
        raise _invalid(field, f"{value!r} is not a date (YYYY-MM-DD)") from None


def _timestamp(data: dict[str, Any], field: str) -> datetime:
    value = _text(data, field) or ""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(field, f"{value!r} is not an ISO-8601 timestamp") from None
    if parsed.tzinfo is None:
        raise _invalid(field, f"{value!r} has no time zone")
    return parsed.astimezone(UTC)


def _currency(data: dict[str, Any], field: str = "currency") -> str:
    try:
        return Money.parse("0", data.get(field)).currency
    except MoneyError as exc:
        raise _invalid(field, str(exc)) from None


def _money(data: dict[str, Any], currency: str | None = None, field: str = "amount") -> Money:
    """`field` names the amount in errors (`milestones[2].amount` for a schedule line)."""
    try:
        money = Money.parse(data.get("amount"), currency or _currency(data))
    except MoneyError as exc:
        raise _invalid(field, str(exc)) from None
    if money.is_negative:
        raise _invalid(field, f"{money.amount} is negative")
    return money


def _milestones(data: dict[str, Any], currency: str) -> tuple[Milestone, ...]:
    """The billing schedule: a list of {id, name, amount} in the deal's currency."""
    lines = data.get("milestones")
    if lines is None:
        return ()
    if not isinstance(lines, list):
        raise _invalid("milestones", "must be a list of {id, name, amount}")
    schedule: list[Milestone] = []
    for n, line in enumerate(lines):
        where = f"milestones[{n}]"
        if not isinstance(line, dict):
            raise _invalid(where, "must be an object {id, name, amount}")
        milestone_id = _text(line, "id", where=where) or ""
        if any(m.id == milestone_id for m in schedule):
            raise _invalid(f"{where}.id", f"{milestone_id!r} appears twice in the schedule")
        schedule.append(Milestone(milestone_id, _text(line, "name", where=where) or "",
                                  _money(line, currency, f"{where}.amount")))
    return tuple(schedule)


def _flag(data: dict[str, Any], field: str) -> bool:
    value = data.get(field, False)
    if not isinstance(value, bool):
        raise _invalid(field, "must be true or false")
    return value


def parse_opportunity(data: dict[str, Any]) -> Opportunity:
    amount = _money(data)
    return Opportunity(
        id=_text(data, "id") or "",
        name=_text(data, "name") or "",
        account_id=_text(data, "account_id") or "",
        stage=_text(data, "stage") or "",
        is_won=_flag(data, "is_won"),
        amount=amount,
        close_date=_date(data, "close_date"),
        billing_method=_choice(data, "billing_method", BillingMethod),
        contract=Contract(
            value=amount,
            contract_status=_choice(data, "contract_status", ApprovalStatus, ApprovalStatus.DRAFT),
            sow_status=_choice(data, "sow_status", ApprovalStatus, ApprovalStatus.DRAFT),
            milestones=_milestones(data, amount.currency),
            tax_treatment=_text(data, "tax_treatment", required=False),
            billing_period=_choice(data, "billing_period", BillingPeriod, BillingPeriod.MONTHLY),
        ),
        version=_timestamp(data, "version"),
        legal_entity=_text(data, "legal_entity", required=False),
        owner=_text(data, "owner", required=False),
        description=_text(data, "description", required=False),
        modified_by=_text(data, "modified_by", required=False),
        change_reason=_text(data, "change_reason", required=False),
    )


def opportunity_data(opp: Opportunity) -> dict[str, Any]:
    return {
        "id": opp.id, "name": opp.name, "account_id": opp.account_id, "stage": opp.stage,
        "is_won": opp.is_won, "amount": str(opp.amount.quantized()), "currency": opp.amount.currency,
        "close_date": opp.close_date.isoformat(), "billing_method": opp.billing_method.value,
        "contract_status": opp.contract.contract_status.value,
        "sow_status": opp.contract.sow_status.value, "version": opp.version.isoformat(),
        "legal_entity": opp.legal_entity, "owner": opp.owner, "description": opp.description,
        "tax_treatment": opp.contract.tax_treatment,
        "billing_period": opp.contract.billing_period.value,
        "modified_by": opp.modified_by, "change_reason": opp.change_reason,
        **({"milestones": [{"id": m.id, "name": m.name, "amount": str(m.amount.quantized())}
                           for m in opp.contract.milestones]} if opp.contract.milestones else {}),
    }


def parse_customer(data: dict[str, Any]) -> Customer:
    return Customer(
        id=_text(data, "id") or "",
        name=_text(data, "name") or "",
        currency=_currency(data),
        tax_jurisdiction=_text(data, "tax_jurisdiction", required=False),
        legal_entity=_text(data, "legal_entity", required=False),
        validation_status=_choice(data, "validation_status", ValidationStatus,
                                  ValidationStatus.UNVALIDATED),
        version=_timestamp(data, "version"),
        credit_hold=_flag(data, "credit_hold"),
    )


def customer_data(customer: Customer) -> dict[str, Any]:
    return {
        "id": customer.id, "name": customer.name, "currency": customer.currency,
        "tax_jurisdiction": customer.tax_jurisdiction, "legal_entity": customer.legal_entity,
        "validation_status": customer.validation_status.value,
        "version": customer.version.isoformat() if customer.version else None,
        "credit_hold": customer.credit_hold,
    }


def parse_milestone_progress(data: dict[str, Any]) -> MilestoneProgress:
    """`handoff.milestone.changed`: delivery's word on one milestone of one deal."""
    return MilestoneProgress(
        opportunity_id=_text(data, "opportunity_id") or "",
        milestone_id=_text(data, "id") or "",
        status=_choice(data, "status", MilestoneStatus),
        version=_timestamp(data, "version"),
        achieved_on=_optional_date(data, "achieved_on"),
        accepted_on=_optional_date(data, "accepted_on"),
    )


def milestone_progress_data(progress: MilestoneProgress) -> dict[str, Any]:
    return {
        "opportunity_id": progress.opportunity_id, "id": progress.milestone_id,
        "status": progress.status.value, "version": progress.version.isoformat(),
        "achieved_on": progress.achieved_on.isoformat() if progress.achieved_on else None,
        "accepted_on": progress.accepted_on.isoformat() if progress.accepted_on else None,
    }


def parse_time_entry(data: dict[str, Any]) -> TimeEntry:
    """`handoff.time_entry.changed`: time delivered on a deal, as the PSA recorded it."""
    rate = _money({"amount": data.get("rate"), "currency": data.get("currency")}, field="rate")
    try:
        hours = Money.parse(data.get("hours"), "KWD").amount  # up to three decimals
    except MoneyError as exc:
        raise _invalid("hours", str(exc).replace("KWD", "hours")) from None
    if hours <= 0 or hours > 24:
        raise _invalid("hours", f"{hours} is not between 0 and 24 hours a day")
    return TimeEntry(
        opportunity_id=_text(data, "opportunity_id") or "", entry_id=_text(data, "id") or "",
        work_date=_date(data, "work_date"), hours=hours, rate=rate,
        status=_choice(data, "status", TimeEntryStatus), version=_timestamp(data, "version"),
        person=_text(data, "person", required=False))


def time_entry_data(entry: TimeEntry) -> dict[str, Any]:
    return {
        "opportunity_id": entry.opportunity_id, "id": entry.entry_id,
        "work_date": entry.work_date.isoformat(), "hours": str(entry.hours),
        "rate": str(entry.rate.quantized()), "currency": entry.rate.currency,
        "status": entry.status.value, "version": entry.version.isoformat(), "person": entry.person}
