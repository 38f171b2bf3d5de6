"""Refuse NUL characters at the door. PostgreSQL cannot store them in text, and no business
id, name or amount ever holds one, so a request carrying one — in its path, its query or its
body (raw, JSON-escaped or form-encoded) — is answered 400 naming the problem, recorded as a
rejected intake, and reaches nothing else."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from handoff.engine.clock import utcnow
from handoff.engine.inbox import record_rejection
from handoff.errors import IntakeError
from handoff.store.db import Database

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
NUL = re.compile(rb"\x00|\\u0000", re.IGNORECASE)
ENCODED_NUL = re.compile(rb"%00")  # in a URL or a form
REFUSAL = "NUL characters (\\u0000) are not accepted in any field"


class RefuseNulCharacters:
    def __init__(self, app: Callable[..., Awaitable[None]], db: Database) -> None:
        self.app, self.db = app, db

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if carries_nul(scope, body):
            error = IntakeError(REFUSAL, status=400)
            excerpt = body[:2000].replace(b"\x00", b"\\u0000")  # storable: no NUL left
            await run_in_threadpool(record_rejection, self.db, error, excerpt, utcnow())
            response = JSONResponse({"error": {"status": 400, "message": REFUSAL, "field": None}}, 400)
            return await response(scope, receive, send)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


def carries_nul(scope: Scope, body: bytes) -> bool:
    where = scope.get("raw_path", scope["path"].encode()) + b"?" + scope.get("query_string", b"")
    form = dict(scope.get("headers", ())).get(b"content-type", b"").startswith(
        b"application/x-www-form-urlencoded")
    return bool(NUL.search(where) or ENCODED_NUL.search(where) or NUL.search(body)
                or (form and ENCODED_NUL.search(body)))
