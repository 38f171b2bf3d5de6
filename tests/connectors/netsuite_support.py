"""Helpers shared by the NetSuite tests: twin control calls and canonical sample records."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from handoff.connectors import exact_json
from handoff.connectors.twin_process import TwinProcess
from handoff.domain import BillingMethod, Customer, InvoiceRequest, Milestone, Money, Project

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


def pay(twin: TwinProcess, invoice_id: str, amount: str) -> None:
    """The customer pays `amount` of the invoice: a customerPayment applied to it, as the
    person posting receipts in NetSuite would enter it."""
    with twin.control() as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        invoice = client.get(f"{RECORD_PATH}/invoice/{invoice_id}").raise_for_status().json()
        body = {"customer": {"id": invoice["entity"]["id"]}, "payment": Decimal(amount),
                "apply": {"items": [{"doc": {"id": invoice_id}, "apply": True,
                                     "amount": Decimal(amount)}]}}
        client.post(f"{RECORD_PATH}/customerPayment", content=exact_json.dumps(body),
                    headers={"Content-Type": "application/json"}).raise_for_status()


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


def an_invoice_request(amount: str = "12345.67", external_id: str = "HO-I-006A-M1",
                       line_id: str = "M1") -> InvoiceRequest:
    """A milestone billed on 10 March 2025; a negative amount asks for a credit note."""
    line = Milestone(line_id, "Kick-off workshop", Money(Decimal(amount), "USD"))
    return InvoiceRequest(external_id, "006A", line, date(2025, 3, 10))
