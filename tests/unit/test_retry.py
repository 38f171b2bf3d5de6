import random

import pytest

from handoff.engine.retry import Action, RetryPolicy
from handoff.errors import (
    BusinessRuleError,
    DataError,
    PermanentError,
    ThrottledError,
    TransientError,
)

POLICY = RetryPolicy(base_seconds=1, cap_seconds=30, max_attempts=5)


@pytest.mark.parametrize("error, action", [
    (TransientError("503"), Action.RETRY),
    (BusinessRuleError("credit hold"), Action.PARK),
    (DataError("bad", field="currency"), Action.QUARANTINE),
    (PermanentError("401"), Action.DEAD_LETTER),
    (KeyError("bug"), Action.DEAD_LETTER),
])
def test_each_class_of_error_gets_its_action(error: Exception, action: Action) -> None:
    assert POLICY.decide(error, 1).action is action


def test_backoff_grows_with_jitter_and_stays_under_the_cap() -> None:
    rng = random.Random(7)
    delays = [POLICY.decide(TransientError("x"), n, rng).delay for n in range(1, 5)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(30, 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert len(set(delays)) == 4


def test_retry_after_is_honoured() -> None:
    assert POLICY.decide(ThrottledError("429", retry_after=12), 1).delay == 12


def test_transient_errors_stop_after_max_attempts() -> None:
    assert POLICY.decide(TransientError("x"), 5).action is Action.DEAD_LETTER
