"""The business SLAs, per day: provisioning time (approved — every release gate passed — to
the project active in the ERP) and invoice status freshness (a document issued or its status
read from the ERP, to the CRM showing it: the next successful write-back of that deal)."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.store.tables import hops, provisioning

BILLING_STEPS = ("issue_invoice", "issue_credit_note", "invoice_status")
_h, _w = hops.alias("h"), hops.alias("w")
SHOWN_IN_CRM = (sa.select(sa.func.min(_w.c.finished_at))
                .where(_w.c.opportunity_id == _h.c.opportunity_id, _w.c.step == "write_back",
                       _w.c.outcome == "ok", _w.c.started_at >= _h.c.finished_at)
                .scalar_subquery())
FRESHNESS = (sa.select(_h.c.finished_at.label("seen"), SHOWN_IN_CRM.label("shown"))
             .where(_h.c.step.in_(BILLING_STEPS), _h.c.outcome == "ok",
                    _h.c.finished_at >= sa.bindparam("b_since")))
PROVISIONING = (sa.select(provisioning.c.released_at, provisioning.c.provisioned_at)
                .where(provisioning.c.provisioned_at >= sa.bindparam("b_since"),
                       provisioning.c.released_at.is_not(None)))


@dataclass(frozen=True, slots=True)
class DailySla:
    day: date
    count: int
    p50_seconds: float
    p95_seconds: float


Sample = tuple[datetime, float]  # when it was done, and how many seconds it took


def provisioning_samples(conn: Connection, since: datetime) -> list[Sample]:
    return [(row.provisioned_at, seconds(row.provisioned_at - row.released_at))
            for row in conn.execute(PROVISIONING, {"b_since": since})]


def freshness_samples(conn: Connection, since: datetime) -> list[Sample]:
    return [(row.shown, seconds(row.shown - row.seen))
            for row in conn.execute(FRESHNESS, {"b_since": since}) if row.shown is not None]


def provisioning_times(conn: Connection, since: datetime) -> list[DailySla]:
    return daily(provisioning_samples(conn, since))


def invoice_freshness(conn: Connection, since: datetime) -> list[DailySla]:
    return daily(freshness_samples(conn, since))


def daily(samples: list[Sample]) -> list[DailySla]:
    by_day: dict[date, list[float]] = defaultdict(list)
    for moment, took in samples:
        by_day[moment.date()].append(took)
    return [summarize(day, values) for day, values in sorted(by_day.items())]


def summarize(day: date, values: list[float]) -> DailySla:
    return DailySla(day, len(values), percentile(values, 50), percentile(values, 95))


def seconds(took: timedelta) -> float:
    return max(took.total_seconds(), 0.0)


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(math.ceil(p / 100 * len(ordered)) - 1, 0)]
