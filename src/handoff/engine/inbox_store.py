"""Storing parsed events set-based: whatever their number, one transaction reads what is held
for all of them in a few statements (the inbox by (source, id), the deals and customers they
change) and writes their inbox rows, canonical states and queue keys with one statement per
table. The outcome of each event is what storing them one by one, in order, would give:
a repeat in the same set is a duplicate of the first, the newer of two versions wins.

Delivery news (milestones, time entries) is rare beside deal and customer changes and goes one
by one within the same transaction.
"""

from __future__ import annotations

import enum
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from handoff.domain import Customer, MilestoneProgress, Opportunity, TimeEntry
from handoff.engine import queue
from handoff.engine.cloudevents import CloudEvent
from handoff.engine.keys import billing_key, opportunity_key
from handoff.engine.payloads import customer_data, opportunity_data
from handoff.errors import IntakeError
from handoff.store.db import Database
from handoff.store.sql import execute_many, one_of
from handoff.store.tables import (
    customers,
    inbox_events,
    milestone_progress,
    opportunities,
    provisioning,
    time_entries,
)


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


Change = Opportunity | Customer | MilestoneProgress | TimeEntry
Parsed = tuple[CloudEvent, Change]
Result = Accepted | IntakeError  # an IntakeError here (409) was raised before anything was written

ib, opp_t, cust_t, ms_t, te_t = (inbox_events.c, opportunities.c, customers.c, milestone_progress.c,
                                  time_entries.c)
SEEN = (sa.select(ib.event_id, ib.body_hash, ib.subject, ib.correlation_id)
        .where(ib.source == sa.bindparam("b_source"), one_of(ib.event_id, "b_ids")))
COUNT_REPEATS = (sa.update(inbox_events)
                 .where(ib.source == sa.bindparam("b_source"), ib.event_id == sa.bindparam("b_id"))
                 .values(deliveries=ib.deliveries + sa.bindparam("b_repeats")))
RECORD = sa.insert(inbox_events)
HELD_OPPORTUNITIES = sa.select(opp_t.id, opp_t.version, opp_t.correlation_id).where(one_of(opp_t.id, "b_ids"))
INSERT_OPPORTUNITY = sa.insert(opportunities)
UPDATE_OPPORTUNITY = sa.update(opportunities).where(opp_t.id == sa.bindparam("b_id"))
HELD_CUSTOMERS = sa.select(cust_t.id, cust_t.version, cust_t.data).where(one_of(cust_t.id, "b_ids"))
INSERT_CUSTOMER = sa.insert(customers)
UPDATE_CUSTOMER = sa.update(customers).where(cust_t.id == sa.bindparam("b_id"))
DEALS_OF_CUSTOMERS = sa.select(opp_t.id, opp_t.account_id).where(one_of(opp_t.account_id, "b_ids"))
DEAL = (sa.select(opp_t.correlation_id, provisioning.c.project_target_id)
        .outerjoin(provisioning, provisioning.c.opportunity_id == opp_t.id)
        .where(opp_t.id == sa.bindparam("b_id")))
_SAME_MILESTONE = sa.and_(ms_t.opportunity_id == sa.bindparam("b_opp"),
                          ms_t.milestone_id == sa.bindparam("b_milestone_id"))
_SAME_ENTRY = sa.and_(te_t.opportunity_id == sa.bindparam("b_opp"),
                      te_t.entry_id == sa.bindparam("b_entry_id"))


@dataclass(frozen=True, slots=True)
class _Versioned:
    """The statements keeping one kind of delivery news, newest version wins."""

    held: sa.Select
    insert: sa.Insert
    update: sa.Update


MILESTONES = _Versioned(sa.select(ms_t.version).where(_SAME_MILESTONE), sa.insert(milestone_progress),
                        sa.update(milestone_progress).where(_SAME_MILESTONE))
TIME_ENTRIES = _Versioned(sa.select(te_t.version).where(_SAME_ENTRY), sa.insert(time_entries),
                          sa.update(time_entries).where(_SAME_ENTRY))


def store_parsed(db: Database, events: Sequence[Parsed], now: datetime) -> list[Result]:
    """Store every event in one transaction. A concurrent delivery of one of them committed in
    between makes the whole set go again (that one then counts as a duplicate)."""
    for attempt in range(3):
        try:
            with db.transaction() as conn:
                results = store_events(conn, events, now)
            db.statistics.stored(len(events))
            return results
        except IntegrityError:
            if attempt == 2:  # a concurrent twin won the race twice: odd
                raise
    raise AssertionError("unreachable")


def store_events(conn: Connection, events: Sequence[Parsed], now: datetime) -> list[Result]:
    """Each event's result, in order, all written on `conn`."""
    run = _Run(events, now)
    fresh = run.sort_out_repeats(conn)
    _apply_opportunities(conn, run, [i for i in fresh if isinstance(events[i][1], Opportunity)])
    _apply_customers(conn, run, [i for i in fresh if isinstance(events[i][1], Customer)])
    for i in fresh:
        if isinstance(events[i][1], MilestoneProgress | TimeEntry):
            run.results[i] = _apply_delivery(conn, run, events[i][1])
    run.record(conn, fresh)
    queue.enqueue_many(conn, list(run.keys), now)
    return run.finished()


