"""The canonical model: what handoff believes about deals, customers and projects.

No I/O here. Everything is a frozen value with its invariants checked on construction.
"""

from handoff.domain.billing import (
    Invoice,
    InvoiceStatus,
    Milestone,
    MilestoneInvoice,
    MilestoneProgress,
    MilestoneStatus,
)
from handoff.domain.model import (
    ApprovalStatus,
    BillingMethod,
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
    "Contract",
    "Customer",
    "Invoice",
    "InvoiceStatus",
    "Milestone",
    "MilestoneInvoice",
    "MilestoneProgress",
    "MilestoneStatus",
    "Money",
    "Opportunity",
    "Project",
    "ProjectStatus",
    "ProvisioningStatus",
    "ValidationStatus",
]
