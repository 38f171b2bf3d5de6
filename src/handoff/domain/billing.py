"""Billing by the sold structure: a deal's billing lines (milestones of its schedule, a
fixed fee, a period of time and materials), delivery's progress on them, and the invoices
and credit notes the ERP makes of them.

The schedule is sold, so it comes with the opportunity and changes only by an approved
amendment; progress and time are delivery's, so they arrive as their own events
(`handoff.milestone.changed`, `handoff.time_entry.changed`). Every billing document carries a
deterministic external id (domain/ids.py), so it is made once however often it is asked for.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from handoff.domain.money import Money


class MilestoneStatus(enum.StrEnum):
    """PLANNED → ACHIEVED (delivery says it is done) → ACCEPTED (the customer signed it off)."""

    PLANNED = "planned"
    ACHIEVED = "achieved"
    ACCEPTED = "accepted"

    def reached(self, threshold: MilestoneStatus) -> bool:
        order = list(MilestoneStatus)
        return order.index(self) >= order.index(threshold)


class InvoiceStatus(enum.StrEnum):
    DRAFT = "draft"
    POSTED = "posted"
    PAID = "paid"
    CANCELLED = "cancelled"


class TimeEntryStatus(enum.StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Milestone:
    """One line of the billing schedule as sold (also any billing line: a fixed fee, a period
    of time and materials, a true-up or credit after an amendment — negative for a credit)."""

    id: str
    name: str
    amount: Money


@dataclass(frozen=True, slots=True)
class MilestoneProgress:
    """Where delivery stands on one milestone. `version` is the source's modification stamp."""

    opportunity_id: str
    milestone_id: str
    status: MilestoneStatus
    version: datetime
    achieved_on: date | None = None
    accepted_on: date | None = None


@dataclass(frozen=True, slots=True)
class TimeEntry:
    """Time delivered on a time-and-materials deal, as the PSA recorded it. Only approved
    entries are billed; `rate` is per hour in the deal's currency."""

    opportunity_id: str
    entry_id: str
    work_date: date
    hours: Decimal
    rate: Money
    status: TimeEntryStatus
    version: datetime
    person: str | None = None

    @property
    def value(self) -> Decimal:
        """Hours × rate, exact: a period's total is rounded once, not per entry."""
        return self.hours * self.rate.amount


@dataclass(frozen=True, slots=True)
class InvoiceRequest:
    """What handoff asks the ERP for: one billing document (an invoice, or a credit note when
    the line's amount is negative) for one line of one project. `line.id` is the document's
    id within the deal: the line's own id, or `<line>#<n>` for its n-th document."""

    external_id: str
    opportunity_id: str
    line: Milestone
    invoice_date: date
    customer_target_id: str | None = None  # the customer's id in the ERP, when known
    post: bool = True  # False: leave it a draft for finance to post

    @property
    def is_credit(self) -> bool:
        return self.line.amount.is_negative


@dataclass(frozen=True, slots=True)
class Invoice:
    """An invoice as the ERP last showed it."""

    external_id: str
    target_id: str
    number: str | None
    status: InvoiceStatus
    untaxed: Money
    tax: Money
    total: Money
    amount_due: Money
    invoice_date: date | None = None
    due_date: date | None = None

    @property
    def paid(self) -> Money:
        return Money(self.total.amount - self.amount_due.amount, self.total.currency)

