"""The reconcile queue against a job queue and a durable-workflow engine, on one workload.

`python -m benchmarks.queue_alternatives [--quick] [--keys N] [--only NAME ...]`

Workload, the same for every candidate: K business keys, each changed 5 times. Keys go
out in bursts of 10 whose changes are shuffled together, from 4 sender threads, while
the consumers already run, so some changes land while their key is being worked on. The
handler is a no-op that sleeps about 1 ms (an idempotent remote call); 8 workers run it.

Reported per candidate: wall time and keys/s; handler executions per key, and how many
of them were redundant (no change committed since that key's previous execution began);
overlapping executions of one key (must be 0); keys whose latest change no execution
began after (must be 0); enqueue latency; and the lag from a change's commit to the next
execution of its key. A candidate still busy `drain_limit` seconds after the last change
is stopped and reported as such.

procrastinate, pgqueuer and DBOS are not dependencies of handoff: install them into the
environment for a comparison run (`pip install procrastinate pgqueuer dbos`); a candidate
that is missing, or a PostgreSQL server that cannot be reached, is reported as skipped.
The script prints a table and writes nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import functools
import importlib.util
import itertools
import logging
import os
import platform
import random
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from benchmarks import databases
from benchmarks.progress import say

POLL = 0.01  # how often the harness looks whether a candidate has drained


@dataclass(frozen=True)
class Workload:
    keys: int = 2000
    changes: int = 5
    burst: int = 10
    workers: int = 8
    senders: int = 4         # concurrent intake requests, each sending its share of the changes
    handler_seconds: float = 0.001
    drain_limit: float = 120.0  # a candidate still busy this long after the last change is stopped
    seed: int = 20240611

    def changes_in_order(self) -> list[str]:
        """Every key `changes` times; within a burst of keys, the changes shuffled together."""
        rng, names, order = random.Random(self.seed), [f"bench:{i:06d}" for i in range(self.keys)], []
        for start in range(0, self.keys, self.burst):
            burst = names[start:start + self.burst] * self.changes
            rng.shuffle(burst)
            order += burst
        return order


@dataclass
class Tracker:
    """What the handlers and the senders saw; shared by threads and event loops alike."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    running: Counter[str] = field(default_factory=Counter)
    executions: int = 0
    overlaps: int = 0        # an execution started while another of the same key ran
    during: int = 0          # changes sent while their key was being worked on
    last_sent: dict[str, float] = field(default_factory=dict)
    committed: dict[str, list[float]] = field(default_factory=dict)  # when each change was in
    starts: dict[str, list[float]] = field(default_factory=dict)     # when each execution began
    latencies: list[float] = field(default_factory=list)
    stopped: bool = False    # gave up waiting for the candidate to drain

    @contextmanager
    def change(self, key: str) -> Iterator[None]:
        sent = time.perf_counter()
        with self.lock:
            self.last_sent[key] = sent
            self.during += self.running[key] > 0
        yield
        done = time.perf_counter()
        with self.lock:
            self.committed.setdefault(key, []).append(done)
            self.latencies.append(done - sent)

    def started(self, key: str) -> None:
        with self.lock:
            self.executions += 1
            self.overlaps += self.running[key] > 0
            self.running[key] += 1
            self.starts.setdefault(key, []).append(time.perf_counter())

    def finished(self, key: str) -> None:
        with self.lock:
            self.running[key] -= 1

    def missed(self) -> int:
        """Keys whose latest change was sent after their last execution had begun: nothing
        looked at that key's latest state."""
        return sum(1 for key, sent in self.last_sent.items() if max(self.starts.get(key, [0.0])) < sent)

    def redundant(self) -> int:
        """Executions with no change committed since the key's previous execution began."""
        count = 0
        for key, starts in self.starts.items():
            starts, committed = sorted(starts), sorted(self.committed.get(key, []))
            count += sum(bisect.bisect_right(committed, now) == bisect.bisect_right(committed, before)
                         for before, now in itertools.pairwise(starts))
        return count

    def lags(self) -> list[float]:
        """For each change, the time from its commit to the next execution of its key."""
        lags = []
        for key, committed in self.committed.items():
            starts = sorted(self.starts.get(key, []))
            for done in committed:
                i = bisect.bisect_left(starts, done)
                if i < len(starts):
                    lags.append(starts[i] - done)
        return lags


