"""The figures as Markdown: printed as the summary of a run and written below the marker of
docs/BENCHMARKS.md, whose hand-written text above the marker is kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.baseline import COPIES, Side
from benchmarks.intake import BareStorage, BatchedRun, IntakeRun
from benchmarks.load import THREADS
from benchmarks.machine import Machine
from benchmarks.memory import MARKS, MemoryRun
from benchmarks.provisioning import ProvisioningRun, StartUp
from benchmarks.reconcile import ReconcileRun
from benchmarks.targets import verdicts
from benchmarks.throttling import ThrottleRun
from benchmarks.transports import TransportRun
from benchmarks.tryton import TrytonRun
from benchmarks.twins import CallCapacity, netsuite_put_rate

MARKER = "<!-- figures below are written by make bench -->"
INTRO = f"""# Benchmarks

What handoff does per second on one small machine, what bounds it, and what a plain webhook
script does with the same deliveries. Run `make bench` (about eight minutes on two cores)
to measure again; it rewrites everything below the marker and keeps this text.

{MARKER}
"""


@dataclass
class Results:
    twins: list[CallCapacity] | None = None
    transports: list[TransportRun] | None = None
    intake: list[IntakeRun] | None = None
    batched_intake: list[BatchedRun] | None = None
    bare_storage: list[BareStorage] | None = None
    provisioning: list[ProvisioningRun] | None = None
    start_up: StartUp | None = None
    baseline: list[Side] | None = None
    throttling: list[ThrottleRun] | None = None
    memory: MemoryRun | None = None
    tryton: list[TrytonRun] | None = None
    reconcile: ReconcileRun | None = None
    notes: list[str] = field(default_factory=list)
    load_at_start: float = 0.0  # 1-minute load average before the first phase


def write(path: Path, figures: str) -> None:
    """Replace what follows the marker; everything above it stays as it was."""
    text = path.read_text() if path.exists() else INTRO
    head = text.split(MARKER, 1)[0] if MARKER in text else text.rstrip() + "\n\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{head}{MARKER}\n\n{figures}")


def document(results: Results, machine: Machine, command: str, when: str) -> str:
    started = f"Measured {when} with `{command}`; load average before the run {results.load_at_start:.2f}."
    return "\n".join([started, "", machine_section(machine),
                      summary(results, explain=True)])


def summary(results: Results, explain: bool = False) -> str:
    sections = [
        (results.twins, twins_section), (results.transports, transports_section),
        (results.intake, intake_section),
        (results.provisioning, provisioning_section), (results.baseline, baseline_section),
        (results.throttling, throttling_section), (results.memory, memory_section),
        (results.tryton, tryton_section), (results.reconcile, reconcile_section),
    ]
    parts = [targets_section(results, explain)]
    parts += [render(results, explain) for measured, render in sections if measured is not None]
    notes = "".join(f"- {note}\n" for note in results.notes)
    return "\n".join(parts) + (f"\n{notes}" if notes else "")


def targets_section(results: Results, explain: bool) -> str:
    about = """Each target of the performance work beside what this run measured. Where one is not met,
