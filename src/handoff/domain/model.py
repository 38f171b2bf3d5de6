"""Canonical records. Ids are the source system's own; versions are the source's clock."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime

from handoff.domain.billing import Milestone
from handoff.domain.money import Money


class BillingMethod(enum.StrEnum):
    FIXED_FEE = "fixed_fee"
    TIME_AND_MATERIALS = "time_and_materials"
    MILESTONE = "milestone"


class BillingPeriod(enum.StrEnum):
    """How often approved time is invoiced on a time-and-materials deal."""

    WEEKLY = "weekly"
    MONTHLY = "monthly"


class ApprovalStatus(enum.StrEnum):
    DRAFT = "draft"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ValidationStatus(enum.StrEnum):
    UNVALIDATED = "unvalidated"
    VALID = "valid"
    INVALID = "invalid"


class ProjectStatus(enum.StrEnum):
    """A project's life in the PSA/ERP: PENDING → ACTIVE → CLOSED."""

    PENDING = "pending"
    ACTIVE = "active"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Customer:
    """The customer master record as handoff last saw it (system of record: MDM or ERP)."""

    id: str
    name: str
    currency: str
    tax_jurisdiction: str | None = None
    legal_entity: str | None = None
    validation_status: ValidationStatus = ValidationStatus.UNVALIDATED
    version: datetime | None = None
    credit_hold: bool = False  # finance stopped invoicing this customer


@dataclass(frozen=True, slots=True)
class Contract:
    """The contract / SOW behind an opportunity: its value, the two approvals gates need, its
    billing schedule (milestones; empty for time and materials, or a fixed fee billed at
    once), the tax treatment and how often time and materials is invoiced."""

    value: Money
    contract_status: ApprovalStatus = ApprovalStatus.DRAFT
    sow_status: ApprovalStatus = ApprovalStatus.DRAFT
    milestones: tuple[Milestone, ...] = ()
    tax_treatment: str | None = None
    billing_period: BillingPeriod = BillingPeriod.MONTHLY


@dataclass(frozen=True, slots=True)
class Opportunity:
    """A deal from the CRM. `version` is the CRM's modification stamp (e.g. SystemModstamp);
    `modified_by` and `change_reason` say who changed it last and why (an amendment's
    requester and reason when the change is to the sold terms)."""

    id: str
    name: str
    account_id: str
    stage: str
    is_won: bool
    amount: Money
    close_date: date
    billing_method: BillingMethod
    contract: Contract
    version: datetime
    legal_entity: str | None = None
    owner: str | None = None
    description: str | None = None
    modified_by: str | None = None
    change_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Project:
    """The project handoff wants in the PSA/ERP for one won, released opportunity."""

    external_id: str
    opportunity_id: str
    name: str
    customer_external_id: str
    value: Money
    billing_method: BillingMethod
    start_date: date
    legal_entity: str | None = None
    status: ProjectStatus = ProjectStatus.PENDING
    milestones: tuple[Milestone, ...] = ()  # the approved schedule: delivery's planned work
