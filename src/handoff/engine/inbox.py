"""Intake: an event is stored with the canonical state it changes and the keys it
enqueues, in one transaction, before anyone is told it was accepted.

(source, id) is the idempotency key. A repeat with the same content is counted and
ignored; the same key with different content is refused (409) and recorded. A version
older than the one held is kept in the inbox as "stale" and changes nothing.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from handoff.engine import queue
from handoff.engine.cloudevents import CloudEvent, parse_event, parse_json
from handoff.engine.payloads import (
    EVENT_TYPES,
    OPPORTUNITY_CHANGED,
    customer_data,
    opportunity_data,
    parse_customer,
    parse_opportunity,
)
from handoff.errors import IntakeError
from handoff.store.db import Database
from handoff.store.sql import bump
from handoff.store.tables import customers, inbox_events, intake_rejections, opportunities


class Outcome(enum.StrEnum):
    APPLIED = "applied"        # canonical state changed; keys enqueued
    UNCHANGED = "unchanged"    # same version as held: nothing to do
    STALE = "stale"            # older than held: kept for the record, not applied
    DUPLICATE = "duplicate"    # this (source, id) was accepted before


@dataclass(frozen=True, slots=True)
class Accepted:
    outcome: Outcome
    subject: str
    correlation_id: str | None


def opportunity_key(opportunity_id: str) -> str:
    return f"opportunity:{opportunity_id}"


def accept(db: Database, body: Any, now: datetime) -> Accepted:
    """Store one event (raw bytes or parsed JSON) or raise IntakeError, which is recorded
    in intake_rejections and changes nothing else."""
    try:
        event = parse_event(parse_json(body) if isinstance(body, bytes) else body)
        _check_type(event)
        return _store(db, event, now)
    except IntakeError as exc:
        record_rejection(db, exc, body, now)
        raise


def _check_type(event: CloudEvent) -> None:
    if event.type not in EVENT_TYPES:
        raise IntakeError(f"unknown event type {event.type!r}; known: {', '.join(EVENT_TYPES)}",
                          status=422, field="type")


def _store(db: Database, event: CloudEvent, now: datetime) -> Accepted:
    for attempt in range(3):
        try:
            with db.transaction() as conn:
                return _store_in(conn, event, now)
        except IntegrityError:
            if attempt == 2:  # a concurrent twin of this event won the race twice: odd
                raise
    raise AssertionError("unreachable")


def _store_in(conn: Connection, event: CloudEvent, now: datetime) -> Accepted:
    seen = conn.execute(
        sa.select(inbox_events.c.body_hash, inbox_events.c.subject, inbox_events.c.correlation_id)
        .where(inbox_events.c.source == event.source, inbox_events.c.event_id == event.id)
    ).first()
    if seen is not None:
        if seen.body_hash != event.body_hash:
            raise IntakeError(
                f"event {event.id!r} from {event.source!r} was accepted before with different "
                "content; a new change needs a new event id", status=409, field="id")
        conn.execute(sa.update(inbox_events)
                     .where(inbox_events.c.source == event.source, inbox_events.c.event_id == event.id)
                     .values(deliveries=inbox_events.c.deliveries + 1))
        bump(conn, "duplicates_suppressed")
        return Accepted(Outcome.DUPLICATE, seen.subject, seen.correlation_id)
    if event.type == OPPORTUNITY_CHANGED:
        subject, outcome, correlation = _apply_opportunity(conn, event, now)
    else:
        subject, outcome, correlation = _apply_customer(conn, event, now)
    conn.execute(sa.insert(inbox_events).values(
        source=event.source, event_id=event.id, type=event.type, subject=subject,
        body_hash=event.body_hash, body=event.envelope(), outcome=outcome.value,
        correlation_id=correlation, received_at=now))
    bump(conn, "events_accepted")
    bump(conn, f"events_{outcome.value}")
    return Accepted(outcome, subject, correlation)


def _apply_opportunity(conn: Connection, event: CloudEvent, now: datetime) -> tuple[str, Outcome, str]:
    opp = parse_opportunity(event.data)
    held = conn.execute(
        sa.select(opportunities.c.version, opportunities.c.correlation_id)
        .where(opportunities.c.id == opp.id)).first()
    values = {"account_id": opp.account_id, "version": opp.version,
              "data": opportunity_data(opp), "updated_at": now}
    if held is None:
        correlation = event.trace_id or uuid.uuid4().hex
        conn.execute(sa.insert(opportunities).values(id=opp.id, correlation_id=correlation, **values))
    else:
        correlation = held.correlation_id
        outcome = _compare(opp.version, held.version)
        if outcome is not Outcome.APPLIED:
            return opp.id, outcome, correlation
        conn.execute(sa.update(opportunities).where(opportunities.c.id == opp.id).values(**values))
    queue.enqueue(conn, opportunity_key(opp.id), now)
    return opp.id, Outcome.APPLIED, correlation


def _apply_customer(conn: Connection, event: CloudEvent, now: datetime) -> tuple[str, Outcome, None]:
    customer = parse_customer(event.data)
    held = conn.execute(sa.select(customers.c.version).where(customers.c.id == customer.id)).first()
    values = {"version": customer.version, "data": customer_data(customer), "updated_at": now}
    if held is None:
        conn.execute(sa.insert(customers).values(id=customer.id, **values))
    else:
        outcome = _compare(customer.version, held.version)  # type: ignore[arg-type]
        if outcome is not Outcome.APPLIED:
            return customer.id, outcome, None
        conn.execute(sa.update(customers).where(customers.c.id == customer.id).values(**values))
    deals = conn.execute(
        sa.select(opportunities.c.id).where(opportunities.c.account_id == customer.id)).scalars()
    for opportunity_id in deals:  # a customer change may release (or block) its deals
        queue.enqueue(conn, opportunity_key(opportunity_id), now)
    return customer.id, Outcome.APPLIED, None


def _compare(incoming: datetime, held: datetime) -> Outcome:
    if incoming > held:
        return Outcome.APPLIED
    return Outcome.UNCHANGED if incoming == held else Outcome.STALE


def record_rejection(db: Database, error: IntakeError, body: Any, now: datetime) -> None:
    """Every refusal is kept: what was refused, why, and a bounded excerpt of it."""
    envelope = body if isinstance(body, dict) else {}
    excerpt = body if isinstance(body, str | bytes) else repr(body)
    if isinstance(excerpt, bytes):
        excerpt = excerpt.decode("utf-8", "replace")
    with db.transaction() as conn:
        conn.execute(sa.insert(intake_rejections).values(
            received_at=now, status_code=error.status, reason=error.message, field=error.field,
            source=_short(envelope.get("source")), event_id=_short(envelope.get("id")),
            excerpt=excerpt[:2000]))
        bump(conn, "events_rejected")


def _short(value: Any) -> str | None:
    return value[:255] if isinstance(value, str) else None
