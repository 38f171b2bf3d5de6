"""`POST /events`: CloudEvents in, each answered once durable.

The route is the busiest by far, so it is answered by a plain ASGI layer in front of the
framework (routing, dependency injection and response models cost about three times what the
intake itself does per request), and its events are stored by group commit: concurrent requests
share one transaction. The framework still declares the route, for the OpenAPI document.

- One event, structured mode (`application/cloudevents+json` or JSON) or binary mode (ce-*
  headers): 202 once stored, 200 for a repeat, 4xx naming the problem (recorded).
- A batch (`application/cloudevents-batch+json`, a JSON array): 200 with each event's outcome.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.concurrency import run_in_threadpool

from handoff.api.metrics import metric
from handoff.engine.batch import ParsedBatch
from handoff.engine.clock import utcnow
from handoff.engine.cloudevents import parse_json
from handoff.engine.group_commit import GroupCommit
from handoff.engine.inbox import (
    Outcome,
    deal_of,
    log_accepted,
    parse_body,
    raise_refusal,
    record_rejection,
)
from handoff.errors import IntakeError
from handoff.observability import lifecycle
from handoff.store.db import Database

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

BATCH_TYPE = "application/cloudevents-batch+json"
JSON_HEADERS = [(b"content-type", b"application/json")]


class EventIntake:
    """Takes the events of `POST /events` into `db`, many requests a commit."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.commits = GroupCommit(db)

    async def answer(self, headers: dict[str, str], raw: bytes) -> tuple[int, dict[str, Any]]:
        """The status and body for one request (headers with lower-case names); IntakeError
        (recorded) when it is refused as a whole."""
        if headers.get("content-type", "").split(";")[0].strip() == BATCH_TYPE:
            return 200, await self._batch(raw)
        body = binary_mode_event(headers, raw) if "ce-id" in headers else raw
        started = time.time_ns()
        try:
            event, change = parse_body(body)
            with lifecycle(None, deal_of(change)):
                accepted = raise_refusal((await self.commits.store([(event, change)]))[0])
        except IntakeError as exc:
            await run_in_threadpool(record_rejection, self.db, exc, body, utcnow())
            raise
        log_accepted(event, change, accepted, started)
        status = 200 if accepted.outcome is Outcome.DUPLICATE else 202
        return status, {"outcome": accepted.outcome.value, "subject": accepted.subject,
                        "correlation_id": accepted.correlation_id, "trace": f"/trace/{accepted.subject}"}

    def metrics(self) -> str:
        """This process's group commits, in Prometheus' text format."""
        return "".join([
            metric("handoff_intake_commits_total", "counter",
                   "transactions intake committed in this process (group commit)",
                   [({}, self.commits.groups)]),
            metric("handoff_intake_committed_events_total", "counter",
                   "events those transactions stored", [({}, self.commits.events)])])

    async def _batch(self, raw: bytes) -> dict[str, Any]:
        try:
            items = parse_json(raw)
            if not isinstance(items, list):
                raise IntakeError("a batch (application/cloudevents-batch+json) is a JSON array of "
                                  "CloudEvents", status=400)
            batch = ParsedBatch.of(items)
        except IntakeError as exc:  # the batch as a whole: recorded like any refusal
            await run_in_threadpool(record_rejection, self.db, exc, raw[:2000], utcnow())
            raise
        stored = await self.commits.store(batch.parsed)
        finished = await run_in_threadpool(batch.finish, self.db, stored, utcnow())  # records refusals
        results = [result.view() for result in finished]
        return {"events": results, "outcomes": dict(Counter(r["outcome"] for r in results))}


class EventIntakeRoute:
    """ASGI middleware answering `POST /events` itself; everything else goes on to `app`."""

    def __init__(self, app: ASGIApp, intake: EventIntake) -> None:
        self.app, self.intake = app, intake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/events" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        raw = await read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            status, body = await self.intake.answer(headers, raw)
        except IntakeError as exc:
            status, body = exc.status, error_body(exc.status, exc.message, exc.field)
        content = orjson.dumps(body)
        await send({"type": "http.response.start", "status": status,
                    "headers": [*JSON_HEADERS, (b"content-length", b"%d" % len(content))]})
        await send({"type": "http.response.body", "body": content})


async def read_body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def error_body(status: int, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"status": status, "message": message, "field": field}}


def binary_mode_event(headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """CloudEvents HTTP binary mode: attributes in ce-* headers, the data is the body."""
    envelope: dict[str, Any] = {k[3:]: v for k, v in headers.items() if k.startswith("ce-")}
    envelope["datacontenttype"] = headers.get("content-type", "application/json")
    envelope["data"] = parse_json(body)
    return envelope
