"""Planner statistics for the tables intake reads, kept fresh on PostgreSQL while they grow.

PostgreSQL plans each lookup from the statistics ANALYZE gathered. A new database has none
until autovacuum's first analyze: its launcher wakes once a minute, and a table needs 50
changed rows plus a tenth of its size. Meanwhile the planner finds the events of a set by
their source alone and filters the ids, scanning every event of that source: a group of 8
events took 3 ms to store at 1,000 events held and 22 ms at 18,000; with one ANALYZE at
1,000, 1.7–2.2 ms throughout. So each process analyzes these tables each time the events it
has stored (through any intake path: `store_parsed`) double (1,000, 2,000, 4,000, …, about a
million), after which autovacuum's tenth keeps pace. ANALYZE blocks neither reads nor
writes, and runs on a thread of its own.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy.engine import Engine

from handoff.store.tables import (
    customers,
    inbox_events,
    milestone_progress,
    opportunities,
    provisioning,
    reconcile_queue,
    time_entries,
)

log = logging.getLogger("handoff.store")

INTAKE_TABLES = tuple(t.name for t in (inbox_events, opportunities, customers, milestone_progress,
                                       time_entries, provisioning, reconcile_queue))
FIRST_ANALYZE = 1000
LAST_ANALYZE = 1 << 20


class GrowthAnalyzer:
    """Counts the events stored; at each doubling, analyzes `tables` (PostgreSQL only)."""

    def __init__(self, engine: Engine, tables: tuple[str, ...] = INTAKE_TABLES,
                 first: int = FIRST_ANALYZE, last: int = LAST_ANALYZE) -> None:
        self._engine, self._tables, self._last = engine, tables, last
        self._stored, self._next = 0, first
        self._active = engine.dialect.name == "postgresql"
        self._lock = threading.Lock()  # intake may store from several threads
        self._running: threading.Thread | None = None
        self.analyzed = 0  # ANALYZEs finished

    def stored(self, events: int) -> None:
        """`events` more stored (committed)."""
        if not self._active or self._next > self._last:
            return
        with self._lock:
            self._stored += events
            if self._stored < self._next:
                return
            while self._next <= self._stored:
                self._next *= 2
            if self._running is None or not self._running.is_alive():  # else the next mark does it
                self._running = threading.Thread(target=self._analyze, daemon=True, name="handoff-analyze")
                self._running.start()

    def wait(self, timeout: float | None = None) -> None:
        """Until the ANALYZE under way, if any, has finished."""
        if self._running is not None:
            self._running.join(timeout)

    def _analyze(self) -> None:
        try:
            with self._engine.connect() as conn:
                conn.exec_driver_sql(f"ANALYZE {', '.join(self._tables)}")
                conn.commit()
            self.analyzed += 1
        except Exception as exc:  # statistics are an optimisation: intake goes on without them
            log.warning("ANALYZE of the intake tables failed (autovacuum will do it): %s", exc)
