"""Workers: claim keys, run their controller, and act on the outcome.

Many threads per process, many processes per host, many hosts: the queue's leases keep
one worker per key, and controllers are idempotent, so any of them may die at any time.

A batch controller (write-back) gets many keys in one call. Each worker keeps at most one
batch per controller in flight, so while a batch is out the next one fills up: under load
batches grow, when idle a single key goes out at once (group commit).

Schedules are the polling half of hybrid sync: a job run every so often that enqueues keys
whose systems send no events (invoices paid in the ERP), or reads what changed in a system
into the inbox (the CRM poll). Every worker runs them; enqueueing and intake are idempotent,
so two workers polling at once cost a query, not a duplicate. A job that meets a failing
system or database is logged and runs again at its next turn.

Leases are renewed while a worker holds its keys (claimed, waiting or being reconciled), so
a slow target system — an ERP taking seconds to post an invoice — never lets a second worker
take a key the first is still working on. Only a worker that stops renewing (dead, or stalled
for a whole lease) loses its keys.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from queue import Empty, SimpleQueue
from typing import Protocol, TypeVar

from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from handoff.engine import queue
from handoff.engine.changes import Changes
from handoff.engine.clock import utcnow
from handoff.engine.keys import deal_of
from handoff.engine.queue import Claim
from handoff.engine.retry import Action, Decision, RetryPolicy
from handoff.engine.settler import Settlement, Settler
from handoff.errors import HandoffError, TransientError
from handoff.observability import Lifecycle, lifecycle, span
from handoff.store.db import Database
from handoff.store.provisioning import correlation_ids

log = logging.getLogger("handoff.worker")
Outcomes = dict[str, BaseException | None]
CORRELATIONS_KEPT = 4096  # remembered correlation ids, beyond those of the keys held
T = TypeVar("T")


class Controller(Protocol):
    """Brings one key's systems in line; writes go into `changes`, committed with the
    key's outcome."""

    prefix: str

    def reconcile(self, key: str, attempt: int, changes: Changes) -> None: ...
    def gave_up(self, key: str, action: Action, error: BaseException, attempt: int,
                changes: Changes) -> None: ...


class BatchController(Protocol):
    """Brings many keys in line with one call; returns each key's outcome (None: done)."""

    prefix: str
    batch_size: int

    def reconcile_batch(self, claims: Sequence[Claim], changes: Changes) -> Outcomes: ...
    def gave_up(self, key: str, action: Action, error: BaseException, attempt: int,
                changes: Changes) -> None: ...


AnyController = Controller | BatchController


@dataclass(frozen=True)
class Schedule:
    """`job(db, now)` enqueues or takes in what needs a look and returns how many changes;
    run when the worker starts and every `every` after. The job opens its own transactions,
    so it may call other systems between them (see `in_transaction` for one that does not)."""

    name: str
    every: timedelta
    job: Callable[[Database, datetime], int]


def in_transaction(job: Callable[[Connection, datetime], int]) -> Callable[[Database, datetime], int]:
    """A job that only reads and writes handoff's own tables, all in one transaction."""
    def run(db: Database, now: datetime) -> int:
        with db.transaction() as conn:
            return job(conn, now)
    return run


