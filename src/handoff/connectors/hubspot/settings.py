"""How handoff reaches one HubSpot account, and which properties carry handoff's fields.

The access token (a private app's, or an OAuth access token) comes from the environment only:
the registry passes HANDOFF_HUBSPOT_ACCESS_TOKEN in as `access_token`. Everything else may sit
in `[systems.hubspot]` of the TOML file, property names under `[systems.hubspot.properties]`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from handoff.connectors.budget import NO_OVERRIDE, BudgetOverride, budget_override
from handoff.connectors.fieldmap import NO_MAPPING, FieldMap
from handoff.errors import ConfigError

HUBSPOT_API = "https://api.hubapi.com"


@dataclass(frozen=True)
class PropertyNames:
    """Internal names of the HubSpot properties handoff reads and writes. The standard ones
    (dealname, amount, dealstage, closedate, …) are fixed; these are the portal's choice."""

    # Deals: what sales enters and handoff reads.
    currency: str = "deal_currency_code"
    billing_method: str = "billing_method"
    contract_status: str = "contract_status"
    sow_status: str = "sow_status"
    legal_entity: str = "legal_entity"
    # Deals: what handoff writes back.
    project_id: str = "handoff_project_id"
    status: str = "handoff_status"
    status_detail: str = "handoff_status_detail"
    invoiced_amount: str = "handoff_invoiced_amount"
    paid_amount: str = "handoff_paid_amount"
    open_balance: str = "handoff_open_balance"
    days_overdue: str = "handoff_days_overdue"
    invoice_numbers: str = "handoff_invoice_numbers"
    billing_status: str = "handoff_billing_status"
    # Companies: what handoff reads as the customer.
    company_currency: str = "billing_currency"
    tax_jurisdiction: str = "tax_jurisdiction"
    company_legal_entity: str = "legal_entity"
    validation_status: str = "validation_status"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"hubspot: properties.{f.name} must name a property, not {value!r}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> PropertyNames:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"[systems.hubspot.properties]: unknown key(s) {', '.join(sorted(unknown))}")
        return cls(**values)


DEFAULT_PROPERTIES = PropertyNames()


@dataclass(frozen=True)
class HubSpotSettings:
    """`base_url` is HubSpot's API host, or a sandbox twin's. `won_stages` lists the deal stage
    ids that count as won; None reads them once from the deal pipelines (closed stages with
    probability 1). The pacing keeps handoff under HubSpot's limits on its own: a private app
    shares 190 requests per 10 s (Professional/Enterprise) with every other integration of the
    account — the budget, `[systems.hubspot.budget]` to change it, learnt down from 429s — and
    search has a lower rate of its own."""

    access_token: str = field(repr=False)
    base_url: str = HUBSPOT_API
    ca_file: str | None = None  # a private CA to trust (HTTPS twins, proxies); never turned off
    timeout: float = 30.0
    properties: PropertyNames = field(default_factory=PropertyNames)
    won_stages: tuple[str, ...] | None = None
    page_size: int = 100             # objects per list or search page
    batch_size: int = 100            # inputs per batch call
    requests_per_window: int | None = None  # older spelling of budget.requests …
    window_seconds: float | None = None     # … and budget.window_seconds; the budget wins
    search_requests_per_second: float = 3.0  # under search's own rate (4/s in an old changelog)
    search_result_cap: int = 10_000  # a search query pages this deep at most
    max_connections: int = 16        # one per worker thread sharing the connector
    field_map: FieldMap = NO_MAPPING  # [systems.hubspot.mapping.*]: connectors/fieldmap.py
    budget: BudgetOverride = NO_OVERRIDE  # [systems.hubspot.budget]: connectors/budget.py

    def __post_init__(self) -> None:
        if not isinstance(self.access_token, str) or not self.access_token.strip():
            raise ConfigError("hubspot: set HANDOFF_HUBSPOT_ACCESS_TOKEN (a private app access token)")
        if not self.base_url.startswith(("https://", "http://")):
            raise ConfigError(f"hubspot: base_url must start with https:// (http:// for a local "
                              f"twin), not {self.base_url!r}")
        if isinstance(self.properties, Mapping):
            object.__setattr__(self, "properties", PropertyNames.from_mapping(self.properties))
        if self.won_stages is not None:
            object.__setattr__(self, "won_stages", tuple(str(s) for s in self.won_stages))
        if not 1 <= self.page_size <= 100:
            raise ConfigError("hubspot: page_size must be between 1 and 100")
        if not 1 <= self.batch_size <= 100:
            raise ConfigError("hubspot: batch_size must be between 1 and 100")
        if any(value is not None and value <= 0 for value in (self.requests_per_window,
                                                              self.window_seconds)):
            raise ConfigError("hubspot: requests_per_window and window_seconds must be positive")
        object.__setattr__(self, "budget", budget_override("hubspot", self.budget))
        if self.search_requests_per_second <= 0:
            raise ConfigError("hubspot: search_requests_per_second must be positive")
        if self.search_result_cap < self.page_size:
            raise ConfigError("hubspot: search_result_cap must be at least page_size")
