"""The cron schedule inside `handoff serve`: fire times from the expression, one run per fire
time however many servers share the schedule, and a run made when the time comes."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from handoff.config import ReconcileSettings
from handoff.errors import ConfigError
from handoff.reconcile.schedule import ReconcileSchedule
from handoff.store import reconciliation as store
from handoff.store.db import Database
from tests.reconcile.twin_lifecycle import provisioned


def test_fire_times_follow_the_cron_expression_in_utc() -> None:
    schedule = ReconcileSchedule(None, None, ReconcileSettings(cron="30 2 * * 1-5"))  # type: ignore[arg-type]
    friday_noon = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    assert schedule.next_fire(friday_noon) == datetime(2026, 11, 30, 2, 30, tzinfo=UTC)  # Monday


def test_a_wrong_cron_expression_is_refused_at_start() -> None:
    with pytest.raises(ConfigError, match="is not a cron expression"):
        ReconcileSettings(cron="every night")


@pytest.mark.slow
def test_two_servers_on_one_schedule_reconcile_each_fire_time_once(
        db: Database, salesforce_twin: Any, netsuite_twin: Any, tmp_path: Path) -> None:
    lifecycle = provisioned(db, salesforce_twin, netsuite_twin, tmp_path, 2)
    settings = ReconcileSettings(cron="* * * * *", snapshots=str(tmp_path / "snapshots"))
    fire = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    ahead = fire - timedelta(seconds=1) - datetime.now(UTC)

    def clock() -> datetime:  # the servers' clocks start a second before a fire time
        return datetime.now(UTC) + ahead

    servers = [ReconcileSchedule(db, lifecycle.systems, settings, clock) for _ in range(2)]
    stop = threading.Event()
    threads = [server.start(stop) for server in servers]
    try:
        deadline = datetime.now(UTC) + timedelta(seconds=20)
        while datetime.now(UTC) < deadline:
            with db.reading() as conn:
                runs = [r for r in store.runs(conn) if r.status != "running"]
            if runs:
                break
            stop.wait(0.1)
    finally:
        stop.set()
        for thread in threads:
            thread.join(5)
    with db.reading() as conn:
        runs = store.runs(conn)
    assert [(r.trigger, r.status, r.total) for r in runs] == [("schedule", "done", 0)]
    lifecycle.close()
