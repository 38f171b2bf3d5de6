"""Stripe webhooks through handoff's ASGI app on a real database: signed events about a deal's
invoice have billing read it again and the CRM told; a bad signature, an old timestamp, a
changed body are refused and kept as intake rejections. End to end, with the Stripe and HubSpot
twins in their own processes: a payment made in Stripe reaches the deal in the CRM twin only
through a correctly signed `invoice.paid`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import stripe
import uvicorn
from fastapi import FastAPI

from handoff.api import create_app
from handoff.config import Settings
from handoff.connectors.hubspot.mapping import company_properties, deal_properties
from handoff.connectors.memory import MemoryErp
from handoff.connectors.stripe import StripeConnector
from handoff.connectors.stripe.customers import StoreCustomers
from handoff.connectors.twin_process import free_port
from handoff.domain import Invoice, InvoiceStatus, Money
from handoff.engine.clock import utcnow
from handoff.engine.inbox import accept
from handoff.engine.retry import RetryPolicy
from handoff.engine.worker import Worker
from handoff.flows.billing import BillingController
from handoff.flows.provisioning import ProvisioningController
from handoff.flows.write_back import WriteBackController
from handoff.store.billing import InvoiceRecord, save_invoices
from handoff.store.tables import hops, intake_rejections, invoices, reconcile_queue
from handoff.webhooks import stripe as stripe_webhooks
from tests.connectors import hubspot_support, stripe_support
from tests.connectors.stripe_support import TwinProcess
from tests.factories import (
    SCHEDULE,
    customer_data,
    customer_event,
    event,
    milestone_data,
    milestone_event,
    opportunity_data,
)

SECRET = "whsec_test_3a1f5b0c9e8d7c6b5a4f3e2d1c0b9a8f"
BASE = "http://handoff"


def handoff_app(db, secret: str | None = SECRET) -> FastAPI:
    with pytest.MonkeyPatch.context() as patch:
        if secret:
            patch.setenv("HANDOFF_STRIPE_WEBHOOK_SECRET", secret)
        else:
            patch.delenv("HANDOFF_STRIPE_WEBHOOK_SECRET", raising=False)
        return create_app(db, tokens={})


def stripe_event(kind: str = "invoice.paid", obj: dict[str, Any] | None = None) -> bytes:
    obj = obj or {"id": "in_1", "object": "invoice", "status": "paid",
                  "metadata": {"opportunity_id": "006A", "handoff_external_id": "HO-I-006A-M1"}}
    return json.dumps({"id": "evt_1", "object": "event", "api_version": "2026-06-24.dahlia",
                       "created": int(time.time()), "livemode": False, "type": kind,
                       "data": {"object": obj}}).encode()


def header(body: bytes, secret: str = SECRET, at: float | None = None) -> str:
    stamp = int(time.time() if at is None else at)
    return stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=stamp)


async def post(db, body: bytes, signature: str | None, secret: str | None = SECRET,
               sent: bytes | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=handoff_app(db, secret))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        headers = {"content-type": "application/json"}
        if signature is not None:
            headers["Stripe-Signature"] = signature
        return await client.post("/webhooks/stripe", content=body if sent is None else sent, headers=headers)


def known_deal(db, with_invoice: bool = True) -> None:
    accept(db, customer_event(customer_data("001A")), utcnow())
    accept(db, event(opportunity_data("006A", "001A")), utcnow())
    if with_invoice:
        money = Money(Decimal("30000.00"), "USD")
        invoice = Invoice("HO-I-006A-M1", "in_1", "T0000001-0001", InvoiceStatus.POSTED, money,
                          Money(Decimal("0.00"), "USD"), money, money, date(2026, 11, 26))
        with db.transaction() as conn:
            save_invoices(conn, [InvoiceRecord("006A", "M1", "M1", "stripe", invoice)], utcnow())
    with db.transaction() as conn:  # what accepting the deal queued is not under test
        conn.execute(sa.delete(reconcile_queue))


def queued(db) -> list[str]:
    with db.reading() as conn:
        return sorted(conn.execute(sa.select(reconcile_queue.c.key)).scalars())


def rejections(db) -> list[Any]:
    with db.reading() as conn:
        return list(conn.execute(sa.select(intake_rejections).order_by(intake_rejections.c.id)))


@pytest.mark.anyio
async def test_a_good_event_has_billing_read_the_invoice_again_and_the_crm_told(db) -> None:
    known_deal(db)
    body = stripe_event("invoice.paid")
    answer = await post(db, body, header(body))
    assert answer.status_code == 200
    assert answer.json() == {"source": "/webhooks/stripe", "event": "evt_1", "type": "invoice.paid",
                             "enqueued": ["billing:006A", "crm:006A"], "ignored": None,
                             "opportunity_id": "006A"}
    assert queued(db) == ["billing:006A", "crm:006A"]
    with db.reading() as conn:
        [hop] = conn.execute(sa.select(hops).where(hops.c.step == "stripe_event")).all()
    assert (hop.opportunity_id, hop.system, hop.target_id) == ("006A", "stripe", "in_1")
    assert "invoice.paid (evt_1)" in hop.detail
    again = await post(db, body, header(body))  # Stripe delivers more than once: no harm
    assert again.status_code == 200 and queued(db) == ["billing:006A", "crm:006A"]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", stripe_webhooks.REQUIRED_EVENTS)
async def test_each_required_event_type_is_taken(db, kind: str) -> None:
    known_deal(db)
    obj = ({"id": "cn_9", "object": "credit_note", "invoice": "in_1", "metadata": {}}
           if kind.startswith("credit_note") else None)
    body = stripe_event(kind, obj)
    answer = await post(db, body, header(body))
    assert answer.status_code == 200 and answer.json()["enqueued"] == ["billing:006A", "crm:006A"]


@pytest.mark.anyio
async def test_an_invoice_handoff_has_not_recorded_yet_is_found_by_its_deal(db) -> None:
    known_deal(db, with_invoice=False)
    body = stripe_event("invoice.finalized")
    assert (await post(db, body, header(body))).json()["enqueued"] == ["billing:006A", "crm:006A"]


@pytest.mark.anyio
async def test_events_of_no_deal_or_of_no_use_are_acknowledged_and_ignored(db) -> None:
    known_deal(db)
    stranger = stripe_event("invoice.paid", {"id": "in_x", "object": "invoice", "metadata": {}})
    answer = await post(db, stranger, header(stranger))
    assert answer.status_code == 200 and "not a document of a deal handoff knows" in answer.json()["ignored"]
    other = stripe_event("customer.created", {"id": "cus_1", "object": "customer"})
    answer = await post(db, other, header(other))
    assert answer.status_code == 200
    assert answer.json()["ignored"] == "customer.created: handoff has no use for it"
    assert queued(db) == [] and rejections(db) == []


@pytest.mark.anyio
@pytest.mark.parametrize(("case", "make"), [
    ("bad signature", lambda body: header(body, secret="whsec_someone_else")),
    ("old timestamp", lambda body: header(body, at=time.time() - 360)),
    ("future timestamp", lambda body: header(body, at=time.time() + 360)),
    ("no signature", lambda body: None),
])
async def test_a_webhook_not_signed_right_now_is_refused_and_kept(db, case: str, make: Any) -> None:
    known_deal(db)
    body = stripe_event("invoice.paid")
    answer = await post(db, body, make(body))
    assert answer.status_code == 401, case
    assert answer.json()["error"]["field"] == "Stripe-Signature"
    [refusal] = rejections(db)
    assert (refusal.source, refusal.status_code) == ("/webhooks/stripe", 401)
    assert '"invoice.paid"' in refusal.excerpt
    assert queued(db) == []


@pytest.mark.anyio
async def test_a_changed_body_is_refused(db) -> None:
    known_deal(db)
    body = stripe_event("invoice.payment_failed")
    answer = await post(db, body, header(body), sent=body.replace(b"payment_failed", b"paid"))
    assert answer.status_code == 401 and "does not match" in answer.json()["error"]["message"]
    assert queued(db) == []


@pytest.mark.anyio
async def test_without_a_secret_the_endpoint_is_not_offered(db) -> None:
    body = stripe_event()
    answer = await post(db, body, header(body), secret=None)
    assert answer.status_code == 404 and "HANDOFF_STRIPE_WEBHOOK_SECRET" in answer.json()["error"]["message"]
    assert stripe_webhooks.webhook_secret({"HANDOFF_STRIPE_WEBHOOK_SECRET": " whsec_x "}) == "whsec_x"
    assert stripe_webhooks.webhook_secret({}) is None


@pytest.mark.anyio
async def test_a_signed_body_that_is_not_an_event_is_a_bad_request(db) -> None:
    body = b'{"object": "invoice"}'
    answer = await post(db, body, header(body))
    assert answer.status_code == 400 and rejections(db)[0].status_code == 400


# --- end to end: Stripe twin → handoff → HubSpot twin --------------------------------------------

# hubspot_twin: the session fixture of tests/conftest.py


class Serving:
    """An ASGI app on a real port in a thread of this process: Stripe's twin calls it."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="critical", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Serving:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("handoff's API did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def handoff_api(db) -> Iterator[Serving]:
    with Serving(handoff_app(db)) as serving:
        yield serving


