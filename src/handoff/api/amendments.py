"""`/amendments`: the pending changes to deals' approved terms, and their decisions.

Deciding needs a user: `Authorization: Bearer <token>`, the tokens given in the environment
(`HANDOFF_API_TOKENS="carol=<token>,dave=<token>"`, never in the config file). The approver
role and segregation of duties are the same as the CLI's (flows/amendments.py).
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from handoff.domain.terms import Amendment, terms_data
from handoff.engine.clock import utcnow
from handoff.errors import ConfigError, IntakeError
from handoff.flows import amendments
from handoff.policy.roles import Roles
from handoff.store.db import Database
from handoff.store.terms import load_amendment, pending_amendments


class Decision(BaseModel):
    reason: str = ""


def api_tokens(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """token → user, from HANDOFF_API_TOKENS."""
    tokens: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in env.get("HANDOFF_API_TOKENS", "").split(","))):
        user, _, token = item.partition("=")
        if not user or len(token) < 16:
            raise ConfigError("HANDOFF_API_TOKENS: use user=token pairs, tokens of 16+ characters")
        tokens[token] = user
    return tokens


def amendments_router(db: Database, roles: Roles, tokens: Mapping[str, str]) -> APIRouter:
    router = APIRouter(prefix="/amendments", tags=["amendments"])

    @router.get("", summary="Amendments awaiting a decision, oldest first")
    def list_pending() -> list[dict[str, Any]]:
        with db.reading() as conn:
            return [amendment_view(a) for a in pending_amendments(conn)]

    @router.get("/{amendment_id}", summary="One amendment, its changes and its decision")
    def show(amendment_id: str) -> dict[str, Any]:
        with db.reading() as conn:
            found = load_amendment(conn, amendment_id)
        if found is None:
            raise IntakeError(f"no amendment {amendment_id!r}", status=404)
        return amendment_view(found)

    @router.post("/{amendment_id}/approve", summary="Approve: the next plan version reaches the ERP")
    async def approve(amendment_id: str, request: Request,
                      decision: Decision | None = None) -> dict[str, Any]:
        return await decide(amendments.approve, amendment_id, request, decision)

    @router.post("/{amendment_id}/reject", summary="Reject: the approved terms stay as they are")
    async def reject(amendment_id: str, request: Request,
                     decision: Decision | None = None) -> dict[str, Any]:
        return await decide(amendments.reject, amendment_id, request, decision)

    async def decide(how: Any, amendment_id: str, request: Request,
                     decision: Decision | None) -> dict[str, Any]:
        user = caller(request, tokens)
        reason = decision.reason if decision else ""
        done = await run_in_threadpool(how, db, amendment_id, user, roles, reason, utcnow())
        return amendment_view(done)

    return router


def caller(request: Request, tokens: Mapping[str, str]) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise IntakeError("this action needs Authorization: Bearer <token>", status=401)
    for known, user in tokens.items():
        if hmac.compare_digest(known, token):
            return user
    raise IntakeError("unknown token", status=401)


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
