"""`/metrics` in Prometheus' text format: what the store holds (events, duplicates,
refusals, the queue, open exceptions) and what the latest reconciliation found per class.
Every figure is counted from the tables when scraped, so it never drifts from the facts; rows
retention removed are counted in at what it counted of them, so the counters never go down."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.engine import queue
from handoff.engine.clock import utcnow
from handoff.engine.exceptions import KINDS
from handoff.flows.slas import freshness_samples, provisioning_samples, summarize
from handoff.reconcile.classes import CLASSES
from handoff.store import reconciliation
from handoff.store.retention import PRUNED_DUPLICATES, PRUNED_EVENTS, PRUNED_REJECTIONS
from handoff.store.sql import read_counters
from handoff.store.tables import exceptions, hops, inbox_events, intake_rejections

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
Sample = tuple[dict[str, str], int | float]


def exposition(conn: Connection) -> str:
    inbox, kept = inbox_events.c, read_counters(conn)
    pruned = {name.removeprefix(PRUNED_EVENTS): n for name, n in kept.items()
              if name.startswith(PRUNED_EVENTS)}
    held = dict(conn.execute(sa.select(inbox.outcome, sa.func.count()).group_by(inbox.outcome)).all())
    outcomes = {o: held.get(o, 0) + pruned.get(o, 0) for o in held.keys() | pruned.keys()}
    duplicates = kept.get(PRUNED_DUPLICATES, 0) + conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(inbox.deliveries - 1), 0))).scalar_one()
    rejected = kept.get(PRUNED_REJECTIONS, 0) + conn.execute(
        sa.select(sa.func.count()).select_from(intake_rejections)).scalar_one()
    open_exceptions = dict(conn.execute(
        sa.select(exceptions.c.kind, sa.func.count()).where(exceptions.c.resolved_at.is_(None))
        .group_by(exceptions.c.kind)).all())
    parts = [
        metric("handoff_events_total", "counter", "CloudEvents stored, by what became of them",
               [({"outcome": o}, n) for o, n in sorted(outcomes.items())]),
        metric("handoff_duplicates_suppressed_total", "counter",
               "deliveries of an event already stored", [({}, duplicates)]),
        metric("handoff_events_rejected_total", "counter", "events refused at intake", [({}, rejected)]),
        metric("handoff_pruned_rows_total", "counter", "rows retention removed, by table",
               [({"table": "inbox_events"}, sum(pruned.values())),
                ({"table": "intake_rejections"}, kept.get(PRUNED_REJECTIONS, 0))]),
        metric("handoff_queue_depth", "gauge", "business keys waiting to be reconciled",
               [({}, queue.depth(conn))]),
        metric("handoff_open_exceptions", "gauge", "deals parked or dead-lettered, not yet resolved",
               [({"kind": k}, open_exceptions.get(k, 0)) for k in KINDS]),
    ]
    return "".join(parts + call_metrics(conn) + sla_metrics(conn) + reconciliation_metrics(conn))


def call_metrics(conn: Connection) -> list[str]:
    """Calls to each system by outcome (ThrottledError: answered 429 or over its budget), and
    the retries the engine scheduled."""
    calls = conn.execute(sa.select(hops.c.system, hops.c.outcome, sa.func.count())
                         .where(hops.c.system != "handoff").group_by(hops.c.system, hops.c.outcome)).all()
    retries = read_counters(conn).get("retries", 0)
    return [
        metric("handoff_calls_total", "counter", "calls to each system, by outcome",
               [({"system": system, "outcome": outcome}, n) for system, outcome, n in sorted(calls)]),
        metric("handoff_throttled_calls_total", "counter", "calls a system throttled",
               [({"system": system}, n) for system, outcome, n in sorted(calls)
                if outcome == "ThrottledError"]),
        metric("handoff_retries_total", "counter", "retries the engine scheduled", [({}, retries)]),
    ]


def sla_metrics(conn: Connection) -> list[str]:
    """The business SLAs over the last 24 hours, as summaries (p50, p95, count)."""
    since = utcnow() - timedelta(hours=24)
    found = []
    for name, help_text, samples in (
            ("handoff_provisioning_seconds", "approved to project active, last 24 h",
             provisioning_samples(conn, since)),
            ("handoff_invoice_status_freshness_seconds", "posted in the ERP to shown in the CRM, last 24 h",
             freshness_samples(conn, since))):
        if samples:
            window = summarize(since.date(), [took for _, took in samples])
            found.append(metric(name, "summary", help_text, [
                ({"quantile": "0.5"}, window.p50_seconds), ({"quantile": "0.95"}, window.p95_seconds)])
                + f"{name}_count {window.count}\n")
    return found


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
