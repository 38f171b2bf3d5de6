"""Memory and linearity: `handoff serve` takes N CloudEvents in the batched content mode (100
an array, from 16 threads) while one `handoff worker` reconciles them; the resident memory of
both (children included) is read from /proc every second.

Most events are versions of the same open deals (N / 10 of them, about ten versions each;
never won, so the worker looks at each, records its decision once and finds nothing to do).
One deal in a thousand events is won: seeded in the Salesforce twin, its account and
opportunity events spread through the run, provisioned in the NetSuite twin and checked for
exactly one customer and one project at the end.

Two stretches, one `handoff serve` each, the same worker throughout:
1. growth, retention off: N events into an empty store; the intake rate over each decade of
   the store (1 k–10 k, 10 k–100 k, 100 k–1 M events held) shows whether the cost of an event
   grows with the store; then the worker empties the queue;
2. retention: serve again with `[retention] inbox_days` of RETENTION_SECONDS, `every = "2s"`
   and an archive directory, while N / 20 more events come in; done when every event of the
   growth stretch has been archived and removed.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from benchmarks.databases import sqlite_url
from benchmarks.intake import BATCH, client_of, serving
from benchmarks.load import THREADS, expect, hammer
from benchmarks.progress import say, ticking
from benchmarks.provisioning import worker_env
from benchmarks.rss import RssSampler
from benchmarks.sandbox import BenchmarkFailed, Twins, check_exactly_once, reset, seed_won_deals
from handoff.demo.processes import HandoffProcess
from handoff.engine.cloudevents import change_event
from handoff.engine.payloads import OPPORTUNITY_CHANGED
from handoff.store.db import open_database
from handoff.store.retention import PRUNED_EVENTS
from handoff.store.sql import read_counters
from handoff.store.tables import inbox_events, reconcile_queue

MARKS = (10_000, 100_000, 1_000_000)
EVENTS_PER_BATCH = 100
RETENTION_SECONDS = 5.0
PRUNE_EVERY = "2s"
DRAIN_TIMEOUT = 1800.0
PRUNE_TIMEOUT = 1800.0
VERSION_ZERO = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class MemoryRun:
    database: str
    events: int               # posted while the store grew, retention off
    open_deals: int
    won_deals: int
    growth_seconds: float     # first batch posted → last one answered
    rates: dict[int, float]   # mark → events/s while the store grew from mark / 10 to mark
    drain_seconds: float      # last event answered → the queue empty
    tail_events: int          # posted while retention pruned
    pruned: int               # inbox rows `handoff serve` removed (archived first)
    prune_seconds: float      # retention stretch: serve started → every growth event removed
    archive_mib: float        # the compressed JSON Lines they went to
    peak_serve_mib: float     # over both stretches, children included
    peak_worker_mib: float
    peak_total_mib: float     # serve and worker at the same sample
    rss_at_marks: dict[int, float]  # serve + worker MiB when the store held each mark
    samples: int

    @property
    def rate(self) -> float:
        return self.events / self.growth_seconds

    @property
    def retention_ran(self) -> bool:
        return self.pruned > 0

    @property
    def prune_rate(self) -> float:
        return self.pruned / self.prune_seconds


class Feed:
    """The batches, by number: versions of open deals, with the won deals' batches spread
    evenly among them. Built when posted, so a million events never sit in memory."""

    def __init__(self, events: int, open_deals: int, won: Sequence[bytes], won_events: int) -> None:
        self.open_deals, self.won = open_deals, won
        self.open_events = events - won_events
        open_batches = -(-self.open_events // EVENTS_PER_BATCH)
        total = open_batches + len(won)
        won_at = {(n * total) // len(won): n for n in range(len(won))}
        self.order: list[tuple[str, int]] = []  # ("won", n) or ("open", n): batch n of its kind
        opened = 0
        for i in range(total):
            if i in won_at:
                self.order.append(("won", won_at[i]))
            else:
                self.order.append(("open", opened))
                opened += 1
        self.sizes = [self._size(kind, n, won_events) for kind, n in self.order]

    def _size(self, kind: str, n: int, won_events: int) -> int:
        if kind == "won":
            return min(EVENTS_PER_BATCH, won_events - n * EVENTS_PER_BATCH)
        return min(EVENTS_PER_BATCH, self.open_events - n * EVENTS_PER_BATCH)

    def body(self, i: int) -> bytes:
        kind, n = self.order[i]
        if kind == "won":
            return self.won[n]
        start = n * EVENTS_PER_BATCH
        return open_batch(range(start, start + self.sizes[i]), self.open_deals)

    def tail(self, events: int) -> list[range]:
        """More versions of the open deals, after the growth stretch's."""
        end = self.open_events + events
        return [range(k, min(k + EVENTS_PER_BATCH, end))
                for k in range(self.open_events, end, EVENTS_PER_BATCH)]


