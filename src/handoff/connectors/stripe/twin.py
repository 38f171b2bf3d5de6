"""A Stripe sandbox twin: Stripe's v1 paths, form-encoded requests, idempotency keys, list
paging, error bodies and signed webhooks for what handoff bills with, served locally over plain
HTTP so stripe-python talks to it unchanged
(`StripeClient(SANDBOX_KEY, base_addresses={"api": <twin base URL>})`).

    POST /v1/customers                 GET /v1/customers[/{id}]   GET /v1/customers/search
    POST /v1/invoiceitems              GET /v1/invoiceitems[/{id}]
    POST /v1/invoices                  GET /v1/invoices[/{id}]
    POST /v1/invoices/{id}/finalize | pay | void | mark_uncollectible
    POST /v1/credit_notes              GET /v1/credit_notes[/{id}]

Requests: `Authorization: Bearer <key>` (or Basic with the key as user name), else 401; POST
bodies `application/x-www-form-urlencoded` with bracket nesting (`metadata[k]=v`); an unknown
parameter is refused as Stripe refuses it. Lists: `limit` 1-100 (default 10), `starting_after`
/ `ending_before`, newest first, `{"object": "list", "has_more", "data", "url"}`; search:
`metadata['k']:'v'` and `field:'v'` clauses joined by AND, answered as a `search_result`, and
blind to objects younger than `search_lag_seconds` (Stripe's search is not read-after-write).

Idempotency (per API key): the first answer to a POST with an `Idempotency-Key` is kept
(status and body; not a request refused by validation, auth or rate limits) and replayed for
the same key and the same parameters with `Idempotent-Replayed: true`; the same key with other
parameters or on another endpoint is a 400 `idempotency_error`. Keys expire after
`idempotency_ttl_seconds` (24 h). Limits: `requests_per_second` (25, a sandbox account's) and
`search_per_second` (20) per key; over them 429 `rate_limit`. Every answer carries Request-Id.

Events: every change records a v1 event (`invoice.finalized`, `invoice.paid`,
`invoice.payment_succeeded`, `invoice.payment_failed`, `invoice.voided`,
`invoice.marked_uncollectible`, `credit_note.created`); with `webhook_url` and
`webhook_secret` set it is POSTed there signed `Stripe-Signature: t=…,v1=…` (in the background
for API calls, when `deliver_api_events`).

⚠ The twin keeps no payment methods: `POST /v1/invoices/{id}/pay` pays only with
`paid_out_of_band=true`; without it the answer is a card decline (402 card_error).

Twin-only controls, besides those of `sandbox.build_twin`:

    POST /_twin/invoices/{id}/pay       {"amount": minor units (default: all due), "decline":
                                        false}: a customer's payment (or failed attempt); its
                                        events are delivered before the answer, which lists them
                                        with each delivery's HTTP status
    GET  /_twin/events                  every event, oldest first, with its deliveries
    POST /_twin/events/{id}/deliver     send one again (signed now)
    GET  /_twin/objects/{kind}          customer | invoice | invoiceitem | credit_note, oldest first
    GET|PUT /_twin/settings             the settings above and max_amount, api_version,
                                        send_retry_after; reset restores them
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import os
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import httpx
import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from handoff.connectors.sandbox import TwinControl, build_twin
from handoff.connectors.stripe.twin_store import (
    PREFIXES,
    Event,
    Obj,
    Store,
    StripeFault,
    integer,
    matches,
    render,
    text,
)

SANDBOX_KEY = "sk_test_handoff_twin_0000000000000000"
KEY_ENV = "HANDOFF_STRIPE_TWIN_API_KEY"
LIST_LIMIT = 100
KEY_MAX = 255
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")
_CLAUSE = re.compile(r"""^\s*(?:metadata\['(?P<key>(?:[^'\\]|\\.)*)'\]|(?P<field>[a-z_]+))\s*:\s*"""
                     r"""'(?P<value>(?:[^'\\]|\\.)*)'\s*$""")