@dataclass
class _Run:
    """One set of events on its way into the store: what became of each so far."""

    events: Sequence[Parsed]
    now: datetime
    results: list[Result | None] = field(init=False)
    keys: dict[str, None] = field(default_factory=dict)  # queue keys, in order, once each
    repeat_of: dict[int, int] = field(default_factory=dict)  # a repeat in the set → its first
    repeats: Counter[int] = field(default_factory=Counter)  # a first → its repeats in the set

    def __post_init__(self) -> None:
        self.results = [None] * len(self.events)

    def enqueue(self, *keys: str) -> None:
        self.keys.update(dict.fromkeys(keys))

    def sort_out_repeats(self, conn: Connection) -> list[int]:
        """Settle repeats (of a stored event or of one earlier in the set); the rest to apply."""
        held = _seen(conn, self.events)
        first_of: dict[tuple[str, str], int] = {}
        fresh, stored_repeats = [], Counter[tuple[str, str]]()
        for i, (event, change) in enumerate(self.events):
            key = (event.source, event.id)
            if key in held:
                body_hash, subject, correlation = held[key]
                self.results[i] = _repeat(event, body_hash, subject, correlation)
                stored_repeats[key] += isinstance(self.results[i], Accepted)
            elif key in first_of:
                first = self.repeat_of[i] = first_of[key]
                self.results[i] = _repeat(event, self.events[first][0].body_hash, subject_of(change), None)
                self.repeats[first] += isinstance(self.results[i], Accepted)
            else:
                first_of[key] = i
                fresh.append(i)
        _count_repeats(conn, stored_repeats)
        return fresh

    def record(self, conn: Connection, fresh: Iterable[int]) -> None:
        """The inbox rows of the events applied, each counting its repeats in the set."""
        rows = []
        for i in fresh:
            event, _change = self.events[i]
            accepted = self.results[i]
            assert isinstance(accepted, Accepted)
            rows.append({"source": event.source, "event_id": event.id, "type": event.type,
                         "subject": accepted.subject, "body_hash": event.body_hash,
                         "body": event.envelope(), "outcome": accepted.outcome.value,
                         "correlation_id": accepted.correlation_id, "received_at": self.now,
                         "deliveries": 1 + self.repeats[i]})
        execute_many(conn, RECORD, rows)

    def finished(self) -> list[Result]:
        """Repeats within the set take the correlation id their first was given."""
        for i, first in self.repeat_of.items():
            repeat, original = self.results[i], self.results[first]
            if isinstance(repeat, Accepted) and isinstance(original, Accepted):
                self.results[i] = Accepted(Outcome.DUPLICATE, repeat.subject, original.correlation_id)
        assert all(result is not None for result in self.results)
        return self.results  # type: ignore[return-value]


def _seen(conn: Connection, events: Sequence[Parsed]) -> dict[tuple[str, str], tuple[str, str, str | None]]:
    """What the inbox holds of these events: (source, id) → body hash, subject, correlation."""
    ids_by_source: dict[str, list[str]] = {}
    for event, _change in events:
        ids_by_source.setdefault(event.source, []).append(event.id)
    return {(source, row.event_id): (row.body_hash, row.subject, row.correlation_id)
            for source, ids in ids_by_source.items()
            for row in conn.execute(SEEN, {"b_source": source, "b_ids": ids})}


def _repeat(event: CloudEvent, body_hash: str, subject: str, correlation: str | None) -> Result:
    if body_hash != event.body_hash:
        return IntakeError(f"event {event.id!r} from {event.source!r} was accepted before with different "
                           "content; a new change needs a new event id", status=409, field="id")
    return Accepted(Outcome.DUPLICATE, subject, correlation)


def _count_repeats(conn: Connection, repeats: Counter[tuple[str, str]]) -> None:
    rows = [{"b_source": source, "b_id": event_id, "b_repeats": n}
            for (source, event_id), n in repeats.items() if n]
    if rows:
        execute_many(conn, COUNT_REPEATS, rows)


def subject_of(change: Change) -> str:
    """The business key an event is about: a milestone's or a time entry's is its deal."""
    return change.opportunity_id if isinstance(change, MilestoneProgress | TimeEntry) else change.id


def deal_of(change: Change) -> str | None:
    """The opportunity an event is about; none for a customer's."""
    return None if isinstance(change, Customer) else subject_of(change)


