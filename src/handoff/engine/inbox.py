"""Intake: an event is stored with the canonical state it changes and the keys it
enqueues, in one transaction, before anyone is told it was accepted.

(source, id) is the idempotency key. A repeat with the same content is counted and
ignored; the same key with different content is refused (409) and recorded. A version
older than the one held is kept in the inbox as "stale" and changes nothing.
"""

from __future__ import annotations

import enum
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from handoff.domain import Customer, MilestoneProgress, Opportunity, TimeEntry
from handoff.engine import queue
from handoff.engine.cloudevents import CloudEvent, parse_event, parse_json
from handoff.engine.keys import billing_key, opportunity_key
from handoff.engine.payloads import (
    CUSTOMER_CHANGED,
    EVENT_TYPES,
    MILESTONE_CHANGED,
    OPPORTUNITY_CHANGED,
    TIME_ENTRY_CHANGED,
    customer_data,
    opportunity_data,
    parse_customer,
    parse_milestone_progress,
    parse_opportunity,
    parse_time_entry,
)
from handoff.errors import IntakeError
from handoff.observability import lifecycle, span
from handoff.store.db import Database
from handoff.store.tables import (
    customers,
    inbox_events,
    intake_rejections,
    milestone_progress,
    opportunities,
    provisioning,
    time_entries,
)

log = logging.getLogger("handoff.intake")


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


ib, opp_t, cust_t, ms_t = inbox_events.c, opportunities.c, customers.c, milestone_progress.c
_SAME_EVENT = sa.and_(ib.source == sa.bindparam("b_source"), ib.event_id == sa.bindparam("b_id"))
SEEN = sa.select(ib.body_hash, ib.subject, ib.correlation_id).where(_SAME_EVENT)
COUNT_REPEAT = sa.update(inbox_events).where(_SAME_EVENT).values(deliveries=ib.deliveries + 1)
RECORD = sa.insert(inbox_events)
HELD_OPPORTUNITY = sa.select(opp_t.version, opp_t.correlation_id).where(opp_t.id == sa.bindparam("b_id"))
INSERT_OPPORTUNITY = sa.insert(opportunities)
UPDATE_OPPORTUNITY = sa.update(opportunities).where(opp_t.id == sa.bindparam("b_id"))
HELD_CUSTOMER = sa.select(cust_t.version, cust_t.data).where(cust_t.id == sa.bindparam("b_id"))
INSERT_CUSTOMER = sa.insert(customers)
UPDATE_CUSTOMER = sa.update(customers).where(cust_t.id == sa.bindparam("b_id"))
DEALS_OF_CUSTOMER = sa.select(opp_t.id).where(opp_t.account_id == sa.bindparam("b_id"))
_SAME_MILESTONE = sa.and_(ms_t.opportunity_id == sa.bindparam("b_opp"),
                          ms_t.milestone_id == sa.bindparam("b_milestone_id"))
te_t = time_entries.c
_SAME_ENTRY = sa.and_(te_t.opportunity_id == sa.bindparam("b_opp"),
                      te_t.entry_id == sa.bindparam("b_entry_id"))


@dataclass(frozen=True, slots=True)
class _Versioned:
    """The statements keeping one kind of delivery news, newest version wins."""

    held: sa.Select
    insert: sa.Insert
    update: sa.Update


MILESTONES = _Versioned(sa.select(ms_t.version).where(_SAME_MILESTONE),
                        sa.insert(milestone_progress),
                        sa.update(milestone_progress).where(_SAME_MILESTONE))
TIME_ENTRIES = _Versioned(sa.select(te_t.version).where(_SAME_ENTRY), sa.insert(time_entries),
                          sa.update(time_entries).where(_SAME_ENTRY))
DEAL = (sa.select(opp_t.correlation_id, provisioning.c.project_target_id)
        .outerjoin(provisioning, provisioning.c.opportunity_id == opp_t.id)
        .where(opp_t.id == sa.bindparam("b_id")))