# Parameters each write takes (besides `expand`); anything else is refused, as Stripe does.
WRITES: Mapping[str, frozenset[str]] = {
    "customer": frozenset({"name", "email", "description", "metadata", "phone"}),
    "invoiceitem": frozenset({"customer", "invoice", "amount", "currency", "description", "metadata",
                              "period", "discountable"}),
    "invoice": frozenset({"customer", "currency", "collection_method", "days_until_due", "due_date",
                          "auto_advance", "pending_invoice_items_behavior", "description", "metadata",
                          "footer"}),
    "finalize": frozenset({"auto_advance"}),
    "pay": frozenset({"paid_out_of_band"}),
    "none": frozenset(),
    "credit_note": frozenset({"invoice", "amount", "credit_amount", "out_of_band_amount", "refund_amount",
                              "memo", "reason", "metadata", "lines", "refunds", "effective_at"}),
}
Outcome = tuple[Obj, list[tuple[str, Obj]]]  # the object answered, and (event type, its object)
Handler = Callable[[dict[str, Any], Mapping[str, str]], Outcome]


class JsonResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


@dataclass(frozen=True)
class TwinSettings:
    requests_per_second: int = 25
    search_per_second: int = 20
    search_lag_seconds: float = 0.0
    idempotency_ttl_seconds: float = 86_400.0
    send_retry_after: bool = False
    webhook_url: str | None = None
    webhook_secret: str | None = None
    deliver_api_events: bool = True
    max_amount: int | None = None
    api_version: str = "2026-06-24.dahlia"

    def __post_init__(self) -> None:
        for name in ("requests_per_second", "search_per_second"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a whole number of at least 1")
        if self.webhook_url is not None and not self.webhook_url.startswith(("http://", "https://")):
            raise ValueError("webhook_url must be an http(s) URL")


@dataclass
class Saved:
    endpoint: str
    fingerprint: tuple[tuple[str, str], ...]
    status: int
    body: bytes
    request_id: str
    at: float


class Limiter:
    """At most N requests per rolling second per key (search counted on its own too)."""

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str], deque[float]] = {}

    def admit(self, key: str, kind: str, limit: int) -> float | None:
        """None when admitted, else the seconds until a slot frees."""
        now = time.monotonic()
        calls = self.calls.setdefault((key, kind), deque())
        while calls and calls[0] <= now - 1.0:
            calls.popleft()
        if len(calls) >= limit:
            return calls[0] + 1.0 - now
        calls.append(now)
        return None


