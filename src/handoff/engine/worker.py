"""Workers: claim keys, run their controller, and act on the outcome.

Many threads per process, many processes per host, many hosts: the queue's leases keep
one worker per key, and controllers are idempotent, so any of them may die at any time.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy.exc import OperationalError

from handoff.engine import queue
from handoff.engine.clock import utcnow
from handoff.engine.exceptions import open_exception
from handoff.engine.queue import Claim
from handoff.engine.retry import Action, RetryPolicy
from handoff.errors import HandoffError, TransientError
from handoff.store.db import Database
from handoff.store.sql import bump

log = logging.getLogger("handoff.worker")


class Controller(Protocol):
    def reconcile(self, key: str, attempt: int) -> None: ...
    def gave_up(self, key: str, action: Action, error: BaseException, attempt: int) -> None: ...


class Worker:
    def __init__(self, db: Database, controllers: dict[str, Controller], retry: RetryPolicy, *,
                 concurrency: int = 8, lease: timedelta = timedelta(seconds=60),
                 poll_seconds: float = 0.05, clock: Callable[[], datetime] = utcnow,
                 owner: str | None = None) -> None:
        self.db, self.controllers, self.retry = db, controllers, retry
        self.concurrency, self.lease, self.poll, self.clock = concurrency, lease, poll_seconds, clock
        self.owner = owner or f"worker-{uuid.uuid4().hex[:12]}"
        self.rng = random.Random()

    def run(self, stop: threading.Event | None = None, until_idle: bool = False) -> None:
        """Work until `stop` is set, or (until_idle) until the queue holds nothing at all."""
        stop = stop or threading.Event()
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix=self.owner) as pool:
            inflight: set[Future[None]] = set()
            while not stop.is_set():
                free = self.concurrency - len(inflight)
                for claim in self._claim(free) if free else []:
                    inflight.add(pool.submit(self.process, claim))
                if inflight:
                    _, inflight = wait(inflight, timeout=self.poll, return_when=FIRST_COMPLETED)
                elif until_idle and self._queue_empty():
                    break
                else:
                    stop.wait(self._idle_wait())
            wait(inflight)

    def process(self, claim: Claim) -> None:
        controller = self._controller(claim.key)
        attempt = claim.attempts + 1
        try:
            controller.reconcile(claim.key, attempt)
        except Exception as exc:  # every failure gets a decision; none escapes the worker
            self._failed(claim, controller, _classify(exc), attempt)
            return
        with self.db.transaction() as conn:
            queue.complete(conn, claim, self.owner)
            bump(conn, "reconciled")

    def _failed(self, claim: Claim, controller: Controller, error: BaseException,
                attempt: int) -> None:
        decision = self.retry.decide(error, attempt, self.rng)
        now = self.clock()
        if decision.action is Action.RETRY:
            with self.db.transaction() as conn:
                due = now + timedelta(seconds=decision.delay)
                queue.retry_later(conn, claim, self.owner, due, str(error))
                bump(conn, "retries")
            return
        log.warning("%s %s after %d attempt(s): %s", decision.action, claim.key, attempt, error,
                    exc_info=error if not isinstance(error, HandoffError) else None)
        controller.gave_up(claim.key, decision.action, error, attempt)
        with self.db.transaction() as conn:
            open_exception(conn, claim.key, decision.action.value, error, attempt, now)
            queue.complete(conn, claim, self.owner)
            bump(conn, decision.action.value)

    def _controller(self, key: str) -> Controller:
        prefix = key.split(":", 1)[0]
        try:
            return self.controllers[prefix]
        except KeyError:
            raise LookupError(f"no controller for key {key!r}") from None

    def _claim(self, limit: int) -> list[Claim]:
        with self.db.transaction() as conn:
            return queue.claim(conn, self.owner, limit, self.clock(), self.lease)

    def _queue_empty(self) -> bool:
        with self.db.reading() as conn:
            return queue.depth(conn) == 0

    def _idle_wait(self) -> float:
        with self.db.reading() as conn:
            due = queue.next_due(conn)
        if due is None:
            return min(0.5, self.poll * 4)
        return max(self.poll, min(0.5, (due - self.clock()).total_seconds()))


def _classify(exc: Exception) -> BaseException:
    """A locked or unreachable database is transient; anything else stays what it is."""
    if isinstance(exc, OperationalError):
        return TransientError(f"database: {exc.orig}")
    return exc
