"""Intake: an event is stored with the canonical state it changes and the keys it
enqueues, in one transaction, before anyone is told it was accepted.

(source, id) is the idempotency key. A repeat with the same content is counted and
ignored; the same key with different content is refused (409) and recorded. A version
older than the one held is kept in the inbox as "stale" and changes nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from handoff.domain import Customer
from handoff.engine.cloudevents import CloudEvent, parse_event, parse_json
from handoff.engine.inbox_store import (  # noqa: F401 (Outcome, Accepted: intake's words)
    Accepted,
    Change,
    Outcome,
    Parsed,
    Result,
    deal_of,
    store_parsed,
)
from handoff.engine.payloads import (
    CUSTOMER_CHANGED,
    EVENT_TYPES,
    MILESTONE_CHANGED,
    OPPORTUNITY_CHANGED,
    TIME_ENTRY_CHANGED,
    parse_customer,
    parse_milestone_progress,
    parse_opportunity,
    parse_time_entry,
)
from handoff.errors import IntakeError
from handoff.observability import lifecycle, span
from handoff.store.db import Database
from handoff.store.tables import intake_rejections

log = logging.getLogger("handoff.intake")
RECORD_REJECTION = sa.insert(intake_rejections)


def accept(db: Database, body: Any, now: datetime) -> Accepted:
    """Store one event (raw bytes or parsed JSON) or raise IntakeError, which is recorded
    in intake_rejections and changes nothing else."""
    started = time.time_ns()
    try:
        event, change = parse_body(body)
        with lifecycle(None, deal_of(change)):
            accepted = raise_refusal(store_parsed(db, [(event, change)], now)[0])
    except IntakeError as exc:
        record_rejection(db, exc, body, now)
        raise
    log_accepted(event, change, accepted, started)
    return accepted


def parse_body(body: Any) -> Parsed:
    """One event (raw bytes or parsed JSON), checked; IntakeError names what is wrong."""
    event = parse_event(parse_json(body) if isinstance(body, bytes) else body)
    return event, parse_change(event)


def raise_refusal(result: Result) -> Accepted:
    if isinstance(result, IntakeError):
        raise result
    return result


def log_accepted(event: CloudEvent, change: Change, accepted: Accepted, started: int) -> None:
    """A log line and a span in the deal's lifecycle, now that its correlation id is known."""
    fields = {"event_id": event.id, "event_source": event.source, "event_type": event.type,
              "outcome": accepted.outcome.value, "subject": accepted.subject}
    if isinstance(change, Customer):
        fields["customer_id"] = change.id
    with lifecycle(accepted.correlation_id, deal_of(change)), \
            span("intake", {f"handoff.{k}": v for k, v in fields.items()}, start_time=started):
        log.info("%s %s from %s: %s", event.type, event.id, event.source, accepted.outcome.value,
                 extra=fields)


def parse_change(event: CloudEvent) -> Change:
    if event.type == OPPORTUNITY_CHANGED:
        return parse_opportunity(event.data)
    if event.type == CUSTOMER_CHANGED:
        return parse_customer(event.data)
    if event.type == MILESTONE_CHANGED:
        return parse_milestone_progress(event.data)
    if event.type == TIME_ENTRY_CHANGED:
        return parse_time_entry(event.data)
    raise IntakeError(f"unknown event type {event.type!r}; known: {', '.join(EVENT_TYPES)}",
                      status=422, field="type")


def record_rejection(db: Database, error: IntakeError, body: Any, now: datetime) -> None:
    record_rejections(db, [(error, body)], now)


def record_rejections(db: Database, refusals: Sequence[tuple[IntakeError, Any]], now: datetime) -> None:
    """Every refusal is kept: what was refused, why, and a bounded excerpt of it."""
    if not refusals:
        return
    with db.transaction() as conn:
        conn.execute(RECORD_REJECTION, [_rejection(error, body, now) for error, body in refusals])
    for error, _body in refusals:
        log.info("event refused (%d): %s", error.status, error.message,
                 extra={"status": error.status, "field": error.field})


def _rejection(error: IntakeError, body: Any, now: datetime) -> dict[str, Any]:
    envelope = body if isinstance(body, dict) else {}
    excerpt = body if isinstance(body, str | bytes) else repr(body)
    if isinstance(excerpt, bytes):
        excerpt = excerpt.decode("utf-8", "replace")
    return {"received_at": now, "status_code": error.status, "reason": error.message,
            "field": error.field, "source": _short(envelope.get("source")),
            "event_id": _short(envelope.get("id")), "excerpt": excerpt[:2000]}


def _short(value: Any) -> str | None:
    return value[:255] if isinstance(value, str) else None
