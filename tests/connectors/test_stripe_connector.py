"""StripeConnector against the Stripe twin in its own process: invoices issued once however
often the answer is lost, finalized or left a draft, credit notes against the invoice they
credit, payments read back, reconciliation figures paged, the deal's trace on every call, and
every failure arriving as the right class of handoff's error taxonomy."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
import stripe

from handoff.connectors.contract import BillingSource
from handoff.connectors.ports import BillingConnector, DocumentFigures
from handoff.connectors.stripe import StripeConnector, StripeSettings
from handoff.connectors.stripe.customers import CustomerRef, ErpCustomerKeys, StoreCustomers
from handoff.connectors.stripe.http import TracedHttpClient
from handoff.connectors.twin_process import TwinProcess
from handoff.domain import InvoiceStatus
from handoff.engine.clock import utcnow
from handoff.engine.inbox import accept
from handoff.errors import BusinessRuleError, DataError, PermanentError, ThrottledError, TransientError
from handoff.observability import lifecycle
from tests.connectors.stripe_support import (
    Directory,
    connector,
    fresh,
    invoice_request,
    objects,
    pay,
    requests_seen,
    set_faults,
    set_twin,
    settings_for,
)
from tests.factories import customer_data, customer_event, event, opportunity_data


@pytest.fixture
def twin(stripe_twin: TwinProcess) -> TwinProcess:
    return fresh(stripe_twin)


@pytest.fixture
def billing(twin: TwinProcess) -> Iterator[StripeConnector]:
    with connector(twin) as c:
        yield c


class LosingClient(TracedHttpClient):
    """Sends each request; for the first one matching (method, path suffix) the answer is lost
    on its way back, as a dropped connection after Stripe committed would lose it."""

    def __init__(self, method: str, path_end: str) -> None:
        super().__init__(timeout=10.0)
        self.target, self.lost = (method, path_end), 0

    def request(self, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        answer = super().request(method, url, headers, post_data)
        if not self.lost and method.upper() == self.target[0] and url.split("?")[0].endswith(self.target[1]):
            self.lost += 1
            raise stripe.APIConnectionError("connection reset after the request was sent", should_retry=True)
        return answer


class RecordingClient(TracedHttpClient):
    """Keeps what each request carried."""

    def __init__(self) -> None:
        super().__init__(timeout=10.0)
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    def request(self, method: str, url: str, headers: Any, post_data: Any = None) -> Any:
        self.sent.append((method.upper(), url.split("?")[0], dict(headers or {})))
        return super().request(method, url, headers, post_data)


def test_every_create_carries_a_key_derived_from_the_business_key(twin: TwinProcess) -> None:
    recording = RecordingClient()
    billing = StripeConnector(settings_for(twin), Directory(), http_client=recording)
    billing.issue_invoice(invoice_request(), "PRJ-7")
    billing.issue_invoice(invoice_request(document="M1#2", amount="-10.00"), "PRJ-7")
    keys = {url.removeprefix(twin.base_url): headers["Idempotency-Key"]
            for method, url, headers in recording.sent if method == "POST"}
    invoice_id = objects(twin, "invoice")[0]["id"]
    assert keys == {"/v1/customers": "handoff:HO-C-001A:customer",
                    "/v1/invoices": "handoff:HO-I-006A-M1:invoice",
                    "/v1/invoiceitems": "handoff:HO-I-006A-M1:item",
                    f"/v1/invoices/{invoice_id}/finalize": "handoff:HO-I-006A-M1:finalize",
                    "/v1/credit_notes": "handoff:HO-CN-006A-M1#2:credit_note"}
    assert {headers["Stripe-Version"] for _, _, headers in recording.sent} == {"2026-06-24.dahlia"}


def test_the_connector_keeps_the_billing_contract(billing: StripeConnector) -> None:
    assert isinstance(billing, BillingConnector) and isinstance(billing, BillingSource)
    assert billing.system == "stripe" and billing.budget.requests == 25  # a sandbox key
    live = StripeConnector(StripeSettings(api_key="rk_live_x"))
    assert (live.budget.requests, live.budget.window_seconds) == (100, 1.0)


def test_an_invoice_is_issued_finalized_and_read_back(twin: TwinProcess,
                                                       billing: StripeConnector) -> None:
    invoice = billing.issue_invoice(invoice_request(), "PRJ-7")
    assert (invoice.external_id, invoice.status, invoice.total.amount, invoice.amount_due.amount) == (
        "HO-I-006A-M1", InvoiceStatus.POSTED, Decimal("30000.00"), Decimal("30000.00"))
    assert invoice.number and invoice.target_id.startswith("in_")
    assert invoice.due_date == invoice.invoice_date + timedelta(days=30)
    [customer] = objects(twin, "customer")
    [stored] = objects(twin, "invoice")
    assert customer["name"] == "Globex Corporation"
    assert customer["metadata"] == {"handoff_customer": "HO-C-001A"}
    assert (stored["customer"], stored["collection_method"], stored["auto_advance"]) == (
        customer["id"], "send_invoice", True)
    assert stored["metadata"] == {"handoff_external_id": "HO-I-006A-M1", "opportunity_id": "006A",
                                  "line": "M1", "document": "M1", "project_id": "PRJ-7"}
    assert billing.read_invoice(invoice.target_id) == invoice
    assert billing.issue_invoice(invoice_request(), "PRJ-7") == invoice  # asked again: the same one
    assert len(objects(twin, "invoice")) == 1 and len(objects(twin, "invoiceitem")) == 1


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/invoices"), ("POST", "/v1/invoiceitems"),
                                              ("POST", "/finalize"), ("POST", "/v1/customers")])
def test_a_lost_answer_to_any_create_still_makes_one_invoice(twin: TwinProcess, method: str,
                                                             path: str) -> None:
    losing = LosingClient(method, path)
    billing = StripeConnector(settings_for(twin), Directory(), http_client=losing)
    with pytest.raises(TransientError):
        billing.issue_invoice(invoice_request(), "PRJ-7")
    assert losing.lost == 1
    invoice = billing.issue_invoice(invoice_request(), "PRJ-7")  # the engine's retry
    assert invoice.status is InvoiceStatus.POSTED and invoice.total.amount == Decimal("30000.00")
    assert len(objects(twin, "customer")) == 1
    assert len(objects(twin, "invoice")) == 1 and len(objects(twin, "invoiceitem")) == 1


def test_dropped_connections_many_times_over_still_make_one_invoice(twin: TwinProcess) -> None:
    """Real dropped connections from the twin (committed, then cut), a third of all calls."""
    set_faults(twin, lose_response_rate=0.35, seed=7)
    billing, failures = connector(twin), 0
    for _ in range(30):
        try:
            invoice = billing.issue_invoice(invoice_request(), "PRJ-7")
            break
        except TransientError:
            failures += 1
    else:
        pytest.fail("no attempt got through")
    set_faults(twin)
    lost = [r for r in requests_seen(twin) if r["fault"] == "lose_response"]
    assert failures and any(r["method"] == "POST" for r in lost)
    assert invoice.status is InvoiceStatus.POSTED
    assert len(objects(twin, "invoice")) == 1 and len(objects(twin, "invoiceitem")) == 1


def test_a_draft_is_left_for_finance_and_posted_when_asked_again(twin: TwinProcess,
                                                                 billing: StripeConnector) -> None:
    draft = billing.issue_invoice(invoice_request(post=False), "PRJ-7")
    assert draft.status is InvoiceStatus.DRAFT and draft.number is None
    assert billing.read_invoice(draft.target_id).status is InvoiceStatus.DRAFT
    posted = billing.issue_invoice(invoice_request(post=True), "PRJ-7")
    assert posted.target_id == draft.target_id and posted.status is InvoiceStatus.POSTED


def test_a_payment_in_stripe_is_read_back(twin: TwinProcess, billing: StripeConnector) -> None:
    invoice = billing.issue_invoice(invoice_request(), "PRJ-7")
    pay(twin, invoice.target_id, amount=1000000)
    partly = billing.read_invoice(invoice.target_id)
    assert (partly.status, partly.amount_due.amount, partly.paid.amount) == (
        InvoiceStatus.POSTED, Decimal("20000.00"), Decimal("10000.00"))
    pay(twin, invoice.target_id)
    paid = billing.read_invoice(invoice.target_id)
    assert (paid.status, paid.amount_due.amount, paid.paid.amount) == (
        InvoiceStatus.PAID, Decimal("0.00"), Decimal("30000.00"))


def test_a_credit_note_credits_the_lines_invoice_what_is_due_first(twin: TwinProcess,
                                                                   billing: StripeConnector) -> None:
    invoice = billing.issue_invoice(invoice_request(), "PRJ-7")
    billing.issue_invoice(invoice_request(document="M2", amount="60000.00", name="Build"), "PRJ-7")
    pay(twin, invoice.target_id, amount=2500000)  # 5,000.00 of M1 still due
    note = billing.issue_invoice(invoice_request(document="M1#2", amount="-8000.00",
                                                 name="Discovery, adjustment 2"), "PRJ-7")
    assert (note.status, note.total.amount, note.amount_due.amount) == (
        InvoiceStatus.PAID, Decimal("-8000.00"), Decimal("0.00"))
    assert note.target_id.startswith("cn_") and note.external_id == "HO-CN-006A-M1#2"
    [stored] = objects(twin, "credit_note")
    assert (stored["invoice"], stored["pre_payment_amount"], stored["post_payment_amount"]) == (
        invoice.target_id, 500000, 300000)
    credited = billing.read_invoice(invoice.target_id)
    assert (credited.status, credited.amount_due.amount) == (InvoiceStatus.PAID, Decimal("0.00"))
    assert billing.read_invoice(note.target_id) == note
    assert billing.issue_invoice(invoice_request(document="M1#2", amount="-8000.00"), "PRJ-7") == note
    assert len(objects(twin, "credit_note")) == 1
    [customer] = objects(twin, "customer")
    assert customer["balance"] == -300000  # the part already paid: credit for the next invoice


def test_a_credit_no_invoice_of_the_line_can_take_is_held_for_a_person(twin: TwinProcess,
                                                                       billing: StripeConnector) -> None:
    billing.issue_invoice(invoice_request(amount="1000.00"), "PRJ-7")
    with pytest.raises(BusinessRuleError) as held:
        billing.issue_invoice(invoice_request(document="M1#2", amount="-1500.00"), "PRJ-7")
    assert "no invoice of line M1 of deal 006A" in held.value.message and "1000.00 USD creditable" in \
        held.value.message
    with pytest.raises(BusinessRuleError):
        billing.issue_invoice(invoice_request(document="M9#2", amount="-10.00"), "PRJ-7")
    assert objects(twin, "credit_note") == []


@pytest.mark.parametrize(("amount", "currency", "minor"), [("500000", "JPY", 500000),
                                                            ("1234.560", "KWD", 1234560)])
def test_zero_and_three_decimal_currencies_travel_exactly(twin: TwinProcess, billing: StripeConnector,
                                                          amount: str, currency: str, minor: int) -> None:
    invoice = billing.issue_invoice(invoice_request(amount=amount, currency=currency), "PRJ-7")
    assert invoice.total.amount == Decimal(amount) and invoice.total.currency == currency
    [stored] = objects(twin, "invoice")
    assert (stored["total"], stored["currency"]) == (minor, currency.lower())


def test_an_amount_stripe_cannot_take_is_refused_before_any_call(twin: TwinProcess,
                                                                 billing: StripeConnector) -> None:
    with pytest.raises(DataError) as refused:
        billing.issue_invoice(invoice_request(amount="1.235", currency="KWD"), "PRJ-7")
    assert refused.value.field == "amount" and requests_seen(twin) == []


def test_a_validation_error_is_a_data_error_naming_stripes_param(twin: TwinProcess) -> None:
    bad_email = Directory(CustomerRef("HO-C-9", "Initech", "accounts-at-initech"))
    with pytest.raises(DataError) as refused:
        connector(twin, bad_email).issue_invoice(invoice_request(), "PRJ-7")
    assert refused.value.field == "email" and "Invalid email address" in refused.value.message
    set_twin(twin, max_amount=99_999_999)
    with pytest.raises(DataError) as too_large:
        connector(twin).issue_invoice(invoice_request(amount="1000000.00"), "PRJ-7")
    assert too_large.value.field == "amount"


def test_a_wrong_key_is_a_permanent_error_saying_what_to_fix(twin: TwinProcess) -> None:
    with pytest.raises(PermanentError) as refused:
        connector(twin, api_key="sk_test_rolled_0000000000000000").issue_invoice(invoice_request(), "PRJ-7")
    assert "HANDOFF_STRIPE_API_KEY" in refused.value.message
    assert "Invalid API Key provided" in refused.value.message


def test_a_429_is_throttled_with_the_wait(twin: TwinProcess, billing: StripeConnector) -> None:
    set_faults(twin, throttle_rate=1.0, retry_after_seconds=7)
    with pytest.raises(ThrottledError) as throttled:
        billing.read_invoice("in_any")
    assert throttled.value.retry_after == 7
    set_faults(twin)
    set_twin(twin, requests_per_second=1)  # Stripe's own 429 sends no Retry-After: the setting
    slow = connector(twin, throttle_wait_seconds=2.0)
    with pytest.raises(ThrottledError) as again:
        list(slow.document_figures())  # invoices, then credit notes: the second call is one too many
    assert again.value.retry_after == 2.0


def test_an_unavailable_stripe_is_transient(twin: TwinProcess, billing: StripeConnector) -> None:
    set_faults(twin, unavailable_rate=1.0)
    with pytest.raises(TransientError):
        billing.issue_invoice(invoice_request(), "PRJ-7")


def test_a_missing_invoice_is_permanent(billing: StripeConnector) -> None:
    with pytest.raises(PermanentError):
        billing.read_invoice("in_never_made")


def test_every_call_carries_the_deals_trace(twin: TwinProcess, billing: StripeConnector) -> None:
    correlation = "4bf92f3577b34da6a3ce929d0e0e4736"
    with lifecycle(correlation, "006A"):
        billing.issue_invoice(invoice_request(), "PRJ-7")
    seen = requests_seen(twin)
    assert len(seen) >= 5
    assert all(r["correlation_id"] == correlation for r in seen)
    assert all(r["traceparent"].split("-")[1] == correlation for r in seen)


def test_a_customer_made_moments_ago_is_found_again_though_search_cannot_see_it(
        twin: TwinProcess) -> None:
    set_twin(twin, search_lag_seconds=60)
    connector(twin).issue_invoice(invoice_request(), "PRJ-7")
    connector(twin).issue_invoice(invoice_request(deal="006B"), "PRJ-8")  # a fresh connector: no cache
    assert len(objects(twin, "customer")) == 1 and len(objects(twin, "invoice")) == 2


def test_reconciliation_figures_page_through_every_document_of_a_deal(twin: TwinProcess) -> None:
    billing = connector(twin, page_size=2)
    one = billing.issue_invoice(invoice_request(), "PRJ-7")
    billing.issue_invoice(invoice_request(document="M2", amount="60000.00"), "PRJ-7")
    billing.issue_invoice(invoice_request(deal="006B", document="F", amount="5000.00"), "PRJ-8")
    billing.issue_invoice(invoice_request(deal="006B", document="G", amount="1.00", post=False), "PRJ-8")
    note = billing.issue_invoice(invoice_request(document="M1#2", amount="-1000.00"), "PRJ-7")
    figures = sorted(billing.document_figures(), key=lambda f: (f.deal_id, f.document_id))
    assert [(f.deal_id, f.total) for f in figures] == [
        ("006A", Decimal("-1000.00")), ("006A", Decimal("30000.00")), ("006A", Decimal("60000.00")),
        ("006B", Decimal("5000.00"))]
    assert DocumentFigures("006A", note.target_id, "USD", "paid", Decimal("-1000.00"),
                           Decimal("-1000.00"), Decimal("0.00")) in figures
    assert any(f.document_id == one.target_id and f.amount_due == Decimal("29000.00") for f in figures)
    paged = [r for r in requests_seen(twin) if r["path"] == "/v1/invoices" and "starting_after" in r["query"]]
    assert paged


def test_without_a_directory_the_customer_is_keyed_by_the_erps_id(twin: TwinProcess) -> None:
    billing = StripeConnector(settings_for(twin), ErpCustomerKeys())
    billing.issue_invoice(invoice_request(customer_target_id="C-77"), "PRJ-7")
    assert objects(twin, "customer")[0]["metadata"] == {"handoff_customer": "HO-ERP-C-77"}
    with pytest.raises(DataError) as refused:
        billing.issue_invoice(invoice_request(deal="006B", customer_target_id=None), "PRJ-8")
    assert refused.value.field == "customer_target_id"


def test_store_customers_name_the_customer_as_handoff_knows_it(twin: TwinProcess, db) -> None:
    accept(db, customer_event(customer_data("001A", name="Globex Corporation")), utcnow())
    accept(db, event(opportunity_data("006A", "001A")), utcnow())
    billing = StripeConnector(settings_for(twin), StoreCustomers(db))
    billing.issue_invoice(invoice_request(), "PRJ-7")
    [customer] = objects(twin, "customer")
    assert customer["name"] == "Globex Corporation"
    assert customer["metadata"] == {"handoff_customer": "HO-C-001A"}
    with pytest.raises(DataError):
        billing.issue_invoice(invoice_request(deal="006Z"), "PRJ-9")
