"""Retention inside `handoff serve`: prune at start, then every `[retention] every`, in the
background, resting between chunks as long as each took so intake keeps most of the write
lock. Several servers may prune at once: each chunk takes rows the others have not."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from handoff.config import RetentionSettings
from handoff.engine.clock import utcnow
from handoff.store.db import Database
from handoff.store.retention import Pruned, prune

log = logging.getLogger("handoff.retention")
PAUSE_RATIO = 1.0


class PruningSchedule:
    def __init__(self, db: Database, settings: RetentionSettings,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.settings, self.clock = db, settings, clock

    def run_once(self) -> list[Pruned]:
        done = prune(self.db, self.settings, self.clock(), pause_ratio=PAUSE_RATIO)
        for table in done:
            if table.rows or table.held:
                log.info("%s", table.describe())
        return done

    def run(self, stop: threading.Event) -> None:
        """Until `stop`: prune, then wait. A failed run is logged; the next is tried all the same."""
        interval = self.settings.interval
        assert interval is not None, "pruning scheduled with [retention] every = 0"
        while not stop.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("pruning failed")
            if stop.wait(interval.total_seconds()):
                return

    def start(self, stop: threading.Event) -> threading.Thread:
        thread = threading.Thread(target=self.run, args=(stop,), name="retention", daemon=True)
        thread.start()
        return thread
