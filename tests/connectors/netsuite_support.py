"""Helpers shared by the NetSuite tests: twin control calls and canonical sample records."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from handoff.connectors.twin_process import TwinProcess
from handoff.domain import BillingMethod, Customer, Money, Project

RECORD_PATH = "/services/rest/record/v1"
TOKEN = "sandbox-token"


def set_faults(twin: TwinProcess, **plan: Any) -> None:
    with twin.control() as control:
        control.put("/_twin/faults", json=plan).raise_for_status()


def set_twin_settings(twin: TwinProcess, **settings: Any) -> None:
    """Twin-only behaviours, such as `omit_location_on_put`; `reset_twin` undoes them."""
    with twin.control() as control:
        control.put("/_twin/settings", json=settings).raise_for_status()


def summary(twin: TwinProcess) -> dict[str, Any]:
    with twin.control() as control:
        return control.get("/_twin/summary").raise_for_status().json()


def twin_records(twin: TwinProcess, record_type: str) -> list[dict[str, Any]]:
    with twin.control() as control:
        return control.get(f"/_twin/records/{record_type}").raise_for_status().json()["items"]


def requests_seen(twin: TwinProcess) -> int:
    with twin.control() as control:
        return control.get("/_twin/stats").raise_for_status().json().get("requests", 0)


def a_customer(**changes: Any) -> Customer:
    values: dict[str, Any] = {"id": "001A", "name": "Acme Consulting", "currency": "USD"}
    return Customer(**(values | changes))


def a_project(external_id: str = "HO-OPP-1", **changes: Any) -> Project:
    values: dict[str, Any] = {
        "external_id": external_id, "opportunity_id": "006A", "name": "Acme rollout",
        "customer_external_id": "HO-CUST-1", "value": Money(Decimal("1234567.89"), "USD"),
        "billing_method": BillingMethod.FIXED_FEE, "start_date": date(2025, 3, 1),
    }
    return Project(**(values | changes))
