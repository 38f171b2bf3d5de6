"""`/tokens`: an admin makes, lists and revokes API tokens. A token is shown once, in the
answer that made it; handoff keeps only its hash. Every change lands in the audit log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from handoff.api.auth import Authorizer, Principal, audited
from handoff.api.params import record_id
from handoff.engine.clock import utcnow
from handoff.errors import IntakeError
from handoff.policy.roles import Permission, Role, parse_roles
from handoff.store.db import Database
from handoff.store.tokens import TokenRecord, create_token, list_tokens, revoke_token


class NewToken(BaseModel):
    user: str = Field(min_length=1, max_length=128, pattern=r"\S")
    roles: list[Role] = Field(min_length=1)


def token_view(record: TokenRecord) -> dict[str, Any]:
    return {"id": record.id, "user": record.user, "roles": sorted(record.roles),
            "prefix": record.prefix, "created_by": record.created_by,
            "created_at": record.created_at.isoformat(),
            "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None}


def tokens_router(db: Database, auth: Authorizer) -> APIRouter:
    router = APIRouter(prefix="/tokens", tags=["tokens"])
    admin = Depends(auth.needs(Permission.ADMINISTER))

    @router.get("", summary="Every token: user, roles, first characters, made and revoked when")
    def list_all(_: Principal = admin) -> list[dict[str, Any]]:
        with db.reading() as conn:
            return [token_view(r) for r in list_tokens(conn)]

    @router.post("", status_code=201, summary="Make a token; the answer is the only time it is shown")
    async def make(body: NewToken, principal: Principal = admin) -> dict[str, Any]:
        roles = ",".join(role.value for role in body.roles)
        return await run_in_threadpool(issue_token, db, body.user, roles, principal.user)

    @router.post("/{token_id}/revoke", summary="Revoke a token: it stops working at once")
    async def revoke(token_id: int = record_id(), principal: Principal = admin) -> dict[str, Any]:
        with db.transaction() as conn:
            record = revoke_token(conn, token_id, utcnow())
        if record is None:
            raise IntakeError(f"no token {token_id}", status=404)
        await run_in_threadpool(audited, db, principal.user, "token.revoked", record.user, None,
                                token_view(record))
        return token_view(record)

    return router


def issue_token(db: Database, user: str, roles_text: str, by: str) -> dict[str, Any]:
    if not user.strip() or len(user) > 128:
        raise IntakeError("a token needs a user name (1 to 128 characters)", status=422, field="user")
    try:
        roles = parse_roles(roles_text)
    except ValueError as exc:
        raise IntakeError(str(exc), status=422, field="roles") from None
    with db.transaction() as conn:
        record, token = create_token(conn, user, roles, by, utcnow())
    audited(db, by, "token.created", user, None, token_view(record))
    return {**token_view(record), "token": token}
