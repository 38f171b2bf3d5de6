"""How handoff reaches one NetSuite account and which internal ids its values map to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from handoff.connectors.budget import NO_OVERRIDE, BudgetOverride, budget_override
from handoff.domain import BillingMethod, ProjectStatus
from handoff.errors import ConfigError

# NetSuite's usual internal ids for these currencies; accounts differ, so configure them.
STANDARD_CURRENCY_IDS: Mapping[str, str] = {"USD": "1", "GBP": "2", "CAD": "3", "EUR": "4"}

# jobBillingType ids as the sandbox twin numbers them (real accounts: check the list).
STANDARD_BILLING_TYPE_IDS: Mapping[str, str] = {
    BillingMethod.FIXED_FEE: "2",
    BillingMethod.MILESTONE: "3",
    BillingMethod.TIME_AND_MATERIALS: "4",
}

# Project entityStatus ids: 1 Closed, 2 In Progress, 4 Pending.
STANDARD_PROJECT_STATUS_IDS: Mapping[str, str] = {
    ProjectStatus.PENDING: "4",
    ProjectStatus.ACTIVE: "2",
    ProjectStatus.CLOSED: "1",
}


@dataclass(frozen=True)
class NetSuiteSettings:
    """`base_url` ends in `/services/rest`; `token` is an OAuth 2.0 bearer token."""

    base_url: str
    token: str = field(repr=False)
    account_id: str | None = None
    currency_ids: Mapping[str, str] = field(default_factory=lambda: dict(STANDARD_CURRENCY_IDS))
    subsidiary_ids: Mapping[str, str] = field(default_factory=dict)  # legal entity -> id
    default_subsidiary_id: str | None = "1"  # for records without a legal entity
    billing_type_ids: Mapping[str, str] = field(
        default_factory=lambda: dict(STANDARD_BILLING_TYPE_IDS)
    )
    project_status_ids: Mapping[str, str] = field(
        default_factory=lambda: dict(STANDARD_PROJECT_STATUS_IDS)
    )
    service_item_id: str = "1"  # the service item invoice lines bill (the twin's is "1")
    timeout: float = 30.0
    max_connections: int = 16  # one per worker thread sharing the connector
    page_size: int = 1000  # NetSuite's maximum list page
    budget: BudgetOverride = NO_OVERRIDE  # [systems.netsuite.budget]: budget.py

    def __post_init__(self) -> None:
        # urllib3 would take a URL without a scheme as http:// and send the token in clear.
        if not self.base_url.startswith(("https://", "http://")):
            raise ConfigError(f"netsuite: base_url must start with https:// (http:// for a local "
                              f"twin), not {self.base_url!r}")
        if not (isinstance(self.service_item_id, str) and self.service_item_id.isdigit()):
            raise ConfigError(f"netsuite: service_item_id must be the internal id of an item, "
                              f"in digits, not {self.service_item_id!r}")
        object.__setattr__(self, "budget", budget_override("netsuite", self.budget))

    @classmethod
    def from_account(cls, account_id: str, token: str, **options: Any) -> NetSuiteSettings:
        return cls(account_base_url(account_id), token, account_id, **options)


def account_base_url(account_id: str) -> str:
    """`1234567_SB1` -> https://1234567-sb1.suitetalk.api.netsuite.com/services/rest"""
    host = account_id.strip().lower().replace("_", "-")
    return f"https://{host}.suitetalk.api.netsuite.com/services/rest"