class StripeTwin:
    def __init__(self, api_key: str = SANDBOX_KEY) -> None:
        self.api_key = api_key
        self.control = TwinControl()
        self._background: set[asyncio.Task[Any]] = set()
        self.reset()

    def reset(self) -> None:
        self.settings = TwinSettings()
        self.store = Store()
        self.limiter = Limiter()
        self.saved: dict[tuple[str, str], Saved] = {}

    def routes(self) -> list[Route]:
        api = self._api
        return [
            Route("/v1/customers", api(self.create_customer, "customer"), methods=["POST"]),
            Route("/v1/customers", api(self.list_of("customer", ("email",))), methods=["GET"]),
            Route("/v1/customers/search", api(self.search_customers, search=True), methods=["GET"]),
            Route("/v1/customers/{id}", api(self.read("customer")), methods=["GET"]),
            Route("/v1/invoiceitems", api(self.create_invoice_item, "invoiceitem"), methods=["POST"]),
            Route("/v1/invoiceitems", api(self.list_of("invoiceitem", ("customer", "invoice"))),
                  methods=["GET"]),
            Route("/v1/invoiceitems/{id}", api(self.read("invoiceitem")), methods=["GET"]),
            Route("/v1/invoices", api(self.create_invoice, "invoice"), methods=["POST"]),
            Route("/v1/invoices", api(self.list_of("invoice", ("customer", "status", "collection_method"))),
                  methods=["GET"]),
            Route("/v1/invoices/{id}", api(self.read("invoice")), methods=["GET"]),
            Route("/v1/invoices/{id}/finalize", api(self.finalize, "finalize"), methods=["POST"]),
            Route("/v1/invoices/{id}/pay", api(self.pay, "pay"), methods=["POST"]),
            Route("/v1/invoices/{id}/void", api(self.void, "none"), methods=["POST"]),
            Route("/v1/invoices/{id}/mark_uncollectible", api(self.mark_uncollectible, "none"),
                  methods=["POST"]),
            Route("/v1/credit_notes", api(self.create_credit_note, "credit_note"), methods=["POST"]),
            Route("/v1/credit_notes", api(self.list_of("credit_note", ("customer", "invoice"))),
                  methods=["GET"]),
            Route("/v1/credit_notes/{id}", api(self.read("credit_note")), methods=["GET"]),
            Route("/v1/{rest:path}", api(self.unknown), methods=["GET", "POST", "DELETE"]),
            Route("/_twin/invoices/{id}/pay", self.control_pay, methods=["POST"]),
            Route("/_twin/events", self.list_events, methods=["GET"]),
            Route("/_twin/events/{id}/deliver", self.redeliver, methods=["POST"]),
            Route("/_twin/objects/{kind}", self.all_objects, methods=["GET"]),
            Route("/_twin/settings", self.get_settings, methods=["GET"]),
            Route("/_twin/settings", self.put_settings, methods=["PUT"]),
        ]

    # --- plumbing shared by every API resource ------------------------------------------------

    def _api(self, handler: Handler, writes: str | None = None, search: bool = False
             ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            request_id = "req_" + secrets.token_hex(7)
            headers = {"Request-Id": request_id,
                       "Stripe-Version": request.headers.get("stripe-version") or self.settings.api_version}
            try:
                key = self._authenticate(request)
                self._admit(key, search)
                raw = (await request.body()).decode("utf-8", "replace") if request.method == "POST" else ""
                params = parse_form(raw if request.method == "POST" else request.url.query)
                if writes is not None:
                    _refuse_unknown(params, WRITES[writes])
                response = self._idempotent(request, key, raw, request_id, headers, handler, params)
            except StripeFault as fault:
                response = self._error(fault, request_id)
                response.headers.update(headers)
            return response

        return endpoint

    def _idempotent(self, request: Request, key: str, raw: str, request_id: str,
                    headers: dict[str, str], handler: Handler, params: dict[str, Any]) -> Response:
        idempotency_key = request.headers.get("idempotency-key") if request.method == "POST" else None
        endpoint_name = f"{request.method} {request.url.path}"
        fingerprint = tuple(sorted(parse_qsl(raw, keep_blank_values=True)))
        if idempotency_key is not None:
            if len(idempotency_key) > KEY_MAX:
                raise StripeFault(400, f"Idempotency-Key must be at most {KEY_MAX} characters long.",
                                  type="idempotency_error")
            saved = self.saved.get((key, idempotency_key))
            if saved and time.time() - saved.at > self.settings.idempotency_ttl_seconds:
                saved = None
            if saved is not None:
                if saved.endpoint != endpoint_name:
                    raise StripeFault(400, "Keys for idempotent requests can only be used for the same "
                                           f"endpoint they were first used for ('{saved.endpoint}'). Try "
                                           "using a key other than "
                                           f"'{idempotency_key}' if you meant to execute a different "
                                           "request.", type="idempotency_error")
                if saved.fingerprint != fingerprint:
                    raise StripeFault(400, "Keys for idempotent requests can only be used with the same "
                                           "parameters they were first used with. Try using a key other "
                                           f"than '{idempotency_key}' if you meant to execute a different "
                                           "request.", type="idempotency_error")
                return Response(saved.body, status_code=saved.status, media_type="application/json",
                                headers=headers | {"Idempotent-Replayed": "true",
                                                   "Original-Request": saved.request_id,
                                                   "Idempotency-Key": idempotency_key})
        context = {"id": request_id, "idempotency_key": idempotency_key}
        try:
            obj, events = handler(params, request.path_params)
            response: Response = JsonResponse(render(obj, self.store), headers=headers)
        except StripeFault as fault:
            if fault.status != 402:  # refused before executing: nothing is kept
                raise
            events = []
            response = self._error(fault, request_id)
            response.headers.update(headers)
        if idempotency_key is not None:
            response.headers["Idempotency-Key"] = idempotency_key
            self.saved[(key, idempotency_key)] = Saved(endpoint_name, fingerprint, response.status_code,
                                                        bytes(response.body), request_id, time.time())
        for kind, subject in events:
            event = self.store.emit(kind, subject, context)
            if self.settings.deliver_api_events and self._webhook_configured():
                task = asyncio.get_running_loop().create_task(self.deliver(event))
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        return response

    def _authenticate(self, request: Request) -> str:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                credential = base64.b64decode(credential).decode().partition(":")[0]
            except (ValueError, UnicodeDecodeError):
                credential = ""
        elif scheme.lower() != "bearer":
            credential = ""
        if not credential:
            raise StripeFault(401, "You did not provide an API key. You need to provide your API key in "
                                   "the Authorization header, using Bearer auth (e.g. 'Authorization: "
                                   "Bearer YOUR_SECRET_KEY').")
        if not hmac.compare_digest(credential.encode(), self.api_key.encode()):
            raise StripeFault(401, f"Invalid API Key provided: {credential[:8]}{'*' * 12}{credential[-4:]}",
                              code="api_key_expired" if credential.startswith("sk_test_expired")
                              else None)
        return credential

    def _admit(self, key: str, search: bool) -> None:
        wait = self.limiter.admit(key, "all", self.settings.requests_per_second)
        if wait is None and search:
            wait = self.limiter.admit(key, "search", self.settings.search_per_second)
        if wait is not None:
            fault = rate_limited()
            if self.settings.send_retry_after:
                fault.headers["Retry-After"] = str(max(1, round(wait)))
            raise fault

    def _error(self, fault: StripeFault, request_id: str) -> Response:
        response = JsonResponse(fault.body(request_id), status_code=fault.status)
        response.headers.update(fault.headers)
        return response

    def error_response(self, status: int, kind: str, retry_after: float | None) -> Response:
        """An injected fault in Stripe's words (sandbox.FaultMiddleware adds Retry-After)."""
        if status == 429:
            return JsonResponse(rate_limited().body(), status_code=429)
        fault = StripeFault(status, f"Stripe is temporarily unavailable ({kind}); please retry.",
                            type="api_error")
        return JsonResponse(fault.body(), status_code=status, headers={"Stripe-Should-Retry": "true"})

    # --- resources ----------------------------------------------------------------------------

    def create_customer(self, params: dict[str, Any], path: Mapping[str, str]) -> Outcome:
        return self.store.create_customer(params), []

    def create_invoice_item(self, params: dict[str, Any], path: Mapping[str, str]) -> Outcome:
        self.store.max_amount = self.settings.max_amount
        return self.store.create_invoice_item(params), []

    def create_invoice(self, params: dict[str, Any], path: Mapping[str, str]) -> Outcome:
        return self.store.create_invoice(params), []

    def finalize(self, params: dict[str, Any], path: Mapping[str, str]) -> Outcome:
        invoice, events = self.store.finalize(path["id"], params)
        return invoice, [(e, invoice) for e in events]

    def pay(self, params: dict[str, Any], path: Mapping[str, str]) -> Outcome:
        if params.get("paid_out_of_band") != "true":
            raise StripeFault(402, "Your card was declined.", type="card_error", code="card_declined",
                              decline_code="generic_decline", param="payment_method")
        invoice, events = self.store.pay(path["id"])
        return invoice, [(e, invoice) for e in events]

    def void(self, params: dict[str, Any], path: Mapping[str, str]) -> Outcome:
        invoice, events = self.store.void(path["id"])
        return invoice, [(e, invoice) for e in events]

    def mark_uncollectible(self, params: dict[str, Any], path: Mapping[str, str]) -> Outcome:
        invoice, events = self.store.mark_uncollectible(path["id"])
        return invoice, [(e, invoice) for e in events]

    def create_credit_note(self, params: dict[str, Any], path: Mapping[str, str]) -> Outcome:
        note, events = self.store.create_credit_note(params)
        invoice = self.store.get("invoice", note["invoice"])
        return note, [(e, note if e.startswith("credit_note.") else invoice) for e in events]

    def read(self, kind: str) -> Handler:
        def handler(params: dict[str, Any], path: Mapping[str, str]) -> Outcome:
            return self.store.get(kind, path["id"]), []

        return handler

    def list_of(self, kind: str, filters: tuple[str, ...]) -> Handler:
        def handler(params: dict[str, Any], path: Mapping[str, str]) -> Outcome:
            wanted = {name: params[name] for name in filters if params.get(name)}
            rows = self.store.newest_first(kind, lambda o: all(o.get(k) == v for k, v in wanted.items()))
            return self._page(kind, rows, params), []

        return handler

    def _page(self, kind: str, rows: list[Obj], params: Mapping[str, Any]) -> Obj:
        limit = integer(params, "limit") or 10
        if not 1 <= limit <= LIST_LIMIT:
            raise StripeFault(400, f"This value must be less than or equal to {LIST_LIMIT}.",
                              code="parameter_invalid_integer", param="limit")
        after, before = text(params, "starting_after"), text(params, "ending_before")
        if after and before:
            raise StripeFault(400, "You may only specify one of these parameters: ending_before, "
                                   "starting_after.", param="ending_before")
        cursor = after or before
        if cursor:
            seq = self.store._order.get(cursor)
            if seq is None or not cursor.startswith(PREFIXES[kind] + "_"):
                raise StripeFault(400, f"No such {kind}: '{cursor}'", code="resource_missing",
                                  param="starting_after" if after else "ending_before")
            order = self.store._order
            if after:
                rows = [r for r in rows if order[r["id"]] < seq]
                data, has_more = rows[:limit], len(rows) > limit
            else:
                rows = [r for r in rows if order[r["id"]] > seq]
                data, has_more = rows[-limit:], len(rows) > limit
        else:
            data, has_more = rows[:limit], len(rows) > limit
        url = {"invoiceitem": "invoiceitems", "credit_note": "credit_notes"}.get(kind, kind + "s")
        return {"object": "list", "url": f"/v1/{url}", "has_more": has_more,
                "data": [render(r, self.store) for r in data]}

    def search_customers(self, params: dict[str, Any], path: Mapping[str, str]) -> Outcome:
        query = text(params, "query", required=True) or ""
        clauses = []
        for part in query.split(" AND "):
            match = _CLAUSE.match(part)
            if match is None:
                raise StripeFault(400, f"Invalid query: `{part.strip()}` is not a supported search clause.",
                                  param="query")
            name = "metadata" if match["key"] is not None else match["field"]
            clauses.append((name, _unescape(match["key"] or ""), _unescape(match["value"])))
        limit = integer(params, "limit") or 10
        if not 1 <= limit <= LIST_LIMIT:
            raise StripeFault(400, f"This value must be less than or equal to {LIST_LIMIT}.", param="limit")
        visible_before = self.store.now() - self.settings.search_lag_seconds
        rows = self.store.newest_first("customer", lambda o: o["created"] <= visible_before
                                       and matches(o, clauses))
        start = int(text(params, "page") or 0)
        data = rows[start:start + limit]
        more = len(rows) > start + limit
        return {"object": "search_result", "url": "/v1/customers/search", "has_more": more,
                "next_page": str(start + limit) if more else None, "total_count": len(rows),
                "data": [render(r, self.store) for r in data]}, []

    def unknown(self, params: dict[str, Any], path: Mapping[str, str]) -> Outcome:
        raise StripeFault(404, f"Unrecognized request URL (/v1/{path['rest']}). Please see "
                               "https://stripe.com/docs or we can help at https://support.stripe.com/.")

    # --- events and webhooks ------------------------------------------------------------------

    def _webhook_configured(self) -> bool:
        return bool(self.settings.webhook_url and self.settings.webhook_secret)

    def event_body(self, event: Event) -> Obj:
        return {"id": event.id, "object": "event", "api_version": self.settings.api_version,
                "created": event.created, "data": {"object": event.object}, "livemode": False,
                "pending_webhooks": 1 if self._webhook_configured() else 0,
                "request": event.request, "type": event.type}

    async def deliver(self, event: Event) -> Obj:
        """POST the event, signed as Stripe signs, to the webhook URL; the delivery recorded."""
        url, secret = self.settings.webhook_url, self.settings.webhook_secret
        if not (url and secret):
            delivery: Obj = {"at": time.time(), "status": None, "error": "no webhook_url/webhook_secret"}
            event.deliveries.append(delivery)
            return delivery
        payload = orjson.dumps(self.event_body(event))
        stamp = int(time.time())
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                   "Stripe-Signature": signature_header(payload, secret, stamp)}
        delivery = {"at": stamp, "status": None, "error": None}
        try:
            async with httpx.AsyncClient(timeout=10.0) as client:
                answer = await client.post(url, content=payload, headers=headers)
            delivery["status"] = answer.status_code
        except httpx.HTTPError as exc:
            delivery["error"] = f"{type(exc).__name__}: {exc}"
        event.deliveries.append(delivery)
        return delivery

    # --- twin-only controls ---------------------------------------------------------------------

    async def control_pay(self, request: Request) -> Response:
        body = await _json(request)
        amount, decline = body.get("amount"), bool(body.get("decline", False))
        if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int)):
            return JsonResponse({"error": "amount must be an integer in the minor unit"}, status_code=400)
        try:
            invoice, kinds = self.store.pay(request.path_params["id"], amount, decline=decline)
        except StripeFault as fault:
            return self._error(fault, "req_twin")
        events = []
        for kind in kinds:
            event = self.store.emit(kind, invoice)
            delivery = await self.deliver(event)
            events.append({"id": event.id, "type": event.type, "delivery": delivery})
        return JsonResponse({"invoice": render(invoice, self.store), "events": events})

    async def list_events(self, request: Request) -> Response:
        return JsonResponse([self.event_body(e) | {"deliveries": e.deliveries} for e in self.store.events])

    async def redeliver(self, request: Request) -> Response:
        event = next((e for e in self.store.events if e.id == request.path_params["id"]), None)
        if event is None:
            return JsonResponse({"error": "no such event"}, status_code=404)
        return JsonResponse(await self.deliver(event))

    async def all_objects(self, request: Request) -> Response:
        kind = request.path_params["kind"]
        if kind not in self.store.objects:
            return JsonResponse({"error": f"unknown kind {kind}"}, status_code=404)
        rows = reversed(self.store.newest_first(kind))
        return JsonResponse([render(r, self.store) for r in rows])

    async def get_settings(self, request: Request) -> Response:
        return JsonResponse(dataclasses.asdict(self.settings))

    async def put_settings(self, request: Request) -> Response:
        body = await _json(request)
        try:
            self.settings = TwinSettings(**body)
        except (TypeError, ValueError) as exc:
            return JsonResponse({"error": str(exc)}, status_code=400)
        self.store.api_version = self.settings.api_version
        return JsonResponse(dataclasses.asdict(self.settings))


