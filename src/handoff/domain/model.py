"""Canonical records. Ids are the source system's own; versions are the source's clock."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime

from handoff.domain.billing import Milestone
from handoff.domain.money import Money


class BillingMethod(enum.StrEnum):
    FIXED_FEE = "fixed_fee"
    TIME_AND_MATERIALS = "time_and_materials"
    MILESTONE = "milestone"


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


@dataclass(frozen=True, slots=True)
class Contract:
    """The contract / SOW behind an opportunity: its value, the two approvals gates need and
    its billing schedule (empty when the deal is not billed by milestone)."""

    value: Money
    contract_status: ApprovalStatus = ApprovalStatus.DRAFT
    sow_status: ApprovalStatus = ApprovalStatus.DRAFT
    milestones: tuple[Milestone, ...] = ()


@dataclass(frozen=True, slots=True)
class Opportunity:
    """A deal from the CRM. `version` is the CRM's modification stamp (e.g. SystemModstamp)."""

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
    extra: dict[str, str] = field(default_factory=dict)


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
