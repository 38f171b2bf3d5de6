"""What to do after an error: a value object that returns a decision, no I/O."""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from handoff.errors import (
    BusinessRuleError,
    DataError,
    HandoffError,
    TransientError,
)


class Action(enum.StrEnum):
    RETRY = "retry"
    PARK = "parked"              # business rule: a person decides
    QUARANTINE = "quarantined"   # data: fix the field, then replay
    DEAD_LETTER = "dead_letter"  # permanent, or transient too many times


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_seconds: float = 0.25
    cap_seconds: float = 60.0
    max_attempts: int = 10

    def decide(self, error: BaseException, attempt: int, rng: random.Random | None = None) -> Decision:
        """`attempt` counts from 1 for the call that just failed."""
        if isinstance(error, TransientError):
            if attempt >= self.max_attempts:
                return Decision(Action.DEAD_LETTER)
            return Decision(Action.RETRY, self.delay(attempt, error.retry_after, rng))
        if isinstance(error, BusinessRuleError):
            return Decision(Action.PARK)
        if isinstance(error, DataError):
            return Decision(Action.QUARANTINE)
        if isinstance(error, HandoffError):
            return Decision(Action.DEAD_LETTER)
        return Decision(Action.DEAD_LETTER)

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random | None) -> float:
        """Exponential backoff with equal jitter; never sooner than the system asked."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2 ** (attempt - 1))
        jittered = ceiling / 2 + (rng or random).uniform(0, ceiling / 2)
        return max(jittered, retry_after or 0.0)
