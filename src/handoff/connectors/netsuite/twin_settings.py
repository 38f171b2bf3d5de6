"""The NetSuite twin's own settings (`PUT /_twin/settings`, any of them; reset restores the
defaults) and its concurrency governance.

    omit_location_on_put   PUT answers without `Location` (a NetSuite that leaves it out)
    max_concurrency        requests in flight at once, account-wide; the next one is refused
                           with CONCURRENCY_LIMIT_EXCEEDED and no Retry-After. None: no cap
                           (the default, so a test that sets nothing sees no refusal)
    concurrency_status     429 (the default) or 400: NetSuite's status for it is unconfirmed
    hold_ms                how long each request stays in flight before it is handled, so
                           that concurrency matters on a machine where calls take microseconds

`GET /_twin/concurrency` shows the gate: in flight now, the most at once, refusals, and the
seconds admitted requests spent in flight (divided by a run's length: the mean in flight).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from typing import Any

from handoff.connectors.netsuite.twin_schema import TwinFault

CONCURRENCY_REFUSAL = "Concurrent request limit exceeded. Request blocked."


@dataclass(frozen=True)
class TwinSettings:
    omit_location_on_put: bool = False
    max_concurrency: int | None = None
    concurrency_status: int = 429
    hold_ms: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.omit_location_on_put, bool):
            raise ValueError("omit_location_on_put must be true or false")
        cap = self.max_concurrency
        if cap is not None and (isinstance(cap, bool) or not isinstance(cap, int) or cap < 1):
            raise ValueError("max_concurrency must be a whole number of at least 1, or null")
        if self.concurrency_status not in (429, 400):
            raise ValueError("concurrency_status must be 429 or 400")
        if isinstance(self.hold_ms, bool) or not isinstance(self.hold_ms, int | float) or self.hold_ms < 0:
            raise ValueError("hold_ms must be a number of milliseconds, 0 or more")


class ConcurrencyGate:
    """Requests in flight at once, counted as NetSuite counts them: across the account."""

    def __init__(self) -> None:
        self.in_flight = self.peak = self.refused = 0
        self.busy_seconds = 0.0

    @asynccontextmanager
    async def held(self, settings: TwinSettings) -> AsyncIterator[None]:
        """Hold a place in flight while the request is handled, or refuse it when none is left."""
        if settings.max_concurrency is not None and self.in_flight >= settings.max_concurrency:
            self.refused += 1
            raise TwinFault(settings.concurrency_status, "CONCURRENCY_LIMIT_EXCEEDED", CONCURRENCY_REFUSAL)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        started = time.monotonic()
        try:
            if settings.hold_ms:
                await asyncio.sleep(settings.hold_ms / 1000)
            yield
        finally:
            self.in_flight -= 1
            self.busy_seconds += time.monotonic() - started

    def counts(self) -> dict[str, Any]:
        return {"in_flight": self.in_flight, "peak_in_flight": self.peak, "refused": self.refused,
                "busy_seconds": self.busy_seconds}


def settings_changed(settings: TwinSettings, changes: Any) -> TwinSettings:
    """The settings with `changes` (a JSON object of some of them) applied; ValueError if bad."""
    if not isinstance(changes, dict):
        raise ValueError("expected a JSON object of settings")
    unknown = set(changes) - set(asdict(settings))
    if unknown:
        raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}; known: "
                         f"{', '.join(asdict(settings))}")
    return TwinSettings(**(asdict(settings) | changes))