def _apply_opportunities(conn: Connection, run: _Run, indexes: list[int]) -> None:
    """Newest version wins; a new deal's correlation id continues its CRM's trace if it sent one."""
    if not indexes:
        return
    ids = list({run.events[i][1].id for i in indexes})
    held = {row.id: (row.version, row.correlation_id)
            for row in conn.execute(HELD_OPPORTUNITIES, {"b_ids": ids})}
    inserts: dict[str, dict[str, Any]] = {}
    updates: dict[str, dict[str, Any]] = {}
    for i in indexes:
        event, opp = run.events[i]
        assert isinstance(opp, Opportunity)
        values = {"account_id": opp.account_id, "version": opp.version,
                  "data": opportunity_data(opp), "updated_at": run.now}
        if opp.id not in held:
            correlation = event.trace_id or uuid.uuid4().hex
            inserts[opp.id] = {"id": opp.id, "correlation_id": correlation, **values}
        else:
            version, correlation = held[opp.id]
            outcome = compare(opp.version, version)
            if outcome is not Outcome.APPLIED:
                run.results[i] = Accepted(outcome, opp.id, correlation)
                continue
            if opp.id in inserts:
                inserts[opp.id].update(values)
            else:
                updates[opp.id] = {"b_id": opp.id, **values}
        held[opp.id] = (opp.version, correlation)
        run.results[i] = Accepted(Outcome.APPLIED, opp.id, correlation)
        run.enqueue(opportunity_key(opp.id))
    _write(conn, INSERT_OPPORTUNITY, inserts, UPDATE_OPPORTUNITY, updates)


def _apply_customers(conn: Connection, run: _Run, indexes: list[int]) -> None:
    """A customer's change may release or block its deals' provisioning; a credit hold put on or
    lifted turns their invoicing on or off."""
    if not indexes:
        return
    ids = list({run.events[i][1].id for i in indexes})
    held = {row.id: (row.version, bool(row.data.get("credit_hold")))
            for row in conn.execute(HELD_CUSTOMERS, {"b_ids": ids})}
    deals: dict[str, list[str]] = {}
    for row in conn.execute(DEALS_OF_CUSTOMERS, {"b_ids": ids}):
        deals.setdefault(row.account_id, []).append(row.id)
    inserts: dict[str, dict[str, Any]] = {}
    updates: dict[str, dict[str, Any]] = {}
    for i in indexes:
        customer = run.events[i][1]
        assert isinstance(customer, Customer)
        values = {"version": customer.version, "data": customer_data(customer), "updated_at": run.now}
        before = held.get(customer.id)
        if before is None:
            inserts[customer.id] = {"id": customer.id, **values}
        else:
            outcome = compare(customer.version, before[0])  # type: ignore[arg-type]
            if outcome is not Outcome.APPLIED:
                run.results[i] = Accepted(outcome, customer.id, None)
                continue
            target = inserts if customer.id in inserts else updates
            target[customer.id] = {**target.get(customer.id, {"b_id": customer.id}), **values}
        held[customer.id] = (customer.version, customer.credit_hold)  # type: ignore[assignment]
        run.results[i] = Accepted(Outcome.APPLIED, customer.id, None)
        its_deals = deals.get(customer.id, [])
        run.enqueue(*(opportunity_key(deal) for deal in its_deals))
        if before is not None and before[1] != customer.credit_hold:
            run.enqueue(*(billing_key(deal) for deal in its_deals))
    _write(conn, INSERT_CUSTOMER, inserts, UPDATE_CUSTOMER, updates)


def _write(conn: Connection, insert: sa.Insert, inserts: dict[str, dict[str, Any]],
           update: sa.Update, updates: dict[str, dict[str, Any]]) -> None:
    execute_many(conn, insert, list(inserts.values()))
    execute_many(conn, update, list(updates.values()))


def _apply_delivery(conn: Connection, run: _Run, change: MilestoneProgress | TimeEntry) -> Accepted:
    """Delivery's news (progress, time) may arrive before its deal: it is kept, and billing
    finds it later."""
    if isinstance(change, MilestoneProgress):
        stmts, ids = MILESTONES, {"milestone_id": change.milestone_id}
        values: dict[str, object] = {
            "status": change.status.value, "achieved_on": change.achieved_on,
            "accepted_on": change.accepted_on, "version": change.version, "updated_at": run.now}
    else:
        stmts, ids = TIME_ENTRIES, {"entry_id": change.entry_id}
        values = {"work_date": change.work_date, "hours": change.hours, "rate": change.rate.amount,
                  "currency": change.rate.currency, "status": change.status.value,
                  "person": change.person, "version": change.version, "updated_at": run.now}
    deal_id = change.opportunity_id
    where = {"b_opp": deal_id, **{f"b_{k}": v for k, v in ids.items()}}
    held = conn.execute(stmts.held, where).first()
    deal = conn.execute(DEAL, {"b_id": deal_id}).first()
    correlation = deal.correlation_id if deal else None
    if held is None:
        conn.execute(stmts.insert, {"opportunity_id": deal_id, **ids, **values})
    else:
        outcome = compare(change.version, held.version)
        if outcome is not Outcome.APPLIED:
            return Accepted(outcome, deal_id, correlation)
        conn.execute(stmts.update, {**where, **values})
    run.enqueue(billing_key(deal_id))
    if deal is not None and deal.project_target_id is None:  # its project may be in the making:
        run.enqueue(opportunity_key(deal_id))  # provisioning then hands it to billing
    return Accepted(Outcome.APPLIED, deal_id, correlation)


def compare(incoming: datetime, held: datetime) -> Outcome:
    if incoming > held:
        return Outcome.APPLIED
    return Outcome.UNCHANGED if incoming == held else Outcome.STALE
