"""StripeConnector: handoff's BillingConnector over Stripe Billing, on stripe-python.

For firms whose ERP keeps projects but does not invoice: the deal's billing lines become Stripe
invoices (one invoice item each) for the deal's customer, and credit notes against them.

Every create carries an Idempotency-Key derived from the business key (`request.external_id`
and the step), so a call repeated after a lost response is a replay of the first one. Stripe
keeps keys about 24 h, so each step also looks first for what an earlier attempt made (by
metadata `handoff_external_id`, listing the customer's invoices or credit notes — lists are
read-after-write, search is not): a retry days later still finds the invoice.

    customer     found by search on metadata handoff_customer, else created (its key replays
                 a creation search cannot see yet)
    invoice      a draft (auto_advance off, no pending items), then its one invoice item, then
                 finalized unless `request.post` is False
    credit note  against the newest open or paid invoice of the same deal and line that can
                 take it: first off what is still due, the rest to the customer's balance (or
                 outside Stripe, `post_payment_credit`)

stripe-python never retries here (`max_network_retries = 0`): handoff's engine owns retries
and the keys make them safe. Every HTTP call goes through `TracedHttpClient`, so it carries
the deal's `traceparent` and X-Correlation-Id.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any, TypeVar

import stripe

from handoff.connectors.budget import paced
from handoff.connectors.ports import DocumentFigures, RateBudget
from handoff.connectors.stripe.customers import CustomerDirectory, CustomerRef, ErpCustomerKeys
from handoff.connectors.stripe.errors import SYSTEM, KeyConflict, translate
from handoff.connectors.stripe.http import TracedHttpClient
from handoff.connectors.stripe.mapping import (
    LINE,
    OPPORTUNITY,
    credit_note_from,
    credit_note_params,
    creditable,
    customer_params,
    customer_search_query,
    deal_of,
    document_figures_from,
    external_id_of,
    from_minor,
    idempotency_key,
    invoice_from,
    invoice_item_params,
    invoice_params,
    is_credit_note_id,
    line_of,
    to_minor,
)
from handoff.connectors.stripe.settings import StripeSettings
from handoff.domain import Invoice, InvoiceRequest, Money
from handoff.errors import BusinessRuleError, TransientError

__all__ = ["StripeConnector", "StripeSettings"]

T = TypeVar("T")
Document = dict[str, Any]


class StripeConnector:
    """Safe to share between worker threads (one pooled HTTP client, a locked customer cache)."""

    system = SYSTEM

    def __init__(self, settings: StripeSettings, customers: CustomerDirectory | None = None,
                 http_client: stripe.HTTPClient | None = None) -> None:
        self.settings = settings
        self.customers = customers or ErpCustomerKeys()
        self._http = http_client or TracedHttpClient(settings.timeout, settings.max_connections)
        self._stripe = stripe.StripeClient(
            settings.api_key, base_addresses={"api": settings.base_url.rstrip("/")},
            stripe_version=settings.api_version, max_network_retries=settings.max_network_retries,
            http_client=self._http)
        self._customer_ids: dict[str, str] = {}
        self._lock = threading.Lock()
        self._limiter = paced(vendor_budget(settings), settings.budget, SYSTEM)  # learns from 429s
        self.budget = self._limiter.budget

    # --- BillingConnector ---------------------------------------------------------------------

    def issue_invoice(self, request: InvoiceRequest, project_target_id: str) -> Invoice:
        to_minor(request.line.amount)  # refuse an amount Stripe cannot take before any call
        customer_id = self._customer(self.customers.customer_for(request))
        if request.is_credit:
            return credit_note_from(self._credit_note(request, customer_id, project_target_id))
        invoice = self._find(self._v1.invoices.list, {"customer": customer_id}, request.external_id)
        if invoice is None:
            invoice = self._create(self._v1.invoices.create,
                                   invoice_params(request, customer_id, project_target_id, self.settings),
                                   request.external_id, "invoice",
                                   lambda: self._find(self._v1.invoices.list, {"customer": customer_id},
                                                      request.external_id))
        if invoice["status"] == "draft":
            if not (invoice.get("lines") or {}).get("data"):
                self._create(self._v1.invoice_items.create,
                             invoice_item_params(request, customer_id, invoice["id"], project_target_id),
                             request.external_id, "item")
                invoice = self._retrieve_invoice(invoice["id"])
            if request.post:
                draft_id = str(invoice["id"])
                invoice = self._call(lambda: self._v1.invoices.finalize_invoice(
                    draft_id, {"auto_advance": self.settings.auto_advance},
                    {"idempotency_key": idempotency_key(request.external_id, "finalize")})).to_dict()
        return invoice_from(invoice)

    def read_invoice(self, target_id: str) -> Invoice:
        """An invoice (`in_…`) or a credit note (`cn_…`) as Stripe shows it now."""
        if is_credit_note_id(target_id):
            return credit_note_from(self._call(lambda: self._v1.credit_notes.retrieve(target_id)).to_dict())
        return invoice_from(self._retrieve_invoice(target_id))

    # --- reconciliation (documents only: projects live in the ERP) ------------------------------

    def document_figures(self) -> Iterator[DocumentFigures]:
        """Every invoice handoff made (metadata opportunity_id), and every credit note of a deal:
        handoff's by its metadata, one made by hand in Stripe by the invoice it credits."""
        deals: dict[str, str] = {}
        for invoice in self._pages(self._v1.invoices.list, {}):
            deal = deal_of(invoice)
            if deal:
                deals[invoice["id"]] = deal
                if invoice.get("status") != "draft":  # a draft bills nothing yet
                    yield document_figures_from(invoice, deal)
        for note in self._pages(self._v1.credit_notes.list, {}):
            deal = deal_of(note) or deals.get(str(note.get("invoice")))
            if deal:
                yield document_figures_from(note, deal)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StripeConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- steps --------------------------------------------------------------------------------

    @property
    def _v1(self) -> Any:
        return self._stripe.v1

    def _customer(self, ref: CustomerRef) -> str:
        with self._lock:
            known = self._customer_ids.get(ref.key)
        if known:
            return known
        query = customer_search_query(ref.key)
        found = self._call(lambda: self._v1.customers.search({"query": query, "limit": 1})).data
        if found:
            customer_id = str(found[0]["id"])
        else:
            try:
                customer_id = str(self._create(self._v1.customers.create,
                                               customer_params(ref.key, ref.name, ref.email),
                                               ref.key, "customer")["id"])
            except KeyConflict as exc:
                raise TransientError(f"customer {ref.key} is being created with other details; "
                                     "Stripe's search will find it shortly", system=SYSTEM) from exc
        with self._lock:
            self._customer_ids[ref.key] = customer_id
        return customer_id

    def _credit_note(self, request: InvoiceRequest, customer_id: str, project_target_id: str) -> Document:
        def made() -> Document | None:
            return self._find(self._v1.credit_notes.list, {"customer": customer_id}, request.external_id)

        note = made()
        if note is not None:
            return note
        invoice = self._invoice_to_credit(request, customer_id)
        params = credit_note_params(request, invoice, project_target_id, self.settings)
        return self._create(self._v1.credit_notes.create, params, request.external_id, "credit_note", made)

    def _invoice_to_credit(self, request: InvoiceRequest, customer_id: str) -> Document:
        """The newest finalized invoice of the same deal and line that can take the credit."""
        amount, line = -to_minor(request.line.amount), line_of(request)
        seen = []
        for invoice in self._pages(self._v1.invoices.list, {"customer": customer_id}):
            metadata = invoice.get("metadata") or {}
            if metadata.get(OPPORTUNITY) != request.opportunity_id or metadata.get(LINE) != line:
                continue
            room = creditable(invoice)
            if room >= amount:
                return invoice
            seen.append(f"{invoice.get('number') or invoice['id']} ({invoice.get('status')}, "
                        f"{_money(room, invoice)} creditable)")
        credit = Money(Decimal(0) - request.line.amount.amount, request.line.amount.currency)
        found = "; ".join(seen) if seen else "none is finalized in Stripe"
        raise BusinessRuleError(
            f"no invoice of line {line} of deal {request.opportunity_id} in Stripe can take a credit "
            f"note of {credit}: {found}. A person must split or void it", system=SYSTEM)

    def _retrieve_invoice(self, invoice_id: str) -> Document:
        return self._call(lambda: self._v1.invoices.retrieve(invoice_id)).to_dict()

    def _create(self, create: Callable[..., Any], params: Mapping[str, Any], business_key: str,
                step: str, made: Callable[[], Document | None] | None = None) -> Document:
        """One create under its derived Idempotency-Key. A key Stripe says was used with other
        parameters (the request changed since a lost attempt): what that attempt made is
        looked up, and taken when found."""
        options = {"idempotency_key": idempotency_key(business_key, step)}
        try:
            return self._call(lambda: create(dict(params), options)).to_dict()
        except KeyConflict:
            found = made() if made else None
            if found is None:
                raise
            return found

    def _find(self, list_call: Callable[..., Any], params: Mapping[str, Any],
              external_id: str) -> Document | None:
        """The object (newest first) whose metadata names this business key."""
        return next((o for o in self._pages(list_call, params) if external_id_of(o) == external_id),
                    None)

    def _pages(self, list_call: Callable[..., Any], params: Mapping[str, Any]) -> Iterator[Document]:
        """Every object of a list, page by page (starting_after the last id while has_more)."""
        after: str | None = None
        while True:
            query = {**params, "limit": self.settings.page_size}
            if after:
                query["starting_after"] = after
            page = self._call(lambda query=query: list_call(query))
            items = [item.to_dict() for item in page.data]
            yield from items
            if not page.has_more or not items:
                return
            after = str(items[-1]["id"])

    def _call(self, call: Callable[[], T]) -> T:
        with self._limiter.slot():  # a ThrottledError raised in it slows the connector down
            try:
                return call()
            except stripe.StripeError as exc:
                raise translate(exc, self.settings.throttle_wait_seconds) from exc


def vendor_budget(settings: StripeSettings) -> RateBudget:
    """Stripe's documented global limit: 100 requests/s in live mode, 25 in a sandbox (test
    mode); 25/s per endpoint by default and search 20/s. An account may have other figures."""
    live = settings.api_key.startswith(("sk_live_", "rk_live_"))
    return RateBudget(requests=100 if live else 25, window_seconds=1.0, concurrency=None,
                      source="docs.stripe.com/rate-limits: live 100 requests/s, sandbox 25/s, "
                             "25/s per endpoint by default, search 20/s (⚠ per account)")


def _money(minor: int, document: Mapping[str, Any]) -> str:
    return str(from_minor(minor, str(document["currency"])))
