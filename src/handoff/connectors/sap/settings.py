"""How handoff reaches one SAP S/4HANA system and which of its organisational units a record
goes to. Every code here is the system's own configuration (company codes, cost centres,
profiles): the defaults are those of SAP's sample data and of the sandbox twin, so check them
against the system before going live.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from handoff.connectors.budget import NO_OVERRIDE, BudgetOverride, budget_override
from handoff.domain import ProjectStatus
from handoff.errors import ConfigError

SYSTEM = "sap"

# ⚠ Processing status codes of enterprise projects (SAP's code list names them, no source gives
# their values): 00 Created, 10 Released, 42 Closed are the twin's.
STANDARD_STATUS_CODES: Mapping[str, str] = {
    ProjectStatus.PENDING: "00",
    ProjectStatus.ACTIVE: "10",
    ProjectStatus.CLOSED: "42",
}


@dataclass(frozen=True)
class Organization:
    """Where one legal entity's customers and projects live in SAP. `company_code` and the
    sales area make the customer's company and sales data; the cost and profit centres are the
    project's (its company code follows from the cost centre: SAP derives it)."""

    company_code: str
    cost_center: str
    profit_center: str
    sales_organization: str | None = None
    distribution_channel: str = "10"
    division: str = "00"
    reconciliation_account: str = "12100000"
    payment_terms: str | None = None

    @classmethod
    def from_value(cls, name: str, value: Organization | Mapping[str, Any]) -> Organization:
        """An `[systems.sap.organizations.<legal entity>]` table, or one already built."""
        if isinstance(value, Organization):
            return value
        known = {f.name for f in fields(cls)}
        if not isinstance(value, Mapping) or set(value) - known:
            unknown = ", ".join(sorted(set(value) - known)) if isinstance(value, Mapping) else value
            raise ConfigError(f"sap: organizations.{name}: unknown key(s) {unknown}")
        try:
            return cls(**value)
        except TypeError as exc:
            raise ConfigError(f"sap: organizations.{name}: {exc}") from None


@dataclass(frozen=True)
class SapSettings:
    """`base_url` is the API host (`https://my123456-api.s4hana.cloud.sap`, no path); `user` and
    `password` are the communication user's (HTTP Basic). `organizations` maps handoff's legal
    entities to SAP's units; a record without a legal entity goes to `default_legal_entity`."""

    base_url: str
    user: str
    password: str = field(repr=False)
    organizations: Mapping[str, Organization] = field(default_factory=dict)
    default_legal_entity: str | None = None
    sap_client: str | None = None  # on-premise: ?sap-client=NNN on every call
    business_partner_grouping: str = "BP02"
    customer_roles: tuple[str, ...] = ("FLCU00", "FLCU01")  # FI customer, sales customer
    project_profile_code: str = "YP03"  # the profile SAP's partner sample uses
    project_duration_days: int = 365  # planned finish of a new project: start + this
    status_codes: Mapping[str, str] = field(default_factory=lambda: dict(STANDARD_STATUS_CODES))
    # Billing documents: which are credit memos and which cancel another document (SD document
    # categories: M invoice, O credit memo, N/S cancellations); ⚠ transfer status C = posted.
    credit_memo_categories: tuple[str, ...] = ("O",)
    cancellation_categories: tuple[str, ...] = ("N", "S")
    posted_transfer_statuses: tuple[str, ...] = ("C",)
    timeout: float = 30.0
    max_connections: int = 16  # one per worker thread sharing the connector
    page_size: int = 1000  # $top of each page of a bulk read
    filter_chunk: int = 40  # documents named in one `$filter` (URLs stay well below 8 KB)
    budget: BudgetOverride = NO_OVERRIDE  # [systems.sap.budget]: connectors/budget.py

    def __post_init__(self) -> None:
        object.__setattr__(self, "budget", budget_override("sap", self.budget))
        if not self.base_url.startswith(("https://", "http://")):
            raise ConfigError(f"sap: base_url must start with https:// (http:// for a local twin), "
                              f"not {self.base_url!r}")
        organizations = {name: Organization.from_value(name, value)
                         for name, value in dict(self.organizations).items()}
        object.__setattr__(self, "organizations", organizations)
        for name in ("customer_roles", "credit_memo_categories", "cancellation_categories",
                     "posted_transfer_statuses"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.default_legal_entity is not None and self.default_legal_entity not in organizations:
            raise ConfigError(f"sap: default_legal_entity {self.default_legal_entity!r} is not one "
                              f"of the organizations ({', '.join(organizations) or 'none'})")
        if self.page_size < 1 or self.filter_chunk < 1:
            raise ConfigError("sap: page_size and filter_chunk must be at least 1")