def open_batch(numbers: range, open_deals: int) -> bytes:
    return orjson.dumps([open_deal_event(k, open_deals) for k in numbers])


def open_deal_event(k: int, open_deals: int) -> dict[str, Any]:
    """Version k // open_deals of open deal k % open_deals: its amount moves, its stage not."""
    deal, version = k % open_deals, k // open_deals
    stamp = (VERSION_ZERO + timedelta(seconds=version)).strftime("%Y-%m-%dT%H:%M:%SZ")
    data = {"id": f"006{deal:012d}OPN", "name": f"Open deal {deal}", "account_id": f"001{deal:012d}OPN",
            "stage": "Proposal/Price Quote", "is_won": False, "amount": f"{50_000 + version}.00",
            "currency": "USD", "close_date": "2026-12-18", "billing_method": "fixed_fee",
            "contract_status": "draft", "sow_status": "draft", "legal_entity": "US01",
            "owner": None, "description": None, "version": stamp}
    return change_event(OPPORTUNITY_CHANGED, data, "/crm/salesforce", VERSION_ZERO)


def measure_memory(twins: Twins, workdir: Path, events: int, database: str = "SQLite",
                   database_url: str | None = None, marks: Sequence[int] = MARKS) -> MemoryRun:
    sf, ns = twins
    reset(sf, ns)
    url = database_url or sqlite_url(workdir, "memory")
    open_database(url).dispose()  # migrated before either process starts
    won_deals, open_deals = max(2, events // 1000), max(1, events // 10)
    won = seed_won_deals(sf, won_deals, random.Random(events), copies=1)
    won_bodies = [orjson.dumps(won[i:i + EVENTS_PER_BATCH]) for i in range(0, len(won), EVENTS_PER_BATCH)]
    feed = Feed(events, open_deals, won_bodies, len(won))
    env = worker_env(twins, url, workdir)
    say(f"  {database}: {events:,} events ({open_deals:,} open deals, {won_deals:,} won) to `handoff "
        f"serve` in batches of {EVENTS_PER_BATCH} from {THREADS} threads, one `handoff worker`")
    with RssSampler() as rss, HandoffProcess(["worker"], env) as worker:
        assert worker.process is not None
        rss.watch("worker", worker.process.pid)
        answered = _grow(feed, env, rss)
        drain = _drain(url)
        check_exactly_once(sf, ns, won_deals)
        tail = max(EVENTS_PER_BATCH, events // 20)
        pruned, prune_seconds, archive = _retain(feed, tail, env, rss, url, workdir)
    growth = answered[-1][0] - answered[0][0]  # answered[0]: when the first batch went
    run = MemoryRun(database, events, open_deals, won_deals, growth, _rates(answered, marks), drain,
                    tail, pruned, prune_seconds, archive, rss.peaks.get("serve", 0.0),
                    rss.peaks.get("worker", 0.0), rss.peak_total, _rss_at(answered, marks, rss),
                    len(rss.history))
    rates = "".join(f", {rate:,.0f}/s at {mark:,} held" for mark, rate in run.rates.items())
    say(f"    {run.rate:,.0f} events/s overall{rates}; queue drained in {drain:.1f} s; peak RSS serve "
        f"{run.peak_serve_mib:.0f} MiB, worker {run.peak_worker_mib:.0f} MiB, together "
        f"{run.peak_total_mib:.0f} MiB; retention removed {pruned:,} events in {prune_seconds:.1f} s "
        f"({archive:.1f} MiB archived)")
    return run


def _grow(feed: Feed, env: dict[str, str], rss: RssSampler) -> list[tuple[float, int]]:
    """Every batch posted; (when answered, events held then), in the order answered."""
    done: list[tuple[float, int]] = []

    def post(http: httpx.Client, i: int) -> None:
        expect(http.post("/events", content=feed.body(i), headers=BATCH), 200)
        done.append((time.perf_counter(), feed.sizes[i]))

    def progress() -> str:
        held = sum(size for _, size in list(done))
        return f"    {held:,} of {sum(feed.sizes):,} events stored, RSS {rss.latest():.0f} MiB"

    with serving({**env, "HANDOFF_RETENTION_EVERY": "0"}) as (pid, url), ticking(progress):
        rss.watch("serve", pid)
        started = time.perf_counter()
        hammer(post, len(feed.order), client_of(url))
    held, answered = 0, [(started, 0)]
    for moment, size in sorted(done):
        held += size
        answered.append((moment, held))
    return answered


def _rates(answered: list[tuple[float, int]], marks: Sequence[int]) -> dict[int, float]:
    """Events/s over each decade of the store the run reached: from mark / 10 to mark held."""
    rates = {}
    for mark in (m for m in marks if m <= answered[-1][1]):
        start = next(p for p in answered if p[1] >= mark // 10)
        end = next(p for p in answered if p[1] >= mark)
        if end[0] > start[0]:
            rates[mark] = (end[1] - start[1]) / (end[0] - start[0])
    return rates


def _rss_at(answered: list[tuple[float, int]], marks: Sequence[int], rss: RssSampler) -> dict[int, float]:
    found = {}
    for mark in (m for m in marks if m <= answered[-1][1]):
        mib = rss.at(next(moment for moment, held in answered if held >= mark))
        if mib is not None:
            found[mark] = mib
    return found


def _drain(url: str) -> float:
    started, depth = time.perf_counter(), 0
    with ticking(lambda: f"    the worker has {depth:,} keys queued"):
        while (depth := _scalar(url, sa.select(sa.func.count()).select_from(reconcile_queue))) > 0:
            if time.perf_counter() - started > DRAIN_TIMEOUT:
                raise BenchmarkFailed(f"the worker left {depth} keys queued after {DRAIN_TIMEOUT:.0f} s")
            time.sleep(0.5)
    return time.perf_counter() - started


def _retain(feed: Feed, tail: int, env: dict[str, str], rss: RssSampler, url: str,
            workdir: Path) -> tuple[int, float, float]:
    """Serve with a short retention while a tail of events comes in, until every event of the
    growth stretch is gone: rows removed, seconds, MiB archived."""
    last_grown = _scalar(url, sa.select(sa.func.max(inbox_events.c.seq)))
    archive = workdir / "memory-archive"
    shutil.rmtree(archive, ignore_errors=True)
    short = {"HANDOFF_RETENTION_INBOX_DAYS": f"{RETENTION_SECONDS / 86400:.12f}",
             "HANDOFF_RETENTION_EVERY": PRUNE_EVERY, "HANDOFF_RETENTION_ARCHIVE_DIR": str(archive)}
    started = time.perf_counter()
    with serving({**env, **short}) as (pid, service):
        rss.watch("serve", pid)
        batches = feed.tail(tail)
        hammer(lambda http, i: expect(http.post("/events", content=open_batch(batches[i], feed.open_deals),
                                                headers=BATCH), 200), len(batches), client_of(service))
        _until_pruned(url, last_grown, started)
        seconds = time.perf_counter() - started
    pruned = sum(n for name, n in _counters(url).items() if name.startswith(PRUNED_EVENTS))
    size = sum(f.stat().st_size for f in archive.rglob("*.jsonl.gz")) / 2**20
    return pruned, seconds, size


def _until_pruned(url: str, last_grown: int, started: float) -> None:
    def progress() -> str:
        left = _scalar(url, sa.select(sa.func.count()).where(inbox_events.c.seq <= last_grown))
        return f"    retention: {left:,} of the growth stretch's {last_grown:,} events left"

    with ticking(progress):
        while (oldest := _scalar(url, sa.select(sa.func.min(inbox_events.c.seq)))) is not None \
                and oldest <= last_grown:
            if time.perf_counter() - started > PRUNE_TIMEOUT:
                raise BenchmarkFailed(f"retention left events of the growth stretch after "
                                      f"{PRUNE_TIMEOUT:.0f} s")
            time.sleep(0.5)


def _scalar(url: str, query: sa.Select[Any]) -> Any:
    with _reading(url) as conn:
        return conn.execute(query).scalar_one()


def _counters(url: str) -> dict[str, int]:
    with _reading(url) as conn:
        return read_counters(conn)


@contextmanager
def _reading(url: str) -> Iterator[Connection]:
    """A read-only look at the benchmark's database, opened and closed each time."""
    db = open_database(url, migrate=False)
    try:
        with db.reading() as conn:
            yield conn
    finally:
        db.dispose()


def main() -> None:
    """`python -m benchmarks.memory [EVENTS]`: this phase alone, on SQLite (default 1,000,000)."""
    import sys
    import tempfile

    from benchmarks.sandbox import running_twins

    events = int(sys.argv[1]) if len(sys.argv) > 1 else MARKS[-1]
    with tempfile.TemporaryDirectory(prefix="handoff-memory-") as scratch, \
            running_twins(Path(scratch) / "tls") as twins:
        print(measure_memory(twins, Path(scratch), events))


if __name__ == "__main__":
    main()