def percentiles(values: list[float]) -> tuple[float, float]:
    """p50 and p99, in milliseconds."""
    ordered = sorted(values) or [0.0]
    return 1000 * ordered[len(ordered) // 2], 1000 * ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)]


@dataclass(frozen=True)
class Row:
    candidate: str
    keys: int = 0
    wall: float = 0.0
    executions: int = 0
    redundant: int = 0
    overlaps: int = 0
    missed: int = 0
    during: int = 0
    enqueue_ms: tuple[float, float] = (0.0, 0.0)
    lag_ms: tuple[float, float] = (0.0, 0.0)
    stopped: bool = False
    skipped: str = ""

    @classmethod
    def of(cls, candidate: str, workload: Workload, tracker: Tracker, wall: float) -> Row:
        return cls(candidate, workload.keys, wall, tracker.executions, tracker.redundant(),
                   tracker.overlaps, tracker.missed(), tracker.during, percentiles(tracker.latencies),
                   percentiles(tracker.lags()), tracker.stopped)

    def line(self) -> str:
        if self.skipped:
            return f"| {self.candidate} | skipped: {self.skipped} |" + " |" * 8
        wall, rate, missed = f"{self.wall:.1f}", f"{self.keys / self.wall:,.0f}", str(self.missed)
        if self.stopped:
            wall, rate, missed = f"stopped at {self.wall:.0f}", "—", "—"
        return (f"| {self.candidate} | {wall} | {rate} | {self.executions / self.keys:.2f} | "
                f"{self.redundant / self.keys:.2f} | {self.overlaps} | {missed} | {self.during} | "
                f"{self.enqueue_ms[0]:.1f} / {self.enqueue_ms[1]:.1f} | "
                f"{self.lag_ms[0]:,.0f} / {self.lag_ms[1]:,.0f} |")

    def note(self) -> str:
        return (f"{self.candidate}: stopped {self.wall:.0f} s after the first change, still busy, "
                f"after {self.executions:,} executions ({self.executions / self.wall:.1f}/s).")


def drive(workload: Workload, tracker: Tracker, send: Callable[[str], None],
          drained: Callable[[], bool]) -> float:
    """Send every change from `senders` threads, then wait until the candidate has nothing
    left; the wall time."""
    order = workload.changes_in_order()

    def sender(share: list[str]) -> None:
        for key in share:
            with tracker.change(key):
                send(key)

    started = time.perf_counter()
    with ThreadPoolExecutor(workload.senders) as pool:
        for done in [pool.submit(sender, order[i::workload.senders]) for i in range(workload.senders)]:
            done.result()
    deadline = time.perf_counter() + workload.drain_limit
    while not drained():
        if time.perf_counter() > deadline:
            tracker.stopped = True
            break
        time.sleep(POLL)
    return time.perf_counter() - started


class Background:
    """An event loop in its own thread, running one consumer coroutine until stopped."""

    def __init__(self, consumer: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(consumer(self.stop),),
                                       daemon=True)

    def __enter__(self) -> Background:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=60)
        self.loop.close()


