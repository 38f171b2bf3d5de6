"""A deal's billing lines under its approved terms: what was sold, line by line, and whether
each may be billed yet. Pure functions.

    milestone       one line per milestone of the schedule (a fixed fee may have one too);
                    billable once delivery's progress reaches `[policy.billing] invoice_when`
    fixed fee       with no schedule: one line `fee` for the contract value, billable as soon
                    as the project is active (a milestone deal with no schedule has no line)
    time and        one line per period (`tm-2026-10`, `tm-2026-W43`) of approved time,
    materials       hours × rate rounded once per period; billable once the period has ended
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from handoff.domain import (
    BillingMethod,
    BillingPeriod,
    MilestoneProgress,
    Money,
    TimeEntry,
    TimeEntryStatus,
)
from handoff.domain.terms import DealTerms
from handoff.policy.billing import BillingPolicy

FEE_LINE = "fee"
TIME_LINE_PREFIX = "tm-"


@dataclass(frozen=True, slots=True)
class BillingLine:
    id: str
    name: str
    sold: Money
    billable: bool   # may be invoiced now (milestone reached, period over, fee active)


def billing_lines(terms: DealTerms, progress: dict[str, MilestoneProgress],
                  time: list[TimeEntry], policy: BillingPolicy, today: date) -> list[BillingLine]:
    if terms.billing_method is BillingMethod.TIME_AND_MATERIALS:
        return time_lines(time, terms, today)
    if terms.milestones:
        return [BillingLine(m.id, m.name, m.amount, _reached(progress.get(m.id), policy))
                for m in terms.milestones]
    if terms.billing_method is BillingMethod.FIXED_FEE:
        return [BillingLine(FEE_LINE, "Fixed fee", terms.value, True)]
    return []  # billed by milestone, and no schedule sold yet: nothing may be billed


def time_lines(time: list[TimeEntry], terms: DealTerms, today: date) -> list[BillingLine]:
    totals: dict[tuple[str, date], Decimal] = {}
    hours: dict[str, Decimal] = {}
    for entry in time:
        if entry.status is not TimeEntryStatus.APPROVED:
            continue
        period, end = period_of(entry.work_date, terms.billing_period)
        totals[(period, end)] = totals.get((period, end), Decimal(0)) + entry.value
        hours[period] = hours.get(period, Decimal(0)) + entry.hours
    return [BillingLine(TIME_LINE_PREFIX + period, f"Time and materials {period} ({hours[period]} h)",
                        Money.rounded(total, terms.currency), end < today)
            for (period, end), total in sorted(totals.items())]


def period_of(day: date, period: BillingPeriod) -> tuple[str, date]:
    """The period's name and its last day."""
    if period is BillingPeriod.WEEKLY:
        year, week, weekday = day.isocalendar()
        return f"{year}-W{week:02d}", day + timedelta(days=7 - weekday)
    first_of_next = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    return f"{day:%Y-%m}", first_of_next - timedelta(days=1)


def _reached(progress: MilestoneProgress | None, policy: BillingPolicy) -> bool:
    return progress is not None and progress.status.reached(policy.invoice_when)