def rate_limited() -> StripeFault:
    return StripeFault(429, "Request rate limit exceeded. Learn more about rate limits here "
                            "https://stripe.com/docs/rate-limits.", code="rate_limit")


def signature_header(payload: bytes, secret: str, timestamp: int) -> str:
    """Stripe-Signature as Stripe sends it: t=<unix>,v1=<hex HMAC-SHA256 of "t.payload">."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def parse_form(raw: str) -> dict[str, Any]:
    """Stripe's form encoding: `a=1&metadata[k]=v&expand[]=x` → {"a": "1", "metadata": {"k": "v"},
    "expand": ["x"]}."""
    result: dict[str, Any] = {}
    for name, value in parse_qsl(raw, keep_blank_values=True):
        match = _KEY.match(name)
        if match is None:
            raise StripeFault(400, f"Invalid parameter name: {name}", param=name)
        path = [match[1], *re.findall(r"\[([^\[\]]*)\]", match[2])]
        node: Any = result
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            following = None if last else path[depth + 1]
            if part == "":
                if not isinstance(node, list):
                    raise StripeFault(400, f"Invalid array: {name}", param=path[0])
                if last:
                    node.append(value)
                else:
                    node.append({})
                    node = node[-1]
                continue
            if not isinstance(node, dict):
                raise StripeFault(400, f"Invalid hash: {name}", param=path[0])
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, [] if following == "" else {})
    return result


def _refuse_unknown(params: Mapping[str, Any], allowed: frozenset[str]) -> None:
    for name in params:
        if name not in allowed and name != "expand":
            raise StripeFault(400, f"Received unknown parameter: {name}", code="parameter_unknown",
                              param=name)


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw:
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def create_app(api_key: str | None = None) -> ASGIApp:
    """The twin; the API key from the argument, else HANDOFF_STRIPE_TWIN_API_KEY, else SANDBOX_KEY."""
    twin = StripeTwin(api_key or os.environ.get(KEY_ENV) or SANDBOX_KEY)
    return build_twin(twin.routes(), twin.control, twin.reset, twin.error_response)
