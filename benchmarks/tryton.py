"""The Tryton connector against a real Tryton: how long one deal's provisioning (customer +
project, each looked up before it is created) and one milestone's invoice + post take, one
call at a time, on each backend the sandbox runs on. Tryton's own work dominates: the split
per JSON-RPC method shows where."""

from __future__ import annotations

import datetime as dt
import statistics
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from benchmarks.progress import say
from handoff.connectors.tryton.client import TrytonConnector, TrytonSettings
from handoff.connectors.tryton.jsonrpc import TrytonRpc
from handoff.connectors.tryton.sandbox import TrytonProcess
from handoff.domain import BillingMethod, Customer, InvoiceRequest, Milestone, Money, Project


@dataclass
class TrytonRun:
    backend: str
    deals: int
    provision: list[float] = field(default_factory=list)  # seconds per deal
    invoice: list[float] = field(default_factory=list)    # seconds per milestone invoice + post
    by_method: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def median_ms(self, samples: list[float]) -> float:
        return 1000 * statistics.median(samples)

    def slowest_methods(self, count: int = 3) -> list[tuple[str, float]]:
        totals = {m: sum(s) / self.deals for m, s in self.by_method.items()}
        return sorted(totals.items(), key=lambda item: -item[1])[:count]


def measure_tryton(backends: list[str], deals: int) -> list[TrytonRun]:
    return [measure_backend(backend, deals) for backend in backends]


def measure_backend(backend: str, deals: int) -> TrytonRun:
    say(f"  Tryton on {backend}: starting from the cached sandbox database")
    run = TrytonRun(backend, deals)
    with TrytonProcess(backend) as server, _timed_calls(run.by_method):
        info = server.info
        assert info is not None
        settings = TrytonSettings(info.url, info.database, info.user, info.password,
                                  max_concurrency=1)
        with TrytonConnector(settings) as tryton:
            tryton.company()
            run.by_method.clear()
            for _ in range(deals):
                key = uuid.uuid4().hex[:10]
                project_id = _timed(run.provision, partial(_provision, tryton, key))
                _timed(run.invoice, partial(tryton.issue_invoice, _milestone(key), project_id))
    say(f"    provisioning {run.median_ms(run.provision):.0f} ms, invoice + post "
        f"{run.median_ms(run.invoice):.0f} ms (medians of {deals})")
    return run


def _provision(tryton: TrytonConnector, key: str) -> str:
    party = tryton.upsert_customer(f"HO-C-B{key}", Customer(f"B{key}", f"Bench {key}", "USD"))
    project = Project(f"HO-P-B{key}", f"B{key}", f"Bench deal {key}", f"HO-C-B{key}",
                      Money(Decimal("10000.00"), "USD"), BillingMethod.MILESTONE,
                      dt.date(2026, 11, 1))
    return tryton.upsert_project(project, party.target_id).target_id


def _milestone(key: str) -> InvoiceRequest:
    return InvoiceRequest(f"HO-I-B{key}-M1", f"B{key}",
                            Milestone("M1", "Kick-off", Money(Decimal("4000.00"), "USD")),
                            dt.date.today())


def _timed(samples: list[float], call: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    result = call()
    samples.append(time.perf_counter() - started)
    return result


class _timed_calls:  # noqa: N801 (a context manager used like a function)
    """Times every JSON-RPC call by method while active."""

    def __init__(self, by_method: dict[str, list[float]]) -> None:
        self.by_method, self.original = by_method, TrytonRpc.call

    def __enter__(self) -> None:
        original, by_method = self.original, self.by_method

        def call(rpc: TrytonRpc, method: str, *params: Any) -> Any:
            return _timed(by_method[method], lambda: original(rpc, method, *params))

        TrytonRpc.call = call  # type: ignore[method-assign]

    def __exit__(self, *exc: object) -> None:
        TrytonRpc.call = self.original  # type: ignore[method-assign]
