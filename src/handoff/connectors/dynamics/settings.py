"""How handoff reaches one Dynamics 365 Sales environment (Dataverse Web API), and which
columns carry handoff's fields.

The access token (an Entra ID bearer token for the environment) comes from the environment
only: the registry passes HANDOFF_DYNAMICS_ACCESS_TOKEN in as `access_token`. Everything else
may sit in `[systems.dynamics]` of the TOML file, column names under
`[systems.dynamics.columns]`, a declarative field mapping (connectors/fieldmap.py) under
`[systems.dynamics.mapping.*]`.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from handoff.connectors.budget import NO_OVERRIDE, BudgetOverride, budget_override
from handoff.connectors.fieldmap import NO_MAPPING, FieldMap
from handoff.errors import ConfigError

API_VERSION = "v9.2"
MAX_PAGE_SIZE = 5000   # Prefer: odata.maxpagesize is at most 5,000
MAX_BATCH = 1000       # requests in one $batch

# Logical names: lower case, a publisher prefix for custom columns (`handoff_`). Checked so a
# name can go into a URL, a $select or a $filter as it is.
_LOGICAL_NAME = re.compile(r"[a-z_][a-z0-9_]{0,99}\Z")
_VERSION = re.compile(r"v\d+\.\d+\Z")


@dataclass(frozen=True)
class ColumnNames:
    """Logical names of the Dataverse columns handoff reads and writes. The system columns
    (name, statecode, statuscode, parentaccountid, transactioncurrencyid, modifiedon, …) are
    fixed; these are the environment's choice."""

    # Opportunities: standard columns that may be swapped for others of the same type.
    amount: str = "estimatedvalue"           # Currency: the sold value
    close_date: str = "estimatedclosedate"   # Date only
    # Opportunities: what sales enters (custom; text or choice columns).
    billing_method: str = "handoff_billingmethod"
    contract_status: str = "handoff_contractstatus"
    sow_status: str = "handoff_sowstatus"
    legal_entity: str = "handoff_legalentity"
    # Opportunities: what handoff writes back (custom).
    project_id: str = "handoff_projectid"
    status: str = "handoff_status"
    status_detail: str = "handoff_statusdetail"
    invoiced_amount: str = "handoff_invoicedamount"
    paid_amount: str = "handoff_paidamount"
    open_balance: str = "handoff_openbalance"
    days_overdue: str = "handoff_daysoverdue"
    invoice_numbers: str = "handoff_invoicenumbers"
    billing_status: str = "handoff_billingstatus"
    # Accounts: what handoff reads as the customer (custom).
    tax_jurisdiction: str = "handoff_taxjurisdiction"
    account_legal_entity: str = "handoff_legalentity"
    validation_status: str = "handoff_validationstatus"
    # The single-column alternate keys that make seeding upserts idempotent.
    account_key: str = "handoff_key"
    opportunity_key: str = "handoff_key"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, str) or not _LOGICAL_NAME.match(value):
                raise ConfigError(f"dynamics: columns.{f.name} must be a column's logical name "
                                  f"(lower case, e.g. handoff_status), not {value!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ColumnNames:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"[systems.dynamics.columns]: unknown key(s) {', '.join(sorted(unknown))}")
        return cls(**values)


DEFAULT_COLUMNS = ColumnNames()


@dataclass(frozen=True)
class DynamicsSettings:
    """`base_url` is the environment's URL (`https://<org>.crm.dynamics.com`), or a sandbox
    twin's; the Web API lives under `/api/data/<api_version>`. The pacing keeps handoff under
    Dataverse's service protection limits on its own: per user and web server, 6,000 requests
    per sliding 300 s and 52 concurrent requests, shared with everything else the application
    user runs — the budget, `[systems.dynamics.budget]` to change it, learnt down from 429s."""

    access_token: str = field(repr=False)
    base_url: str
    api_version: str = API_VERSION
    ca_file: str | None = None        # a private CA to trust (HTTPS twins, proxies); never turned off
    timeout: float = 30.0
    columns: ColumnNames = field(default_factory=ColumnNames)
    page_size: int = 500              # Prefer: odata.maxpagesize for every query
    batch_size: int = 100             # write-backs per $batch
    requests_per_window: int | None = None  # older spelling of budget.requests …
    window_seconds: float | None = None     # … budget.window_seconds …
    max_concurrency: int | None = None      # … and budget.concurrency; the budget wins
    field_map: FieldMap = NO_MAPPING  # [systems.dynamics.mapping.*]: connectors/fieldmap.py
    budget: BudgetOverride = NO_OVERRIDE  # [systems.dynamics.budget]: connectors/budget.py

    def __post_init__(self) -> None:
        if not isinstance(self.access_token, str) or not self.access_token.strip():
            raise ConfigError("dynamics: set HANDOFF_DYNAMICS_ACCESS_TOKEN (an Entra ID access token "
                              "for the environment)")
        parts = urlsplit(str(self.base_url))
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ConfigError(f"dynamics: base_url must be the environment's URL, "
                              f"https://<org>.crm.dynamics.com (http:// for a local twin), not "
                              f"{self.base_url!r}")
        if parts.path.strip("/") or parts.query:
            raise ConfigError(f"dynamics: base_url is the environment's URL without a path "
                              f"(https://{parts.netloc}), not {self.base_url!r}")
        object.__setattr__(self, "base_url", f"{parts.scheme}://{parts.netloc}")
        if not _VERSION.match(self.api_version):
            raise ConfigError(f"dynamics: api_version must look like v9.2, not {self.api_version!r}")
        if isinstance(self.columns, Mapping):
            object.__setattr__(self, "columns", ColumnNames.from_mapping(self.columns))
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ConfigError(f"dynamics: page_size must be between 1 and {MAX_PAGE_SIZE}")
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ConfigError(f"dynamics: batch_size must be between 1 and {MAX_BATCH}")
        if any(value is not None and value <= 0 for value in (self.requests_per_window,
                                                              self.window_seconds)):
            raise ConfigError("dynamics: requests_per_window and window_seconds must be positive")
        if self.max_concurrency is not None and self.max_concurrency < 1:
            raise ConfigError("dynamics: max_concurrency must be at least 1")
        object.__setattr__(self, "budget", budget_override("dynamics", self.budget))
        if self.timeout <= 0:
            raise ConfigError("dynamics: timeout must be positive")

    @property
    def api_root(self) -> str:
        """`https://<org>.crm.dynamics.com/api/data/v9.2` (no trailing slash)."""
        return f"{self.base_url}/api/data/{self.api_version}"
