"""What an integrator acts on: exceptions (parked, quarantined, dead letters) — list, resolve,
re-queue —, dead letters replayed one or many, and provisioning a deal again as an
asynchronous command (202 with the URL of its status). Reading needs any role, acting the
integrator (or admin) role; every action lands in the audit log."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from handoff.api.auth import Authorizer, Principal, audited
from handoff.api.params import MAX_ID, record_id
from handoff.engine import queue
from handoff.engine.clock import utcnow
from handoff.engine.exceptions import KINDS, open_exceptions, replay, resolve
from handoff.engine.keys import opportunity_key
from handoff.errors import IntakeError
from handoff.policy.roles import Permission
from handoff.store.db import Database
from handoff.store.tables import opportunities, provisioning, reconcile_queue

ExceptionKind = Literal["parked", "quarantined", "dead_letter"]


class Resolution(BaseModel):
    reason: str = Field(min_length=1, pattern=r"\S")


class Replay(BaseModel):
    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = []  # none: every dead letter


def exception_view(row: sa.Row) -> dict[str, Any]:
    return {"id": row.id, "business_key": row.business_key, "kind": row.kind, "error": row.error,
            "message": row.message, "field": row.field, "system": row.system,
            "attempts": row.attempts, "created_at": row.created_at.isoformat()}


def operations_router(db: Database, auth: Authorizer) -> APIRouter:
    router = APIRouter(tags=["operations"], dependencies=[Depends(auth.needs(Permission.READ))])
    operator = Depends(auth.needs(Permission.OPERATE))

    @router.get("/exceptions", summary="Open exceptions, oldest first (kind: parked, quarantined, "
                "dead_letter)")
    def list_exceptions(kind: ExceptionKind | None = None) -> list[dict[str, Any]]:
        with db.reading() as conn:
            return [exception_view(r) for r in open_exceptions(conn, [kind] if kind else KINDS)]

    @router.post("/exceptions/{exception_id}/resolve",
                 summary="Close an exception without re-queueing it, with the reason")
    async def resolve_one(body: Resolution, exception_id: int = record_id(),
                          principal: Principal = operator) -> dict[str, Any]:
        row = await run_in_threadpool(resolve, db, exception_id, utcnow())
        if row is None:
            raise IntakeError(f"no open exception {exception_id}", status=404)
        await run_in_threadpool(audited, db, principal.user, "exception.resolved", row.business_key,
                                exception_view(row), {"reason": body.reason})
        return exception_view(row)

    @router.post("/exceptions/{exception_id}/requeue", summary="Put an exception's key back on the queue")
    async def requeue_one(exception_id: int = record_id(), principal: Principal = operator) -> dict[str, Any]:
        return await replayed(principal, KINDS, [exception_id])

    @router.get("/dead-letters", summary="Dead letters: calls that can never succeed as they are")
    def list_dead_letters() -> list[dict[str, Any]]:
        with db.reading() as conn:
            return [exception_view(r) for r in open_exceptions(conn, ["dead_letter"])]

    @router.post("/dead-letters/replay", summary="Replay the dead letters named, or all of them")
    async def replay_many(body: Replay | None = None, principal: Principal = operator) -> dict[str, Any]:
        return await replayed(principal, ["dead_letter"], (body.ids if body else None) or None)

    @router.post("/dead-letters/{exception_id}/replay", summary="Replay one dead letter")
    async def replay_one(exception_id: int = record_id(), principal: Principal = operator) -> dict[str, Any]:
        return await replayed(principal, ["dead_letter"], [exception_id])

    async def replayed(principal: Principal, kinds: Any, ids: list[int] | None) -> dict[str, Any]:
        return {"requeued": await run_in_threadpool(replay_audited, db, principal.user, kinds, ids)}

    @router.post("/deals/{opportunity_id}/provision", status_code=202,
                 summary="Provision a deal again, asynchronously: 202 with its status URL")
    async def provision(opportunity_id: str, principal: Principal = operator) -> JSONResponse:
        await run_in_threadpool(requeue_deal, db, opportunity_id)
        await run_in_threadpool(audited, db, principal.user, "provisioning.requested", opportunity_id,
                                None, {"requested_by": principal.user})
        location = f"/deals/{opportunity_id}/status"
        return JSONResponse({"opportunity_id": opportunity_id, "status_url": location},
                            status_code=202, headers={"Location": location})

    @router.get("/deals/{opportunity_id}/status", summary="Where a deal's provisioning stands")
    def status(opportunity_id: str) -> dict[str, Any]:
        return deal_status(db, opportunity_id)

    return router


def replay_audited(db: Database, user: str, kinds: Any, ids: list[int] | None) -> list[str]:
    """Replay open exceptions (these ids, when given) and log who did it."""
    keys = replay(db, utcnow(), kinds=kinds, ids=ids)
    if ids and not keys:
        raise IntakeError(f"no open exception {', '.join(map(str, ids))}", status=404)
    for key in keys:
        audited(db, user, "exception.replayed", key, None, {"requeued": key})
    return keys


def requeue_deal(db: Database, opportunity_id: str) -> None:
    with db.transaction() as conn:
        known = conn.execute(sa.select(opportunities.c.id).where(opportunities.c.id == opportunity_id))
        if known.first() is None:
            raise IntakeError(f"no deal {opportunity_id!r}: handoff has received no event for it",
                              status=404)
        queue.enqueue(conn, opportunity_key(opportunity_id), utcnow())


def deal_status(db: Database, opportunity_id: str) -> dict[str, Any]:
    with db.reading() as conn:
        known = conn.execute(sa.select(opportunities.c.id).where(opportunities.c.id == opportunity_id))
        if known.first() is None:
            raise IntakeError(f"no deal {opportunity_id!r}", status=404)
        state = conn.execute(sa.select(provisioning).where(
            provisioning.c.opportunity_id == opportunity_id)).first()
        queued = conn.execute(sa.select(reconcile_queue.c.key).where(
            reconcile_queue.c.key == opportunity_key(opportunity_id))).first()
    return {"opportunity_id": opportunity_id, "status": state.status if state else "received",
            "detail": state.detail if state else "", "queued": queued is not None,
            "project_id": state.project_target_id if state else None,
            "trace": f"/trace/{opportunity_id}"}
