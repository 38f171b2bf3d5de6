"""The load generator: `count` calls spread over threads, one keep-alive `httpx.Client` per
thread, each call timed. It reports its own CPU so a reader can tell whether the server or
the generator was the limit."""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

THREADS = 16
Call = Callable[[httpx.Client, int], None]  # makes call number i; raises if it went wrong


@dataclass(frozen=True)
class Load:
    calls: int
    seconds: float
    latencies: list[float]  # seconds, one per call
    generator_cpu: float    # CPU seconds this process spent generating the load

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    @property
    def generator_cores(self) -> float:
        """How many cores the generator kept busy on average (1.0 = one full core)."""
        return self.generator_cpu / self.seconds

    def latency_ms(self, percent: int) -> float:
        cuts = statistics.quantiles(self.latencies, n=100, method="inclusive")
        return 1000 * cuts[percent - 1]


def hammer(call: Call, count: int, client: Callable[[], httpx.Client],
           threads: int = THREADS) -> Load:
    """Calls 0..count-1 of `call`, as fast as `threads` threads can make them."""
    clients = [client() for _ in range(threads)]
    numbers = itertools.count()  # next() on it is atomic under the GIL: each call made once
    latencies = [0.0] * count

    def work(http: httpx.Client) -> None:
        with http:
            while (i := next(numbers)) < count:
                started = time.perf_counter()
                call(http, i)
                latencies[i] = time.perf_counter() - started

    cpu, started = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(work, http) for http in clients]:
            done.result()
    return Load(count, time.perf_counter() - started, latencies, time.process_time() - cpu)


def expect(response: httpx.Response, *statuses: int) -> None:
    if response.status_code not in statuses:
        raise RuntimeError(f"{response.request.method} {response.request.url.path} answered "
                           f"{response.status_code}, expected {statuses}: {response.text[:300]}")
