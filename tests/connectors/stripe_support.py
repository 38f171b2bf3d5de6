"""What the Stripe tests share: the twin in its own process (a session fixture), the connector
and a raw HTTP client aimed at it, and twin control calls.

The twin is started with uvicorn's own command line, because twin_process.TWINS does not list
it yet; once it does, `TwinProcess("stripe", tls_dir)` replaces `StripeTwinProcess`.
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
from handoff.connectors.stripe import StripeConnector, StripeSettings
from handoff.connectors.stripe.customers import CustomerRef
from handoff.connectors.stripe.twin import SANDBOX_KEY
from handoff.connectors.twin_process import TwinProcess, free_port
from handoff.domain import InvoiceRequest, Milestone, Money
from handoff.domain.ids import credit_note_external_id, invoice_external_id

APP = "handoff.connectors.stripe.twin:create_app"


class StripeTwinProcess(TwinProcess):
    """The Stripe twin in a child process (plain HTTP), with TwinProcess's readiness wait,
    control client and clean-up."""

    def __init__(self, port: int | None = None) -> None:  # TwinProcess's own checks TWINS
        self.system = "stripe"
        self.port = port or free_port()
        self.tls = None
        self.tls_dir = Path(".")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> StripeTwinProcess:
        cmd = [sys.executable, "-m", "uvicorn", APP, "--factory", "--host", "127.0.0.1",
               "--port", str(self.port), "--log-level", "critical", "--no-access-log"]
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=dies_with_parent())
        self._wait_ready(timeout)
        return self


def stripe_twin_fixture() -> Iterator[StripeTwinProcess]:
    """Body of the session-scoped `stripe_twin` fixture each test module defines."""
    with StripeTwinProcess() as twin:
        yield twin


# Fast enough for tests; the default 25/s has a test of its own.
TEST_LIMITS = {"requests_per_second": 10_000, "search_per_second": 10_000, "deliver_api_events": False}


def fresh(twin: TwinProcess, **settings: Any) -> TwinProcess:
    """The twin emptied, with no faults and test settings but those given."""
    with twin.control() as client:
        client.post("/_twin/reset").raise_for_status()
        client.put("/_twin/faults", json={}).raise_for_status()
        client.put("/_twin/settings", json=TEST_LIMITS | settings).raise_for_status()
    return twin


def control(twin: TwinProcess, method: str, path: str, body: Any = None) -> Any:
    with twin.control() as client:
        response = client.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None


def set_faults(twin: TwinProcess, **plan: Any) -> None:
    control(twin, "PUT", "/_twin/faults", plan)


def set_twin(twin: TwinProcess, **settings: Any) -> None:
    control(twin, "PUT", "/_twin/settings", TEST_LIMITS | settings)


def objects(twin: TwinProcess, kind: str) -> list[dict[str, Any]]:
    return control(twin, "GET", f"/_twin/objects/{kind}")


def events(twin: TwinProcess) -> list[dict[str, Any]]:
    return control(twin, "GET", "/_twin/events")


def pay(twin: TwinProcess, invoice_id: str, **body: Any) -> dict[str, Any]:
    return control(twin, "POST", f"/_twin/invoices/{invoice_id}/pay", body)


def requests_seen(twin: TwinProcess) -> list[dict[str, Any]]:
    return control(twin, "GET", "/_twin/requests")


def api(twin: TwinProcess, key: str = SANDBOX_KEY) -> httpx.Client:
    """A raw HTTP client with the twin's key: Stripe's wire format, unwrapped."""
    return httpx.Client(base_url=twin.base_url, timeout=10.0,
                        headers={"Authorization": f"Bearer {key}"})


class Directory:
    """A CustomerDirectory for tests: every deal's customer is `ref` unless mapped."""

    def __init__(self, ref: CustomerRef | None = None, **by_deal: CustomerRef) -> None:
        self.ref = ref or CustomerRef("HO-C-001A", "Globex Corporation")
        self.by_deal = by_deal

    def customer_for(self, request: InvoiceRequest) -> CustomerRef:
        return self.by_deal.get(request.opportunity_id, self.ref)


def settings_for(twin: TwinProcess, **overrides: Any) -> StripeSettings:
    values: dict[str, Any] = {"api_key": SANDBOX_KEY, "base_url": twin.base_url, "timeout": 10.0}
    return StripeSettings(**(values | overrides))


def connector(twin: TwinProcess, directory: Any = None, **overrides: Any) -> StripeConnector:
    return StripeConnector(settings_for(twin, **overrides), directory or Directory())


def invoice_request(deal: str = "006A", document: str = "M1", amount: str = "30000.00",
                    currency: str = "USD", *, name: str = "Discovery", post: bool = True,
                    customer_target_id: str | None = "C-77") -> InvoiceRequest:
    """The request the billing plan makes for one document of one deal (a credit note when the
    amount is negative)."""
    money = Money(Decimal(amount), currency)
    make_id = credit_note_external_id if money.is_negative else invoice_external_id
    return InvoiceRequest(make_id(deal, document), deal, Milestone(document, name, money),
                          date(2026, 11, 20), customer_target_id, post)
