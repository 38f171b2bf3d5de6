"""A connector's adaptive pacing (AIMD), shared by the threads that share the connector: at
most so many calls in flight and so many calls per sliding window, starting from the
configured budget (budget.py) and never above it.

Several worker processes may share one vendor budget, which no process can see; the limiter
learns it from the answers instead:

- a 429 (a ThrottledError raised inside `slot()`) halves the limits, never below 1, once per
  round trip: a refusal of a call that started before the last cut is the same news again;
- its Retry-After is honoured: no call starts before it (a caller sleeps while the wait is
  short, and is refused with a ThrottledError, without calling, while it is long);
- successes win the limits back additively, one step (a sixteenth of the budget, at least 1)
  per limit's worth of successes (about one round trip for calls in flight, one window for
  requests), up to the budget; steps stop just under the level that drew the last 429, and
  the step onto it is taken `caution` times slower, so the limit dwells just under a lower
  limit the system enforces instead of hitting it every few round trips;
- for the window, that level is measured where it can be: the calls the system admitted in
  the window before refusing one are what it allows now. Taken as the level only when they
  are at least what the cut leaves (the window was in use; a 429 drawn by another client of
  the budget while this one was idle says nothing of the level). Without it, a step of a
  sixteenth (11 of HubSpot's 190) would land above a lowered limit again and again.

A call counts in the window from its start until `window_seconds` after it finished: the
system stamped it in between, so handoff never counts fewer calls in its window than the
system does in its own.

A window longer than LONGEST_LEARNT_WINDOW (Dataverse's and Business Central's 300 s) keeps
its budget: cut after a 429, it would hold every call for minutes until calls made before the
cut left the window, while such systems say in their Retry-After when to resume, which every
call honours. Nor does a caller sleep longer than `longest_sleep` for a full window: it gets a
ThrottledError at once, without calling, saying when the next call fits.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

from handoff.connectors.ports import RateBudget
from handoff.errors import ThrottledError

UNTIL_A_CALL_FINISHES = math.inf
LONGEST_LEARNT_WINDOW = 60.0  # seconds: a request window longer than this is not cut by 429s


class AimdLimit:
    """One limit that the limiter moves between 1 and `ceiling`, by steps of a sixteenth of
    the ceiling (at least 1): a halved limit is won back in about eight round trips."""

    def __init__(self, ceiling: int, backoff: float, caution: int) -> None:
        self.ceiling = self.current = ceiling
        self._step = max(1, ceiling // 16)
        self._backoff, self._caution = backoff, caution
        self._refused_at: int | None = None  # the level that drew the last 429
        self._successes = 0

    def cut(self, admitted: int | None = None) -> None:
        """Halve; `admitted`: what the system let through just before refusing, if known."""
        lowered = max(1, math.floor(self.current * self._backoff))
        if admitted is not None and lowered <= admitted < self.current:  # the window was in use
            self._refused_at = admitted + 1
        else:
            self._refused_at = self.current
        self.current = lowered
        self._successes = 0

    def count_success(self) -> None:
        if self.current >= self.ceiling:
            return
        self._successes += 1
        refused_at = self._refused_at
        cautious = refused_at is not None and self.current + 1 >= refused_at
        if self._successes < self.current * (self._caution if cautious else 1):
            return
        step = 1 if cautious else self._step
        if refused_at is not None and not cautious:
            step = min(step, refused_at - 1 - self.current)  # stop just under the refused level
        self.current = min(self.ceiling, self.current + step)
        self._successes = 0
        if refused_at is not None and self.current > refused_at:
            self._refused_at = None


class AdaptiveLimiter:
    """Paces one connector's calls; `with limiter.slot(): <one call>`."""

    def __init__(self, budget: RateBudget, *, system: str = "", backoff: float = 0.5, caution: int = 16,
                 longest_sleep: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.budget, self.system = budget, system
        self.concurrency = AimdLimit(budget.concurrency, backoff, caution) if budget.concurrency else None
        self.requests = (AimdLimit(budget.requests, backoff, caution)
                         if budget.requests and budget.window_seconds else None)
        self.in_flight = 0
        self._window = budget.window_seconds or 0.0
        self._finished: deque[float] = deque()  # when the calls still in the window finished
        self._admitted: deque[float] = deque()  # when the successes among them finished
        self._resume_at = -math.inf             # Retry-After: no call starts before
        self._last_refusal: ThrottledError | None = None
        self._cuts = 0
        learnt_requests = self.requests if self._window <= LONGEST_LEARNT_WINDOW else None
        self._learnt_requests = learnt_requests
        self._limits = tuple(limit for limit in (self.concurrency, learnt_requests) if limit)
        self._longest_sleep = longest_sleep
        self._clock, self._sleep = clock, sleep
        self._state = threading.Condition()
        self._waiting = 0  # threads waiting for a call to finish

    def slot(self) -> Slot:
        """`with limiter.slot(): <one call>`: waits for the call's turn and holds it while
        the call runs; a ThrottledError raised inside slows the limiter down, a success
        speeds it back up."""
        return Slot(self)

    def _enter(self) -> int:
        while True:
            with self._state:
                delay = self._delay(self._clock())
                if delay == 0.0:
                    self.in_flight += 1
                    return self._cuts
                if delay == UNTIL_A_CALL_FINISHES:
                    self._waiting += 1
                    self._state.wait()
                    self._waiting -= 1
                    continue
            self._sleep(delay)

    def _delay(self, now: float) -> float:
        """0 when a call may start now, else how long to wait."""
        if now < self._resume_at:
            if self._resume_at - now > self._longest_sleep:
                raise self._still_refused(now)
            return self._resume_at - now
        if self.concurrency and self.in_flight >= self.concurrency.current:
            return UNTIL_A_CALL_FINISHES
        if self.requests:
            while self._finished and self._finished[0] <= now - self._window:
                self._finished.popleft()
            if len(self._finished) + self.in_flight >= self.requests.current:
                if not self._finished:
                    return UNTIL_A_CALL_FINISHES
                wait = self._finished[0] + self._window - now
                if wait > self._longest_sleep:
                    raise self._window_full(wait)
                return wait
        return 0.0

    def _leave(self, cuts_when_started: int, refusal: ThrottledError | None = None,
               succeeded: bool = False) -> None:
        with self._state:
            self.in_flight -= 1
            if self.requests:
                self._count_in_window(succeeded)
            if refusal is not None:
                self._slow_down(cuts_when_started, refusal)
            elif succeeded:
                self._speed_up()
            if not self._waiting:
                return
            if self.concurrency:
                self._state.notify(max(0, self.concurrency.current - self.in_flight))
            else:
                self._state.notify_all()

    def _count_in_window(self, succeeded: bool) -> None:
        now = self._clock()
        self._finished.append(now)
        if succeeded:
            self._admitted.append(now)
        while self._admitted and self._admitted[0] <= now - self._window:
            self._admitted.popleft()

    def _slow_down(self, cuts_when_started: int, refusal: ThrottledError) -> None:
        resume_at = self._clock() + (refusal.retry_after or 0.0)
        if resume_at > self._resume_at:
            self._resume_at, self._last_refusal = resume_at, refusal
        if cuts_when_started == self._cuts:
            self._cuts += 1
            if self.concurrency:
                self.concurrency.cut()
            if self._learnt_requests:
                self._learnt_requests.cut(admitted=len(self._admitted))

    def _speed_up(self) -> None:
        for limit in self._limits:
            limit.count_success()

    def _still_refused(self, now: float) -> ThrottledError:
        last = self._last_refusal
        assert last is not None  # only a refusal sets _resume_at
        wait = self._resume_at - now
        return ThrottledError(f"not sent: waiting out the Retry-After ({wait:.0f} s more) of "
                              f"{last.message}", system=last.system, retry_after=wait)


    def _window_full(self, wait: float) -> ThrottledError:
        assert self.requests is not None
        return ThrottledError(f"not sent: {self.requests.current} calls per {self._window:g} s are "
                              f"spent; the next fits in {wait:.0f} s", system=self.system,
                              retry_after=wait)


class Slot:
    """One call's place in the limiter, held while the call runs."""

    __slots__ = ("_limiter", "_cuts_when_started")

    def __init__(self, limiter: AdaptiveLimiter) -> None:
        self._limiter = limiter
        self._cuts_when_started = 0

    def __enter__(self) -> None:
        self._cuts_when_started = self._limiter._enter()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if isinstance(error, ThrottledError):
            self._limiter._leave(self._cuts_when_started, refusal=error)
        else:
            self._limiter._leave(self._cuts_when_started, succeeded=error is None)
