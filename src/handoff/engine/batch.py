"""Intake of many CloudEvents at once (the CloudEvents batched content mode): a nightly CRM
export, a change-data-capture backlog after an outage. Each event is taken or refused on its
own — deduplicated by (source, id), stale versions kept but not applied, a malformed one
refused and recorded — and the ones taken are stored in one transaction. An event is refused
there only before anything of it is written (the same id with other content), so the others
stay as they are. One commit for a hundred events is what makes a backlog fast."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from handoff.engine.cloudevents import parse_event
from handoff.engine.inbox import Accepted, parse_change, record_rejections
from handoff.engine.inbox_store import Parsed, Result, store_parsed
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
    batch = ParsedBatch.of(items)
    return batch.finish(db, store_parsed(db, batch.parsed, now), now)


@dataclass
class ParsedBatch:
    """A batch checked event by event: the ones to store, and the ones refused already."""

    size: int
    indexes: list[int] = field(default_factory=list)  # of the events to store …
    parsed: list[Parsed] = field(default_factory=list)  # … and the events themselves
    refusals: dict[int, tuple[IntakeError, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, items: list[Any]) -> ParsedBatch:
        if len(items) > MAX_EVENTS:
            raise IntakeError(f"a batch holds at most {MAX_EVENTS} events, not {len(items)}: send it "
                              "in parts", status=413)
        batch = cls(len(items))
        for index, item in enumerate(items):
            try:
                event = parse_event(item)
                batch.parsed.append((event, parse_change(event)))
                batch.indexes.append(index)
            except IntakeError as exc:
                batch.refusals[index] = (exc, item)
        return batch

    def finish(self, db: Database, stored: list[Result], now: datetime) -> list[BatchResult]:
        """Each event's fate once the ones to store are stored; the refusals recorded."""
        results: dict[int, BatchResult] = {}
        for index, (event, _change), result in zip(self.indexes, self.parsed, stored, strict=True):
            if isinstance(result, IntakeError):
                self.refusals[index] = (result, event.envelope())
            else:
                results[index] = BatchResult(index, event.id, event.source, result)
        record_rejections(db, list(self.refusals.values()), now)
        for index, (error, item) in self.refusals.items():
            envelope = item if isinstance(item, dict) else {}
            name = envelope.get("id"), envelope.get("source")
            results[index] = BatchResult(index, *(v if isinstance(v, str) else None for v in name),
                                         refusal=error)
        return [results[index] for index in range(self.size)]
