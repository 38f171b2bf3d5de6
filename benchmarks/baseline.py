"""The baseline, side by side with handoff: a plain webhook script of the kind a workflow
tool runs for "closed-won creates a project". For every delivery it gets it POSTs a customer
and a project to NetSuite: no external ids, no look-up, no deduplication. Both get the same
shuffled deliveries, every deal's change three times, as an at-least-once source sends them."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from benchmarks.databases import sqlite_url
from benchmarks.intake import client_of, post_events, serving
from benchmarks.load import THREADS, expect, hammer
from benchmarks.progress import say
from benchmarks.provisioning import worker_env
from benchmarks.sandbox import (
    Twins,
    api_client,
    check_exactly_once,
    netsuite_summary,
    reset,
    seed_won_deals,
)
from handoff.connectors.twin_process import TwinProcess
from handoff.demo.processes import HandoffProcess
from handoff.engine.payloads import OPPORTUNITY_CHANGED

RECORD = "/services/rest/record/v1"
COPIES = 3
IDLE_TIMEOUT = 600.0


@dataclass(frozen=True)
class Side:
    name: str
    deals: int
    deliveries: int
    seconds: float   # from the first delivery until the last deal is done
    projects: int    # jobs NetSuite holds afterwards
    customers: int

    @property
    def rate(self) -> float:
        return self.deals / self.seconds

    @property
    def duplicate_projects(self) -> int:
        return self.projects - self.deals


def compare(twins: Twins, workdir: Path, deals: int) -> list[Side]:
    sf, ns = twins
    reset(sf, ns)
    say(f"  seeding {deals} won deals; {COPIES} deliveries of each change, shuffled")
    events = seed_won_deals(sf, deals, random.Random(deals), copies=COPIES)
    script = webhook_script(ns, deals, events)
    reset(ns)  # the CRM keeps its deals: handoff writes their status back to them
    return [script, through_handoff(twins, workdir, deals, events)]


def webhook_script(ns: TwinProcess, deals: int, events: list[dict[str, Any]]) -> Side:
    won = [e["data"] for e in events if e["type"] == OPPORTUNITY_CHANGED]
    say(f"  webhook script: {len(won)} deliveries, {THREADS} at a time")
    load = hammer(lambda http, i: create_project(http, won[i]), len(won), lambda: api_client(ns))
    return tally("webhook script", ns, deals, len(won), load.seconds)


def create_project(http: httpx.Client, deal: dict[str, Any]) -> None:
    """The whole recipe: a customer, then a project under it."""
    customer = http.post(f"{RECORD}/customer", json={
        "companyName": f"Customer of {deal['name']}", "subsidiary": {"id": "1"}, "currency": {"id": "1"}})
    expect(customer, 204)
    customer_id = customer.headers["Location"].rsplit("/", 1)[-1]
    expect(http.post(f"{RECORD}/job", json={"companyName": deal["name"],
                                             "parent": {"id": customer_id}}), 204)


def through_handoff(twins: Twins, workdir: Path, deals: int,
                    events: list[dict[str, Any]]) -> Side:
    env = worker_env(twins, sqlite_url(workdir, "baseline"), workdir)
    say(f"  handoff: {len(events)} deliveries to `handoff serve`, {THREADS} at a time, one worker")
    with HandoffProcess(["worker"], env), serving(env) as (_, service_url):
        started = time.perf_counter()
        hammer(post_events([orjson.dumps(e) for e in events], 200, 202), len(events),
               client_of(service_url))
        wait_until_idle(service_url)
        seconds = time.perf_counter() - started
    check_exactly_once(*twins, deals)
    return tally("handoff", twins[1], deals, len(events), seconds)


def wait_until_idle(service_url: str) -> None:
    """Until the reconcile queue is empty twice in a row: every deal provisioned and written back."""
    deadline, empty = time.monotonic() + IDLE_TIMEOUT, 0
    with httpx.Client(base_url=service_url, timeout=10.0) as client:
        while empty < 2:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the queue did not drain within {IDLE_TIMEOUT:.0f} s")
            empty = empty + 1 if client.get("/healthz").json()["queue_depth"] == 0 else 0
            time.sleep(0.1)


def tally(name: str, ns: TwinProcess, deals: int, deliveries: int, seconds: float) -> Side:
    counts = netsuite_summary(ns)["counts"]
    side = Side(name, deals, deliveries, seconds, counts["job"], counts["customer"])
    say(f"    {side.rate:,.1f} deals/s; NetSuite holds {side.projects} projects for {deals} deals "
        f"({side.duplicate_projects} duplicates)")
    return side
