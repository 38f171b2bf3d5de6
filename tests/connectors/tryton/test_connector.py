"""The Tryton connector against a real Tryton, with the answers that matter lost on the way
back: whatever Tryton committed is found again, never made twice."""

from __future__ import annotations

import dataclasses
import datetime as dt
import http.client
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from handoff.connectors.tryton.client import TrytonConnector, TrytonSettings
from handoff.connectors.tryton.sandbox import TrytonProcess
from handoff.connectors.twin_process import free_port
from handoff.domain import (
    BillingMethod,
    Customer,
    InvoiceRequest,
    InvoiceStatus,
    Milestone,
    Money,
    Project,
)
from handoff.errors import BusinessRuleError, DataError, TransientError
from tests.connectors.tryton.rpc_support import TrytonRpc, cash_payment_method, pay_in_full

pytestmark = pytest.mark.slow


class LossyProxy:
    """Forwards JSON-RPC to Tryton; for calls to the methods in `lose`, lets Tryton commit,
    then hangs up instead of answering — a response lost after the commit."""

    def __init__(self, upstream_port: int) -> None:
        self.lose: set[str] = set()
        self.lost: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                upstream.request("POST", self.path, body, dict(self.headers))
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                method = next((m for m in proxy.lose if f'"{m}"'.encode() in body), None)
                if method:
                    proxy.lose.discard(method)
                    proxy.lost.append(method)
                    self.close_connection = True
                    return  # committed upstream, nothing comes back
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(tryton_server: TrytonProcess) -> Iterator[LossyProxy]:
    lossy = LossyProxy(tryton_server.port)
    yield lossy
    lossy.close()


@pytest.fixture
def tryton(tryton_server: TrytonProcess, proxy: LossyProxy) -> Iterator[TrytonConnector]:
    info = tryton_server.info
    assert info is not None
    settings = TrytonSettings(proxy.url, info.database, info.user, info.password, timeout=30)
    with TrytonConnector(settings) as connector:
        connector.company()  # signed in before any answer is lost
        yield connector


def a_deal() -> tuple[str, Customer, Project]:
    key = uuid.uuid4().hex[:10]
    customer = Customer(f"001{key}", f"Customer {key}", "USD")
    project = Project(f"HO-P-006{key}", f"006{key}", f"Deal {key}", f"HO-C-001{key}",
                      Money(Decimal("90000.00"), "USD"), BillingMethod.MILESTONE,
                      dt.date(2026, 11, 1))
    return key, customer, project


def milestone(key: str, amount: str = "36000.00") -> InvoiceRequest:
    return InvoiceRequest(f"HO-I-006{key}-M1", f"006{key}",
                            Milestone("M1", "Kick-off", Money(Decimal(amount), "USD")),
                            dt.date(2026, 11, 26))


def count(tryton: TrytonConnector, model: str, domain: list) -> int:
    return tryton.rpc.call(f"model.{model}.search_count", domain)


def test_a_lost_create_answer_is_found_by_the_retry_not_made_again(
        tryton: TrytonConnector, proxy: LossyProxy) -> None:
    key, customer, project = a_deal()
    proxy.lose = {"model.party.party.create"}
    with pytest.raises(TransientError):
        tryton.upsert_customer(f"HO-C-001{key}", customer)
    party = tryton.upsert_customer(f"HO-C-001{key}", customer)
    assert party.created is False and proxy.lost == ["model.party.party.create"]
    proxy.lose = {"model.project.work.create"}
    with pytest.raises(TransientError):
        tryton.upsert_project(project, party.target_id)
    again = tryton.upsert_project(project, party.target_id)
    assert again.created is False
    assert count(tryton, "party.party", [("code", "=", f"HO-C-001{key}")]) == 1
    assert count(tryton, "project.work", [("comment", "like", f"[handoff {project.external_id}]%")]) == 1


@pytest.mark.parametrize("lost", ["model.project.work.invoice", "model.account.invoice.post"])
def test_a_lost_invoice_or_post_answer_leaves_one_posted_invoice(
        tryton: TrytonConnector, proxy: LossyProxy, lost: str) -> None:
    key, customer, project = a_deal()
    party = tryton.upsert_customer(f"HO-C-001{key}", customer)
    work = tryton.upsert_project(project, party.target_id)
    proxy.lose = {lost}
    with pytest.raises(TransientError):
        tryton.issue_invoice(milestone(key), work.target_id)
    invoice = tryton.issue_invoice(milestone(key), work.target_id)
    assert proxy.lost == [lost]
    assert invoice.status is InvoiceStatus.POSTED and invoice.number
    assert invoice.total == invoice.amount_due == Money(Decimal("36000.00"), "USD")
    assert count(tryton, "account.invoice", [("reference", "=", f"HO-I-006{key}-M1")]) == 1
    assert tryton.read_invoice(invoice.target_id) == invoice


