"""`python -m benchmarks [--quick] [--only PHASE] [--sqlite-only] [--no-write]`.

A full run of every phase rewrites docs/BENCHMARKS.md below its marker; a quick or partial
run only prints, so the document always shows one complete, full-size run."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import baseline, databases, intake, machine, provisioning, report, twins
from benchmarks.progress import say

PHASES = ("twins", "intake", "provisioning", "baseline")
DOCUMENT = Path("docs/BENCHMARKS.md")


@dataclass(frozen=True)
class Sizes:
    upserts: int        # NetSuite PUTs against the bare twin
    collections: int    # Salesforce sObject Collections calls of 200 records
    patches: int        # single Salesforce PATCHes
    events: int         # CloudEvents posted to intake, per database
    bare_rows: int      # rows the bare SQLite loop commits
    deals: int          # deals per provisioning run
    baseline_deals: int


FULL = Sizes(upserts=4000, collections=300, patches=4000, events=4000, bare_rows=20000,
             deals=1000, baseline_deals=500)
QUICK = Sizes(upserts=200, collections=10, patches=200, events=200, bare_rows=500,
              deals=20, baseline_deals=20)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    postgres = None if args.sqlite_only else databases.postgres_version()
    started, results = time.monotonic(), report.Results()
    if postgres is None:
        results.notes.append("PostgreSQL variants skipped: " + (
            "--sqlite-only" if args.sqlite_only else f"no server at {safe(databases.ADMIN_URL)}"))
        say(results.notes[-1])
    with tempfile.TemporaryDirectory(prefix="handoff-bench-") as scratch:
        for phase in [args.only] if args.only else PHASES:
            say(f"\n{phase} …")
            RUNNERS[phase](results, sizes, Path(scratch), postgres is not None)
    say(f"\nSummary ({time.monotonic() - started:.0f} s)\n\n{report.summary(results)}")
    if args.write and not args.quick and not args.only and not args.sqlite_only:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        report.write(DOCUMENT, report.document(results, machine.describe(postgres),
                                               "make bench", when))
        say(f"Written to {DOCUMENT}")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of every phase")
    parser.add_argument("--only", choices=PHASES, help="run one phase")
    parser.add_argument("--sqlite-only", action="store_true", help="skip the PostgreSQL variants")
    parser.add_argument("--no-write", dest="write", action="store_false",
                        help=f"print only; leave {DOCUMENT} as it is")
    return parser.parse_args(argv)


def run_twins(results: report.Results, sizes: Sizes, scratch: Path, postgres: bool) -> None:
    results.twins = twins.measure_twins(scratch / "tls", sizes.upserts, sizes.collections,
                                        sizes.patches)


def run_intake(results: report.Results, sizes: Sizes, scratch: Path, postgres: bool) -> None:
    results.intake = [intake.measure_intake("SQLite", databases.sqlite_url(scratch, "intake"),
                                            sizes.events)]
    if postgres:
        with databases.throwaway_postgres() as url:
            results.intake.append(intake.measure_intake("PostgreSQL", url, sizes.events))
    results.bare_storage = intake.bare_sqlite_inserts(scratch, sizes.bare_rows)


def run_provisioning(results: report.Results, sizes: Sizes, scratch: Path, postgres: bool) -> None:
    results.provisioning, results.start_up = provisioning.measure_provisioning(
        scratch, sizes.deals, postgres)


def run_baseline(results: report.Results, sizes: Sizes, scratch: Path, postgres: bool) -> None:
    results.baseline = baseline.compare(scratch, sizes.baseline_deals)


RUNNERS = {"twins": run_twins, "intake": run_intake, "provisioning": run_provisioning,
           "baseline": run_baseline}


def safe(url: str) -> str:
    """A database URL without its password, fit to print."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


if __name__ == "__main__":
    sys.exit(main())
