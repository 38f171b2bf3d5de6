"""The polling half of hybrid sync: every so often, read what changed in a system since a
stored cursor — the CRM's accounts and deals, the PSA/ERP's milestones — and take it in
through the same inbox as the events.

A change seen twice is applied once. Each record version becomes the event `<id>@<version>`,
so a poll reading it again is a "duplicate"; an event that brought the version first makes
the poll's copy "unchanged" (the inbox holds each record's version).

Each object's cursor is the newest modification stamp read, stored only once every record up
to it went through intake: a crash re-reads, never skips. Reads start a minute before it,
because a stamp is taken before its transaction commits: a record stamped just before the
cursor may only become visible after the read. A record intake refuses is recorded there
(intake_rejections), counted and passed over; it must not hold the cursor back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from handoff.connectors.ports import CrmChangeFeed, DeliveryFeed
from handoff.engine.cloudevents import change_event
from handoff.engine.inbox import accept
from handoff.engine.payloads import CUSTOMER_CHANGED, MILESTONE_CHANGED, OPPORTUNITY_CHANGED
from handoff.errors import IntakeError
from handoff.store.db import Database
from handoff.store.sql import upsert
from handoff.store.tables import poll_cursors

log = logging.getLogger("handoff.poll")

OVERLAP = timedelta(minutes=1)
BEGINNING = datetime(1970, 1, 1, tzinfo=UTC)  # no cursor yet: every record
CURSOR_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width: text order is time order
REJECTED = "rejected"

cur = poll_cursors.c
CURSOR = sa.select(cur.cursor).where(cur.system == sa.bindparam("b_system"),
                                     cur.object == sa.bindparam("b_object"))


@dataclass
class PollCounts:
    applied: int = 0
    unchanged: int = 0   # the version was held already: an event brought it first
    stale: int = 0       # older than the version held
    duplicate: int = 0   # read by an earlier poll (the overlap)
    rejected: int = 0    # refused by intake, recorded there

    @property
    def read(self) -> int:
        return self.applied + self.unchanged + self.stale + self.duplicate + self.rejected

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def __str__(self) -> str:
        return (f"{self.read} read: {self.applied} applied, {self.unchanged} unchanged, "
                f"{self.stale} stale, {self.duplicate} duplicate, {self.rejected} rejected")


def record_id(data: dict[str, Any]) -> str:
    return str(data["id"])


def milestone_key(data: dict[str, Any]) -> str:
    """A milestone's id is its deal's business: `M1` names one in every deal."""
    return f"{data['opportunity_id']}/{data['id']}"


@dataclass(frozen=True)
class Feed:
    object: str  # the cursor's name
    kind: str    # the event type its records become
    changes: Callable[[datetime], Iterable[dict[str, Any]]]
    subject: Callable[[dict[str, Any]], str] = record_id  # what the event is about


class Poll:
    """Reads each feed in order. Network reads happen between intake's transactions, never
    inside one."""

    def __init__(self, system: str, source: str, feeds: tuple[Feed, ...],
                 overlap: timedelta = OVERLAP) -> None:
        self.system, self.source, self.feeds, self.overlap = system, source, feeds, overlap

    def run(self, db: Database, now: datetime) -> PollCounts:
        counts = PollCounts()
        for feed in self.feeds:
            self._read(db, feed, now, counts)
        return counts

    def _read(self, db: Database, feed: Feed, now: datetime, counts: PollCounts) -> None:
        newest: datetime | None = None
        for data in feed.changes(self._since(db, feed.object)):
            counts.add(self._accept(db, feed, data, now))
            stamp = datetime.fromisoformat(data["version"])
            newest = stamp if newest is None else max(newest, stamp)
        if newest is not None:
            store_cursor(db, self.system, feed.object, newest, now)

    def _accept(self, db: Database, feed: Feed, data: dict[str, Any], now: datetime) -> str:
        event = change_event(feed.kind, data, self.source, now, feed.subject(data))
        try:
            return accept(db, event, now).outcome.value
        except IntakeError as exc:  # recorded by intake; the record's next change is read anew
            log.warning("%s %s refused: %s", self.system, data.get("id"), exc)
            return REJECTED

    def _since(self, db: Database, name: str) -> datetime:
        cursor = read_cursor(db, self.system, name)
        return BEGINNING if cursor is None else cursor - self.overlap


def crm_poll(crm: CrmChangeFeed, overlap: timedelta = OVERLAP) -> Poll:
    """Accounts, then opportunities: a new deal's customer is then known when the deal arrives."""
    return Poll(crm.system, f"/crm/{crm.system}/poll",
                (Feed("accounts", CUSTOMER_CHANGED, crm.changed_accounts),
                 Feed("opportunities", OPPORTUNITY_CHANGED, crm.changed_opportunities)), overlap)


def delivery_poll(psa: DeliveryFeed, overlap: timedelta = OVERLAP) -> Poll:
    return Poll(psa.system, f"/psa/{psa.system}/poll",
                (Feed("milestones", MILESTONE_CHANGED, psa.changed_milestones, milestone_key),),
                overlap)


def read_cursor(db: Database, system: str, name: str) -> datetime | None:
    with db.reading() as conn:
        cursor = conn.execute(CURSOR, {"b_system": system, "b_object": name}).scalar()
    return None if cursor is None else datetime.strptime(cursor, CURSOR_FORMAT).replace(tzinfo=UTC)


def store_cursor(db: Database, system: str, name: str, newest: datetime, now: datetime) -> None:
    """Every worker polls: one that read less and finished later must not move the cursor back."""
    row = {"system": system, "object": name, "updated_at": now,
           "cursor": newest.astimezone(UTC).strftime(CURSOR_FORMAT)}
    with db.transaction() as conn:
        upsert(conn, poll_cursors, row, ("system", "object"), set_clause=_later)


def _later(table: sa.Table, excluded: Any) -> dict[str, Any]:
    later = sa.case((excluded.cursor > table.c.cursor, excluded.cursor), else_=table.c.cursor)
    return {"cursor": later, "updated_at": excluded.updated_at}
