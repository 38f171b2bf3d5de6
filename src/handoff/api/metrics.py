"""`/metrics` in Prometheus' text format: what the store holds (events, duplicates,
refusals, the queue, open exceptions) and what the latest reconciliation found per class.
Every figure is counted from the tables when scraped, so it never drifts from the facts."""

from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.engine import queue
from handoff.engine.exceptions import KINDS
from handoff.reconcile.classes import CLASSES
from handoff.store import reconciliation
from handoff.store.tables import exceptions, inbox_events, intake_rejections

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Sample = tuple[dict[str, str], int | float]


def exposition(conn: Connection) -> str:
    inbox = inbox_events.c
    outcomes = dict(conn.execute(sa.select(inbox.outcome, sa.func.count()).group_by(inbox.outcome)).all())
    duplicates = conn.execute(sa.select(sa.func.coalesce(sa.func.sum(inbox.deliveries - 1), 0))).scalar_one()
    rejected = conn.execute(sa.select(sa.func.count()).select_from(intake_rejections)).scalar_one()
    open_exceptions = dict(conn.execute(
        sa.select(exceptions.c.kind, sa.func.count()).where(exceptions.c.resolved_at.is_(None))
        .group_by(exceptions.c.kind)).all())
    parts = [
        metric("handoff_events_total", "counter", "CloudEvents stored, by what became of them",
               [({"outcome": o}, n) for o, n in sorted(outcomes.items())]),
        metric("handoff_duplicates_suppressed_total", "counter",
               "deliveries of an event already stored", [({}, duplicates)]),
        metric("handoff_events_rejected_total", "counter", "events refused at intake", [({}, rejected)]),
        metric("handoff_queue_depth", "gauge", "business keys waiting to be reconciled",
               [({}, queue.depth(conn))]),
        metric("handoff_open_exceptions", "gauge", "deals parked or dead-lettered, not yet resolved",
               [({"kind": k}, open_exceptions.get(k, 0)) for k in KINDS]),
    ]
    return "".join(parts + reconciliation_metrics(conn))


def reconciliation_metrics(conn: Connection) -> list[str]:
    run = reconciliation.latest_run(conn)
    if run is None:
        return []
    unacknowledged = sum(1 for f in reconciliation.findings(conn, run.id) if f.acknowledged is None)
    return [
        metric("handoff_reconciliation_discrepancies", "gauge",
               "discrepancies the latest reconciliation found, by class",
               [({"kind": c.kind.value}, run.counts.get(c.kind.value, 0)) for c in CLASSES]),
        metric("handoff_reconciliation_unacknowledged", "gauge",
               "findings of the latest reconciliation nobody has acknowledged", [({}, unacknowledged)]),
        metric("handoff_reconciliation_contracts", "gauge", "contracts the latest reconciliation compared",
               [({}, run.contracts or 0)]),
        metric("handoff_reconciliation_last_run_timestamp_seconds", "gauge",
               "when the latest reconciliation started", [({}, run.started_at.timestamp())]),
    ]


def metric(name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> str:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    for labels, value in samples:
        label_text = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
        lines.append(f"{name}{{{label_text}}} {value}" if label_text else f"{name} {value}")
    return "\n".join(lines) + "\n"


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
