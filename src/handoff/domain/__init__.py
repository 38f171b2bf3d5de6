"""The canonical model: what handoff believes about deals, customers and projects.

No I/O here. Everything is a frozen value with its invariants checked on construction.
"""

from handoff.domain.billing import (
    Invoice,
    InvoiceRequest,
    InvoiceStatus,
    Milestone,
    MilestoneProgress,
    MilestoneStatus,
    TimeEntry,
    TimeEntryStatus,
)
from handoff.domain.model import (
    ApprovalStatus,
    BillingMethod,
    BillingPeriod,
    Contract,
    Customer,
    Opportunity,
    Project,
    ProjectStatus,
    ValidationStatus,
)
from handoff.domain.money import Money
from handoff.domain.provisioning import ProvisioningStatus

__all__ = [
    "ApprovalStatus",
    "BillingMethod",
    "BillingPeriod",
    "Contract",
    "Customer",
    "Invoice",
    "InvoiceStatus",
    "Milestone",
    "InvoiceRequest",
    "MilestoneProgress",
    "MilestoneStatus",
    "Money",
    "Opportunity",
    "Project",
    "ProjectStatus",
    "ProvisioningStatus",
    "TimeEntry",
    "TimeEntryStatus",
    "ValidationStatus",
]
