"""The HTTP service: intake, trace, amendments, reconciliation, metrics, health, and the
dashboard. One error body everywhere:

    {"error": {"status": 422, "message": "data.amount: -5 is negative", "field": "data.amount"}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from handoff import __version__
from handoff.api.amendments import amendments_router
from handoff.api.auth import Authorizer, api_tokens
from handoff.api.dashboard import dashboard_router
from handoff.api.intake import BATCH_TYPE, EventIntake, EventIntakeRoute, error_body
from handoff.api.metrics import CONTENT_TYPE, exposition
from handoff.api.nul import RefuseNulCharacters
from handoff.api.operations import operations_router
from handoff.api.reconciliation import reconciliation_router
from handoff.api.tokens import tokens_router
from handoff.api.webhooks import crm_readers, webhook_secrets, webhooks_router
from handoff.config import ReconcileSettings
from handoff.engine import queue
from handoff.engine.batch import MAX_EVENTS
from handoff.engine.payloads import EVENT_TYPES
from handoff.errors import IntakeError
from handoff.flows.trace import trace
from handoff.policy.roles import Permission, Roles
from handoff.reconcile.runs import Systems
from handoff.store.db import Database, schema_head

NO_ROLES = Roles()

CLOUDEVENT_SCHEMA = {
    "type": "object", "required": ["specversion", "id", "source", "type", "data"],
    "properties": {
        "specversion": {"type": "string", "enum": ["1.0"]},
        "id": {"type": "string", "minLength": 1}, "source": {"type": "string", "minLength": 1},
        "type": {"type": "string", "enum": list(EVENT_TYPES)},
        "subject": {"type": "string"}, "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"type": "string"},
        "data": {"type": "object", "description": "the record's canonical fields; each type's "
                 "are checked (currency codes, exact amounts, …) and refused with 422 naming one"},
    },
}
CLOUDEVENT_BODY = {
    "requestBody": {
        "required": True,
        "description": "One CloudEvent 1.0 in structured JSON mode; binary mode (ce-* headers "
                       "with the data as body) is accepted too.",
        "content": {"application/cloudevents+json": {"schema": CLOUDEVENT_SCHEMA},
                    "application/json": {"schema": CLOUDEVENT_SCHEMA},
                    BATCH_TYPE: {"schema": {"type": "array", "items": CLOUDEVENT_SCHEMA,
                                            "maxItems": MAX_EVENTS}}},
    }
}


class ErrorDetail(BaseModel):
    status: int
    message: str
    field: str | None


class ErrorBody(BaseModel):
    """Every refusal, whatever the route."""

    error: ErrorDetail


ERRORS = {400: "malformed input", 401: "no token, or an unknown one", 403: "the role does not allow it",
          404: "no such record", 409: "not in a state that allows it", 422: "a value is not valid"}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": words} for status, words in ERRORS.items()}


def create_app(db: Database, roles: Roles = NO_ROLES, tokens: Mapping[str, str] | None = None,
               systems: Systems | None = None, reconcile: ReconcileSettings | None = None,
               ) -> FastAPI:
    """`tokens` (token → user; default HANDOFF_API_TOKENS) with `roles` from the configuration,
    and the tokens an admin made, say who may do what (api/auth.py). `systems`: the connectors a
    reconciliation started here reads."""
    app = FastAPI(title="handoff", version=__version__, responses=ERROR_RESPONSES,
                  description="Deal-to-cash integration: intake, lineage, operations, amendments, "
                              "reconciliation. Every route but intake, health and metrics needs a "
                              "bearer token; acting needs a role (viewer, integrator, approver, admin).")
    intake = EventIntake(db)
    app.add_middleware(EventIntakeRoute, intake=intake)
    app.add_middleware(RefuseNulCharacters, db=db)  # the outermost: nothing passes it with a NUL
    auth = Authorizer(db, roles, api_tokens() if tokens is None else tokens)
    reader = Depends(auth.needs(Permission.READ))
    app.include_router(amendments_router(db, auth))
    app.include_router(reconciliation_router(db, auth, systems, reconcile or ReconcileSettings()))
    app.include_router(operations_router(db, auth))
    app.include_router(tokens_router(db, auth))
    app.include_router(dashboard_router(db, auth))
    app.include_router(webhooks_router(db, webhook_secrets(), crm_readers(systems.crm if systems else None)))

    @app.exception_handler(IntakeError)
    async def intake_error(_request: Request, exc: IntakeError) -> JSONResponse:
        return JSONResponse(error_body(exc.status, exc.message, exc.field), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or None
        message = f"{where}: {first.get('msg', 'not valid')}" if where else first.get("msg", "not valid")
        return JSONResponse(error_body(422, message, where), status_code=422)

    @app.exception_handler(HTTPException)
    async def http_error(_request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(error_body(exc.status_code, str(exc.detail)),
                            status_code=exc.status_code)

    @app.post("/events", status_code=202, openapi_extra=CLOUDEVENT_BODY,
              summary="Accept one CloudEvent (202 once it is durable, 200 for a repeat), or a batch "
                      "(application/cloudevents-batch+json: 200, each event's outcome)",
              responses={200: {"description": "A repeat of one event, or a batch: each event taken "
                                               "(applied, unchanged, stale, duplicate) or refused"},
                         413: {"description": f"A batch of more than {MAX_EVENTS} events"}})
    async def post_events(request: Request) -> JSONResponse:
        """Declared for the OpenAPI document; EventIntakeRoute answers in front of the framework."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, body = await intake.answer(headers, await request.body())
        return JSONResponse(body, status_code=status)

    @app.get("/trace/{business_id:path}", dependencies=[reader],
             summary="The lineage of one deal, by any of its ids (opportunity, project, invoice "
                     "number, correlation id)")
    def get_trace(business_id: str) -> dict[str, Any]:
        lineage = trace(db, business_id)
        if lineage is None:
            raise HTTPException(404, f"no deal known by {business_id!r}")
        return lineage

    @app.get("/metrics", response_class=PlainTextResponse,
             summary="Prometheus metrics: intake, queue, exceptions, reconciliation by class")
    def metrics() -> PlainTextResponse:
        with db.reading() as conn:
            text = exposition(conn) + intake.metrics()
        return PlainTextResponse(text, media_type=CONTENT_TYPE)

    @app.get("/healthz", summary="Liveness, with the database and the queue depth")
    def healthz() -> dict[str, Any]:
        with db.reading() as conn:
            depth = queue.depth(conn)
        return {"status": "ok", "database": db.engine.dialect.name, "queue_depth": depth}

    @app.get("/readyz", summary="Ready to serve: the database answers and its schema is current",
             responses={503: {"description": "not ready, and why"}})
    def readyz() -> JSONResponse:
        problem = readiness_problem(db)
        if problem:
            return JSONResponse(error_body(503, problem), status_code=503)
        return JSONResponse({"status": "ready"})

    return app


def readiness_problem(db: Database) -> str | None:
    try:
        with db.reading() as conn:
            current = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    except sa.exc.SQLAlchemyError as exc:
        return f"the database does not answer: {type(exc).__name__}"
    head = schema_head()
    return None if current == head else f"the database schema is at {current}, not {head}: migrate"
