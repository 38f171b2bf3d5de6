"""Reconciliation on a cron schedule, inside `handoff serve`: `[reconcile] cron` (five fields,
UTC). Several servers may run the same schedule: a run is recorded under its fire time, which
is unique, so each fire time is reconciled once whichever server gets there first."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from croniter import croniter

from handoff.config import ReconcileSettings
from handoff.engine.clock import utcnow
from handoff.reconcile.runs import Systems, run_reconciliation
from handoff.store.db import Database

log = logging.getLogger("handoff.reconcile")


class ReconcileSchedule:
    def __init__(self, db: Database, systems: Systems, settings: ReconcileSettings,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.systems, self.settings, self.clock = db, systems, settings, clock

    def next_fire(self, after: datetime) -> datetime:
        return croniter(self.settings.cron, after).get_next(datetime)

    def run_at(self, fire: datetime) -> bool:
        """Reconcile for this fire time; False when another server already did."""
        run = run_reconciliation(self.db, self.systems, self.settings, trigger="schedule",
                                 scheduled_for=fire)
        if run is not None:
            log.info("scheduled reconciliation run %s: %s discrepancies in %s contracts",
                     run.id, run.total, run.contracts)
        return run is not None

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: sleep to the next fire time, reconcile. A failed run is logged (and
        recorded as failed); the next fire time is tried all the same."""
        last = self.clock()
        while not stop.is_set():
            fire = self.next_fire(max(self.clock(), last))
            if stop.wait(max((fire - self.clock()).total_seconds(), 0)):
                return
            last = fire
            try:
                self.run_at(fire)
            except Exception:
                log.exception("scheduled reconciliation for %s failed", fire.isoformat())

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="reconcile schedule", daemon=True)
        thread.start()
        return thread
