"""Billing by the sold structure: a deal's milestones (its billing schedule), their progress
in delivery, and the invoice each billable milestone becomes in the ERP.

The schedule is sold, so it comes with the opportunity; progress is delivery's, so it
arrives as its own event (`handoff.milestone.changed`). A milestone is invoiced once: its
invoice carries a deterministic external id (domain/ids.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

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


@dataclass(frozen=True, slots=True)
class Milestone:
    """One line of the billing schedule as sold."""

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
class MilestoneInvoice:
    """What handoff asks the ERP for: one invoice for one milestone of one project."""

    external_id: str
    opportunity_id: str
    milestone: Milestone
    invoice_date: date


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