class Worker:
    def __init__(self, db: Database, controllers: Sequence[AnyController], retry: RetryPolicy, *,
                 concurrency: int = 8, lease: timedelta = timedelta(seconds=60),
                 poll_seconds: float = 0.05, clock: Callable[[], datetime] = utcnow,
                 owner: str | None = None, schedules: Sequence[Schedule] = ()) -> None:
        self.db, self.retry, self.clock = db, retry, clock
        self.controllers = {c.prefix: c for c in controllers}
        self.concurrency, self.lease, self.poll = concurrency, lease, poll_seconds
        self.owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
        self.rng = random.Random()
        self._settler = Settler(db, self.owner, clock)
        self._held: set[str] = set()  # keys claimed and not yet settled or released
        self._correlations: dict[str, str] = {}  # deal -> its correlation id (never changes)
        self._held_lock = threading.Lock()
        self._schedules = list(schedules)
        self._next_run: dict[str, datetime] = {}

    def run(self, stop: threading.Event | None = None, until_idle: bool = False) -> None:
        """Work until `stop` is set, or (until_idle) until the queue holds nothing at all."""
        stop = stop or threading.Event()
        backlog: deque[Claim] = deque()  # claimed keys waiting for a thread
        with self._settler, self._renewing_leases(), \
                ThreadPoolExecutor(self.concurrency, thread_name_prefix=self.owner) as pool:
            tasks = _Tasks(pool)
            while not stop.is_set():
                self._run_due_schedules()
                if len(backlog) < self.concurrency:
                    wanted = 2 * self.concurrency - len(backlog)
                    backlog.extend(self._prepared(self._claim(tasks, wanted)))
                while backlog and len(tasks.inflight) < self.concurrency:
                    tasks.submit(self.process, backlog.popleft())
                if tasks.inflight:
                    for future in tasks.finished(self.poll):
                        if future.exception():  # could not even record the outcome
                            log.error("settling failed; the lease will return the keys",
                                      exc_info=future.exception())
                elif until_idle and self._queue_empty():
                    break
                else:
                    stop.wait(self._idle_wait())
            wait(tasks.inflight)
        self._release(backlog)

    def _run_due_schedules(self) -> None:
        now = self.clock()
        for schedule in self._schedules:
            if self._next_run.get(schedule.name, now) <= now:
                self._next_run[schedule.name] = now + schedule.every
                self._run_schedule(schedule, now)

    def _run_schedule(self, schedule: Schedule, now: datetime) -> None:
        try:
            changed = schedule.job(self.db, now)
        except (HandoffError, OperationalError):  # a system or the database is unwell
            log.warning("%s failed; next run in %s", schedule.name, schedule.every, exc_info=True)
            return
        if changed:
            log.info("%s: %d change(s)", schedule.name, changed)

    @contextmanager
    def _renewing_leases(self) -> Iterator[None]:
        """A heartbeat thread renews every held lease each third of a lease."""
        stopped = threading.Event()
        interval = max(0.2, self.lease.total_seconds() / 3)

        def beat() -> None:
            while not stopped.wait(interval):
                with self._held_lock:
                    keys = sorted(self._held)
                try:
                    with self.db.transaction() as conn:
                        queue.extend(conn, keys, self.owner, self.clock() + self.lease)
                except Exception:  # the next beat tries again; a lost lease is survivable
                    log.warning("could not renew %d lease(s)", len(keys), exc_info=True)

        heart = threading.Thread(target=beat, name=f"{self.owner}-leases", daemon=True)
        heart.start()
        try:
            yield
        finally:
            stopped.set()
            heart.join()

    def _hold(self, claims: Sequence[Claim]) -> None:
        with self._held_lock:
            self._held.update(c.key for c in claims)

    def _let_go(self, claims: Sequence[Claim]) -> None:
        with self._held_lock:
            self._held.difference_update(c.key for c in claims)

    def _lifecycle(self, claim: Claim) -> AbstractContextManager[Lifecycle]:
        """While a key is worked on, its log lines, spans and outbound calls name its deal."""
        deal = deal_of(claim.key)
        return lifecycle(self._correlations.get(deal) if deal else None, deal)

    def process(self, claim: Claim) -> None:
        prefix = _prefix(claim.key)
        controller = self.controllers[prefix]
        changes = Changes()
        with self._lifecycle(claim), span(f"reconcile {prefix.rstrip(':')}", {
                "handoff.key": claim.key, "handoff.attempt": claim.attempts + 1}) as step:
            try:
                controller.reconcile(claim.key, claim.attempts + 1, changes)  # type: ignore[union-attr]
                outcomes: Outcomes = {claim.key: None}
            except Exception as exc:  # every failure gets a decision; none escapes the worker
                outcomes = {claim.key: exc}
                step.set_attribute("handoff.error", f"{type(exc).__name__}: {exc}")
            self._settle([claim], outcomes, controller, changes)

    def process_batch(self, claims: Sequence[Claim]) -> None:
        """A batch of one key is worked in its deal's lifecycle; a batch of many deals in
        none (each outbound call then starts a trace of its own), its span linked to every
        deal's trace, and each key's outcome logged in its own lifecycle."""
        prefix = _prefix(claims[0].key)
        controller = self.controllers[prefix]
        changes = Changes()
        one = claims[0] if len(claims) == 1 else None
        deals = [deal_of(claim.key) for claim in claims]
        correlations = [c for c in (self._correlations.get(d) for d in deals if d) if c]
        with self._lifecycle(one) if one else lifecycle(None), span(
                f"reconcile {prefix.rstrip(':')}", {"handoff.keys": len(claims)},
                links=correlations if one is None else ()):
            try:
                outcomes = controller.reconcile_batch(claims, changes)  # type: ignore[union-attr]
            except Exception as exc:  # the whole call failed: every key shares the error
                outcomes = {claim.key: exc for claim in claims}
            self._settle(claims, outcomes, controller, changes)

    def _settle(self, claims: Sequence[Claim], outcomes: Outcomes, controller: AnyController,
                changes: Changes) -> None:
        """Decide each key's next step; the settler commits it with what was learned."""
        settlement = Settlement(changes)
        now = self.clock()
        for claim in claims:
            with self._lifecycle(claim):
                decision, error = self._decide(claim, outcomes.get(claim.key), controller, changes)
                _log_outcome(claim, decision, error)
            if decision is None:
                settlement.finished.append(claim)
            elif decision.action is Action.RETRY:
                due = now + timedelta(seconds=decision.delay)
                settlement.retries.append((claim, due, str(error)))
            else:
                settlement.finished.append(claim)
                settlement.given_up.append((claim, decision.action.value, error))
        self._settler.submit(settlement)
        self._let_go(claims)

    def _decide(self, claim: Claim, error: BaseException | None, controller: AnyController,
                changes: Changes) -> tuple[Decision | None, BaseException | None]:
        if error is None:
            return None, None
        error, attempt = _classify(error), claim.attempts + 1
        decision = self.retry.decide(error, attempt, self.rng)
        if decision.action is not Action.RETRY:
            log.warning("%s %s after %d attempt(s): %s", decision.action, claim.key, attempt,
                        error, exc_info=error if not isinstance(error, HandoffError) else None)
            controller.gave_up(claim.key, decision.action, error, attempt, changes)
        return decision, error

    def _claim(self, tasks: _Tasks, wanted: int) -> list[Claim]:
        """One transaction: a batch for each idle batch controller (submitted at once: one
        thread serves many keys), and up to `wanted` single keys for the backlog."""
        singles: list[Claim] = []
        batches: list[tuple[str, list[Claim]]] = []
        busy = tasks.busy()
        now = self.clock()
        with self.db.transaction() as conn:
            for prefix, controller in self.controllers.items():
                size = getattr(controller, "batch_size", None)
                if not size:
                    if wanted > len(singles):  # a full backlog needs no query
                        singles += queue.claim(conn, self.owner, wanted - len(singles), now,
                                               self.lease, prefix)
                elif prefix not in busy:
                    batch = queue.claim(conn, self.owner, size, now, self.lease, prefix)
                    if batch:
                        batches.append((prefix, batch))
            self._remember_correlations(conn, [*singles, *(c for _, batch in batches for c in batch)])
        for prefix, batch in batches:
            self._hold(batch)
            tasks.submit(self.process_batch, batch, prefix)
        self._hold(singles)
        return singles

    def _remember_correlations(self, conn: Connection, claims: Sequence[Claim]) -> None:
        """The correlation id of each claimed key's deal, read in the claim's transaction
        unless already known (a deal's never changes)."""
        deals = {deal for deal in map(deal_of, (claim.key for claim in claims)) if deal}
        if len(self._correlations) + len(deals) > CORRELATIONS_KEPT:  # keep those of held keys
            with self._held_lock:
                held = {deal_of(key) for key in self._held}
            self._correlations = {d: c for d, c in self._correlations.items()
                                  if d in held or d in deals}
        unknown = sorted(deals.difference(self._correlations))
        if unknown:
            self._correlations.update(correlation_ids(conn, unknown))

    def _prepared(self, claims: list[Claim]) -> list[Claim]:
        """Let controllers that can read many keys at once do so (one query, not one each)."""
        for prefix, controller in self.controllers.items():
            prepare = getattr(controller, "prepare", None)
            keys = [c.key for c in claims if c.key.startswith(prefix)]
            if prepare and keys:
                prepare(keys)
        return claims

    def _release(self, claims: Sequence[Claim]) -> None:
        """Hand back keys claimed but not started, so another worker need not wait out the lease."""
        if claims:
            with self.db.transaction() as conn:
                queue.release(conn, claims, self.owner)
            self._let_go(claims)

    def _queue_empty(self) -> bool:
        with self.db.reading() as conn:
            return queue.depth(conn) == 0

    def _idle_wait(self) -> float:
        with self.db.reading() as conn:
            due = queue.next_due(conn)
        if due is None:
            return min(0.5, self.poll * 4)
        return max(self.poll, min(0.5, (due - self.clock()).total_seconds()))