def test_a_deal_in_another_currency_than_the_company_is_a_data_error(
        tryton: TrytonConnector) -> None:
    key, customer, project = a_deal()
    party = tryton.upsert_customer(f"HO-C-001{key}", customer)
    euros = Project(project.external_id, project.opportunity_id, project.name,
                    project.customer_external_id, Money(Decimal("10.00"), "EUR"),
                    project.billing_method, project.start_date)
    with pytest.raises(DataError) as caught:
        tryton.upsert_project(euros, party.target_id)
    assert caught.value.field == "currency" and "USD" in str(caught.value)


def test_a_product_without_a_revenue_account_is_trytons_business_rule(
        tryton_server: TrytonProcess) -> None:
    """Tryton's own refusal, in its own words: here, the product to bill with is one the
    connector is told to use but that has no accounting category."""
    info = tryton_server.info
    admin = TrytonConnector(TrytonSettings(info.url, info.database, "admin", "sandbox-admin-pw"))
    admin.company()  # its company joins the context, as for any Tryton client
    code = f"BARE{uuid.uuid4().hex[:6]}"
    unit = admin.rpc.call("model.product.uom.search", [("name", "=", "Unit")], 0, 1, None)[0]
    admin.rpc.call("model.product.template.create", [{
        "name": "Service without accounts", "type": "service", "default_uom": unit,
        "list_price": Decimal("1"), "products": [["create", [{"suffix_code": code}]]]}])
    admin.close()
    settings = TrytonSettings(info.url, info.database, info.user, info.password, product_code=code)
    with TrytonConnector(settings) as tryton:
        key, customer, project = a_deal()
        party = tryton.upsert_customer(f"HO-C-001{key}", customer)
        work = tryton.upsert_project(project, party.target_id)
        with pytest.raises(BusinessRuleError) as caught:
            tryton.issue_invoice(milestone(key), work.target_id)
    assert caught.value.message.startswith('There is no "Account Category" defined for "Service without')


def test_a_paid_invoice_reads_back_as_paid_with_nothing_due(
        tryton: TrytonConnector, tryton_admin: TrytonRpc) -> None:
    key, customer, project = a_deal()
    party = tryton.upsert_customer(f"HO-C-001{key}", customer)
    work = tryton.upsert_project(project, party.target_id)
    invoice = tryton.issue_invoice(milestone(key, "1234.56"), work.target_id)
    pay_in_full(tryton_admin, int(invoice.target_id), cash_payment_method(tryton_admin),
                dt.date(2026, 11, 27))
    paid = tryton.read_invoice(invoice.target_id)
    assert paid.status is InvoiceStatus.PAID and paid.amount_due.amount == 0
    assert paid.paid == Money(Decimal("1234.56"), "USD") and paid.number == invoice.number


def test_a_credit_note_is_a_posted_negative_invoice_and_its_refund_settles_it(
        tryton: TrytonConnector, tryton_admin: TrytonRpc) -> None:
    key, customer, project = a_deal()
    party = tryton.upsert_customer(f"HO-C-001{key}", customer)
    work = tryton.upsert_project(project, party.target_id)
    tryton.issue_invoice(milestone(key, "36000.00"), work.target_id)
    credit = InvoiceRequest(f"HO-CN-006{key}-M1#2", f"006{key}",
                            Milestone("M1#2", "Kick-off, adjustment 2",
                                      Money(Decimal("-6000.00"), "USD")), dt.date(2026, 11, 26))
    note = tryton.issue_invoice(credit, work.target_id)
    assert (note.status, note.total.amount, note.amount_due.amount) == (
        InvoiceStatus.POSTED, Decimal("-6000.00"), Decimal("-6000.00"))
    assert tryton.issue_invoice(credit, work.target_id) == note  # asked again: the same one
    pay_in_full(tryton_admin, int(note.target_id), cash_payment_method(tryton_admin),
                dt.date(2026, 11, 27))
    refunded = tryton.read_invoice(note.target_id)
    assert refunded.status is InvoiceStatus.PAID and refunded.amount_due.amount == 0


def test_an_invoice_asked_for_as_a_draft_is_left_for_finance_to_post(
        tryton: TrytonConnector) -> None:
    key, customer, project = a_deal()
    party = tryton.upsert_customer(f"HO-C-001{key}", customer)
    work = tryton.upsert_project(project, party.target_id)
    request = dataclasses.replace(milestone(key, "2500.00"), post=False)
    draft = tryton.issue_invoice(request, work.target_id)
    assert (draft.status, draft.number, draft.total.amount) == (
        InvoiceStatus.DRAFT, None, Decimal("2500.00"))
    assert tryton.issue_invoice(request, work.target_id) == draft  # asked again: the same one
    posted = tryton.issue_invoice(dataclasses.replace(request, post=True), work.target_id)
    assert posted.status is InvoiceStatus.POSTED and posted.target_id == draft.target_id
