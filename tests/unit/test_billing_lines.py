"""Billing lines of approved terms: what may be billed now, line by line."""

from datetime import UTC, date, datetime
from decimal import Decimal

from handoff.domain import (
    BillingMethod,
    BillingPeriod,
    Milestone,
    MilestoneProgress,
    MilestoneStatus,
    Money,
    TimeEntry,
    TimeEntryStatus,
)
from handoff.domain.terms import DealTerms
from handoff.flows.billing_lines import billing_lines, period_of
from handoff.policy.billing import BillingPolicy

V = datetime(2026, 11, 1, tzinfo=UTC)
TODAY = date(2026, 11, 26)


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def entry(entry_id: str, day: date, hours: str, status=TimeEntryStatus.APPROVED) -> TimeEntry:
    return TimeEntry("006T", entry_id, day, Decimal(hours), usd("137.50"), status, V)


def test_a_fixed_fee_without_schedule_is_one_line_billable_at_once() -> None:
    [fee] = billing_lines(DealTerms(usd("50000.00"), BillingMethod.FIXED_FEE), {}, [],
                          BillingPolicy(), TODAY)
    assert (fee.id, fee.sold, fee.billable) == ("fee", usd("50000.00"), True)


def test_a_milestone_deal_without_schedule_has_nothing_to_bill() -> None:
    assert billing_lines(DealTerms(usd("50000.00"), BillingMethod.MILESTONE), {}, [],
                         BillingPolicy(), TODAY) == []


def test_milestones_are_billable_once_progress_reaches_the_policy() -> None:
    terms = DealTerms(usd("90000.00"), BillingMethod.MILESTONE,
                      (Milestone("M1", "Kick-off", usd("30000.00")),
                       Milestone("M2", "Build", usd("60000.00"))))
    progress = {"M1": MilestoneProgress("006T", "M1", MilestoneStatus.ACHIEVED, V)}
    assert [line.billable for line in billing_lines(terms, progress, [], BillingPolicy(), TODAY)] \
        == [True, False]
    accepted_only = BillingPolicy(invoice_when=MilestoneStatus.ACCEPTED)
    assert not billing_lines(terms, progress, [], accepted_only, TODAY)[0].billable


def test_approved_time_is_summed_per_period_and_rounded_once() -> None:
    terms = DealTerms(usd("40000.00"), BillingMethod.TIME_AND_MATERIALS)
    time = [entry(f"T{n}", date(2026, 10, n), "0.333") for n in (1, 2, 3)]
    time += [entry("T8", date(2026, 10, 9), "5", TimeEntryStatus.SUBMITTED),
             entry("T9", date(2026, 11, 2), "2")]
    october, november = billing_lines(terms, {}, time, BillingPolicy(), TODAY)
    # 0.999 h × 137.50 = 137.3625 → 137.36, rounded once; entry by entry it would be 137.37
    assert (october.id, october.sold, october.billable) == ("tm-2026-10", usd("137.36"), True)
    assert (november.id, november.billable) == ("tm-2026-11", False)  # not over yet


def test_periods_end_on_their_last_day() -> None:
    assert period_of(date(2026, 2, 10), BillingPeriod.MONTHLY) == ("2026-02", date(2026, 2, 28))
    assert period_of(date(2026, 11, 26), BillingPeriod.WEEKLY) == ("2026-W48", date(2026, 11, 29))
