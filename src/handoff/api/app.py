"""The HTTP service: intake, trace, amendments, reconciliation, metrics, health, and the
dashboard. One error body everywhere:

    {"error": {"status": 422, "message": "data.amount: -5 is negative", "field": "data.amount"}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from handoff import __version__
from handoff.api.amendments import amendments_router, api_tokens
from handoff.api.dashboard import dashboard_router
from handoff.api.metrics import CONTENT_TYPE, exposition
from handoff.api.reconciliation import reconciliation_router
from handoff.config import ReconcileSettings
from handoff.engine import queue
from handoff.engine.clock import utcnow
from handoff.engine.cloudevents import parse_json
from handoff.engine.inbox import Outcome, accept
from handoff.errors import IntakeError
from handoff.flows.trace import trace
from handoff.policy.roles import Roles
from handoff.reconcile.runs import Systems
from handoff.store.db import Database

NO_ROLES = Roles()

CLOUDEVENT_BODY = {
    "requestBody": {
        "required": True,
        "description": "One CloudEvent 1.0 in structured JSON mode; binary mode (ce-* headers "
                       "with the data as body) is accepted too.",
        "content": {"application/cloudevents+json": {"schema": {"type": "object"}},
                    "application/json": {"schema": {"type": "object"}}},
    }
}


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"status": status, "message": message, "field": field}}


def create_app(db: Database, roles: Roles = NO_ROLES, tokens: Mapping[str, str] | None = None,
               systems: Systems | None = None, reconcile: ReconcileSettings | None = None,
               ) -> FastAPI:
    """`tokens` (token → user) name who acts (decides amendments, acts on findings); default
    HANDOFF_API_TOKENS. `systems`: the connectors a reconciliation started here reads."""
    app = FastAPI(title="handoff", version=__version__,
                  description="Deal-to-cash integration: intake, lineage, amendments, operations.")
    users = api_tokens() if tokens is None else tokens
    app.include_router(amendments_router(db, roles, users))
    app.include_router(reconciliation_router(db, users, systems, reconcile or ReconcileSettings()))
    app.include_router(dashboard_router(db))

    @app.exception_handler(IntakeError)
    async def intake_error(_request: Request, exc: IntakeError) -> JSONResponse:
        return JSONResponse(error_body(exc.status, exc.message, exc.field), status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(error_body(exc.status_code, str(exc.detail)),
                            status_code=exc.status_code)

    @app.post("/events", status_code=202, openapi_extra=CLOUDEVENT_BODY,
              summary="Accept one CloudEvent; 202 once it is durable, 200 for a repeat")
    async def post_events(request: Request) -> JSONResponse:
        raw = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = binary_mode_event(headers, raw) if "ce-id" in headers else raw
        result = await run_in_threadpool(accept, db, body, utcnow())
        return JSONResponse(
            {"outcome": result.outcome.value, "subject": result.subject,
             "correlation_id": result.correlation_id, "trace": f"/trace/{result.subject}"},
            status_code=200 if result.outcome is Outcome.DUPLICATE else 202)

    @app.get("/trace/{business_id}", summary="The lineage of one deal, by any of its ids")
    def get_trace(business_id: str) -> dict[str, Any]:
        lineage = trace(db, business_id)
        if lineage is None:
            raise HTTPException(404, f"no deal known by {business_id!r}")
        return lineage

    @app.get("/metrics", response_class=PlainTextResponse,
             summary="Prometheus metrics: intake, queue, exceptions, reconciliation by class")
    def metrics() -> PlainTextResponse:
        with db.reading() as conn:
            return PlainTextResponse(exposition(conn), media_type=CONTENT_TYPE)

    @app.get("/healthz", summary="Liveness, with the database and the queue depth")
    def healthz() -> dict[str, Any]:
        with db.reading() as conn:
            depth = queue.depth(conn)
        return {"status": "ok", "database": db.engine.dialect.name, "queue_depth": depth}

    return app


def binary_mode_event(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """CloudEvents HTTP binary mode: attributes in ce-* headers, the data is the body."""
    envelope: dict[str, Any] = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
    envelope["datacontenttype"] = headers.get("content-type", "application/json")
    envelope["data"] = parse_json(body)
    return envelope
