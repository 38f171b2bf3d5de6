"""Who is calling, and may they: a bearer token (or the dashboard's cookie holding one) names
a user with roles. Tokens come from HANDOFF_API_TOKENS (`user=token,…`, roles from the
configuration's `[roles]`) or were made by an admin (stored hashed, roles on the token).

A route states the permission it needs as a dependency; refusals are 401 (no or unknown
token) and 403 (a known user without the role), in handoff's one error body.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from handoff.engine.clock import utcnow
from handoff.errors import ConfigError, IntakeError
from handoff.policy.roles import GRANTED_BY, Permission, Role, Roles, allows
from handoff.store import audit
from handoff.store.audit import AuditEntry
from handoff.store.db import Database
from handoff.store.tokens import find_token

COOKIE = "handoff_token"
bearer = HTTPBearer(auto_error=False, description="A handoff API token: `handoff token create`")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


@dataclass(frozen=True, slots=True)
class Principal:
    user: str
    roles: frozenset[Role]

    def may(self, permission: Permission) -> bool:
        return allows(self.roles, permission)


def api_tokens(env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """token → user, from HANDOFF_API_TOKENS."""
    tokens: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in env.get("HANDOFF_API_TOKENS", "").split(","))):
        user, _, token = item.partition("=")
        if not user or len(token) < 16:
            raise ConfigError("HANDOFF_API_TOKENS: use user=token pairs, tokens of 16+ characters")
        tokens[token] = user
    return tokens


class Authorizer:
    def __init__(self, db: Database, roles: Roles, env_tokens: Mapping[str, str]) -> None:
        self.db, self.roles, self.env_tokens = db, roles, dict(env_tokens)

    def identify(self, token: str) -> Principal | None:
        for known, user in self.env_tokens.items():
            if hmac.compare_digest(known.encode(), token.encode()):
                return Principal(user, self.roles.of(user))
        with self.db.reading() as conn:
            record = find_token(conn, token)
        if record is None:
            return None
        return Principal(record.user, record.roles | self.roles.of(record.user))

    def roles_of(self, principal: Principal) -> Roles:
        """The configuration's roles with the caller's own added: what the flows check."""
        return self.roles.with_role(principal.user, principal.roles)

    def needs(self, permission: Permission) -> Callable[..., object]:
        """A dependency: the calling Principal, refused unless it has `permission`."""
        async def dependency(request: Request, credentials: Credentials) -> Principal:
            token = credentials.credentials if credentials else request.cookies.get(COOKIE, "")
            if not token:
                raise IntakeError("this needs a token: Authorization: Bearer <token>", status=401)
            principal = await run_in_threadpool(self.identify, token)
            if principal is None:
                raise IntakeError("unknown or revoked token", status=401)
            if not principal.may(permission):
                wanted = " or ".join(sorted(GRANTED_BY[permission]))
                raise IntakeError(f"{principal.user} may not {permission.value}: that needs the "
                                  f"{wanted} role", status=403)
            request.state.principal = principal
            return principal

        return dependency


def audited(db: Database, user: str, action: str, business_key: str, before: dict[str, Any] | None,
            after: dict[str, Any] | None) -> None:
    """Append what a caller changed to the audit log (flows that audit themselves need not)."""
    with db.transaction() as conn:
        audit.append(conn, [AuditEntry(user, action, business_key, None, before, after)], utcnow())
