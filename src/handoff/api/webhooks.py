"""`/webhooks/{system}`: vendor pushes, checked and turned into canonical CloudEvents.

    POST /webhooks/hubspot      HubSpot webhook array, X-HubSpot-Signature-v3 signed
    POST /webhooks/salesforce   text/xml: a workflow Outbound Message (answered with the SOAP ack)
                                application/json: a Change Data Capture event, relayed

Configuration comes from the environment only (`webhook_secrets`):

    HANDOFF_HUBSPOT_CLIENT_SECRET       the HubSpot app's client secret (signs its webhooks)
    HANDOFF_SALESFORCE_ORGANIZATION_ID  the org whose Outbound Messages are taken (15 or 18 chars)
    HANDOFF_WEBHOOK_BASE_URL            optional: the base URL vendors call when handoff is behind
                                        a proxy that changes scheme, host or path (HubSpot signs
                                        the URL it called)

A system without its setting is not offered: 404 saying which setting to make. Refusals use
handoff's one error body and are kept in intake_rejections; a refused webhook changes nothing
else.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from handoff.engine.clock import utcnow
from handoff.errors import IntakeError
from handoff.store.db import Database
from handoff.webhooks import hubspot, salesforce
from handoff.webhooks import stripe as stripe_webhooks
from handoff.webhooks.delivery import deliver, record_refusal
from handoff.webhooks.reading import CrmRecordReader, crm_readers

__all__ = ["WebhookSecrets", "crm_readers", "webhook_secrets", "webhooks_router"]

MAX_BODY = 4 * 1024 * 1024  # bytes; HubSpot sends < 100 events, Salesforce ≤ 100 notifications
SYSTEMS = ("hubspot", "salesforce", "stripe")


@dataclass(frozen=True)
class WebhookSecrets:
    hubspot_client_secret: str | None = field(default=None, repr=False)
    salesforce_organization_id: str | None = None
    base_url: str | None = None
    stripe_webhook_secret: str | None = field(default=None, repr=False)


def webhook_secrets(env: Mapping[str, str] | None = None) -> WebhookSecrets:
    """The webhook settings from the environment (HANDOFF_HUBSPOT_CLIENT_SECRET,
    HANDOFF_SALESFORCE_ORGANIZATION_ID, HANDOFF_WEBHOOK_BASE_URL, HANDOFF_STRIPE_WEBHOOK_SECRET);
    unset or blank is None."""
    env = os.environ if env is None else env

    def get(name: str) -> str | None:
        return (env.get(name) or "").strip() or None

    return WebhookSecrets(get("HANDOFF_HUBSPOT_CLIENT_SECRET"),
                          get("HANDOFF_SALESFORCE_ORGANIZATION_ID"), get("HANDOFF_WEBHOOK_BASE_URL"),
                          stripe_webhooks.webhook_secret(env))


def _error(status: int, message: str, field_name: str | None = None) -> dict[str, Any]:
    example = {"error": {"status": status, "message": message, "field": field_name}}
    return {"content": {"application/json": {"example": example}}}


SUMMARY = {"content": {"application/json": {"example": {
    "source": "/webhooks/hubspot",
    "accepted": [{"delivery": "802835955:697680835", "id": "802835955:697680835@2026-11-01T09:00:00.000Z",
                  "subject": "697680835", "outcome": "applied"}],
    "rejected": [], "ignored": [{"delivery": "802835956:697680836",
                                 "reason": "deal.deletion: handoff has no event for a deal deletion"}]}}}}
HUBSPOT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Taken: each event's outcome in the inbox (a record handoff refuses is "
                         "listed under `rejected` and kept as an intake rejection)", **SUMMARY},
    400: {"description": "Not a HubSpot event array", **_error(400, "event [0]: eventId is missing "
                                                                    "or not an id", "[0].eventId")},
    401: {"description": "Missing or bad X-HubSpot-Signature-v3, or a timestamp more than 5 minutes "
                         "away (replayed or stale)",
          **_error(401, "the X-HubSpot-Signature-v3 signature does not match the request",
                   "X-HubSpot-Signature-v3")},
    404: {"description": "HubSpot webhooks are not enabled (no HANDOFF_HUBSPOT_CLIENT_SECRET)"},
    413: {"description": f"Body over {MAX_BODY} bytes"},
    502: {"description": "HubSpot refused to give a record the events name"},
    503: {"description": "No HubSpot reader to read the records, or HubSpot could not be read "
                         "now: HubSpot retries"},
}
SALESFORCE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "An Outbound Message is acknowledged with Salesforce's SOAP ack; a CDC "
                         "event is answered with each record's outcome in the inbox",
          "content": {"text/xml": {"example": salesforce.ACK.decode()}, **SUMMARY["content"]}},
    400: {"description": "Malformed XML or JSON, or not an Outbound Message / CDC event",
          **_error(400, "body is not well-formed XML: mismatched tag: line 1, column 30", "body")},
    403: {"description": "The Outbound Message's OrganizationId is not the configured org",
          **_error(403, "OrganizationId '00D000000000001AAA' is not the Salesforce org handoff is "
                        "configured for", "OrganizationId")},
    404: {"description": "Salesforce webhooks are not enabled (no "
                         "HANDOFF_SALESFORCE_ORGANIZATION_ID)"},
    413: {"description": f"Body over {MAX_BODY} bytes"},
    415: {"description": "Neither text/xml (Outbound Message) nor application/json (CDC)"},
    502: {"description": "Salesforce refused to give a record the event names"},
    503: {"description": "No Salesforce reader to read the records, or Salesforce could not be "
                         "read now: the sender retries"},
}
STRIPE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Taken: the deal's invoices are read from Stripe again and the CRM told"},
    400: {"description": "Not a Stripe event"},
    401: {"description": "Missing or bad Stripe-Signature, or a timestamp more than 5 minutes away"},
    404: {"description": "Stripe webhooks are not enabled (no HANDOFF_STRIPE_WEBHOOK_SECRET)"},
    413: {"description": f"Body over {MAX_BODY} bytes"},
}
HUBSPOT_BODY = {"requestBody": {"required": True, "description": "HubSpot's webhook event array.",
                                "content": {"application/json": {"schema": {"type": "array",
                                                                            "items": {"type": "object"}}}}}}
SALESFORCE_BODY = {"requestBody": {
    "required": True,
    "description": "A SOAP 1.1 Outbound Message (`notifications`), or a Change Data Capture event "
                   "(CometD message, its payload, or an array of them) relayed as JSON.",
    "content": {"text/xml": {"schema": {"type": "string"}},
                "application/json": {"schema": {"type": "object"}}}}}


def webhooks_router(db: Database, secrets: WebhookSecrets,
                    readers: Mapping[str, CrmRecordReader] | None = None) -> APIRouter:
    """`readers` (by system name) read the whole record for a webhook that names it but does
    not carry it; see handoff.webhooks.crm_readers."""
    router = APIRouter(prefix="/webhooks", tags=["webhooks"])
    found = dict(readers or {})

    async def handle(request: Request, source: str,
                     work: Callable[[bytes, datetime], Response]) -> Response:
        now, raw = utcnow(), b""
        try:
            raw = await _body(request)
            return await run_in_threadpool(work, raw, now)
        except IntakeError as exc:
            await run_in_threadpool(record_refusal, db, source, exc, raw, now)
            raise

    @router.post("/hubspot", summary="HubSpot webhooks: signed events become canonical events "
                                     "(the record is read, HubSpot sends only the change)",
                 responses=HUBSPOT_RESPONSES, openapi_extra=HUBSPOT_BODY)
    async def hubspot_webhook(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        uri, method = _uri(request, secrets.base_url), request.method

        def work(raw: bytes, now: datetime) -> Response:
            secret = secrets.hubspot_client_secret
            if not secret:
                raise IntakeError("HubSpot webhooks are not enabled here: set "
                                  "HANDOFF_HUBSPOT_CLIENT_SECRET", status=404)
            hubspot.verify(secret, method, uri, raw, headers, now)
            events = hubspot.parse(raw)
            translation = hubspot.translate(events, found.get("hubspot"), now)
            return JSONResponse(deliver(db, hubspot.SOURCE, translation, now))

        return await handle(request, hubspot.SOURCE, work)

    @router.post("/salesforce", summary="Salesforce: Outbound Messages (text/xml, acknowledged "
                                        "as Salesforce expects) and relayed CDC events (JSON)",
                 responses=SALESFORCE_RESPONSES, openapi_extra=SALESFORCE_BODY)
    async def salesforce_webhook(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()

        def work(raw: bytes, now: datetime) -> Response:
            organization = secrets.salesforce_organization_id
            if not organization:
                raise IntakeError("Salesforce webhooks are not enabled here: set "
                                  "HANDOFF_SALESFORCE_ORGANIZATION_ID", status=404)
            reader = found.get("salesforce")
            if content_type in ("text/xml", "application/xml"):
                message = salesforce.parse_outbound_message(raw)
                salesforce.check_organization(message, organization)
                deliver(db, salesforce.SOURCE, salesforce.translate_outbound(message, reader, now), now)
                return Response(salesforce.ACK, media_type=salesforce.ACK_CONTENT_TYPE)
            if content_type == "application/json" or content_type.endswith("+json"):
                translation = salesforce.translate_cdc(salesforce.parse_cdc(raw), reader, now)
                return JSONResponse(deliver(db, salesforce.SOURCE, translation, now))
            raise IntakeError(f"content type {content_type or 'none'!r}: send text/xml (an Outbound "
                              "Message) or application/json (a CDC event)", status=415,
                              field="content-type")

        return await handle(request, salesforce.SOURCE, work)

    @router.post("/stripe", summary="Stripe webhooks: Stripe-Signature verified; an invoice or credit "
                                    "note event has billing read the deal's documents again",
                 responses=STRIPE_RESPONSES)
    async def stripe_webhook(request: Request) -> Response:
        signature = request.headers.get(stripe_webhooks.SIGNATURE)

        def work(raw: bytes, now: datetime) -> Response:
            return JSONResponse(stripe_webhooks.receive(db, raw, signature, now,
                                                        secrets.stripe_webhook_secret))

        return await handle(request, stripe_webhooks.SOURCE, work)

    @router.post("/{system}", summary="Any other system: 404", include_in_schema=False)
    async def unknown_webhook(request: Request, system: str) -> Response:
        def work(_raw: bytes, _now: datetime) -> Response:
            raise IntakeError(f"no webhook for system {system!r}; known: {', '.join(SYSTEMS)}",
                              status=404, field="system")

        return await handle(request, f"/webhooks/{system}"[:255], work)

    return router


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise IntakeError(f"body of {declared} bytes is over {MAX_BODY}", status=413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise IntakeError(f"body is over {MAX_BODY} bytes", status=413)
        chunks.append(chunk)
    return b"".join(chunks)


def _uri(request: Request, base_url: str | None) -> str:
    """The URL as the vendor sent it: the raw path and query, on the configured base URL or
    the scheme and host the request arrived with."""
    path = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
    query = request.scope.get("query_string", b"").decode("latin-1")
    base = base_url.rstrip("/") if base_url else f"{request.url.scheme}://{request.url.netloc}"
    return base + path + (f"?{query}" if query else "")
