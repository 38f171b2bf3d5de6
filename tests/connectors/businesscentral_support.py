"""What the Business Central tests share: the twin in its own process (a session fixture each
test module defines), clients aimed at it, twin control calls and canonical sample records.

The twin is started here with uvicorn's own command line, because twin_process.TWINS does not
list it yet; once it does, `TwinProcess("businesscentral", tls_dir)` replaces
`BusinessCentralTwinProcess`.
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

from handoff.connectors.businesscentral import BusinessCentralConnector, BusinessCentralSettings
from handoff.connectors.businesscentral.twin import SANDBOX_TOKEN
from handoff.connectors.businesscentral.twin_schema import Company
from handoff.connectors.children import dies_with_parent
from handoff.connectors.netsuite import exact_json
from handoff.connectors.twin_process import TwinProcess, free_port
from handoff.domain import BillingMethod, Customer, InvoiceRequest, Milestone, Money, Project

APP = "handoff.connectors.businesscentral.twin:create_app"
TOKEN = SANDBOX_TOKEN
COMPANY_ID = Company().id
API_PATH = "/v2.0/sandbox/sandbox/api/v2.0"
COMPANY_PATH = f"{API_PATH}/companies({COMPANY_ID})"


class BusinessCentralTwinProcess(TwinProcess):
    """The Business Central twin in a child process (plain HTTP), with TwinProcess's readiness
    wait, control client and clean-up."""

    def __init__(self, port: int | None = None) -> None:  # TwinProcess's own checks TWINS
        self.system = "businesscentral"
        self.port = port or free_port()
        self.tls = None
        self.tls_dir = Path(".")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> BusinessCentralTwinProcess:
        cmd = [sys.executable, "-m", "uvicorn", APP, "--factory", "--host", "127.0.0.1",
               "--port", str(self.port), "--log-level", "critical", "--no-access-log"]
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=dies_with_parent())
        self._wait_ready(timeout)
        return self


def businesscentral_twin_fixture() -> Iterator[BusinessCentralTwinProcess]:
    """Body of the session-scoped `businesscentral_twin` fixture each test module defines."""
    with BusinessCentralTwinProcess() as twin:
        yield twin


def fresh(twin: TwinProcess, **settings: Any) -> TwinProcess:
    """The twin emptied, with no faults and default settings but those given."""
    with twin.control() as client:
        client.post("/_twin/reset").raise_for_status()
        client.put("/_twin/faults", json={}).raise_for_status()
        if settings:
            client.put("/_twin/settings", json=settings).raise_for_status()
    return twin


def control(twin: TwinProcess, method: str, path: str, body: Any = None) -> Any:
    with twin.control() as client:
        response = client.request(method, path, content=None if body is None else exact_json.dumps(body),
                                  headers={"Content-Type": "application/json"})
        response.raise_for_status()
        return exact_json.loads(response.content) if response.content else None


def set_faults(twin: TwinProcess, **plan: Any) -> None:
    control(twin, "PUT", "/_twin/faults", plan)


def set_twin(twin: TwinProcess, **settings: Any) -> None:
    """Twin-only behaviours (the rate window, the stale-ETag status, …); `fresh` undoes them."""
    control(twin, "PUT", "/_twin/settings", settings)


def twin_records(twin: TwinProcess, entity_set: str) -> list[dict[str, Any]]:
    """Every record of the set as the API renders it (documents with their lines)."""
    return control(twin, "GET", f"/_twin/records/{entity_set}")["value"]


def summary(twin: TwinProcess) -> dict[str, Any]:
    return control(twin, "GET", "/_twin/summary")


def requests_seen(twin: TwinProcess) -> int:
    return control(twin, "GET", "/_twin/stats").get("requests", 0)


def requests_log(twin: TwinProcess) -> list[dict[str, Any]]:
    return control(twin, "GET", "/_twin/requests")


def pay(twin: TwinProcess, invoice_id: str, amount: str) -> dict[str, Any]:
    """The customer pays `amount` of the invoice: a payment posted and applied to it, as the
    person posting the cash receipt journal in Business Central would."""
    return control(twin, "POST", "/_twin/payments", {"invoiceId": invoice_id, "amount": Decimal(amount)})


def api(twin: TwinProcess, token: str = TOKEN) -> httpx.Client:
    """A raw HTTP client on the twin's company: Business Central's wire format, unwrapped."""
    return httpx.Client(base_url=f"{twin.base_url}{COMPANY_PATH}/", timeout=10.0,
                        headers={"Authorization": f"Bearer {token}"})


def settings_for(twin: TwinProcess, token: str = TOKEN, **overrides: Any) -> BusinessCentralSettings:
    values: dict[str, Any] = {"timeout": 5.0, "legal_entities": ("US01",)} | overrides
    return BusinessCentralSettings.for_twin(twin.base_url, token, COMPANY_ID, **values)


def connector(twin: TwinProcess, **overrides: Any) -> BusinessCentralConnector:
    return BusinessCentralConnector(settings_for(twin, **overrides))


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


def an_invoice_request(amount: str = "12345.67", external_id: str = "HO-I-006A-M1", line_id: str = "M1",
                       customer_target_id: str | None = None, post: bool = True,
                       currency: str = "USD") -> InvoiceRequest:
    """A milestone billed on 10 March 2025; a negative amount asks for a credit note."""
    line = Milestone(line_id, "Kick-off workshop", Money(Decimal(amount), currency))
    return InvoiceRequest(external_id, "006A", line, date(2025, 3, 10), customer_target_id, post)
