"""`python -m benchmarks [--quick] [--only PHASE] [--skip PHASE …] [--sqlite-only] [--no-write]`.

A full run of every phase rewrites docs/BENCHMARKS.md below its marker; a quick or partial
run only prints, so the document always shows one complete, full-size run."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import (
    baseline,
    databases,
    intake,
    machine,
    memory,
    provisioning,
    reconcile,
    report,
    throttling,
    transports,
    tryton,
    twins,
)
from benchmarks.progress import say
from benchmarks.sandbox import BenchmarkFailed, Twins, running_twins

PHASES = ("twins", "intake", "provisioning", "baseline", "throttling", "memory", "tryton", "reconcile")
DOCUMENT = Path("docs/BENCHMARKS.md")


@dataclass(frozen=True)
class Sizes:
    upserts: int        # NetSuite PUTs against the bare twin
    collections: int    # Salesforce sObject Collections calls …
    records: int        # … of this many records each
    patches: int        # single Salesforce PATCHes
    transport_calls: int  # NetSuite PUTs per HTTP client compared
    events: int         # CloudEvents posted to intake one a request, per database …
    batched_events: int  # … and in batches of 100 (runs of seconds: shorter ones are noise)
    bare_rows: int      # rows the bare SQLite loop commits
    deals: int          # deals per provisioning run
    sqlite_workers: tuple[int, ...]    # worker processes of each SQLite provisioning run
    postgres_workers: tuple[int, ...]  # … and of each PostgreSQL run
    baseline_deals: int
    tryton_deals: int   # deals provisioned and invoiced through the Tryton connector
    contracts: int      # contracts in the reconciliation snapshot
    memory_events: int  # events through serve + one worker for memory and linearity
    throttle_seconds: float  # a steady or settled span of the throttling runs


FULL = Sizes(upserts=3000, collections=300, records=200, patches=3000,
             transport_calls=2000, events=20_000, batched_events=60_000,
             bare_rows=10_000, deals=2000, sqlite_workers=(1, 2), postgres_workers=(1, 2, 4),
             baseline_deals=500, tryton_deals=20, contracts=1_000_000, memory_events=1_000_000,
             throttle_seconds=4.0)
QUICK = Sizes(upserts=100, collections=10, records=20, patches=100, transport_calls=50,
              events=100, batched_events=400, bare_rows=200,
              deals=20, sqlite_workers=(1,), postgres_workers=(1,), baseline_deals=20,
              tryton_deals=2, contracts=10_000, memory_events=2_000,
              throttle_seconds=1.0)


@dataclass
class Bench:
    """What every phase gets: sizes, a scratch directory, the twins, where results go."""

    sizes: Sizes
    scratch: Path
    postgres: bool
    twins: Twins | None
    results: report.Results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    phases = [args.only] if args.only else [p for p in PHASES if p not in args.skip]
    postgres = None if args.sqlite_only else databases.postgres_version()
    results = report.Results()
    if postgres is None:
        results.notes.append("PostgreSQL variants skipped: " + (
            "--sqlite-only" if args.sqlite_only else f"no server at {safe(databases.ADMIN_URL)}"))
        say(results.notes[-1])
    results.load_at_start = warn_if_busy()
    started = time.monotonic()
    try:
        run_phases(phases, QUICK if args.quick else FULL, postgres is not None, results)
    except BenchmarkFailed as exc:
        say(f"\nFAILED, figures void: {exc}")
        return 1
    say(f"\nSummary ({time.monotonic() - started:.0f} s)\n\n{report.summary(results)}")
    if args.write and not (args.quick or args.only or args.skip or args.sqlite_only):
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        report.write(DOCUMENT, report.document(results, machine.describe(postgres), "make bench", when))
        say(f"Written to {DOCUMENT}")
    return 0


def run_phases(phases: list[str], sizes: Sizes, postgres: bool, results: report.Results) -> None:
    with tempfile.TemporaryDirectory(prefix="handoff-bench-") as scratch, ExitStack() as stack:
        twins_needed = set(phases) - {"intake", "throttling", "tryton", "reconcile"}
        sandbox = stack.enter_context(running_twins(Path(scratch) / "tls")) if twins_needed else None
        bench = Bench(sizes, Path(scratch), postgres, sandbox, results)
        for phase in phases:
            say(f"\n{phase} …")
            phase_started = time.monotonic()
            RUNNERS[phase](bench)
            say(f"  ({phase} took {time.monotonic() - phase_started:.0f} s)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every phase")
    parser.add_argument("--only", choices=PHASES, help="run one phase")
    parser.add_argument("--skip", choices=PHASES, action="append", default=[],
                        help="leave this phase out (repeat for more)")
    parser.add_argument("--sqlite-only", action="store_true", help="skip the PostgreSQL variants")
    parser.add_argument("--no-write", dest="write", action="store_false",
                        help=f"print only; leave {DOCUMENT} as it is")
    return parser.parse_args(argv)


def warn_if_busy() -> float:
    """The load average before the run: other work on the machine takes cores from it."""
    load = os.getloadavg()[0]
    if load > 0.5:
        say(f"Note: the machine is already busy (load average {load:.1f}); figures will be lower.")
    return load


def run_twins(bench: Bench) -> None:
    assert bench.twins is not None
    s = bench.sizes
    bench.results.twins = twins.measure_twins(bench.twins, s.upserts, s.collections, s.records,
                                              s.patches)
    say("  HTTP clients compared on NetSuite PUTs, one thread")
    bench.results.transports = transports.compare_transports(bench.twins[1], s.transport_calls)


def run_intake(bench: Bench) -> None:
    events, in_batches, rows = bench.sizes.events, bench.sizes.batched_events, bench.sizes.bare_rows
    runs = [intake.measure_intake("SQLite", databases.sqlite_url(bench.scratch, "intake"), events)]
    batched = [intake.measure_batched_intake("SQLite", databases.sqlite_url(bench.scratch, "batched"),
                                             in_batches)]
    bare = [intake.bare_sqlite_inserts(bench.scratch, rows)]
    if bench.postgres:
        with databases.throwaway_postgres() as url:
            runs.append(intake.measure_intake("PostgreSQL", url, events))
            bare.append(intake.bare_postgres_inserts(url, rows))
        with databases.throwaway_postgres() as url:
            batched.append(intake.measure_batched_intake("PostgreSQL", url, in_batches))
    bench.results.intake, bench.results.bare_storage = runs, bare
    bench.results.batched_intake = batched


def run_provisioning(bench: Bench) -> None:
    assert bench.twins is not None
    s = bench.sizes
    bench.results.provisioning, bench.results.start_up = provisioning.measure_provisioning(
        bench.twins, bench.scratch, s.deals, s.sqlite_workers,
        s.postgres_workers if bench.postgres else ())


def run_baseline(bench: Bench) -> None:
    assert bench.twins is not None
    bench.results.baseline = baseline.compare(bench.twins, bench.scratch, bench.sizes.baseline_deals)


def run_throttling(bench: Bench) -> None:
    bench.results.throttling = throttling.measure_throttling(bench.scratch / "throttling-tls",
                                                             bench.sizes.throttle_seconds)


def run_memory(bench: Bench) -> None:
    assert bench.twins is not None
    bench.results.memory = memory.measure_memory(bench.twins, bench.scratch / "memory",
                                                 bench.sizes.memory_events)


def run_tryton(bench: Bench) -> None:
    backends = ["sqlite", "postgresql"] if bench.postgres else ["sqlite"]
    bench.results.tryton = tryton.measure_tryton(backends, bench.sizes.tryton_deals)


def run_reconcile(bench: Bench) -> None:
    bench.results.reconcile = reconcile.measure_reconcile(bench.sizes.contracts)


RUNNERS: dict[str, Callable[[Bench], None]] = {
    "twins": run_twins, "intake": run_intake, "provisioning": run_provisioning,
    "baseline": run_baseline, "throttling": run_throttling, "memory": run_memory,
    "tryton": run_tryton, "reconcile": run_reconcile,
}


def safe(url: str) -> str:
    """A database URL without its password, fit to print."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    sys.exit(main())
