"""Intake of many CloudEvents at once (the CloudEvents batched content mode): a nightly CRM
export, a change-data-capture backlog after an outage. Each event is taken or refused on its
own — deduplicated by (source, id), stale versions kept but not applied, a malformed one
refused and recorded — and the ones taken are stored in one transaction. An event is refused
there only before anything of it is written (the same id with other content), so the others
stay as they are. One commit for a hundred events is what makes a backlog fast."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from handoff.engine.cloudevents import CloudEvent, parse_event
from handoff.engine.inbox import Accepted, Change, _parse_change, _store_in, record_rejection
from handoff.errors import IntakeError
from handoff.store.db import Database

MAX_EVENTS = 1000  # per batch: a bigger backlog comes in several


@dataclass(frozen=True, slots=True)
class BatchResult:
    """One event's fate: taken (its outcome) or refused (status and why)."""

    index: int
    id: str | None
    source: str | None
    accepted: Accepted | None = None
    refusal: IntakeError | None = None

    def view(self) -> dict[str, Any]:
        base = {"index": self.index, "id": self.id, "source": self.source}
        if self.accepted is not None:
            return base | {"outcome": self.accepted.outcome.value, "subject": self.accepted.subject,
                           "correlation_id": self.accepted.correlation_id}
        assert self.refusal is not None
        return base | {"outcome": "refused", "status": self.refusal.status,
                       "message": self.refusal.message, "field": self.refusal.field}


def accept_batch(db: Database, items: list[Any], now: datetime) -> list[BatchResult]:
    """Every event of the batch, in order, taken or refused on its own."""
    if len(items) > MAX_EVENTS:
        raise IntakeError(f"a batch holds at most {MAX_EVENTS} events, not {len(items)}: send it in "
                          "parts", status=413)
    results: dict[int, BatchResult] = {}
    parsed: list[tuple[int, CloudEvent, Change]] = []
    for index, item in enumerate(items):
        try:
            event = parse_event(item)
            parsed.append((index, event, _parse_change(event)))
        except IntakeError as exc:
            results[index] = refused(db, index, item, exc, now)
    results |= store_all(db, parsed, now)
    return [results[index] for index in range(len(items))]


def store_all(db: Database, parsed: list[tuple[int, CloudEvent, Change]],
              now: datetime) -> dict[int, BatchResult]:
    """One transaction for all; a concurrent twin of one of them racing in between makes the
    whole batch go again (its events then count as duplicates)."""
    for attempt in range(3):
        try:
            with db.transaction() as conn:
                taken, refusals = {}, []
                for index, event, change in parsed:
                    try:
                        taken[index] = BatchResult(index, event.id, event.source,
                                                   _store_in(conn, event, change, now))
                    except IntakeError as exc:  # raised before the event wrote anything
                        refusals.append((index, event, exc))
            return taken | {index: refused(db, index, event.envelope(), exc, now)
                            for index, event, exc in refusals}
        except IntegrityError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def refused(db: Database, index: int, item: Any, exc: IntakeError, now: datetime) -> BatchResult:
    record_rejection(db, exc, item, now)
    envelope = item if isinstance(item, dict) else {}
    name = envelope.get("id"), envelope.get("source")
    return BatchResult(index, *(v if isinstance(v, str) else None for v in name), refusal=exc)
