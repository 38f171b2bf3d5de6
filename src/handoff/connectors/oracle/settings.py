"""How handoff reaches one Oracle Fusion Cloud pod and which of the pod's names its values map to.

Oracle names most reference data by its display name (business units, project types, payment
terms, transaction sources), and every pod defines its own: the defaults below are the
sandbox twin's, so configure them for a real pod.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from handoff.connectors.budget import NO_OVERRIDE, BudgetOverride, budget_override
from handoff.domain import BillingMethod, ProjectStatus
from handoff.errors import ConfigError

API_VERSION = "11.13.18.05"

# Project types by billing method (a pod's own names; the twin knows these).
STANDARD_PROJECT_TYPES: Mapping[str, str] = {
    BillingMethod.FIXED_FEE: "Fixed Price",
    BillingMethod.MILESTONE: "Milestone Billing",
    BillingMethod.TIME_AND_MATERIALS: "Time and Materials",
}

# Project statuses (⚠ unconfirmed names: Oracle seeds Unapproved, Approved and Closed among
# others; pods add their own).
STANDARD_PROJECT_STATUSES: Mapping[str, str] = {
    ProjectStatus.PENDING: "Unapproved",
    ProjectStatus.ACTIVE: "Approved",
    ProjectStatus.CLOSED: "Closed",
}


@dataclass(frozen=True)
class OracleSettings:
    """`base_url` is the pod, e.g. `https://abcd.fa.us2.oraclecloud.com` (no path). Sign in
    with a Fusion user (`user` and `password`, HTTP Basic) or with a bearer `token` (a JWT):
    exactly one of the two."""

    base_url: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    version: str = API_VERSION
    # 4 or more: `q` takes expressions (2+), children come as collections (3+), errors as JSON
    # with the attribute at fault (4+). The connector relies on all three.
    framework_version: int = 4
    # SourceSystem of accounts and SourceApplicationCode of projects: where handoff's external
    # ids are kept (register it in the pod as a source system).
    source_system: str = "HANDOFF"
    business_units: Mapping[str, str] = field(default_factory=dict)  # legal entity -> BU name
    default_business_unit: str | None = "US1 Business Unit"  # for records without a legal entity
    project_types: Mapping[str, str] = field(default_factory=lambda: dict(STANDARD_PROJECT_TYPES))
    project_statuses: Mapping[str, str] = field(
        default_factory=lambda: dict(STANDARD_PROJECT_STATUSES)
    )
    transaction_source: str = "Manual"  # needs automatic transaction numbering
    invoice_type: str = "Invoice"
    credit_memo_type: str = "Credit Memo"
    payment_terms: str = "30 Net"
    memo_line: str | None = "Professional Services"  # what lines bill; None or "": no memo line
    timeout: float = 30.0
    max_connections: int = 16  # one per worker thread sharing the connector
    page_size: int = 500  # ⚠ the largest `limit` Oracle honours is unconfirmed (500 by hearsay)
    budget: BudgetOverride = NO_OVERRIDE  # [systems.oracle.budget]: connectors/budget.py

    def __post_init__(self) -> None:
        object.__setattr__(self, "budget", budget_override("oracle", self.budget))
        parts = urlsplit(self.base_url)
        # KeepAliveClient would refuse it later; a URL without a scheme must not carry a password.
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError(f"oracle: base_url must start with https:// (http:// for a local "
                              f"twin), not {self.base_url!r}")
        if parts.path.strip("/"):
            raise ConfigError(f"oracle: base_url is the pod alone (https://<host>), without a "
                              f"path such as {parts.path!r}")
        basic = bool(self.user) or bool(self.password)
        if bool(self.token) == basic or (basic and not (self.user and self.password)):
            raise ConfigError("oracle: set HANDOFF_ORACLE_USER and HANDOFF_ORACLE_PASSWORD, or "
                              "HANDOFF_ORACLE_TOKEN (a bearer token), but not both")
        if not 4 <= self.framework_version <= 9:
            raise ConfigError(f"oracle: framework_version must be 4 to 9 (errors name the "
                              f"attribute at fault from 4), not {self.framework_version!r}")
        if not 1 <= self.page_size <= 500:
            raise ConfigError(f"oracle: page_size must be 1 to 500, not {self.page_size!r}")
