"""What the Oracle tests share: the twin in its own process (a session fixture each test module
defines), the connector aimed at it, twin control calls and canonical sample records.

The twin is started with uvicorn's own command line because twin_process.TWINS does not list
it yet; once it does, `TwinProcess("oracle", tls_dir)` replaces `OracleTwinProcess`.
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
from handoff.connectors.oracle import OracleConnector, OracleSettings
from handoff.connectors.oracle.twin import SANDBOX_PASSWORD, SANDBOX_TOKEN, SANDBOX_USER
from handoff.connectors.twin_process import TwinProcess, free_port
from handoff.domain import BillingMethod, Customer, InvoiceRequest, Milestone, Money, Project

APP = "handoff.connectors.oracle.twin:create_app"
FSCM = "/fscmRestApi/resources/11.13.18.05"
CRM = "/crmRestApi/resources/11.13.18.05"
ITEM_TYPE = "application/vnd.oracle.adf.resourceitem+json"
BUSINESS_UNITS = {"US01": "US1 Business Unit", "UK01": "UK1 Business Unit"}


class OracleTwinProcess(TwinProcess):
    """The Oracle twin in a child process (plain HTTP), with TwinProcess's readiness wait,
    control client and clean-up."""

    def __init__(self, port: int | None = None) -> None:  # TwinProcess's own checks TWINS
        self.system = "oracle"
        self.port = port or free_port()
        self.tls = None
        self.tls_dir = Path(".")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> OracleTwinProcess:
        cmd = [sys.executable, "-m", "uvicorn", APP, "--factory", "--host", "127.0.0.1",
               "--port", str(self.port), "--log-level", "critical", "--no-access-log"]
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=dies_with_parent())
        self._wait_ready(timeout)
        return self


def oracle_twin_fixture() -> Iterator[OracleTwinProcess]:
    """Body of the session-scoped `oracle_twin` fixture each test module defines."""
    with OracleTwinProcess() as twin:
        yield twin


def fresh(twin: TwinProcess) -> TwinProcess:
    """The twin emptied, with no faults."""
    with twin.control() as control:
        control.post("/_twin/reset").raise_for_status()
        control.put("/_twin/faults", json={}).raise_for_status()
    return twin


def control(twin: TwinProcess, method: str, path: str, body: Any = None) -> Any:
    with twin.control() as client:
        response = client.request(method, path, json=body)
        response.raise_for_status()
        return response.json(parse_float=Decimal) if response.content else None


def set_faults(twin: TwinProcess, **plan: Any) -> None:
    control(twin, "PUT", "/_twin/faults", plan)


def twin_records(twin: TwinProcess, resource: str) -> list[dict[str, Any]]:
    return control(twin, "GET", f"/_twin/records/{resource}")["items"]


def summary(twin: TwinProcess) -> dict[str, Any]:
    return control(twin, "GET", "/_twin/summary")


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
