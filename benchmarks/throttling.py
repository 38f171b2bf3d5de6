"""Throttling: the real connectors, paced by their adaptive limiter, against twins that enforce
a vendor's limit in their own processes — how much of the limit handoff uses, how many calls
are answered 429, and how the limiter adapts when the twin lowers its limit mid-run.

- NetSuite: customer upserts from 32 threads (two workers' worth) against a twin that admits 15
  requests in flight (NetSuite's standard tier) and holds each 50 ms, so that concurrency
  bounds the run (real NetSuite calls take hundreds of ms; the shorter the hold, the more the
  client's and the twin's own turnaround between two calls shows as unused budget); the
  connector's budget is NetSuite's published 15. Mid-run the twin lowers its cap to 5, as
  another integration taking 10 of the account's 15 would.
- HubSpot: deal write-backs (one PATCH each) from 16 threads against the twin's rolling
  window. HubSpot's 190 per 10 s is played as 190 per 1 s (the same calls a window, so the
  limiter takes the same steps, in a window ten times shorter) so that a phase takes seconds;
  the connector's budget is configured to match (`[systems.hubspot.budget] requests = 190,
  window_seconds = 1`). Mid-run: 100 per 1 s.

Utilisation is what the twin admitted over what it allows, averaged over the span's time:
NetSuite's mean requests in flight (the time admitted requests spent in flight, from the twin)
÷ its cap; HubSpot's mean fill of the sliding window (each admitted call counts for the part of
the window after its answer that falls in the span) ÷ its limit, which a count of calls per
span would miss by up to a burst at either end. Every phase is one continuous run: the spans
follow one another without a pause (so the span just after a drop still sees, in HubSpot's
window and NetSuite's flight, calls admitted under the old limit).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.progress import say
from benchmarks.sandbox import NETSUITE_TOKEN, BenchmarkFailed
from handoff.connectors.hubspot.client import HubSpotConnector
from handoff.connectors.hubspot.settings import HubSpotSettings
from handoff.connectors.hubspot.twin import SANDBOX_TOKEN as HUBSPOT_TOKEN
from handoff.connectors.netsuite import NetSuiteConnector, NetSuiteSettings
from handoff.connectors.ports import CrmStatusUpdate
from handoff.connectors.twin_process import TwinProcess
from handoff.domain import Customer, ProvisioningStatus
from handoff.errors import HandoffError, ThrottledError, TransientError

NETSUITE_THREADS, NETSUITE_CAP, NETSUITE_LOWERED, HOLD_MS = 32, 15, 5, 50
HUBSPOT_THREADS, HUBSPOT_LIMIT, HUBSPOT_LOWERED, HUBSPOT_WINDOW = 16, 190, 100, 1.0
ADMITTED, THROTTLED, FAILED = "admitted", "throttled", "failed"


@dataclass(frozen=True)
class ThrottleRun:
    system: str       # "NetSuite" or "HubSpot"
    phase: str        # "steady", "just after the drop", "settled after the drop"
    limit: str        # what the twin enforced meanwhile, e.g. "15 in flight", "190 per 1 s"
    calls: int        # calls the connector made that were answered in the span
    throttled: int    # of them answered 429
    failed: int       # of them with no usable answer (a dropped keep-alive connection, a 5xx)
    seconds: float
    used: float       # mean requests in flight (NetSuite), or mean fill of the window (HubSpot)
    allowed: float    # the twin's limit, in the same unit

    @property
    def throttled_percent(self) -> float:
        return 100 * self.throttled / self.calls if self.calls else 0.0

    @property
    def utilisation_percent(self) -> float:
        return 100 * self.used / self.allowed


def measure_throttling(tls_dir: Path, seconds: float = 4.0) -> list[ThrottleRun]:
    """Both systems, each a steady span then a drop of the twin's limit; `seconds` is the
    length of a steady or settled span (the HubSpot ones are three times as long: its window
    is a second, and the limiter moves once a window)."""
    with ExitStack() as stack:
        ns = stack.enter_context(TwinProcess("netsuite", tls_dir))
        hs = stack.enter_context(TwinProcess("hubspot", tls_dir))
        return [*netsuite_runs(ns, seconds), *hubspot_runs(hs, 3 * seconds)]


def netsuite_runs(ns: TwinProcess, seconds: float) -> list[ThrottleRun]:
    control(ns, "POST", "/_twin/reset")
    control(ns, "PUT", "/_twin/settings", max_concurrency=NETSUITE_CAP, hold_ms=HOLD_MS)
    say(f"  NetSuite: upserts from {NETSUITE_THREADS} threads, twin cap {NETSUITE_CAP} in flight, "
        f"{HOLD_MS} ms each; then {NETSUITE_LOWERED}")
    erp = NetSuiteConnector(NetSuiteSettings(f"{ns.base_url}/services/rest", NETSUITE_TOKEN))
    with erp, calls_back_to_back(upserts(erp), NETSUITE_THREADS) as drive:
        time.sleep(0.2)  # connections opened
        runs = [netsuite_span(ns, drive, "steady", NETSUITE_CAP, seconds)]
        control(ns, "PUT", "/_twin/settings", max_concurrency=NETSUITE_LOWERED)
        runs += [netsuite_span(ns, drive, "just after the drop", NETSUITE_LOWERED, seconds / 4),
                 netsuite_span(ns, drive, "settled after the drop", NETSUITE_LOWERED, seconds)]
    return runs


def netsuite_span(ns: TwinProcess, drive: Drive, phase: str, cap: int, seconds: float) -> ThrottleRun:
    busy, started = control(ns, "GET", "/_twin/concurrency")["busy_seconds"], time.monotonic()
    time.sleep(seconds)
    busy = control(ns, "GET", "/_twin/concurrency")["busy_seconds"] - busy
    ended = time.monotonic()
    calls, throttled, failed = drive.between(started, ended)
    return reported(ThrottleRun("NetSuite", phase, f"{cap} in flight", calls, throttled, failed,
                                ended - started, busy / (ended - started), cap))


def hubspot_runs(hs: TwinProcess, seconds: float) -> list[ThrottleRun]:
    control(hs, "POST", "/_twin/reset")
    deals = seed_deals(hs, HUBSPOT_THREADS)
    control(hs, "PUT", "/_twin/settings", burst_limit=HUBSPOT_LIMIT,
            burst_window_seconds=HUBSPOT_WINDOW)
    time.sleep(HUBSPOT_WINDOW)  # the seeding's calls leave the twin's window
    say(f"  HubSpot: write-backs from {HUBSPOT_THREADS} threads, twin {HUBSPOT_LIMIT} per "
        f"{HUBSPOT_WINDOW:g} s; then {HUBSPOT_LOWERED}")
    crm = hubspot(hs, {"requests": HUBSPOT_LIMIT, "window_seconds": HUBSPOT_WINDOW})
    with crm, calls_back_to_back(write_backs(crm, deals), HUBSPOT_THREADS) as drive:
        runs = [hubspot_span(drive, "steady", HUBSPOT_LIMIT, seconds)]
        control(hs, "PUT", "/_twin/settings", burst_limit=HUBSPOT_LOWERED)
        runs += [hubspot_span(drive, "just after the drop", HUBSPOT_LOWERED, seconds / 3),
                 hubspot_span(drive, "settled after the drop", HUBSPOT_LOWERED, seconds)]
    return runs


def hubspot_span(drive: Drive, phase: str, limit: int, seconds: float) -> ThrottleRun:
    started = time.monotonic()
    time.sleep(seconds)
    ended = time.monotonic()
    calls, throttled, failed = drive.between(started, ended)
    fill = drive.window_fill(started, ended, HUBSPOT_WINDOW)
    return reported(ThrottleRun("HubSpot", phase, f"{limit} per {HUBSPOT_WINDOW:g} s", calls,
                                throttled, failed, ended - started, fill, limit))


def reported(run: ThrottleRun) -> ThrottleRun:
    failed = f", {run.failed} failed" if run.failed else ""
    say(f"    {run.phase}: {run.calls} calls in {run.seconds:.1f} s, {run.throttled_percent:.1f} % "
        f"answered 429{failed}, {run.used:.1f} of {run.allowed:g} used ({run.utilisation_percent:.0f} %)")
    return run


# --- the load ------------------------------------------------------------------------------

class Drive:
    """What the threads did: when each call was answered, and how: ADMITTED, THROTTLED (429)
    or FAILED (transient, no usable answer). When it was answered, not when the thread asked:
    a thread may wait in the limiter for windows."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []  # list.append is atomic: shared by threads
        self.failures: list[HandoffError] = []    # what no benchmark run may see
        self.stop = threading.Event()

    def between(self, started: float, ended: float) -> tuple[int, int, int]:
        """Calls answered in [started, ended); of them, how many throttled and how many failed."""
        spanned = [outcome for at, outcome in list(self.calls) if started <= at < ended]
        return len(spanned), spanned.count(THROTTLED), spanned.count(FAILED)

    def window_fill(self, started: float, ended: float, window: float) -> float:
        """The calls admitted in a sliding window of `window` seconds, averaged over
        [started, ended): each counts from its answer for `window` seconds."""
        admitted = [at for at, outcome in list(self.calls) if outcome == ADMITTED]
        counted = sum(max(0.0, min(at + window, ended) - max(at, started)) for at in admitted)
        return counted / (ended - started)


