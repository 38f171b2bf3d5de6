"""The issue's targets beside what a run measured: one row each, met or not. A row whose
figures the run did not produce (a phase left out) is left out too."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from benchmarks.twins import netsuite_put_rate

if TYPE_CHECKING:
    from benchmarks.report import Results


@dataclass(frozen=True)
class Verdict:
    target: str
    measured: str
    met: bool


def verdicts(results: Results) -> list[Verdict]:
    return [verdict for judge in JUDGES for verdict in judge(results)]


def intake(results: Results) -> Iterator[Verdict]:
    run = next((r for r in results.intake or [] if r.database == "SQLite"), None)
    batched = next((b for b in results.batched_intake or [] if b.database == "SQLite"), None)
    if run is None or batched is None:
        return
    rate, p99 = run.load.rate, run.load.latency_ms(99)
    yield Verdict("intake one by one, SQLite, 16 clients: ≥ 5,000 events/s, p99 ≤ 20 ms",
                  f"{rate:,.0f} events/s, p99 {p99:.1f} ms", rate >= 5000 and p99 <= 20)
    yield Verdict("intake in batches of 100, SQLite: ≥ 30,000 events/s", f"{batched.rate:,.0f} events/s",
                  batched.rate >= 30_000)


def provisioning(results: Results) -> Iterator[Verdict]:
    put_rate = netsuite_put_rate(results.twins)
    run = next((r for r in results.provisioning or []
                if r.database == "SQLite" and r.workers == 1 and r.billing == "provisioning only"), None)
    if put_rate is None or run is None:
        return
    share = run.rate / (put_rate / run.calls_per_deal("netsuite"))
    yield Verdict("approved → provisioned, SQLite, one worker: ≥ 70 % of the twins' ceiling",
                  f"{run.rate:,.0f} deals/s, {100 * share:.0f} % of the ceiling", share >= 0.7)


def baseline(results: Results) -> Iterator[Verdict]:
    sides = {s.name: s for s in results.baseline or []}
    if "handoff" not in sides:
        return
    ours = sides["handoff"]
    others = [s for name, s in sides.items() if name != "handoff"]
    yield Verdict("no duplicate project where a webhook script makes them",
                  f"handoff {ours.duplicate_projects}, webhook script "
                  f"{', '.join(str(s.duplicate_projects) for s in others)}",
                  ours.duplicate_projects == 0)


def throttling(results: Results) -> Iterator[Verdict]:
    runs = [r for r in results.throttling or [] if r.phase != "just after the drop"]
    if not runs:
        return
    lowest = min(runs, key=lambda r: r.utilisation_percent)
    calls, refused = sum(r.calls for r in runs), sum(r.throttled for r in runs)
    yield Verdict("throttled to a budget: ≥ 95 % of it used, steady and settled after a drop",
                  f"lowest {lowest.utilisation_percent:.0f} % ({lowest.system}, {lowest.phase})",
                  lowest.utilisation_percent >= 95)
    yield Verdict("≤ 1 % of calls answered 429, steady and settled after a drop",
                  f"{100 * refused / calls:.1f} % of {calls:,} calls", refused <= calls / 100)


def memory(results: Results) -> Iterator[Verdict]:
    m = results.memory
    if m is None:
        return
    yield Verdict(f"serve + one worker under 300 MB through {m.events:,} events",
                  f"peak {m.peak_total_mib:.0f} MiB ({m.peak_total_mib * 1.048576:.0f} MB)",
                  m.peak_total_mib * 1.048576 < 300)
    rates = [m.rates[mark] for mark in sorted(m.rates)]
    yield Verdict("cost linear in the store: events/s the same at 10 k, 100 k and 1 M held",
                  " / ".join(f"{rate:,.0f}" for rate in rates) + " events/s",
                  len(rates) >= 2 and min(rates) >= 0.8 * max(rates))


JUDGES: tuple[Callable[[Results], Iterator[Verdict]], ...] = (intake, provisioning, baseline, throttling,
                                                               memory)