Change = Opportunity | Customer | MilestoneProgress | TimeEntry


def accept(db: Database, body: Any, now: datetime) -> Accepted:
    """Store one event (raw bytes or parsed JSON) or raise IntakeError, which is recorded
    in intake_rejections and changes nothing else."""
    started = time.time_ns()
    try:
        event = parse_event(parse_json(body) if isinstance(body, bytes) else body)
        change = _parse_change(event)
        with lifecycle(None, _deal_of(change)):
            accepted = _store(db, event, change, now)
    except IntakeError as exc:
        record_rejection(db, exc, body, now)
        log.info("event refused (%d): %s", exc.status, exc.message,
                 extra={"status": exc.status, "field": exc.field})
        raise
    _log_accepted(event, change, accepted, started)
    return accepted


def _log_accepted(event: CloudEvent, change: Change, accepted: Accepted, started: int) -> None:
    """A log line and a span in the deal's lifecycle, now that its correlation id is known."""
    fields = {"event_id": event.id, "event_source": event.source, "event_type": event.type,
              "outcome": accepted.outcome.value, "subject": accepted.subject}
    if isinstance(change, Customer):
        fields["customer_id"] = change.id
    with lifecycle(accepted.correlation_id, _deal_of(change)), \
            span("intake", {f"handoff.{k}": v for k, v in fields.items()}, start_time=started):
        log.info("%s %s from %s: %s", event.type, event.id, event.source, accepted.outcome.value,
                 extra=fields)


def _parse_change(event: CloudEvent) -> Change:
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


def _store(db: Database, event: CloudEvent, change: Change, now: datetime) -> Accepted:
    for attempt in range(3):
        try:
            with db.transaction() as conn:
                return _store_in(conn, event, change, now)
        except IntegrityError:
            if attempt == 2:  # a concurrent twin of this event won the race twice: odd
                raise
    raise AssertionError("unreachable")


def _store_in(conn: Connection, event: CloudEvent, change: Change, now: datetime) -> Accepted:
    key = {"b_source": event.source, "b_id": event.id}
    seen = conn.execute(SEEN, key).first()
    if seen is not None:
        if seen.body_hash != event.body_hash:
            raise IntakeError(
                f"event {event.id!r} from {event.source!r} was accepted before with different "
                "content; a new change needs a new event id", status=409, field="id")
        conn.execute(COUNT_REPEAT, key)
        return Accepted(Outcome.DUPLICATE, seen.subject, seen.correlation_id)
    if isinstance(change, Opportunity):
        outcome, correlation = _apply_opportunity(conn, change, event.trace_id, now)
    elif isinstance(change, MilestoneProgress):
        outcome, correlation = _apply_milestone(conn, change, now)
    elif isinstance(change, TimeEntry):
        outcome, correlation = _apply_time_entry(conn, change, now)
    else:
        outcome, correlation = _apply_customer(conn, change, now), None
    conn.execute(RECORD, {
        "source": event.source, "event_id": event.id, "type": event.type, "subject": _subject(change),
        "body_hash": event.body_hash, "body": event.envelope(), "outcome": outcome.value,
        "correlation_id": correlation, "received_at": now})
    return Accepted(outcome, _subject(change), correlation)


def _deal_of(change: Change) -> str | None:
    """The opportunity an event is about; none for a customer's."""
    return None if isinstance(change, Customer) else _subject(change)


def _subject(change: Change) -> str:
    """The business key an event is about: a milestone's or a time entry's is its deal."""
    return change.opportunity_id if isinstance(change, MilestoneProgress | TimeEntry) else change.id


