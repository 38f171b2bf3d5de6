"""A NUL character anywhere in a request — path, query, JSON or form body — is refused with a
400 that says so, recorded, and changes nothing (PostgreSQL could not store it)."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from handoff.api import create_app
from handoff.store.db import Database
from handoff.store.tables import api_tokens, inbox_events, intake_rejections
from tests.factories import event, opportunity_data

ADMIN = {"authorization": "Bearer admin-token-0123456789"}


@pytest.mark.anyio
@pytest.mark.parametrize("method, url, content, kind", [
    ("POST", "/events", None, "json"),
    ("POST", "/tokens", b'{"user": "a\\u0000b", "roles": ["viewer"]}', "application/json"),
    ("GET", "/trace/006%00X", None, ""),
    ("GET", "/exceptions?kind=%00", None, ""),
    ("POST", "/dashboard/login", b"token=a%00b", "application/x-www-form-urlencoded"),
])
async def test_a_nul_is_refused_at_the_door_and_changes_nothing(
        db: Database, method: str, url: str, content: bytes | None, kind: str) -> None:
    from handoff.policy.roles import Roles

    app = create_app(db, Roles(admins=frozenset({"ada"})), {"admin-token-0123456789": "ada"})
    body = event(opportunity_data(name="Deal\x00One"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as client:
        if kind == "json":
            answer = await client.post(url, json=body, headers=ADMIN)
        else:
            answer = await client.request(method, url, content=content,
                                          headers={**ADMIN, **({"content-type": kind} if kind else {})})
    assert answer.status_code == 400 and "NUL characters" in answer.json()["error"]["message"]
    with db.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(inbox_events)).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(api_tokens)).scalar() == 0
        [refusal] = conn.execute(sa.select(intake_rejections)).all()
    assert refusal.status_code == 400 and "\x00" not in refusal.excerpt
