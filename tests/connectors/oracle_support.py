"""What the Oracle tests share: the connector aimed at the twin (its session fixture
`oracle_twin` is in tests/conftest.py), twin control calls and canonical sample records."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from handoff.connectors.oracle import OracleConnector, OracleSettings
from handoff.connectors.oracle.twin import SANDBOX_PASSWORD, SANDBOX_TOKEN, SANDBOX_USER
from handoff.connectors.twin_process import TwinProcess
from handoff.domain import BillingMethod, Customer, InvoiceRequest, Milestone, Money, Project
from tests.connectors.twin_support import control, fresh, set_faults, summary  # noqa: F401 (re-exported)

FSCM = "/fscmRestApi/resources/11.13.18.05"
CRM = "/crmRestApi/resources/11.13.18.05"
ITEM_TYPE = "application/vnd.oracle.adf.resourceitem+json"
BUSINESS_UNITS = {"US01": "US1 Business Unit", "UK01": "UK1 Business Unit"}







def twin_records(twin: TwinProcess, resource: str) -> list[dict[str, Any]]:
    return control(twin, "GET", f"/_twin/records/{resource}")["items"]



def requests_seen(twin: TwinProcess) -> int:
    return control(twin, "GET", "/_twin/stats").get("requests", 0)


def received(twin: TwinProcess) -> list[dict[str, Any]]:
    return control(twin, "GET", "/_twin/requests")


def pay(twin: TwinProcess, invoice_id: str, amount: str) -> dict[str, Any]:
    """The customer pays `amount` of the invoice: a receipt applied to it, as the person
    posting receipts in Oracle would enter it."""
    return control(twin, "POST", "/_twin/receipts",
                   {"CustomerTransactionId": int(invoice_id), "Amount": amount})


def api(twin: TwinProcess, framework: int = 4, **headers: str) -> httpx.Client:
    """A raw HTTP client signed in with the twin's bearer token: Oracle's wire format, unwrapped."""
    return httpx.Client(base_url=twin.base_url, timeout=10.0, headers={
        "Authorization": f"Bearer {SANDBOX_TOKEN}", "Accept": "application/json",
        "REST-Framework-Version": str(framework), **headers})


def settings_for(twin: TwinProcess, **overrides: Any) -> OracleSettings:
    values: dict[str, Any] = {"base_url": twin.base_url, "user": SANDBOX_USER,
                              "password": SANDBOX_PASSWORD, "business_units": BUSINESS_UNITS,
                              "timeout": 5.0}
    return OracleSettings(**(values | overrides))


def connector(twin: TwinProcess, **overrides: Any) -> OracleConnector:
    return OracleConnector(settings_for(twin, **overrides))


def a_customer(**changes: Any) -> Customer:
    values: dict[str, Any] = {"id": "001A", "name": "Acme Consulting", "currency": "USD"}
    return Customer(**(values | changes))


def a_project(external_id: str = "HO-P-006A", **changes: Any) -> Project:
    values: dict[str, Any] = {
        "external_id": external_id, "opportunity_id": "006A", "name": "Acme rollout",
        "customer_external_id": "HO-C-001A", "value": Money(Decimal("1234567.89"), "USD"),
        "billing_method": BillingMethod.FIXED_FEE, "start_date": date(2025, 3, 1),
    }
    return Project(**(values | changes))


def an_invoice_request(amount: str = "12345.67", external_id: str = "HO-I-006A-M1",
                       line_id: str = "M1", **changes: Any) -> InvoiceRequest:
    """A milestone billed on 10 March 2025; a negative amount asks for a credit note."""
    line = Milestone(line_id, "Kick-off workshop", Money(Decimal(amount), "USD"))
    return InvoiceRequest(external_id, "006A", line, date(2025, 3, 10), **changes)