its section below says where the time goes.
"""
    rows = [[v.target, v.measured, "met" if v.met else "not met"] for v in verdicts(results)]
    return section("Targets", about, explain, table(["target", "measured", ""], rows))


def machine_section(m: Machine) -> str:
    return "## Machine\n\n" + table(
        ["cores", "CPU", "memory", "system", "Python", "SQLite", "PostgreSQL"],
        [[str(m.cores), m.cpu_model, f"{m.memory_gib:.1f} GiB", m.system, m.python, m.sqlite,
          m.postgres]])


def twins_section(results: Results, explain: bool) -> str:
    about = f"""A plain client ({THREADS} threads, each with a keep-alive connection of handoff's own
HTTP client, which sends a request in one write as handoff's connectors do) makes the calls
handoff makes, with nothing of handoff in between. *Twin CPU* is the twin process's user +
system time per call (from `/proc`); each twin is one process on one event loop, so
*one-core capacity* = 1 ÷ that CPU is the most it could serve. *Cores busy* show whether the
twin or the load generator (Python threads: one core at most) was the limit; with a generator
at a fraction of a core, the twin's calls/s are its bare rate.
"""
    rows = [[c.twin, f"`{c.call}`", str(c.records), num(c.load.rate), num(c.load.rate * c.records),
             f"{c.twin_cpu_ms_per_call:.2f}", num_or_dash(c.one_core_capacity),
             f"{c.twin_cpu / c.load.seconds:.2f}", f"{c.load.generator_cores:.2f}"]
            for c in results.twins or []]
    return section("Twins' bare capacity", about, explain, table(
        ["twin", "call", "records/call", "calls/s", "records/s", "twin CPU ms/call",
         "one-core capacity calls/s", "twin cores busy", "generator cores busy"], rows))


def transports_section(results: Results, explain: bool) -> str:
    about = """The HTTP client decides a worker's CPU per NetSuite call. Each client makes the same
PUT upserts against the NetSuite twin from one thread over one keep-alive connection; *client
CPU* is this process's user + system time per call. The NetSuite connector uses the cheapest.
"""
    rows = [[f"`{r.client}`", str(r.calls), f"{r.cpu_us_per_call:.0f}", num(r.rate)]
            for r in results.transports or []]
    return section("HTTP clients compared", about, explain, table(
        ["client", "PUTs", "client CPU µs/call", "calls/s (one thread)"], rows))


def intake_section(results: Results, explain: bool) -> str:
    about = f"""`handoff serve` in its own process on a fresh database; {THREADS} threads (handoff's own
keep-alive client, so that the generator is not the limit) post unique
`handoff.opportunity.changed` CloudEvents (structured mode); each 202 means the event, its
canonical state and its queue entry are committed. Concurrent requests are committed together
(group commit: one writer thread, one transaction for every request waiting); *events a
commit* says how many shared one. Latency is per request at the client. *Of bare storage* is
events/s ÷ the bare loop's rows/s on the same database (below). Targets on SQLite: 5,000
events/s with p99 ≤ 20 ms one by one, 30,000 events/s in batches of 100.
"""
    bare = {b.database.split(" ")[0]: b.rate for b in results.bare_storage or []}
    rows = [[r.database, str(r.load.calls), num(r.load.rate), f"{r.load.latency_ms(50):.1f}",
             f"{r.load.latency_ms(99):.1f}", f"{r.events_per_commit:.1f}",
             share(r.load.rate, bare.get(r.database)),
             f"{r.server_cpu_ms_per_event:.2f}", f"{r.server_cpu / r.load.seconds:.2f}",
             f"{r.load.generator_cores:.2f}"]
            for r in results.intake or []]
    text = table(["database", "events", "events/s", "p50 ms", "p99 ms", "events a commit",
                  "of bare storage", "serve CPU ms/event", "serve cores busy", "generator cores busy"],
                 rows)
    if results.batched_intake:
        text += ("\nBatched content mode (`application/cloudevents-batch+json`, 100 events an "
                 "array, each deduplicated and answered on its own; stored set-based, a few "
                 "statements a batch whatever its size, concurrent batches sharing a commit):\n\n")
        text += table(["database", "events", "events/s", "p50 ms a batch", "p99 ms a batch",
                       "of bare storage", "serve CPU µs/event"],
                      [[b.database, str(b.events), num(b.rate), f"{b.load.latency_ms(50):.1f}",
                        f"{b.load.latency_ms(99):.1f}", share(b.rate, bare.get(b.database)),
                        f"{1e6 * b.server_cpu / b.events:.0f}"] for b in results.batched_intake])
    if results.bare_storage:
        text += "\nBare storage for comparison, a plain loop of one INSERT per transaction:\n\n"
        text += table(["database", "rows", "rows/s"], [[b.database, str(b.rows), num(b.rate)]
                                                       for b in results.bare_storage])
    return section("Intake", about, explain, text)


def share(rate: float, of: float | None) -> str:
    return f"{100 * rate / of:.0f} %" if of else "—"


def throttling_section(results: Results, explain: bool) -> str:
    about = """The real NetSuite and HubSpot connectors, paced by their adaptive limiter, against twins
in their own processes that enforce a vendor's limit. NetSuite: 32 threads upsert customers
against a twin that admits 15 requests in flight and holds each 50 ms; *used* is the twin's
mean requests in flight. HubSpot: 16 threads write deals back against the twin's rolling
window, played as 190 per 1 s instead of 190 per 10 s so that a phase takes seconds; *used* is
the window's time-averaged fill. With the budget equal to the limit no call should be
answered 429. Mid-run each twin lowers its limit (15 → 5 in flight, 190 → 100 a second), as
another integration sharing the account would, unseen by handoff. The limiter learns the new
limit from the 429s: it halves once per round trip, honours the wait it is given, and wins
the limit back step by step, dwelling just under the level that was refused (for a window,
the calls it admitted just before refusing one). *Just after the
drop* counts the refusals while it learns (its utilisation still includes calls admitted
under the old limit); *settled* shows what it keeps of the new limit and how often probing it
draws a 429. Targets: ≥ 95 % of the budget, ≤ 1 % of calls answered 429.
"""
    runs = results.throttling or []
    rows = [[r.system, r.phase, r.limit, f"{r.calls:,}", str(r.throttled), f"{r.throttled_percent:.1f} %",
             f"{r.used:.1f} of {r.allowed:g}",
             "—" if r.phase == "just after the drop" else f"{r.utilisation_percent:.0f} %"] for r in runs]
    text = table(["system", "phase", "twin's limit", "calls", "answered 429", "429 share",
                  "used of the limit", "utilisation"], rows)
    failed = sum(r.failed for r in runs)
    if failed:
        text += f"\n{failed} call(s) got no usable answer (a dropped connection or a 5xx) and are left out.\n"
    return section("Throttling to a budget", about, explain, text)


def memory_section(results: Results, explain: bool) -> str:
    about = f"""`handoff serve` takes N CloudEvents in batches of 100 from {THREADS} threads while one
`handoff worker` runs. Most events are new versions of N/10 open deals, which the worker looks
at and leaves alone; one in a thousand is a won deal provisioned against the twins, exactly
once. Resident memory (VmRSS from /proc, children included) is sampled every second. *Events/s
1 k→10 k …* is the intake rate while the store grew across each decade, so equal figures mean
an event costs the same in a large store as in a small one. The server is then restarted with
a few seconds' retention while more events arrive: *retention removed* is the inbox rows it
archived and deleted, *s* the time until every event of the first stretch was gone. The
PostgreSQL server's own memory is not included. Target: serve + worker under 300 MB through
1,000,000 events.
"""
    m = results.memory
    assert m is not None
    decades = [num(m.rates[mark]) if mark in m.rates else "—" for mark in MARKS]
    held = " / ".join(f"{m.rss_at_marks[mark]:.0f}" if mark in m.rss_at_marks else "—" for mark in MARKS)
    text = table(["database", "events", "events/s", "events/s 1 k→10 k", "10 k→100 k", "100 k→1 M",
                  "peak RSS serve MiB", "worker MiB", "together MiB", "together at 10 k / 100 k / 1 M",
                  "retention removed", "s", "archived MiB"],
                 [[m.database, f"{m.events:,}", num(m.rate), *decades, f"{m.peak_serve_mib:.0f}",
                   f"{m.peak_worker_mib:.0f}", f"{m.peak_total_mib:.0f}", held, f"{m.pruned:,}",
                   f"{m.prune_seconds:.1f}", f"{m.archive_mib:.1f}"]])
    return section("Memory and linearity", about, explain, text)


def provisioning_section(results: Results, explain: bool) -> str:
    about = """Won, releasable deals (no faults injected) are already in the inbox; K `handoff worker
--until-idle` processes (16 threads each) run until the queue is empty. *Deals/s* is deals ÷
*work s*, the time from the first reconcile's start to the last one's end in the lineage
(approved → provisioned and written back, and for the mixed runs the fixed fees invoiced
and that written back too); *wall s* is from the workers' start to the last
exit, start-up included. Afterwards NetSuite must hold exactly one customer and
one project per deal and every CRM deal its project id, or the run fails. *Calls/deal* count
the requests each twin served. *Ceiling* = the NetSuite twin's bare rate for PUT above
(calls/s, the twin the limit) ÷ NetSuite calls per deal. *CPU ms/deal* shows where the
cores went: handoff's workers, each twin, the PostgreSQL server (all its processes), and
the whole machine (everything running on it, so a busy machine shows here; compare the
load average above).
"""
    put_rate = netsuite_put_rate(results.twins)
    rows = [provisioning_row(run, put_rate) for run in results.provisioning or []]
    text = table(["database", "workers", "billing", "deals", "wall s", "work s", "deals/s",
                  "NetSuite calls/deal", "Salesforce calls/deal", "ceiling deals/s", "% of ceiling",
                  "CPU ms/deal: workers", "NetSuite twin", "Salesforce twin", "PostgreSQL",
                  "whole machine"], rows)
    if results.start_up:
        text += (f"\nA worker that finds nothing to do starts and exits in "
                 f"{results.start_up.seconds:.2f} s, using {results.start_up.cpu:.2f} s CPU; "
                 "each run's wall time includes that once per worker.\n")
    return section("Provisioning", about, explain, text)


def provisioning_row(run: ProvisioningRun, put_rate: float | None) -> list[str]:
    ceiling = put_rate / run.calls_per_deal("netsuite") if put_rate else None
    return [run.database, str(run.workers), run.billing, str(run.deals), f"{run.seconds:.1f}",
            f"{run.working:.1f}",
            f"{run.rate:.1f}",
            f"{run.calls_per_deal('netsuite'):.2f}", f"{run.calls_per_deal('salesforce'):.3f}",
            num_or_dash(ceiling), f"{100 * run.rate / ceiling:.0f} %" if ceiling else "—",
            *(f"{ms:.1f}" if (ms := run.cpu_ms_per_deal(part)) is not None else "—"
              for part in ("workers", "netsuite", "salesforce", "postgres", "machine"))]


def baseline_section(results: Results, explain: bool) -> str:
    about = f"""The same won deals, each change delivered {COPIES} times and shuffled, as an at-least-once
source sends them. The webhook script does what a typical workflow recipe does: for every
opportunity delivery it POSTs a customer and a project to NetSuite ({THREADS} deliveries at a
time, handed to it directly: no HTTP intake). handoff takes every delivery (customer changes
too) through `POST /events` on `handoff serve` ({THREADS} at a time) with one worker (SQLite),
timed until every deal is provisioned and written back. Duplicate projects = projects − deals.
"""
    rows = [[s.name, str(s.deals), str(s.deliveries), f"{s.seconds:.1f}", f"{s.rate:.1f}",
             str(s.projects), str(s.duplicate_projects), str(s.customers)]
            for s in results.baseline or []]
    return section("Baseline: a webhook script beside handoff", about, explain, table(
        ["", "deals", "deliveries", "seconds", "deals/s", "NetSuite projects",
         "duplicate projects", "NetSuite customers"], rows))


def tryton_section(results: Results, explain: bool) -> str:
    about = """The Tryton connector against a real Tryton 8.2 (the sandbox, started from its cached
database), one call at a time: *provisioning* is one deal's customer and project, each looked
up by its external id before it is created; *invoice + post* is one milestone made billable,
invoiced by the project's Invoice button, given its reference and posted, then read back.
The slowest JSON-RPC methods show that Tryton's own work dominates.
"""
    rows = [[r.backend, str(r.deals), f"{r.median_ms(r.provision):.0f}",
             f"{r.median_ms(r.invoice):.0f}",
             ", ".join(f"`{m.removeprefix('model.')}` {1000 * s:.0f}" for m, s in r.slowest_methods())]
            for r in results.tryton or []]
    return section("Tryton through the connector", about, explain, table(
        ["backend", "deals", "provisioning ms (median)", "invoice + post ms (median)",
         "slowest methods, ms per deal"], rows))


def reconcile_section(results: Results, explain: bool) -> str:
    about = """Three-way reconciliation (CRM, ERP project, billing) of one snapshot in DuckDB. The
contracts are generated in three Parquet files, 1 % of them with one planted discrepancy each,
the eight classes in turn; a fresh child process then loads and reconciles the snapshot:
*seconds* and *peak memory* (its peak resident set, DuckDB's own memory included) are that
process's. Every planted discrepancy must be found with its class and nothing else, or the run
fails. Target for 1,000,000 contracts: under 10 s and 2 GiB.
"""
    run = results.reconcile
    assert run is not None
    text = table(["contracts", "planted", "found", "missed", "not planted", "generate + save s",
                  "reconcile s", "peak memory MiB"],
                 [[num(run.contracts), num(run.planted), num(run.found), str(run.missed),
                   str(run.unexpected), f"{run.generate_seconds:.1f}", f"{run.seconds:.2f}",
                   num(run.peak_mib)]])
    text += "\nFound per class: " + ", ".join(f"{kind} {n:,}" for kind, n in run.counts.items()) + ".\n"
    return section("Reconciliation", about, explain, text)


def section(title: str, about: str, explain: bool, body: str) -> str:
    return f"## {title}\n\n" + (about + "\n" if explain else "") + body


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [headers, ["---"] * len(headers), *rows]
    return "".join("| " + " | ".join(line) + " |\n" for line in lines)


def num(value: float) -> str:
    return f"{value:,.0f}"


def num_or_dash(value: float | None) -> str:
    return "—" if value is None else num(value)