class _Tasks:
    """What the pool is working on (a batch task with its controller's prefix), and what it
    finished: each task puts itself on one queue when done, so a wake-up costs one get, not
    a waiter installed on every task in flight."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self.pool = pool
        self.inflight: dict[Future[None], str | None] = {}
        self._finished: SimpleQueue[Future[None]] = SimpleQueue()

    def submit(self, work: Callable[[T], None], item: T, prefix: str | None = None) -> None:
        future = self.pool.submit(work, item)
        self.inflight[future] = prefix
        future.add_done_callback(self._finished.put)

    def busy(self) -> set[str]:
        """Prefixes of the batch controllers with a batch in flight."""
        return {prefix for prefix in self.inflight.values() if prefix}

    def finished(self, timeout: float) -> list[Future[None]]:
        """Tasks done since last asked, waiting up to `timeout` for the first."""
        try:
            done = [self._finished.get(timeout=timeout)]
        except Empty:
            return []
        while not self._finished.empty():
            done.append(self._finished.get())
        for future in done:
            del self.inflight[future]
        return done


def _log_outcome(claim: Claim, decision: Decision | None, error: BaseException | None) -> None:
    """One line per key worked (shown with -v); a key given up on is logged by _decide."""
    if not log.isEnabledFor(logging.INFO):
        return
    attempt = claim.attempts + 1
    if decision is None:
        log.info("%s reconciled (attempt %d)", claim.key, attempt,
                 extra={"key": claim.key, "attempt": attempt, "outcome": "ok"})
    elif decision.action is Action.RETRY:
        log.info("%s: attempt %d failed, retry in %.1f s: %s", claim.key, attempt, decision.delay,
                 error, extra={"key": claim.key, "attempt": attempt, "outcome": "retry"})


def _prefix(key: str) -> str:
    return key.split(":", 1)[0] + ":"


def _classify(exc: BaseException) -> BaseException:
    """A locked or unreachable database is transient; anything else stays what it is."""
    if isinstance(exc, OperationalError):
        return TransientError(f"database: {exc.orig}")
    return exc
