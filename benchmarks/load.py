"""The load generator: `count` calls spread over threads, one keep-alive client per thread,
each call timed. It reports its own CPU so a reader can tell whether the server or the
generator was the limit. `LeanClient` (handoff's own keep-alive client, about a fifth of
httpx's CPU per call) drives handoff's intake, so that the generator is not the limit."""

from __future__ import annotations

import itertools
import ssl
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from handoff.connectors.keepalive import KeepAliveClient

THREADS = 16
Call = Callable[[Any, int], None]  # makes call number i on a client; raises if it went wrong


@dataclass(frozen=True, slots=True)
class LeanResponse:
    status_code: int
    content: bytes
    method: str
    path: str

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")


class LeanClient:
    """Calls one service over one keep-alive connection (per thread), httpx-style."""

    def __init__(self, base_url: str, *, headers: dict[str, str] | None = None,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._http = KeepAliveClient(base_url.rstrip("/") + "/", max_idle=1, ssl_context=ssl_context)
        self._headers = headers or {}

    def request(self, method: str, path: str, *, content: bytes | None = None, json: Any = None,
                headers: dict[str, str] | None = None) -> LeanResponse:
        sent = {**self._headers, **(headers or {})}
        if json is not None:
            content, sent["Content-Type"] = orjson.dumps(json), "application/json"
        reply = self._http.request(method, path.lstrip("/"), body=content, headers=sent)
        return LeanResponse(reply.status, reply.data, method, path)

    def post(self, path: str, *, content: bytes, headers: dict[str, str]) -> LeanResponse:
        return self.request("POST", path, content=content, headers=headers)

    def put(self, path: str, **kwargs: Any) -> LeanResponse:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> LeanResponse:
        return self.request("PATCH", path, **kwargs)

    def __enter__(self) -> LeanClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self._http.close()


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


def hammer(call: Call, count: int, client: Callable[[], Any],
           threads: int = THREADS) -> Load:
    """Calls 0..count-1 of `call`, as fast as `threads` threads can make them."""
    clients = [client() for _ in range(threads)]
    numbers = itertools.count()  # next() on it is atomic under the GIL: each call made once
    latencies = [0.0] * count

    def work(http: Any) -> None:
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


def expect(response: httpx.Response | LeanResponse, *statuses: int) -> None:
    if response.status_code not in statuses:
        method, path = ((response.method, response.path) if isinstance(response, LeanResponse)
                        else (response.request.method, response.request.url.path))
        raise RuntimeError(f"{method} {path} answered {response.status_code}, expected {statuses}: "
                           f"{response.text[:300]}")
