"""How handoff reaches one Business Central company and what its invoice lines bill."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from handoff.connectors.budget import NO_OVERRIDE, BudgetOverride, budget_override
from handoff.errors import ConfigError

BC_API = "https://api.businesscentral.dynamics.com"
MAX_PAGE_SIZE = 20_000  # Business Central online's fixed server page (entities per page)
LINE_TYPES = ("Item", "Account")  # what a billing line may post to: a service item or a G/L account
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class BusinessCentralSettings:
    """One company of one environment. `token` is an Entra ID access token for
    https://api.businesscentral.dynamics.com (from HANDOFF_BUSINESSCENTRAL_TOKEN only);
    `company_id` is the company's `id` from `GET …/api/v2.0/companies`.

    Invoice lines bill `line_object_number`: the number of an item (`line_type` "Item", a
    service item such as SERVICES) or of a G/L account (`line_type` "Account")."""

    tenant: str  # Entra tenant id (GUID) or its domain
    environment: str  # "production", "sandbox", …
    company_id: str
    token: str = field(repr=False)
    api_root: str = BC_API  # a twin's own address in tests
    legal_entities: tuple[str, ...] = ()  # the legal entity names this company stands for
    line_type: str = "Item"
    line_object_number: str = "SERVICES"
    timeout: float = 30.0
    max_connections: int = 16  # one per worker thread sharing the connector
    page_size: int = 1000  # Prefer: odata.maxpagesize for list reads
    update_attempts: int = 3  # PATCHes tried when another user changes the record meanwhile
    budget: BudgetOverride = NO_OVERRIDE  # [systems.businesscentral.budget]: connectors/budget.py

    def __post_init__(self) -> None:
        object.__setattr__(self, "budget", budget_override("businesscentral", self.budget))
        # http.client would take a URL without a scheme as a path and send the token who knows where.
        if not self.api_root.startswith(("https://", "http://")):
            raise ConfigError(f"businesscentral: api_root must start with https:// (http:// for a "
                              f"local twin), not {self.api_root!r}")
        for name in ("tenant", "environment"):
            if not _PATH_SEGMENT.fullmatch(getattr(self, name) or ""):
                raise ConfigError(f"businesscentral: {name} must be one URL path segment (letters, "
                                  f"digits, '.', '_', '-'), not {getattr(self, name)!r}")
        if not _GUID.fullmatch(self.company_id or ""):
            raise ConfigError(f"businesscentral: company_id must be the company's id, a GUID from "
                              f"GET …/api/v2.0/companies, not {self.company_id!r}")
        if self.line_type not in LINE_TYPES:
            raise ConfigError(f"businesscentral: line_type must be one of {', '.join(LINE_TYPES)}, "
                              f"not {self.line_type!r}")
        if not (isinstance(self.line_object_number, str) and self.line_object_number.strip()):
            raise ConfigError("businesscentral: line_object_number must name the item or G/L "
                              "account invoice lines bill")
        if not 1 <= self.page_size <= MAX_PAGE_SIZE:
            raise ConfigError(f"businesscentral: page_size must be between 1 and {MAX_PAGE_SIZE}")
        if self.update_attempts < 1:
            raise ConfigError("businesscentral: update_attempts must be at least 1")
        # TOML gives a list; a tuple keeps the settings hashable and unchangeable.
        object.__setattr__(self, "legal_entities", tuple(self.legal_entities))

    @property
    def base_url(self) -> str:
        """…/v2.0/<tenant>/<environment>/api/v2.0: the standard API's root."""
        return f"{self.api_root.rstrip('/')}/v2.0/{self.tenant}/{self.environment}/api/v2.0"

    @property
    def company_path(self) -> str:
        """Every resource handoff uses is company-scoped: companies(<id>)/customers, …"""
        return f"companies({self.company_id.lower()})"

    @classmethod
    def for_twin(cls, base_url: str, token: str, company_id: str, **options: Any) -> BusinessCentralSettings:
        """Aimed at a sandbox twin on `base_url` (its tenant and environment are free)."""
        values: dict[str, Any] = {"tenant": "sandbox", "environment": "sandbox"} | options
        return cls(token=token, company_id=company_id, api_root=base_url, **values)