@contextmanager
def calls_back_to_back(call: Callable[[int], None], threads: int) -> Iterator[Drive]:
    """`threads` threads making `call(n)` one after another until the block ends; a 429 or a
    transient failure is counted and the thread goes on (the limiter decides when its next
    call starts); any other error voids the run."""
    drive = Drive()

    def work(thread: int) -> None:
        n = thread
        while not drive.stop.is_set():
            try:
                call(n)
                drive.calls.append((time.monotonic(), ADMITTED))
            except ThrottledError:
                drive.calls.append((time.monotonic(), THROTTLED))
            except TransientError:  # the engine would retry it, as the thread goes on
                drive.calls.append((time.monotonic(), FAILED))
            except HandoffError as exc:
                drive.failures.append(exc)
                return
            n += threads

    workers = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(threads)]
    for worker in workers:
        worker.start()
    try:
        yield drive
    finally:
        drive.stop.set()
        for worker in workers:
            worker.join(timeout=30)
    if drive.failures:
        raise BenchmarkFailed(f"{len(drive.failures)} calls failed, first: {drive.failures[0]}")


def upserts(erp: NetSuiteConnector) -> Callable[[int], None]:
    customer = Customer(id="001BENCH", name="Bench customer", currency="USD")

    def upsert(n: int) -> None:
        erp.upsert_customer(f"HO-C-BENCH{n % 500}", customer)
    return upsert


def write_backs(crm: HubSpotConnector, deals: list[str]) -> Callable[[int], None]:
    def write_back(n: int) -> None:
        deal = deals[n % len(deals)]
        crm.write_back(CrmStatusUpdate(deal, ProvisioningStatus.PROVISIONED, f"write {n}", f"PRJ-{n}"))
    return write_back


def seed_deals(hs: TwinProcess, count: int) -> list[str]:
    """`count` deals to write back to, made before the twin's window is set."""
    with hubspot(hs, {"requests": 100_000}) as seeder:
        return [seeder.create_opportunity({"dealname": f"Bench deal {n}", "amount": "1000"})
                for n in range(count)]


def hubspot(hs: TwinProcess, budget: dict[str, Any]) -> HubSpotConnector:
    return HubSpotConnector(HubSpotSettings(access_token=HUBSPOT_TOKEN, base_url=hs.base_url,
                                            won_stages=("closedwon",), budget=budget))


def control(twin: TwinProcess, method: str, path: str, **body: Any) -> Any:
    with twin.control() as client:
        response = client.request(method, path, json=body if method == "PUT" else None)
        response.raise_for_status()
        return response.json() if response.content else None
