"""`/amendments`: the pending changes to deals' approved terms, and their decisions.

Reading needs a token of any role; deciding needs the approver role (api/auth.py). Segregation
of duties is the same as the CLI's (flows/amendments.py).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from handoff.api.auth import Authorizer, Principal
from handoff.domain.terms import Amendment, terms_data
from handoff.engine.clock import utcnow
from handoff.errors import IntakeError
from handoff.flows import amendments
from handoff.policy.roles import Permission
from handoff.store.db import Database
from handoff.store.terms import load_amendment, pending_amendments


class Decision(BaseModel):
    reason: str = ""


def amendments_router(db: Database, auth: Authorizer) -> APIRouter:
    router = APIRouter(prefix="/amendments", tags=["amendments"])
    reader, approver = Depends(auth.needs(Permission.READ)), Depends(auth.needs(Permission.APPROVE))

    @router.get("", summary="Amendments awaiting a decision, oldest first", dependencies=[reader])
    def list_pending() -> list[dict[str, Any]]:
        with db.reading() as conn:
            return [amendment_view(a) for a in pending_amendments(conn)]

    @router.get("/{amendment_id}", summary="One amendment, its changes and its decision",
                dependencies=[reader])
    def show(amendment_id: str) -> dict[str, Any]:
        with db.reading() as conn:
            found = load_amendment(conn, amendment_id)
        if found is None:
            raise IntakeError(f"no amendment {amendment_id!r}", status=404)
        return amendment_view(found)

    @router.post("/{amendment_id}/approve", summary="Approve: the next plan version reaches the ERP")
    async def approve(amendment_id: str, decision: Decision | None = None,
                      principal: Principal = approver) -> dict[str, Any]:
        return await decide(amendments.approve, amendment_id, principal, decision)

    @router.post("/{amendment_id}/reject", summary="Reject: the approved terms stay as they are")
    async def reject(amendment_id: str, decision: Decision | None = None,
                     principal: Principal = approver) -> dict[str, Any]:
        return await decide(amendments.reject, amendment_id, principal, decision)

    async def decide(how: Any, amendment_id: str, principal: Principal,
                     decision: Decision | None) -> dict[str, Any]:
        reason = decision.reason if decision else ""
        done = await run_in_threadpool(how, db, amendment_id, principal.user,
                                       auth.roles_of(principal), reason, utcnow())
        return amendment_view(done)

    return router


def amendment_view(amendment: Amendment) -> dict[str, Any]:
    return {
        "id": amendment.id, "opportunity_id": amendment.opportunity_id,
        "correlation_id": amendment.correlation_id, "status": amendment.status.value,
        "amends_plan_version": amendment.base_version,
        "changes": {k: {"before": old, "after": new} for k, (old, new) in amendment.delta().items()},
        "after": terms_data(amendment.after), "requester": amendment.requester,
        "reason": amendment.reason, "origin": amendment.origin,
        "requested_at": amendment.requested_at.isoformat(), "decided_by": amendment.decided_by,
        "decided_at": amendment.decided_at.isoformat() if amendment.decided_at else None,
        "decision_reason": amendment.decision_reason,
    }
