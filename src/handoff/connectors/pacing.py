"""A connector's own pacing: at most so many calls in a sliding window, shared by the worker
threads that share the connector, so handoff stays inside a vendor's published budget instead
of learning it from 429s. A fixed gate: the budget's pacing, which also learns from 429s
(AIMD), is pacing_adaptive.AdaptiveLimiter; RateGate still paces HubSpot's search rate and
Dynamics."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable


class RateGate:
    """At most `limit` calls in any `window` seconds (sliding), shared by threads: a caller
    over the limit sleeps until the oldest call leaves the window."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limit, self.window = limit, window
        self._clock, self._sleep = clock, sleep
        self._calls: deque[float] = deque()
        self._lock = threading.Lock()

    @classmethod
    def per_second(cls, rate: float) -> RateGate:
        limit = max(1, math.floor(rate))
        return cls(limit, limit / rate)

    def wait(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                while self._calls and self._calls[0] <= now - self.window:
                    self._calls.popleft()
                if len(self._calls) < self.limit:
                    self._calls.append(now)
                    return
                delay = self._calls[0] + self.window - now
            self._sleep(max(delay, 0.001))
