"""`/reconciliation`: runs (the latest, one, the trend), starting one, and acting on a finding
of the latest run — acknowledge it, or run its repair. Reading needs any role; acting needs
the integrator (or admin) role, and lands in the audit log; a repair goes through the normal
policy (flows)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from handoff.api.auth import Authorizer, Principal, audited
from handoff.api.params import record_id
from handoff.config import ReconcileSettings
from handoff.engine.clock import utcnow
from handoff.errors import IntakeError
from handoff.policy.roles import Permission
from handoff.reconcile import actions
from handoff.reconcile.classes import Kind
from handoff.reconcile.report import finding_view, run_view
from handoff.reconcile.runs import Systems, complete_run
from handoff.store import reconciliation as store
from handoff.store.db import Database

log = logging.getLogger("handoff.reconcile")


class Acknowledgement(BaseModel):
    reason: str = Field(min_length=1, pattern=r"\S")


def reconciliation_router(db: Database, auth: Authorizer, systems: Systems | None,
                          settings: ReconcileSettings) -> APIRouter:
    router = APIRouter(prefix="/reconciliation", tags=["reconciliation"],
                       dependencies=[Depends(auth.needs(Permission.READ))])
    operator = Depends(auth.needs(Permission.OPERATE))

    @router.get("/runs", summary="The latest runs, newest first: the trend of findings per class")
    def list_runs(limit: int = Query(30, ge=1, le=1000)) -> list[dict[str, Any]]:
        with db.reading() as conn:
            return [run_view(run) for run in store.runs(conn, limit)]

    @router.get("/runs/latest", summary="The latest finished run and its findings")
    def latest() -> dict[str, Any]:
        return run_with_findings(db, None)

    @router.get("/runs/{run_id}", summary="One run and its findings")
    def one(run_id: int = record_id()) -> dict[str, Any]:
        return run_with_findings(db, run_id)

    @router.post("/runs", status_code=202, summary="Start a run now; answered at once with its URL")
    async def start(principal: Principal = operator) -> JSONResponse:
        if systems is None:
            raise IntakeError("this service has no CRM and ERP connectors configured to read from",
                              status=409)
        run_id = await run_in_threadpool(store.start_run, db, "api", utcnow())
        await run_in_threadpool(audited, db, principal.user, "reconcile.started", f"run {run_id}",
                                None, {"run": str(run_id)})
        in_background(lambda: complete_run(db, run_id, systems, settings), f"reconciliation run {run_id}")
        location = f"/reconciliation/runs/{run_id}"
        return JSONResponse({"id": run_id, "status": "running", "status_url": location},
                            status_code=202, headers={"Location": location})

    @router.post("/findings/{deal_id}/{kind}/acknowledge",
                 summary="Acknowledge a finding of the latest run, with the reason")
    async def acknowledge(deal_id: str, kind: Kind, body: Acknowledgement,
                          principal: Principal = operator) -> dict[str, Any]:
        done = await run_in_threadpool(actions.acknowledge, db, deal_id, kind.value, principal.user,
                                       body.reason, utcnow())
        return {"deal_id": done.deal_id, "kind": done.kind, "by": done.by, "reason": done.reason,
                "at": done.at.isoformat()}

    @router.post("/findings/{deal_id}/{kind}/repair",
                 summary="Run the repair handoff can do itself (re-queue, or open an amendment)")
    async def repair(deal_id: str, kind: Kind, principal: Principal = operator) -> dict[str, Any]:
        done = await run_in_threadpool(actions.repair, db, deal_id, kind.value, principal.user, utcnow())
        return {"deal_id": deal_id, "kind": kind, "done": done}

    return router


def run_with_findings(db: Database, run_id: int | None) -> dict[str, Any]:
    with db.reading() as conn:
        run = store.load_run(conn, run_id) if run_id is not None else store.latest_run(conn)
        if run is None:
            raise IntakeError(f"no reconciliation run {run_id}" if run_id is not None
                              else "no reconciliation has run yet", status=404)
        found = store.findings(conn, run.id)
    return {"run": run_view(run), "findings": [finding_view(f) for f in found]}


def in_background(work: Callable[[], object], what: str) -> None:
    """Run `work` on a thread of its own; a failure is logged (the run records it too)."""
    def guarded() -> None:
        try:
            work()
        except Exception:
            log.exception("%s failed", what)

    threading.Thread(target=guarded, name=what, daemon=True).start()
