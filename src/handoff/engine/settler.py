"""Group commit of outcomes. Every worker thread hands its key's settlement (what the
controller learned, and whether the key is done, retried later or given up) to one settler
thread, which commits whatever has arrived in one transaction. Under load a transaction
carries dozens of keys; when idle, one. A crash loses only settlements not yet committed:
their keys are still leased, come back when the lease ends, and are reconciled again —
idempotently."""

from __future__ import annotations

import logging
import queue as threads_queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from handoff.engine import queue
from handoff.engine.changes import Changes
from handoff.engine.exceptions import open_exception
from handoff.engine.queue import Claim
from handoff.store.db import Database
from handoff.store.sql import bump

log = logging.getLogger("handoff.worker")
_STOP = object()


@dataclass
class Settlement:
    changes: Changes = field(default_factory=Changes)
    finished: list[Claim] = field(default_factory=list)
    retries: list[tuple[Claim, datetime, str]] = field(default_factory=list)
    given_up: list[tuple[Claim, str, BaseException]] = field(default_factory=list)


class Settler:
    def __init__(self, db: Database, owner: str, clock: Callable[[], datetime],
                 max_batch: int = 256) -> None:
        self.db, self.owner, self.clock, self.max_batch = db, owner, clock, max_batch
        self._inbox: threads_queue.SimpleQueue[object] = threads_queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Settler:
        self._thread = threading.Thread(target=self._run, name=f"{self.owner}-settler",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Commit everything handed over so far, then stop."""
        self._inbox.put(_STOP)
        if self._thread:
            self._thread.join()

    def submit(self, settlement: Settlement) -> None:
        self._inbox.put(settlement)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._inbox.get()]
            while len(batch) < self.max_batch and not self._inbox.empty():
                batch.append(self._inbox.get())
            stopping = _STOP in batch
            settlements = [s for s in batch if isinstance(s, Settlement)]
            if settlements:
                self._commit_safely(settlements)

    def _commit_safely(self, settlements: list[Settlement]) -> None:
        try:
            self._commit(settlements)
        except Exception:  # nothing to hand it to: the leases bring these keys back
            log.exception("could not record %d outcome(s); their keys return when the "
                          "leases end", len(settlements))

    def _commit(self, settlements: list[Settlement]) -> None:
        now = self.clock()
        changes = Changes()
        for settlement in settlements:
            changes.absorb(settlement.changes)
        with self.db.transaction() as conn:
            changes.apply(conn, now)
            queue.complete(conn, [c for s in settlements for c in s.finished], self.owner)
            retries = [r for s in settlements for r in s.retries]
            if retries:
                queue.retry_later_many(conn, retries, self.owner)
                bump(conn, "retries", len(retries))
            for settlement in settlements:
                for claim, kind, error in settlement.given_up:
                    open_exception(conn, claim.key, kind, error, claim.attempts + 1, now)
