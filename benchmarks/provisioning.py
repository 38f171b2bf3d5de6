"""Provisioning, approved → provisioned with no faults: won deals already in the inbox, K
`handoff worker --until-idle` processes against the twins, timed from start until all exit,
then checked for exactly one customer and one project per deal.

The grid runs milestone deals with no progress yet: provisioning alone. Two more runs take the
seed's mix of billing methods, where a third of the deals are fixed fees invoiced the moment
their project is live: provisioning and that first invoice."""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks import cpu
from benchmarks.databases import sqlite_url, throwaway_postgres
from benchmarks.progress import say
from benchmarks.sandbox import (
    Twins,
    check_exactly_once,
    requests_seen,
    reset,
    seed_won_deals,
    twin_cpu,
)
from handoff.demo.processes import HandoffProcess
from handoff.demo.run import SECRETS, write_config
from handoff.demo.scenario import BILLING
from handoff.engine.inbox import accept
from handoff.store.db import open_database
from handoff.store.tables import hops

WORKER_TIMEOUT = 600.0


PROVISIONING_ONLY = ("Milestone",)  # nothing billable before delivery reports progress
MIXED = "mixed, fixed fees invoiced"


@dataclass(frozen=True)
class ProvisioningRun:
    database: str
    workers: int
    deals: int
    billing: str           # "provisioning only", or MIXED
    seconds: float         # wall time of the worker processes, start-up included
    working: float         # first reconcile started → last one finished (from the lineage)
    calls: dict[str, int]  # twin -> requests it served during the run
    cpu: dict[str, float]  # each twin, "workers", "machine", "postgres" if used -> CPU seconds

    @property
    def rate(self) -> float:
        """Approved → provisioned and written back, deals per second of work."""
        return self.deals / self.working

    def calls_per_deal(self, twin: str) -> float:
        return self.calls[twin] / self.deals

    def cpu_ms_per_deal(self, part: str) -> float | None:
        return 1000 * self.cpu[part] / self.deals if part in self.cpu else None


@dataclass(frozen=True)
class StartUp:
    """One worker started with nothing to do, until it exits: a fixed cost in every run."""

    seconds: float
    cpu: float


def measure_provisioning(twins: Twins, workdir: Path, deals: int, sqlite_workers: Sequence[int],
                         postgres_workers: Sequence[int]) -> tuple[list[ProvisioningRun], StartUp]:
    """One run per worker count on SQLite, then on PostgreSQL (none: skipped)."""
    start_up = idle_worker(twins, sqlite_url(workdir, "idle"), workdir)
    runs = [provision(twins, "SQLite", sqlite_url(workdir, f"provisioning-{workers}"), workdir,
                      deals, workers) for workers in sqlite_workers]
    for workers in postgres_workers:
        with throwaway_postgres() as database_url:
            runs.append(provision(twins, "PostgreSQL", database_url, workdir, deals, workers))
    runs.append(provision(twins, "SQLite", sqlite_url(workdir, "mixed"), workdir, deals,
                          sqlite_workers[0], BILLING))
    if postgres_workers:
        with throwaway_postgres() as database_url:
            runs.append(provision(twins, "PostgreSQL", database_url, workdir, deals,
                                  max(postgres_workers), BILLING))
    return runs, start_up


def provision(twins: Twins, database: str, database_url: str, workdir: Path, deals: int,
              workers: int, methods: Sequence[str] = PROVISIONING_ONLY) -> ProvisioningRun:
    sf, ns = twins
    reset(sf, ns)
    billing = "provisioning only" if methods == PROVISIONING_ONLY else MIXED
    say(f"  {database}, {workers} worker(s), {billing}: seeding {deals} won deals, taking their "
        "events in")
    take_in(database_url, seed_won_deals(sf, deals, random.Random(deals), methods=methods))
    env = worker_env(twins, database_url, workdir)
    on_postgres = database_url.startswith("postgresql")
    before, started = Meters.read(twins, on_postgres), time.perf_counter()
    run_workers(workers, env)
    seconds = time.perf_counter() - started
    used = Meters.read(twins, on_postgres).since(before)
    check_exactly_once(sf, ns, deals)
    run = ProvisioningRun(database, workers, deals, billing, seconds,
                          working_seconds(database_url), used.requests, used.cpu)
    say(f"    {run.rate:,.1f} deals/s over {run.working:.1f} s of work ({seconds:.1f} s with start-up); "
        f"{run.calls_per_deal('netsuite'):.2f} NetSuite "
        f"and {run.calls_per_deal('salesforce'):.3f} Salesforce calls, {run.cpu_ms_per_deal('workers'):.1f} "
        "ms of worker CPU per deal")
    return run


def working_seconds(database_url: str) -> float:
    """From the first hop of the run's lineage to the last: the work, without start-up."""
    db = open_database(database_url, migrate=False)
    try:
        with db.reading() as conn:
            first, last = conn.execute(sa.select(sa.func.min(hops.c.started_at),
                                                 sa.func.max(hops.c.finished_at))).one()
    finally:
        db.dispose()
    return (last - first).total_seconds()


def idle_worker(twins: Twins, database_url: str,
                workdir: Path) -> StartUp:
    open_database(database_url).dispose()  # migrated beforehand, as in the runs
    env = worker_env(twins, database_url, workdir)
    cpu_before, started = cpu.reaped_children_seconds(), time.perf_counter()
    run_workers(1, env)
    start_up = StartUp(time.perf_counter() - started, cpu.reaped_children_seconds() - cpu_before)
    say(f"  a worker with nothing to do starts and exits in {start_up.seconds:.2f} s "
        f"({start_up.cpu:.2f} s CPU)")
    return start_up


def worker_env(twins: Twins, database_url: str,
               workdir: Path) -> dict[str, str]:
    """What `handoff worker` needs to reach the twins and the database."""
    config = write_config(workdir, database_url, *twins)
    return {**SECRETS, "HANDOFF_CONFIG": str(config), "HANDOFF_DATABASE_URL": database_url}


def take_in(database_url: str, events: list[dict[str, Any]]) -> None:
    """Every event through intake, in this process (not timed)."""
    db = open_database(database_url)
    try:
        for event in events:
            accept(db, event, datetime.now(UTC))
    finally:
        db.dispose()


def run_workers(count: int, env: dict[str, str]) -> None:
    with ExitStack() as stack:
        workers = [stack.enter_context(HandoffProcess(["worker", "--until-idle"], env))
                   for _ in range(count)]
        for worker in workers:
            assert worker.process is not None
            if worker.process.wait(timeout=WORKER_TIMEOUT) != 0:
                raise RuntimeError(f"a worker exited with {worker.process.returncode}")


@dataclass(frozen=True)
class Meters:
    requests: dict[str, int]  # twin -> requests served so far
    cpu: dict[str, float]     # each twin, reaped workers, PostgreSQL, machine -> CPU s so far

    @classmethod
    def read(cls, twins: Twins, on_postgres: bool) -> Meters:
        seconds = {t.system: twin_cpu(t) for t in twins}
        seconds |= {"workers": cpu.reaped_children_seconds(), "machine": cpu.machine_busy_seconds()}
        if on_postgres:
            seconds["postgres"] = cpu.command_seconds("postgres")
        return cls({t.system: requests_seen(t) for t in twins}, seconds)

    def since(self, before: Meters) -> Meters:
        return Meters({k: v - before.requests[k] for k, v in self.requests.items()},
                      {k: v - before.cpu[k] for k, v in self.cpu.items()})