def count(url: str, sql: str) -> Callable[[], bool]:
    """A drained() check: the query's count is zero."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    return lambda: _scalar(engine, sql) == 0


def _scalar(engine: sa.Engine, sql: str) -> int:
    with engine.connect() as conn:
        return int(conn.exec_driver_sql(sql).scalar_one())


def libpq(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


# --- handoff: the reconcile queue in its own store ---------------------------------------------

@dataclass
class NoOpController:
    tracker: Tracker
    seconds: float
    prefix: str = "bench:"

    def reconcile(self, key: str, attempt: int, changes: Any) -> None:
        self.tracker.started(key)
        time.sleep(self.seconds)
        self.tracker.finished(key)

    def gave_up(self, key: str, action: Any, error: BaseException, attempt: int, changes: Any) -> None:
        raise AssertionError(f"{key}: the no-op handler never fails ({error})")


def measure_handoff(name: str, url: str, workload: Workload) -> Row:
    from handoff.engine import queue
    from handoff.engine.clock import utcnow
    from handoff.engine.retry import RetryPolicy
    from handoff.engine.worker import Worker
    from handoff.store import open_database

    db, tracker, stop = open_database(url), Tracker(), threading.Event()
    worker = Worker(db, [NoOpController(tracker, workload.handler_seconds)], RetryPolicy(),
                    concurrency=workload.workers, lease=timedelta(seconds=60), poll_seconds=0.05)
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)

    def send(key: str) -> None:
        with db.transaction() as conn:
            queue.enqueue(conn, key, utcnow())

    def drained() -> bool:
        with db.reading() as conn:
            return queue.depth(conn) == 0

    thread.start()
    try:
        wall = drive(workload, tracker, send, drained)
    finally:
        stop.set()
        thread.join(timeout=60)
        db.dispose()
    return Row.of(name, workload, tracker, wall)


# --- procrastinate: a job queue with queueing locks and locks -----------------------------------

def measure_procrastinate(name: str, url: str, workload: Workload, locked: bool) -> Row:
    import procrastinate
    from procrastinate.exceptions import AlreadyEnqueued

    tracker = Tracker()
    logging.getLogger("procrastinate").setLevel(logging.ERROR)  # a benchmark app lives in __main__

    def app(connector: Any) -> Any:
        built = procrastinate.App(connector=connector)

        @built.task(name="reconcile")
        async def reconcile(key: str) -> None:
            tracker.started(key)
            await asyncio.sleep(workload.handler_seconds)
            tracker.finished(key)

        return built

    producer = app(procrastinate.SyncPsycopgConnector(conninfo=libpq(url)))
    consumer = app(procrastinate.PsycopgConnector(conninfo=libpq(url)))

    async def work(stop: asyncio.Event) -> None:
        async with consumer.open_async():
            task = asyncio.create_task(consumer.run_worker_async(
                concurrency=workload.workers, wait=True, install_signal_handlers=False,
                delete_jobs="successful", fetch_job_polling_interval=0.05))
            await stop.wait()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def send(key: str) -> None:
        if not locked:
            producer.tasks["reconcile"].defer(key=key)
            return
        # One job waiting per key (queueing_lock), one running per key (lock). A refused job
        # is not lost: the one waiting for that key has yet to start, so it sees this change.
        with contextlib.suppress(AlreadyEnqueued):
            producer.tasks["reconcile"].configure(lock=key, queueing_lock=key).defer(key=key)

    with producer.open():
        producer.schema_manager.apply_schema()
        with Background(work):
            wall = drive(workload, tracker, send, count(
                url, "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"))
    return Row.of(name, workload, tracker, wall)


# --- pgqueuer: a job queue with dedupe keys -----------------------------------------------------

def measure_pgqueuer(name: str, url: str, workload: Workload) -> Row:
    import psycopg
    from pgqueuer import PgQueuer, Queries

    tracker = Tracker()

    async def work(stop: asyncio.Event) -> None:
        async with await psycopg.AsyncConnection.connect(libpq(url), autocommit=True) as conn:
            pgq = PgQueuer.from_psycopg_connection(conn)

            @pgq.entrypoint("reconcile", concurrency_limit=workload.workers)
            async def reconcile(job: Any) -> None:
                key = job.payload.decode()
                tracker.started(key)
                await asyncio.sleep(workload.handler_seconds)
                tracker.finished(key)

            task = asyncio.create_task(pgq.run(batch_size=workload.workers,
                                               dequeue_timeout=timedelta(seconds=0.05)))
            await stop.wait()
            pgq.shutdown.set()
            await asyncio.gather(task, return_exceptions=True)

    async def connect() -> tuple[Any, Any]:
        conn = await psycopg.AsyncConnection.connect(libpq(url), autocommit=True)
        return conn, Queries.from_psycopg_connection(conn)

    async def install() -> None:
        conn, queries = await connect()
        async with conn:
            await queries.install()

    async def enqueue(client: tuple[Any, Any], key: str) -> None:  # queued or being worked on: skipped
        await client[1].enqueue("reconcile", key.encode(), dedupe_key=key, on_conflict="skip")

    asyncio.run(install())
    with Background(work), LoopPerThread(connect) as senders:
        wall = drive(workload, tracker, lambda key: senders.run(enqueue, key),
                     count(url, "SELECT count(*) FROM pgqueuer"))
    return Row.of(name, workload, tracker, wall)


class LoopPerThread:
    """An async client used from sender threads: each thread gets its own loop and connection."""

    def __init__(self, connect: Callable[[], Awaitable[tuple[Any, Any]]]) -> None:
        self.connect, self.local, self.opened = connect, threading.local(), []

    def __enter__(self) -> LoopPerThread:
        return self

    def run(self, call: Callable[[tuple[Any, Any], str], Awaitable[None]], key: str) -> None:
        if not hasattr(self.local, "loop"):
            self.local.loop = asyncio.new_event_loop()
            self.local.client = self.local.loop.run_until_complete(self.connect())
            self.opened.append((self.local.loop, self.local.client))
        self.local.loop.run_until_complete(call(self.local.client, key))

    def __exit__(self, *exc: object) -> None:
        for loop, client in self.opened:
            loop.run_until_complete(client[0].close())
            loop.close()


# --- DBOS: a durable-workflow engine, with a partitioned or a deduplicating queue ---------------

def measure_dbos(name: str, url: str, workload: Workload, dedupe: bool) -> Row:
    from dbos import DBOS, SetEnqueueOptions, error

    tracker = Tracker()
    DBOS(config={"name": "handoff-bench", "system_database_url": url, "log_level": "WARNING",
                 "max_executor_threads": workload.workers + 4})

    @DBOS.step()
    def remote_call(key: str) -> None:
        tracker.started(key)
        time.sleep(workload.handler_seconds)
        tracker.finished(key)

    @DBOS.workflow()
    def reconcile(key: str) -> None:
        remote_call(key)

    DBOS.launch()
    try:
        # dedupe: one workflow per key, queued or running, and a refused change is dropped.
        # Otherwise one workflow per key runs at a time (DBOS has no dedupe on partitioned queues).
        per_key = {} if dedupe else {"partition_concurrency": 1}
        option = "deduplication_id" if dedupe else "queue_partition_key"
        queue = DBOS.register_queue("reconcile", worker_concurrency=workload.workers,
                                    polling_interval_sec=0.05, **per_key)

        def send(key: str) -> None:
            with SetEnqueueOptions(**{option: key}), contextlib.suppress(error.DBOSQueueDeduplicatedError):
                queue.enqueue(reconcile, key)

        schema = "dbos." if url.startswith("postgresql") else ""
        wall = drive(workload, tracker, send, count(
            url, f"SELECT count(*) FROM {schema}workflow_status WHERE status IN ('ENQUEUED', 'PENDING')"))
    finally:
        _destroy_dbos(DBOS)
    return Row.of(name, workload, tracker, wall)


def _destroy_dbos(dbos: Any) -> None:
    """Shut DBOS down quietly. After a stopped run its queue thread may still be inside a
    dequeue; it raises once DBOS is gone, and must be done before the database is dropped."""
    logging.getLogger("dbos").setLevel(logging.CRITICAL)
    default_hook = threading.excepthook

    def hook(args: Any) -> None:
        if not (args.thread and args.thread.name.startswith("queue-worker")):
            default_hook(args)

    threading.excepthook = hook
    try:
        dbos.destroy(destroy_registry=True)
        for thread in threading.enumerate():
            if thread.name.startswith("queue-worker"):
                thread.join(timeout=120)
    finally:
        threading.excepthook = default_hook


# --- running them -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Candidate:
    label: str
    database: str  # "sqlite" or "postgresql"
    run: Callable[[str, str, Workload], Row]
    needs: str = ""  # the package that must be installed


CANDIDATES = {
    "handoff-sqlite": Candidate("handoff reconcile queue, SQLite", "sqlite", measure_handoff),
    "handoff-postgres": Candidate("handoff reconcile queue, PostgreSQL", "postgresql", measure_handoff),
    "procrastinate": Candidate("procrastinate, lock + queueing_lock", "postgresql",
                               functools.partial(measure_procrastinate, locked=True), "procrastinate"),
    "procrastinate-plain": Candidate("procrastinate, plain jobs", "postgresql",
                                     functools.partial(measure_procrastinate, locked=False),
                                     "procrastinate"),
    "pgqueuer": Candidate("pgqueuer, dedupe_key", "postgresql", measure_pgqueuer, "pgqueuer"),
    "dbos": Candidate("DBOS, partitioned queue, PostgreSQL", "postgresql",
                      functools.partial(measure_dbos, dedupe=False), "dbos"),
    "dbos-dedupe": Candidate("DBOS, deduplication_id, PostgreSQL", "postgresql",
                             functools.partial(measure_dbos, dedupe=True), "dbos"),
    "dbos-sqlite": Candidate("DBOS, partitioned queue, SQLite", "sqlite",
                             functools.partial(measure_dbos, dedupe=False), "dbos"),
}
NOT_MEASURED = ("Temporal: not measured; it needs a Temporal server, which is not a Python package "
                "(the SDK's test environment downloads a server binary at run time).")


def measure(name: str, workload: Workload, scratch: Path, postgres: bool) -> Row:
    candidate = CANDIDATES[name]
    if candidate.needs and importlib.util.find_spec(candidate.needs) is None:
        return Row(candidate.label, skipped=f"not installed (pip install {candidate.needs})")
    if candidate.database == "sqlite":
        return candidate.run(candidate.label, databases.sqlite_url(scratch, name), workload)
    if not postgres:
        return Row(candidate.label, skipped=f"no PostgreSQL server at {databases.ADMIN_URL}")
    with databases.throwaway_postgres() as url:
        return candidate.run(candidate.label, url, workload)


def machine(postgres: str | None) -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return (f"Machine: {len(os.sched_getaffinity(0))} cores ({cpu}), Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, PostgreSQL {postgres or 'not reachable'}; "
            f"load average {load}.")


HEADER = ("| candidate | wall s | keys/s | executions per key | of which redundant "
          "| overlapping executions | keys whose latest change was missed | changes during work "
          "| enqueue p50 / p99 ms | change → execution p50 / p99 ms |\n" + "|" + " --- |" * 10)


def table(rows: list[Row], workload: Workload) -> str:
    notes = [row.note() for row in rows if row.stopped]
    return "\n".join([HEADER, *(row.line() for row in rows), "",
                      f"{workload.keys:,} keys × {workload.changes} changes in bursts of {workload.burst} "
                      f"keys from {workload.senders} senders; {workload.workers} workers; the handler "
                      f"sleeps {workload.handler_seconds * 1000:g} ms.", *notes, NOT_MEASURED])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workload = Workload(keys=args.keys or (200 if args.quick else 2000))
    postgres, rows = databases.postgres_version(), []
    say(machine(postgres))
    with tempfile.TemporaryDirectory(prefix="handoff-queues-") as scratch:
        for name in args.only or CANDIDATES:
            say(f"{CANDIDATES[name].label} …")
            rows.append(measure(name, workload, Path(scratch), postgres is not None))
            say(f"  skipped: {rows[-1].skipped}" if rows[-1].skipped else f"  {rows[-1].line()}")
    say("\n" + table(rows, workload) + "\n" + machine(postgres))
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.queue_alternatives",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 keys instead of 2,000")
    parser.add_argument("--keys", type=int, help="number of business keys")
    parser.add_argument("--only", nargs="+", choices=list(CANDIDATES), help="run these candidates only")
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(main())
