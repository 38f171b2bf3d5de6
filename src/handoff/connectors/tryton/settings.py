"""How handoff reaches one Tryton database, and which of its records it bills with."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from handoff.connectors.budget import NO_OVERRIDE, BudgetOverride, budget_override
from handoff.errors import ConfigError


@dataclass(frozen=True)
class TrytonSettings:
    """`url` is the server's root (http://host:8000/). The user needs the project, invoicing
    and accounting groups, and a company and an employee of its own."""

    url: str
    database: str
    user: str
    password: str = field(repr=False)
    product_code: str = "SERVICE"      # the service product milestone lines are billed with
    timeout: float = 60.0              # posting an invoice can take a while
    max_connections: int = 16
    # Calls in flight at once. Tryton on PostgreSQL takes several; on SQLite it serialises
    # writes and numbers new records unsafely under concurrency: use 1 there.
    max_concurrency: int = 4
    language: str = "en"
    budget: BudgetOverride = NO_OVERRIDE  # [systems.tryton.budget]: connectors/budget.py

    def __post_init__(self) -> None:
        object.__setattr__(self, "budget", budget_override("tryton", self.budget))
        if not self.url.startswith(("https://", "http://")):
            raise ConfigError(f"tryton: url must start with https:// or http://, not {self.url!r}")
        if not self.database:
            raise ConfigError("tryton: database is required")

    @property
    def context(self) -> dict[str, Any]:
        return {"language": self.language}
