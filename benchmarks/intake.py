"""Intake: `handoff serve` in its own process takes unique CloudEvents from 16 concurrent
clients; every 202 means the event is durable. Beside it, the bare storage rate: a plain
loop committing one row per transaction (to SQLite with handoff's PRAGMAs, to PostgreSQL as
the server is configured)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
from sqlalchemy.engine import make_url

from benchmarks.cpu import process_seconds
from benchmarks.load import THREADS, Call, LeanClient, Load, expect, hammer
from benchmarks.progress import say
from handoff.connectors.twin_process import free_port
from handoff.demo.processes import HandoffProcess
from handoff.demo.scenario import cloud_event
from handoff.engine.payloads import OPPORTUNITY_CHANGED

CLOUDEVENT = {"Content-Type": "application/cloudevents+json"}
VERSION = "2026-11-20T09:00:00Z"


@dataclass(frozen=True)
class IntakeRun:
    database: str
    load: Load
    server_cpu: float  # CPU seconds of the `handoff serve` process during the load
    commits: int  # transactions the events went in (group commit)

    @property
    def events_per_commit(self) -> float:
        return self.load.calls / self.commits if self.commits else 0.0

    @property
    def server_cpu_ms_per_event(self) -> float:
        return 1000 * self.server_cpu / self.load.calls


@dataclass(frozen=True)
class BareStorage:
    database: str  # with the durability setting it ran under
    rows: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


def opportunity_event(n: int) -> bytes:
    """A won deal's change, unique by its id (the event id is record id @ version)."""
    data = {"id": f"006{n:012d}BEN", "name": f"Bench deal {n}", "account_id": f"001{n:012d}BEN",
            "stage": "Closed Won", "is_won": True, "amount": "120000.00", "currency": "USD",
            "close_date": "2026-11-20", "billing_method": "fixed_fee",
            "contract_status": "approved", "sow_status": "approved", "legal_entity": "US01",
            "owner": None, "description": None, "version": VERSION}
    return orjson.dumps(cloud_event(OPPORTUNITY_CHANGED, data))


def measure_intake(database: str, database_url: str, events: int) -> IntakeRun:
    bodies = [opportunity_event(n) for n in range(events)]
    say(f"  {database}: {events} CloudEvents to `handoff serve` from {THREADS} threads")
    with serving({"HANDOFF_DATABASE_URL": database_url}) as (pid, url):
        cpu, commits = process_seconds(pid), intake_commits(url)
        load = hammer(post_events(bodies, 202), events, client_of(url))
        run = IntakeRun(database, load, process_seconds(pid) - cpu, intake_commits(url) - commits)
    say(f"    {load.rate:,.0f} events/s, p50 {load.latency_ms(50):.1f} ms, p99 "
        f"{load.latency_ms(99):.1f} ms; serve {run.server_cpu_ms_per_event:.2f} ms CPU per "
        f"event, load generator {load.generator_cores:.2f} cores busy")
    return run


@dataclass(frozen=True)
class BatchedRun:
    database: str
    batch: int
    load: Load  # one call per batch
    server_cpu: float

    @property
    def events(self) -> int:
        return self.load.calls * self.batch

    @property
    def rate(self) -> float:
        return self.load.rate * self.batch


BATCH = {"Content-Type": "application/cloudevents-batch+json"}


def measure_batched_intake(database: str, database_url: str, events: int, batch: int = 100) -> BatchedRun:
    """The CloudEvents batched content mode: `batch` events an array, each taken on its own, one
    commit a batch (a bulk source: a nightly export, a CDC backlog)."""
    bodies = [b"[" + b",".join(opportunity_event(n) for n in range(start, start + batch)) + b"]"
              for start in range(0, events - events % batch, batch)]
    say(f"  {database}: {len(bodies) * batch} CloudEvents in batches of {batch} from {THREADS} threads")
    with serving({"HANDOFF_DATABASE_URL": database_url}) as (pid, url):
        cpu = process_seconds(pid)
        load = hammer(lambda http, i: expect(http.post("/events", content=bodies[i], headers=BATCH), 200),
                      len(bodies), client_of(url))
        run = BatchedRun(database, batch, load, process_seconds(pid) - cpu)
    say(f"    {run.rate:,.0f} events/s ({load.rate:,.0f} batches/s, p99 {load.latency_ms(99):.1f} ms "
        "a batch)")
    return run


@contextmanager
def serving(env: dict[str, str]) -> Iterator[tuple[int, str]]:
    """`handoff serve` on a free port, answering: its process id and its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with HandoffProcess(["serve", "--port", str(port)], env, ready_url=f"{url}/healthz") as serve:
        assert serve.process is not None
        yield serve.process.pid, url


def intake_commits(service_url: str) -> int:
    """Transactions the intake has committed so far (`/metrics`)."""
    metrics = httpx.get(f"{service_url}/metrics", timeout=30).text
    return next(int(float(line.split()[-1])) for line in metrics.splitlines()
                if line.startswith("handoff_intake_commits_total "))


def post_events(bodies: list[bytes], *accepted: int) -> Call:
    """Call i posts CloudEvent i in structured mode and expects one of the `accepted` answers."""
    return lambda http, i: expect(http.post("/events", content=bodies[i], headers=CLOUDEVENT),
                                  *accepted)


def client_of(service_url: str) -> Callable[[], LeanClient]:
    return lambda: LeanClient(service_url)


def bare_sqlite_inserts(directory: Path, rows: int) -> BareStorage:
    conn = sqlite3.connect(directory / "bare.db", isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # as handoff's store sets them
        return bare_inserts("SQLite (WAL, synchronous=NORMAL)", conn, "BEGIN IMMEDIATE", "?", rows)
    finally:
        conn.close()


def bare_postgres_inserts(database_url: str, rows: int) -> BareStorage:
    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as conn:
        mode = conn.execute("SHOW synchronous_commit").fetchone()[0]
        return bare_inserts(f"PostgreSQL (synchronous_commit={mode})", conn, "BEGIN", "%s", rows)


def bare_inserts(database: str, conn: Any, begin: str, placeholder: str, rows: int) -> BareStorage:
    """One INSERT per transaction, nothing else, on a DB-API connection in autocommit mode:
    what the database alone commits on this disk."""
    body = opportunity_event(0).decode()
    insert = f"INSERT INTO bare_inbox VALUES ({placeholder}, {placeholder})"
    conn.execute("CREATE TABLE bare_inbox (id TEXT PRIMARY KEY, body TEXT NOT NULL)")
    started = time.perf_counter()
    for i in range(rows):
        conn.execute(begin)
        conn.execute(insert, (f"event-{i}", body))
        conn.execute("COMMIT")
    result = BareStorage(database, rows, time.perf_counter() - started)
    say(f"  bare {database}: {result.rate:,.0f} rows/s committed one per transaction")
    return result