def _apply_opportunity(conn: Connection, opp: Opportunity, trace_id: str | None,
                       now: datetime) -> tuple[Outcome, str]:
    held = conn.execute(HELD_OPPORTUNITY, {"b_id": opp.id}).first()
    values = {"account_id": opp.account_id, "version": opp.version,
              "data": opportunity_data(opp), "updated_at": now}
    if held is None:
        correlation = trace_id or uuid.uuid4().hex
        conn.execute(INSERT_OPPORTUNITY, {"id": opp.id, "correlation_id": correlation, **values})
    else:
        correlation = held.correlation_id
        outcome = _compare(opp.version, held.version)
        if outcome is not Outcome.APPLIED:
            return outcome, correlation
        conn.execute(UPDATE_OPPORTUNITY, {"b_id": opp.id, **values})
    queue.enqueue(conn, opportunity_key(opp.id), now)
    return Outcome.APPLIED, correlation


def _apply_customer(conn: Connection, customer: Customer, now: datetime) -> Outcome:
    held = conn.execute(HELD_CUSTOMER, {"b_id": customer.id}).first()
    values = {"version": customer.version, "data": customer_data(customer), "updated_at": now}
    if held is None:
        conn.execute(INSERT_CUSTOMER, {"id": customer.id, **values})
    else:
        outcome = _compare(customer.version, held.version)  # type: ignore[arg-type]
        if outcome is not Outcome.APPLIED:
            return outcome
        conn.execute(UPDATE_CUSTOMER, {"b_id": customer.id, **values})
    deals = conn.execute(DEALS_OF_CUSTOMER, {"b_id": customer.id}).scalars().all()
    hold_changed = held is not None and bool(held.data.get("credit_hold")) != customer.credit_hold
    keys = [opportunity_key(deal) for deal in deals]  # may release or block provisioning
    keys += [billing_key(deal) for deal in deals] if hold_changed else []  # invoicing on/off hold
    queue.enqueue_many(conn, keys, now)
    return Outcome.APPLIED


def _apply_milestone(conn: Connection, progress: MilestoneProgress,
                     now: datetime) -> tuple[Outcome, str | None]:
    values = {"status": progress.status.value, "achieved_on": progress.achieved_on,
              "accepted_on": progress.accepted_on, "version": progress.version, "updated_at": now}
    return _apply_delivery(conn, MILESTONES, progress.opportunity_id,
                           {"milestone_id": progress.milestone_id}, values, now)


def _apply_time_entry(conn: Connection, entry: TimeEntry,
                      now: datetime) -> tuple[Outcome, str | None]:
    values = {"work_date": entry.work_date, "hours": entry.hours, "rate": entry.rate.amount,
              "currency": entry.rate.currency, "status": entry.status.value,
              "person": entry.person, "version": entry.version, "updated_at": now}
    return _apply_delivery(conn, TIME_ENTRIES, entry.opportunity_id,
                           {"entry_id": entry.entry_id}, values, now)


def _apply_delivery(conn: Connection, stmts: _Versioned, opportunity_id: str,
                    ids: dict[str, str], values: dict[str, object],
                    now: datetime) -> tuple[Outcome, str | None]:
    """Delivery's news (progress, time) may arrive before its deal: it is kept, and billing
    finds it later."""
    where = {"b_opp": opportunity_id, **{f"b_{k}": v for k, v in ids.items()}}
    held = conn.execute(stmts.held, where).first()
    deal = conn.execute(DEAL, {"b_id": opportunity_id}).first()
    correlation = deal.correlation_id if deal else None
    if held is None:
        conn.execute(stmts.insert, {"opportunity_id": opportunity_id, **ids, **values})
    else:
        outcome = _compare(values["version"], held.version)  # type: ignore[arg-type]
        if outcome is not Outcome.APPLIED:
            return outcome, correlation
        conn.execute(stmts.update, {**where, **values})
    keys = [billing_key(opportunity_id)]
    if deal is not None and deal.project_target_id is None:  # its project may be in the making:
        keys.append(opportunity_key(opportunity_id))  # provisioning then hands it to billing
    queue.enqueue_many(conn, keys, now)
    return Outcome.APPLIED, correlation


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


def _short(value: Any) -> str | None:
    return value[:255] if isinstance(value, str) else None
