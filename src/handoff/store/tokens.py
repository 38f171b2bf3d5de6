"""API tokens an admin made. A token is shown once, when it is made; the store keeps its
SHA-256 (a token is 256 random bits, so a plain hash cannot be reversed by guessing) and its
first characters, to tell tokens apart in a list."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.policy.roles import Role
from handoff.store.tables import api_tokens

PREFIX = "hot_"
SHOWN = 8  # characters of a token kept to tell it apart


@dataclass(frozen=True, slots=True)
class TokenRecord:
    id: int
    user: str
    roles: frozenset[Role]
    prefix: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(conn: Connection, user: str, roles: frozenset[Role], created_by: str,
                 now: datetime) -> tuple[TokenRecord, str]:
    """A new token for `user`: its record, and the token itself (shown this once only)."""
    token = PREFIX + secrets.token_urlsafe(32)
    token_id = conn.execute(api_tokens.insert().values(
        user=user, roles=",".join(sorted(roles)), token_hash=digest(token), prefix=token[:SHOWN],
        created_by=created_by, created_at=now).returning(api_tokens.c.id)).scalar_one()
    return TokenRecord(token_id, user, roles, token[:SHOWN], created_by, now, None), token


def find_token(conn: Connection, token: str) -> TokenRecord | None:
    """The live token with this value, if any."""
    row = conn.execute(sa.select(api_tokens).where(api_tokens.c.token_hash == digest(token),
                                                   api_tokens.c.revoked_at.is_(None))).first()
    return record_of(row) if row else None


def list_tokens(conn: Connection) -> list[TokenRecord]:
    return [record_of(row) for row in conn.execute(sa.select(api_tokens).order_by(api_tokens.c.id))]


def revoke_token(conn: Connection, token_id: int, now: datetime) -> TokenRecord | None:
    conn.execute(api_tokens.update().where(api_tokens.c.id == token_id,
                                           api_tokens.c.revoked_at.is_(None)).values(revoked_at=now))
    row = conn.execute(sa.select(api_tokens).where(api_tokens.c.id == token_id)).first()
    return record_of(row) if row else None


def record_of(row: sa.Row) -> TokenRecord:
    return TokenRecord(row.id, row.user, frozenset(Role(r) for r in row.roles.split(",") if r),
                       row.prefix, row.created_by, row.created_at, row.revoked_at)
