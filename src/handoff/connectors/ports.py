"""What the flows need from a CRM and from an ERP/PSA. Real connectors and the in-memory
fakes implement these; the contract tests in tests/contract/ hold both to them.

Every method is idempotent: called twice with the same arguments (because the first
response was lost) it leaves the target exactly as one call would.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from handoff.domain import Customer, Project, ProvisioningStatus


@dataclass(frozen=True, slots=True)
class CrmStatusUpdate:
    """What the CRM record of an opportunity should show about its provisioning."""

    opportunity_id: str
    status: ProvisioningStatus
    detail: str = ""
    project_id: str | None = None


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """The target system's own id for the record, and whether this call created it
    (None when the API does not say)."""

    target_id: str
    created: bool | None = None


class CrmConnector(Protocol):
    system: str

    def write_back(self, update: CrmStatusUpdate) -> None:
        """Set the provisioning fields on the opportunity record."""


class ErpConnector(Protocol):
    system: str

    def upsert_customer(self, external_id: str, customer: Customer) -> UpsertResult:
        """Create or update the customer addressed by handoff's external id."""

    def upsert_project(self, project: Project, customer_target_id: str) -> UpsertResult:
        """Create or update the project addressed by `project.external_id`."""
