"""HTTP clients compared on the call a worker makes most (NetSuite's PUT upsert): the client's
own CPU per call, one thread, the twin in its own process. A worker is bound by this CPU, so
it picks the connector's transport."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import orjson
import urllib3

from benchmarks.progress import say
from benchmarks.sandbox import NETSUITE_TOKEN
from handoff.connectors.keepalive import KeepAliveClient
from handoff.connectors.twin_process import TwinProcess

HEADERS = {"Authorization": f"Bearer {NETSUITE_TOKEN}", "Accept": "application/json",
           "Content-Type": "application/json"}
Put = Callable[[str, bytes], int]  # path below /services/rest/, body -> status


@dataclass(frozen=True)
class TransportRun:
    client: str
    calls: int
    seconds: float
    cpu_seconds: float  # this process's user + system time

    @property
    def cpu_us_per_call(self) -> float:
        return 1e6 * self.cpu_seconds / self.calls

    @property
    def rate(self) -> float:
        return self.calls / self.seconds


def compare_transports(ns: TwinProcess, calls: int) -> list[TransportRun]:
    base = f"{ns.base_url}/services/rest/"
    httpx_client = httpx.Client(base_url=base, timeout=30.0)
    pool = urllib3.PoolManager(maxsize=1, retries=False)
    keepalive = KeepAliveClient(base)
    candidates: dict[str, Put] = {
        "httpx.Client": lambda path, body: httpx_client.put(
            path, content=body, headers=HEADERS).status_code,
        "urllib3.PoolManager": lambda path, body: pool.urlopen(
            "PUT", base + path, body=body, headers=HEADERS, redirect=False).status,
        "KeepAliveClient (handoff, plain sockets)": lambda path, body: keepalive.request(
            "PUT", path, body=body, headers=HEADERS).status,
    }
    try:
        return [measure(name, put, calls) for name, put in candidates.items()]
    finally:
        httpx_client.close()
        pool.clear()
        keepalive.close()


def measure(name: str, put: Put, calls: int) -> TransportRun:
    put("record/v1/customer/eid:warm-up", customer_body(0))  # connection opened outside the clock
    cpu, started = time.process_time(), time.perf_counter()
    for i in range(calls):
        status = put(f"record/v1/customer/eid:transport-{i}", customer_body(i))
        if status != 204:
            raise RuntimeError(f"{name}: the twin answered {status}")
    run = TransportRun(name, calls, time.perf_counter() - started, time.process_time() - cpu)
    say(f"  {name}: {run.cpu_us_per_call:.0f} µs client CPU per PUT, {run.rate:,.0f} PUT/s")
    return run


def customer_body(i: int) -> bytes:
    return orjson.dumps({"companyName": f"Transport customer {i}", "subsidiary": {"id": "1"},
                         "currency": {"id": "1"}})
