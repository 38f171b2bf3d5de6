"""What the Stripe tests share: the connector and a raw HTTP client aimed at the twin (its
session fixture `stripe_twin` is in tests/conftest.py), and twin control calls."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import httpx

from handoff.connectors.stripe import StripeConnector, StripeSettings
from handoff.connectors.stripe.customers import CustomerRef
from handoff.connectors.stripe.twin import SANDBOX_KEY
from handoff.connectors.twin_process import TwinProcess
from handoff.domain import InvoiceRequest, Milestone, Money
from handoff.domain.ids import credit_note_external_id, invoice_external_id
from tests.connectors import twin_support
from tests.connectors.twin_support import control, set_faults  # noqa: F401 (re-exported)

# Fast enough for tests; the default 25/s has a test of its own.
TEST_LIMITS = {"requests_per_second": 10_000, "search_per_second": 10_000, "deliver_api_events": False}






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


def fresh(twin: TwinProcess, **settings: Any) -> TwinProcess:
    """The twin emptied, with no faults and test settings but those given."""
    return twin_support.fresh(twin, **(TEST_LIMITS | settings))


def set_twin(twin: TwinProcess, **settings: Any) -> None:
    twin_support.set_twin(twin, **(TEST_LIMITS | settings))
