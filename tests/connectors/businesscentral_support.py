"""What the Business Central tests share: clients aimed at the twin (its session fixture
`businesscentral_twin` is in tests/conftest.py), twin control calls and canonical sample records."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from handoff.connectors.businesscentral import BusinessCentralConnector, BusinessCentralSettings
from handoff.connectors.businesscentral.twin import SANDBOX_TOKEN
from handoff.connectors.businesscentral.twin_schema import Company
from handoff.connectors.twin_process import TwinProcess
from handoff.domain import BillingMethod, Customer, InvoiceRequest, Milestone, Money, Project
from tests.connectors.twin_support import control, fresh, requests_log, set_faults, set_twin, summary  # noqa: F401 (re-exported)

TOKEN = SANDBOX_TOKEN
COMPANY_ID = Company().id
API_PATH = "/v2.0/sandbox/sandbox/api/v2.0"
COMPANY_PATH = f"{API_PATH}/companies({COMPANY_ID})"








def twin_records(twin: TwinProcess, entity_set: str) -> list[dict[str, Any]]:
    """Every record of the set as the API renders it (documents with their lines)."""
    return control(twin, "GET", f"/_twin/records/{entity_set}")["value"]



def requests_seen(twin: TwinProcess) -> int:
    return control(twin, "GET", "/_twin/stats").get("requests", 0)



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
