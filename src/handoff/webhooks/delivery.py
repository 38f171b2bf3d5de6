"""From vendor events to the inbox.

A webhook is refused as a whole (nothing changes, the refusal is kept in intake_rejections)
when it is not authentic, not fresh, not well formed, or its records cannot be read now. Once
it is accepted, each of its records goes to the inbox on its own: a record whose data handoff
refuses is kept as a rejection with the field named, as any bad `/events` input is, and does
not hold back the others (the vendor could only resend the same data).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from handoff.engine.cloudevents import change_event
from handoff.engine.inbox import accept
from handoff.errors import DataError, IntakeError
from handoff.store.db import Database
from handoff.store.tables import intake_rejections

EXCERPT = 2000  # characters of a refused body kept


@dataclass(frozen=True, slots=True)
class VendorEvent:
    """One record's canonical data, from one vendor delivery (`delivery`: the vendor's id of it,
    e.g. HubSpot's eventId)."""

    delivery: str
    kind: str
    data: dict[str, Any]
    time: datetime

    def cloudevent(self, source: str) -> dict[str, Any]:
        """The vendor's delivery id and the record's version make the id: a retry carrying the
        same version is a duplicate; one that found a newer version is a new event."""
        body = change_event(self.kind, self.data, source, self.time)
        body["id"] = f"{self.delivery}@{self.data['version']}"
        return body


@dataclass(frozen=True, slots=True)
class Skipped:
    """A vendor event handoff has no use for (a deletion, an object it does not keep) or a
    record refused before it reached the inbox."""

    delivery: str
    reason: str
    status: int | None = None
    field: str | None = None
    excerpt: bytes = b""


@dataclass(slots=True)
class Translation:
    events: list[VendorEvent] = field(default_factory=list)
    ignored: list[Skipped] = field(default_factory=list)
    rejected: list[Skipped] = field(default_factory=list)

    def add(self, delivery: str, make: Callable[[], VendorEvent | None], vendor_event: Any) -> None:
        """Add the event `make` builds; a DataError refuses only this record (`vendor_event`,
        what the vendor sent about it, is kept with the refusal)."""
        try:
            event = make()
        except DataError as exc:
            excerpt = orjson.dumps(vendor_event, default=str)
            self.rejected.append(Skipped(delivery, exc.message, 422, exc.field, excerpt))
            return
        if event is not None:
            self.events.append(event)


def deliver(db: Database, source: str, translation: Translation, now: datetime) -> dict[str, Any]:
    """Accept each event into the inbox; the summary the vendor is answered with."""
    for skipped in translation.rejected:
        record_refusal(db, source, IntakeError(skipped.reason, status=skipped.status or 422,
                                               field=skipped.field),
                       skipped.excerpt, now, event_id=skipped.delivery)
    accepted, rejected = [], [_skipped(s) for s in translation.rejected]
    for event in translation.events:
        body = event.cloudevent(source)
        try:
            result = accept(db, body, now)  # a refusal is recorded by the inbox
        except IntakeError as exc:
            rejected.append({"delivery": event.delivery, "id": body["id"], "status": exc.status,
                             "message": exc.message, "field": exc.field})
            continue
        accepted.append({"delivery": event.delivery, "id": body["id"], "subject": result.subject,
                         "outcome": result.outcome.value})
    return {"source": source, "accepted": accepted, "rejected": rejected,
            "ignored": [{"delivery": s.delivery, "reason": s.reason} for s in translation.ignored]}


def _skipped(skipped: Skipped) -> dict[str, Any]:
    return {"delivery": skipped.delivery, "id": None, "status": skipped.status,
            "message": skipped.reason, "field": skipped.field}


def record_refusal(db: Database, source: str, error: IntakeError, raw: bytes, now: datetime,
                   event_id: str | None = None) -> None:
    """A refused webhook, kept as /events keeps refused input: when, the status, why, which
    webhook, and a bounded excerpt of what was sent."""
    with db.transaction() as conn:
        conn.execute(sa.insert(intake_rejections).values(
            received_at=now, status_code=error.status, reason=error.message, field=error.field,
            source=source[:255], event_id=event_id[:255] if event_id else None,
            excerpt=raw[:EXCERPT * 4].decode("utf-8", "replace")[:EXCERPT]))
