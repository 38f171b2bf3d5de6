"""Builders for canonical event data and CloudEvents used across the tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from handoff.engine.payloads import (
    CUSTOMER_CHANGED,
    MILESTONE_CHANGED,
    OPPORTUNITY_CHANGED,
    TIME_ENTRY_CHANGED,
)

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def stamp(minutes: int = 0) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


def opportunity_data(opp_id: str = "006000000000001AAA", account_id: str = "001000000000001AAA",
                     minutes: int = 0, **overrides: Any) -> dict[str, Any]:
    data = {
        "id": opp_id, "name": f"Deal {opp_id[-6:]}", "account_id": account_id,
        "stage": "Closed Won", "is_won": True, "amount": "120000.00", "currency": "USD",
        "close_date": "2026-11-01", "billing_method": "fixed_fee",
        "contract_status": "approved", "sow_status": "approved", "legal_entity": "US01",
        "owner": "005000000000001AAA", "description": None, "version": stamp(minutes),
    }
    data.update(overrides)
    return data


def customer_data(account_id: str = "001000000000001AAA", minutes: int = 0,
                  **overrides: Any) -> dict[str, Any]:
    data = {
        "id": account_id, "name": f"Customer {account_id[-6:]}", "currency": "USD",
        "tax_jurisdiction": "US-CA", "legal_entity": "US01", "validation_status": "valid",
        "version": stamp(minutes),
    }
    data.update(overrides)
    return data


def event(data: dict[str, Any], *, kind: str = OPPORTUNITY_CHANGED, event_id: str | None = None,
          source: str = "/crm/salesforce") -> dict[str, Any]:
    return {
        "specversion": "1.0", "id": event_id or uuid.uuid4().hex, "source": source,
        "type": kind, "subject": data["id"], "datacontenttype": "application/json",
        "data": data,
    }


def customer_event(data: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return event(data, kind=CUSTOMER_CHANGED, source="/mdm", **kw)


SCHEDULE = [{"id": "M1", "name": "Discovery", "amount": "30000.00"},
            {"id": "M2", "name": "Build", "amount": "60000.00"},
            {"id": "M3", "name": "Go-live", "amount": "30000.00"}]


def milestone_data(opp_id: str, milestone_id: str, status: str = "achieved", minutes: int = 0,
                   **overrides: Any) -> dict[str, Any]:
    data = {"opportunity_id": opp_id, "id": milestone_id, "status": status,
            "achieved_on": "2026-11-20" if status != "planned" else None,
            "accepted_on": "2026-11-25" if status == "accepted" else None,
            "version": stamp(minutes)}
    data.update(overrides)
    return data


def milestone_event(data: dict[str, Any], **kw: Any) -> dict[str, Any]:
    envelope = event(data, kind=MILESTONE_CHANGED, source="/psa/delivery", **kw)
    return envelope | {"subject": f"{data['opportunity_id']}/{data['id']}"}


def time_entry_data(opp_id: str, entry_id: str, work_date: str, hours: str = "8",
                    status: str = "approved", minutes: int = 0, **overrides: Any) -> dict[str, Any]:
    data = {"opportunity_id": opp_id, "id": entry_id, "work_date": work_date, "hours": hours,
            "rate": "150.00", "currency": "USD", "status": status, "person": "consultant-1",
            "version": stamp(minutes)}
    data.update(overrides)
    return data


def time_entry_event(data: dict[str, Any], **kw: Any) -> dict[str, Any]:
    envelope = event(data, kind=TIME_ENTRY_CHANGED, source="/psa/time", **kw)
    return envelope | {"subject": f"{data['opportunity_id']}/{data['id']}"}
