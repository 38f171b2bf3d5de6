"""What the SAP tests share: the connector's settings aimed at the twin (its session fixture
`sap_twin` is in tests/conftest.py), raw OData clients, twin control calls and canonical
sample records."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from handoff.connectors.sap import Organization, SapConnector, SapSettings
from handoff.connectors.sap.twin import SANDBOX_PASSWORD, SANDBOX_USER
from handoff.connectors.twin_process import TwinProcess
from handoff.domain import BillingMethod, Customer, Milestone, Money, Project
from tests.connectors.twin_support import control, fresh, set_faults, set_twin, summary  # noqa: F401 (re-exported)

ODATA = "/sap/opu/odata/sap"
BP = f"{ODATA}/API_BUSINESS_PARTNER"
PROJECTS = f"{ODATA}/API_ENTERPRISE_PROJECT_SRV;v=0002"
BILLING = f"{ODATA}/API_BILLING_DOCUMENT_SRV"
OPEN_ITEMS = f"{ODATA}/API_OPLACCTGDOCITEMCUBE_SRV"

ORGANIZATIONS = {
    "US01": Organization(company_code="1710", cost_center="17101101", profit_center="YB600",
                         sales_organization="1710", payment_terms="0004"),
    "DE01": Organization(company_code="1010", cost_center="10101101", profit_center="YB101"),
}








def twin_records(twin: TwinProcess, entity_set: str) -> list[dict[str, Any]]:
    return control(twin, "GET", f"/_twin/records/{entity_set}")["items"]



def requests_seen(twin: TwinProcess) -> list[dict[str, Any]]:
    """What the twin received, oldest first: method, path, query, trace headers, fault."""
    return control(twin, "GET", "/_twin/requests")


def forget_requests(twin: TwinProcess) -> None:
    control(twin, "DELETE", "/_twin/requests")


def calls(twin: TwinProcess) -> list[str]:
    """`METHOD <entity set or segment>` of every request since the log was last forgotten."""
    return [f"{r['method']} {r['path'].rsplit('/', 1)[-1]}" for r in requests_seen(twin)]


def bill(twin: TwinProcess, project: str, net: str, **options: Any) -> dict[str, Any]:
    """A billing document as SAP's billing run would make it for the project."""
    return control(twin, "POST", "/_twin/billing-documents",
                   {"project": project, "net_amount": net, **options})["d"]


def pay(twin: TwinProcess, document: str, amount: str, on: str | None = None) -> dict[str, Any]:
    body = {"amount": amount} | ({"date": on} if on else {})
    return control(twin, "POST", f"/_twin/billing-documents/{document}/payments", body)["d"]


def cancel(twin: TwinProcess, document: str) -> dict[str, Any]:
    return control(twin, "POST", f"/_twin/billing-documents/{document}/cancellation", {})["d"]


def api(twin: TwinProcess, user: str = SANDBOX_USER, password: str = SANDBOX_PASSWORD) -> httpx.Client:
    """A raw HTTP client with the twin's Basic credentials: SAP's wire format, unwrapped."""
    return httpx.Client(base_url=twin.base_url, timeout=10.0, auth=(user, password),
                        headers={"Accept": "application/json"})


def settings_for(twin: TwinProcess, **overrides: Any) -> SapSettings:
    values: dict[str, Any] = {"base_url": twin.base_url, "user": SANDBOX_USER, "password": SANDBOX_PASSWORD,
                              "organizations": ORGANIZATIONS, "default_legal_entity": "US01", "timeout": 10.0}
    return SapSettings(**(values | overrides))


def connector(twin: TwinProcess, **overrides: Any) -> SapConnector:
    return SapConnector(settings_for(twin, **overrides))


def a_customer(**changes: Any) -> Customer:
    values: dict[str, Any] = {"id": "001A", "name": "Acme Consulting", "currency": "USD"}
    return Customer(**(values | changes))


def a_project(external_id: str = "HO-P-006A", **changes: Any) -> Project:
    values: dict[str, Any] = {
        "external_id": external_id, "opportunity_id": "006A", "name": "Acme rollout",
        "customer_external_id": "HO-C-001A", "value": Money(Decimal("1234567.89"), "USD"),
        "billing_method": BillingMethod.MILESTONE, "start_date": date(2025, 3, 1),
        "milestones": (Milestone("M1", "Kick-off workshop", Money(Decimal("234567.89"), "USD")),
                       Milestone("M2", "Go-live", Money(Decimal("1000000.00"), "USD"))),
    }
    return Project(**(values | changes))
