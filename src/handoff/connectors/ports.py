"""What the flows need from a CRM and from an ERP/PSA. Real connectors and the in-memory
fakes implement these; the contract tests in tests/contract/ hold both to them.

Every method is idempotent: called twice with the same arguments (because the first
response was lost) it leaves the target exactly as one call would.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, runtime_checkable

from handoff.domain import Customer, Invoice, InvoiceRequest, Money, Project, ProvisioningStatus
from handoff.errors import HandoffError


@dataclass(frozen=True, slots=True)
class BillingSummary:
    """What the CRM record of a deal should show about its invoices and credit notes."""

    invoiced: Money        # billed to date: posted documents, net of credit notes
    paid: Money
    open_balance: Money    # still due, net of credit notes
    days_overdue: int      # of the oldest invoice past its due date; 0 when none
    invoice_numbers: tuple[str, ...] = ()
    last_invoice: str = ""  # e.g. "INV/0002 posted"
    held: str = ""          # why billable lines are not invoiced (a person must act)

    def describe(self) -> str:
        late = f", {self.days_overdue} days overdue" if self.days_overdue else ""
        return (f"billed {self.invoiced}, paid {self.paid.quantized()}, open "
                f"{self.open_balance.quantized()}{late}"
                + (f"; last {self.last_invoice}" if self.last_invoice else "")
                + (f"; held: {self.held}" if self.held else ""))


@dataclass(frozen=True, slots=True)
class CrmStatusUpdate:
    """What the CRM record of an opportunity should show about its provisioning (and, once
    invoices exist, its billing)."""

    opportunity_id: str
    status: ProvisioningStatus
    detail: str = ""
    project_id: str | None = None
    billing: BillingSummary | None = None


@dataclass(frozen=True, slots=True)
class UpsertResult:
    """The target system's own id for the record, and whether this call created it
    (None when the API does not say)."""

    target_id: str
    created: bool | None = None


class CrmConnector(Protocol):
    system: str

    def write_back_many(self, updates: Sequence[CrmStatusUpdate]) -> list[HandoffError | None]:
        """Set the provisioning fields on each opportunity record, in as few calls as the
        API allows. One outcome per update, in order: None when saved, else the error for
        that record. An error of the whole call is raised."""


@runtime_checkable
class CrmRecordReader(Protocol):
    """Reads one CRM record by the CRM's own id, as canonical event data: exactly what the
    change feed gives for the same record (webhooks that only name a record use it)."""

    def opportunity_event_data(self, object_id: str) -> dict[str, Any]: ...

    def customer_event_data(self, object_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class RateBudget:
    """What a system allows handoff: requests per window and calls in flight (None: the
    vendor sets no such limit), and where the figures come from."""

    requests: int | None
    window_seconds: float | None
    concurrency: int | None
    source: str


@runtime_checkable
class CrmChangeFeed(Protocol):
    """A CRM that can list what changed since a moment: the scheduled poll reads it for
    records whose changes send no event (or whose events were lost)."""

    system: str

    def changed_accounts(self, since: datetime) -> Iterable[dict[str, Any]]:
        """Canonical customer event data of every account modified after `since`."""

    def changed_opportunities(self, since: datetime) -> Iterable[dict[str, Any]]:
        """Canonical opportunity event data of every opportunity modified after `since`."""


@runtime_checkable
class DeliveryFeed(Protocol):
    """A PSA/ERP that can list the milestones delivery reached since a moment: the scheduled
    poll reads it because such systems send no event when work is done."""

    system: str

    def changed_milestones(self, since: datetime) -> Iterable[dict[str, Any]]:
        """Canonical `handoff.milestone.changed` data of every milestone changed after `since`."""


class ErpConnector(Protocol):
    system: str

    def upsert_customer(self, external_id: str, customer: Customer) -> UpsertResult:
        """Create or update the customer addressed by handoff's external id."""

    def upsert_project(self, project: Project, customer_target_id: str) -> UpsertResult:
        """Create or update the project addressed by `project.external_id`."""


@runtime_checkable
class BillingConnector(Protocol):
    """An ERP that invoices milestones. Not every ErpConnector is one (yet): the billing
    controller parks a deal whose ERP cannot, with that reason."""

    system: str

    def issue_invoice(self, request: InvoiceRequest, project_target_id: str) -> Invoice:
        """Make sure the milestone is invoiced once and the invoice posted; return the invoice
        as the ERP shows it. Idempotent by `request.external_id`: a call repeated after a
        lost response finds the invoice the first one made."""

    def read_invoice(self, target_id: str) -> Invoice:
        """The invoice as the ERP shows it now (status, totals, amount still due)."""


@dataclass(frozen=True, slots=True)
class DealFigures:
    """What the CRM record of one deal says, for reconciliation: the sale and what the CRM
    shows of its billing (None where the record shows nothing)."""

    deal_id: str
    currency: str | None
    sold_value: Decimal | None
    is_won: bool
    contract_status: str | None   # canonical ApprovalStatus values
    sow_status: str | None
    invoiced: Decimal | None = None
    paid: Decimal | None = None


@dataclass(frozen=True, slots=True)
class ProjectFigures:
    """One project handoff made in the ERP (external id HO-P-<deal>), as the ERP shows it."""

    deal_id: str
    currency: str | None
    value: Decimal | None


@dataclass(frozen=True, slots=True)
class DocumentFigures:
    """One invoice or credit note of a handoff project, as the ERP shows it. Amounts as
    handoff counts them: a credit note's are negative."""

    deal_id: str
    document_id: str          # the ERP's own id
    currency: str
    status: str               # InvoiceStatus values
    total: Decimal
    untaxed: Decimal
    amount_due: Decimal


@runtime_checkable
class CrmSnapshotSource(Protocol):
    """A CRM that can list every deal's figures in bulk (paged queries, never a call per
    record): reconciliation's picture of the CRM."""

    system: str

    def deal_figures(self) -> Iterable[DealFigures]:
        """Every opportunity's figures."""


@runtime_checkable
class ErpSnapshotSource(Protocol):
    """An ERP that can list handoff's projects and their billing documents in bulk."""

    system: str

    def project_figures(self) -> Iterable[ProjectFigures]:
        """Every project with a handoff external id."""

    def document_figures(self) -> Iterable[DocumentFigures]:
        """Every invoice and credit note of those projects."""
