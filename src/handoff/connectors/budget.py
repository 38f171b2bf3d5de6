"""A connector's budget as configured: the vendor's published figures (each connector's
`budget`), overridden per system where the configuration says otherwise.

    [systems.netsuite.budget]
    concurrency = 5        # calls in flight
    requests = 100         # calls per window …
    window_seconds = 10    # … of this many seconds (sliding)

Keys left out keep the vendor's figure. The connector's pacing (pacing.AdaptiveLimiter) starts
from the result and never goes above it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from handoff.connectors.keepalive import KeepAliveClient, Reply, TransportError
from handoff.connectors.pacing_adaptive import AdaptiveLimiter
from handoff.connectors.ports import RateBudget
from handoff.errors import ConfigError, HandoffError

KEYS = ("concurrency", "requests", "window_seconds")


@dataclass(frozen=True, slots=True)
class BudgetOverride:
    """What `[systems.<name>.budget]` sets; None keeps the vendor's figure."""

    concurrency: int | None = None
    requests: int | None = None
    window_seconds: float | None = None

    def applied_to(self, vendor: RateBudget, system: str) -> RateBudget:
        """The vendor's budget with the configured figures in place of its own."""
        if self == NO_OVERRIDE:
            return vendor
        budget = dataclasses.replace(vendor, **{key: value for key in KEYS
                                                if (value := getattr(self, key)) is not None})
        if (budget.requests is None) != (budget.window_seconds is None):
            raise ConfigError(f"[systems.{system}.budget]: requests and window_seconds go together "
                              f"({system} publishes no request window of its own)")
        set_here = ", ".join(f"{key} = {getattr(self, key):g}" for key in KEYS
                             if getattr(self, key) is not None)
        return dataclasses.replace(budget, source=f"configured: {set_here}; vendor: {vendor.source}")


NO_OVERRIDE = BudgetOverride()


def budget_override(system: str, value: BudgetOverride | Mapping[str, Any] | None) -> BudgetOverride:
    """`[systems.<system>.budget]` read and checked; a bad value is a one-line ConfigError
    naming its key."""
    if value is None or isinstance(value, BudgetOverride):
        return value or NO_OVERRIDE
    where = f"[systems.{system}.budget]"
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where}: must be a table of {', '.join(KEYS)}, not {value!r}")
    unknown = set(value) - set(KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(KEYS)}")
    return BudgetOverride(
        concurrency=_whole(value.get("concurrency"), f"{where} concurrency"),
        requests=_whole(value.get("requests"), f"{where} requests"),
        window_seconds=_seconds(value.get("window_seconds"), f"{where} window_seconds"))


def _whole(value: Any, where: str) -> int | None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ConfigError(f"{where}: {value!r} must be a whole number of 1 or more")
    return value


def _seconds(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
            math.isfinite(value) and value > 0):
        raise ConfigError(f"{where}: {value!r} must be a number of seconds above 0")
    return float(value)


def paced(vendor: RateBudget, override: BudgetOverride, system: str) -> AdaptiveLimiter:
    """A connector's limiter: the vendor's budget with `[systems.<system>.budget]` applied;
    its `budget` is what the connector reports as its own."""
    return AdaptiveLimiter(override.applied_to(vendor, system), system=system)


def paced_request(http: KeepAliveClient, limiter: AdaptiveLimiter,
                  translate: Callable[[TransportError], HandoffError], answer: Callable[[Reply], Reply],
                  method: str, path: str, *, body: bytes | None, headers: Mapping[str, str]) -> Reply:
    """One call of a plain-HTTP connector in its limiter's slot. `answer` returns the reply or
    raises the vendor's error for it, inside the slot, so that a 429 slows the limiter down."""
    with limiter.slot():
        try:
            reply = http.request(method, path, body=body, headers=headers)
        except TransportError as exc:
            raise translate(exc) from exc
        return answer(reply)
