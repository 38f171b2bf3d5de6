"""What the SAP tests share: the twin in its own process (a session fixture), the connector's
settings aimed at it, raw OData clients, twin control calls and canonical sample records.

The twin is started here with uvicorn's own command line, because twin_process.TWINS does not
list it yet; once it does, `TwinProcess("sap", tls_dir)` replaces `SapTwinProcess`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx

from handoff.connectors.children import dies_with_parent
from handoff.connectors.sap import Organization, SapConnector, SapSettings
from handoff.connectors.sap.twin import SANDBOX_PASSWORD, SANDBOX_USER
from handoff.connectors.twin_process import TwinProcess, free_port
from handoff.domain import BillingMethod, Customer, Milestone, Money, Project

APP = "handoff.connectors.sap.twin:create_app"
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


class SapTwinProcess(TwinProcess):
    """The SAP twin in a child process (plain HTTP), with TwinProcess's readiness wait,
    control client and clean-up."""

    def __init__(self, port: int | None = None) -> None:  # TwinProcess's own checks TWINS
        self.system = "sap"
        self.port = port or free_port()
        self.tls = None
        self.tls_dir = Path(".")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> SapTwinProcess:
        cmd = [sys.executable, "-m", "uvicorn", APP, "--factory", "--host", "127.0.0.1",
               "--port", str(self.port), "--log-level", "critical", "--no-access-log"]
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=dies_with_parent())
        self._wait_ready(timeout)
        return self


def sap_twin_fixture() -> Iterator[SapTwinProcess]:
    """Body of the session-scoped `sap_twin` fixture each test module defines."""
    with SapTwinProcess() as twin:
        yield twin


def fresh(twin: TwinProcess, **settings: Any) -> TwinProcess:
    """The twin emptied, with no faults and default settings but those given."""
    with twin.control() as control:
        control.post("/_twin/reset").raise_for_status()
        control.put("/_twin/faults", json={}).raise_for_status()
        if settings:
            control.put("/_twin/settings", json=settings).raise_for_status()
    return twin


def control(twin: TwinProcess, method: str, path: str, body: Any = None) -> Any:
    with twin.control() as client:
        response = client.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None


def set_faults(twin: TwinProcess, **plan: Any) -> None:
    control(twin, "PUT", "/_twin/faults", plan)


def set_twin(twin: TwinProcess, **settings: Any) -> None:
    control(twin, "PUT", "/_twin/settings", settings)


def twin_records(twin: TwinProcess, entity_set: str) -> list[dict[str, Any]]:
    return control(twin, "GET", f"/_twin/records/{entity_set}")["items"]


def summary(twin: TwinProcess) -> dict[str, Any]:
    return control(twin, "GET", "/_twin/summary")


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
