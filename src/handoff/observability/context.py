"""The lifecycle being worked on in this thread (or task): its correlation id and its deal.

One correlation id names a deal's whole lifecycle (opportunities.correlation_id). Intake sets
the lifecycle while it accepts an event, the worker while it works a key; log lines, spans
and outbound calls made meanwhile carry it. A context variable: every worker thread, every
asyncio task has its own, and a thread pool's task does not inherit its submitter's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Lifecycle:
    correlation_id: str | None = None  # 32 lowercase hex: the W3C trace id of the deal
    opportunity_id: str | None = None  # the business key the CRM knows the deal by
    batch: tuple[str, ...] = ()        # one call for several deals: their correlation ids

    def fields(self) -> dict[str, str]:
        """What is known, as log fields."""
        known = {"correlation_id": self.correlation_id, "opportunity_id": self.opportunity_id}
        return {name: value for name, value in known.items() if value}


_current: ContextVar[Lifecycle | None] = ContextVar("handoff_lifecycle", default=None)


def current() -> Lifecycle | None:
    return _current.get()


def current_correlation_id() -> str | None:
    life = _current.get()
    return life.correlation_id if life else None


class lifecycle:  # noqa: N801 - used like a function: `with lifecycle(correlation_id, deal):`
    """Work on one deal until the block ends; the previous lifecycle (if any) comes back.
    A class, not a generator: the worker enters one per key and per outcome."""

    __slots__ = ("_life", "_token")

    def __init__(self, correlation_id: str | None, opportunity_id: str | None = None) -> None:
        self._life = Lifecycle(correlation_id or None, opportunity_id or None)
        self._token: Token[Lifecycle | None] | None = None

    def __enter__(self) -> Lifecycle:
        self._token = _current.set(self._life)
        return self._life

    def __exit__(self, *exc: object) -> None:
        if self._token is not None:
            token, self._token = self._token, None
            _current.reset(token)


@contextmanager
def batch_of(deals: list[tuple[str, str]]) -> Iterator[Lifecycle]:
    """One call made for several deals, (correlation id, opportunity id) each — a CRM batch
    write-back: each outbound request names all their correlation ids in X-Correlation-Id; a
    batch of one is that deal's lifecycle."""
    ids = tuple(dict.fromkeys(c for c, _ in deals if c))
    life = Lifecycle(*deals[0]) if len(deals) == 1 else Lifecycle(batch=ids)
    token = _current.set(life)
    try:
        yield life
    finally:
        _current.reset(token)