def worker(db, billing: StripeConnector, crm: Any) -> Worker:
    """Projects in an ERP that does not invoice (in memory), invoices in Stripe, the CRM in
    HubSpot; no schedules, so only events and webhooks make work."""
    settings = Settings(retry=RetryPolicy(base_seconds=0.01, cap_seconds=0.05, max_attempts=5))
    controllers = [ProvisioningController(db, MemoryErp(), settings.release, ownership=settings.ownership),
                   BillingController(db, billing, settings.billing), WriteBackController(db, crm)]
    return Worker(db, controllers, settings.retry, concurrency=2, poll_seconds=0.01)


def crm_billing(crm: Any, deal_id: str) -> tuple[str, str, str]:
    deal = crm.get_opportunity(deal_id)
    return deal["handoff_invoiced_amount"], deal["handoff_paid_amount"], deal["handoff_open_balance"]


@pytest.mark.slow
def test_a_payment_in_stripe_reaches_the_crm_only_through_a_correctly_signed_webhook(
        db, stripe_twin: TwinProcess, hubspot_twin: Any, handoff_api: Serving) -> None:
    stripe_support.fresh(stripe_twin, webhook_url=f"http://127.0.0.1:{handoff_api.port}/webhooks/stripe",
                         webhook_secret="whsec_an_old_endpoints_secret")
    hubspot_support.fresh(hubspot_twin, search_per_second=1000)
    crm = hubspot_support.connector(hubspot_twin)
    company = crm.create_account(company_properties({"name": "Globex", "currency": "USD"}))
    deal = crm.create_opportunity(deal_properties({"name": "Globex migration", "stage": "closedwon",
                                                   "amount": "120000.00", "currency": "USD"}),
                                  company_id=company)
    accept(db, customer_event(customer_data(company, name="Globex Corporation")), utcnow())
    accept(db, event(opportunity_data(deal, company, billing_method="milestone", milestones=SCHEDULE)),
           utcnow())
    accept(db, milestone_event(milestone_data(deal, "M1")), utcnow())
    billing = StripeConnector(stripe_support.settings_for(stripe_twin), StoreCustomers(db))
    worker(db, billing, crm).run(until_idle=True)

    [invoice] = stripe_support.objects(stripe_twin, "invoice")
    assert (invoice["status"], invoice["total"]) == ("open", 3000000)
    assert invoice["metadata"]["opportunity_id"] == deal
    assert crm_billing(crm, deal) == ("30000.00", "0.00", "30000.00")

    # The customer pays; Stripe signs invoice.paid with a secret handoff does not hold: refused.
    paid = stripe_support.pay(stripe_twin, invoice["id"])
    assert [e["type"] for e in paid["events"]] == ["invoice.payment_succeeded", "invoice.paid"]
    assert [e["delivery"]["status"] for e in paid["events"]] == [401, 401]
    assert [r.source for r in rejections(db)] == ["/webhooks/stripe"] * 2
    paid_event = paid["events"][1]
    assert queued(db) == []
    worker(db, billing, crm).run(until_idle=True)
    assert crm_billing(crm, deal) == ("30000.00", "0.00", "30000.00")  # the CRM was not told

    # The endpoint's secret is put right and Stripe sends the event again: taken.
    stripe_support.set_twin(stripe_twin, webhook_url=f"http://127.0.0.1:{handoff_api.port}/webhooks/stripe",
                            webhook_secret=SECRET)
    again = stripe_support.control(stripe_twin, "POST", f"/_twin/events/{paid_event['id']}/deliver")
    assert again["status"] == 200
    assert queued(db) == [f"billing:{deal}", f"crm:{deal}"]
    worker(db, billing, crm).run(until_idle=True)
    assert crm_billing(crm, deal) == ("30000.00", "30000.00", "0.00")
    with db.reading() as conn:
        [row] = conn.execute(sa.select(invoices)).all()
    assert (row.system, row.target_id, row.status, row.amount_due) == ("stripe", invoice["id"], "paid",
                                                                       Decimal("0.00"))
    assert datetime.now(UTC) >= row.observed_at
