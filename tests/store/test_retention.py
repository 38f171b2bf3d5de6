"""Retention on a real database: old inbox events and refusals go (archived first when asked),
recent ones and those of deals still being worked on stay, and what was removed can be neither
applied again nor lost from the lineage or the counters."""

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from handoff.api.dashboard.lineage import lineage_body
from handoff.api.metrics import exposition
from handoff.config import RetentionSettings
from handoff.engine.clock import utcnow
from handoff.engine.exceptions import open_exception
from handoff.engine.inbox import Outcome, accept
from handoff.engine.pruning import PruningSchedule
from handoff.errors import IntakeError, PermanentError
from handoff.flows.trace import trace
from handoff.render import lineage
from handoff.store.archive import read_archive
from handoff.store.retention import last_key_before, prune
from handoff.store.tables import inbox_events, intake_rejections, opportunities, reconcile_queue
from tests.factories import customer_data, customer_event, event, opportunity_data

NOW = utcnow()
OLD = NOW - timedelta(days=40)
KEEP_30_DAYS = RetentionSettings(inbox_days=30, rejections_days=30)


def take(db, body, when=OLD):
    return accept(db, body, when)


def refuse(db, when) -> None:
    with pytest.raises(IntakeError):
        accept(db, {"specversion": "1.0", "id": "bad"}, when)


def worked_off(db) -> None:
    """What a worker leaves behind: nothing queued."""
    with db.transaction() as conn:
        conn.execute(sa.delete(reconcile_queue))


def inbox(db) -> list[tuple[str, str]]:
    with db.reading() as conn:
        return [tuple(r) for r in conn.execute(sa.select(inbox_events.c.subject, inbox_events.c.outcome)
                                               .order_by(inbox_events.c.seq))]


def rejections(db) -> int:
    with db.reading() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(intake_rejections)).scalar_one()


def queued(db) -> list[str]:
    with db.reading() as conn:
        return list(conn.execute(sa.select(reconcile_queue.c.key)).scalars())


def test_old_events_and_refusals_go_recent_ones_stay(db) -> None:
    take(db, event(opportunity_data("006OLD", minutes=0)))
    take(db, event(opportunity_data("006OLD", minutes=5)))
    refuse(db, OLD)
    worked_off(db)
    take(db, event(opportunity_data("006NEW")), NOW)
    refuse(db, NOW)
    events, refusals = prune(db, KEEP_30_DAYS, NOW)
    assert (events.rows, events.held, refusals.rows) == (2, 0, 1)
    assert inbox(db) == [("006NEW", "applied")]
    assert rejections(db) == 1
    assert "inbox_events: removed 2 row(s) received before" in events.describe()


def test_events_of_deals_still_queued_or_held_stay(db) -> None:
    take(db, event(opportunity_data("006DONE")))
    take(db, event(opportunity_data("006HELD", "001HELD")))
    take(db, customer_event(customer_data("001HELD")))
    take(db, event(opportunity_data("006PARKED")))
    worked_off(db)
    take(db, event(opportunity_data("006HELD", "001HELD", minutes=5)), NOW)  # queued again
    with db.transaction() as conn:
        open_exception(conn, "opportunity:006PARKED", "parked", PermanentError("over the cap"), 1, OLD)
    events, _ = prune(db, KEEP_30_DAYS, NOW)
    assert (events.rows, events.held) == (1, 3)
    assert sorted(subject for subject, _ in inbox(db)) == ["001HELD", "006HELD", "006HELD", "006PARKED"]
    assert "kept 3 as old, of deals still queued or held" in events.describe()


def test_the_archive_holds_exactly_the_rows_removed(db, tmp_path: Path) -> None:
    for n in range(7):
        take(db, event(opportunity_data(f"006A{n}"), event_id=f"e-{n}"))
    take(db, event(opportunity_data("006A0"), event_id="e-0"))  # a repeat: deliveries 2
    take(db, event(opportunity_data("006Q")))
    with db.transaction() as conn:  # all worked off but 006Q
        conn.execute(sa.delete(reconcile_queue).where(reconcile_queue.c.key != "opportunity:006Q"))
    with db.reading() as conn:
        before = {r.event_id: dict(r._mapping) for r in conn.execute(sa.select(inbox_events))}
    settings = RetentionSettings(inbox_days=30, rejections_days=30, archive_dir=str(tmp_path / "archive"))
    events, refusals = prune(db, settings, NOW, chunk=3)  # in chunks of three
    assert events.archive is not None and refusals.archive is None  # no refusal: no file
    archived = list(read_archive(events.archive))
    removed = set(before) - {r["event_id"] for r in _all(db)}
    assert len(archived) == events.rows == 7
    assert {r["event_id"] for r in archived} == removed == {f"e-{n}" for n in range(7)}
    first = next(r for r in archived if r["event_id"] == "e-0")
    assert first["deliveries"] == 2 and first["body"] == before["e-0"]["body"]
    assert sorted(events.archive.parent.iterdir()) == [events.archive]


def _all(db) -> list[dict]:
    with db.reading() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(inbox_events))]


def test_a_pruned_event_delivered_again_changes_nothing(db) -> None:
    older = event(opportunity_data("006R", minutes=0, name="old"))
    newest = event(opportunity_data("006R", minutes=10, name="new"))
    take(db, older)
    take(db, newest)
    worked_off(db)
    prune(db, KEEP_30_DAYS, NOW)
    assert inbox(db) == []
    assert take(db, newest, NOW).outcome is Outcome.UNCHANGED
    assert take(db, older, NOW).outcome is Outcome.STALE
    assert queued(db) == []
    with db.reading() as conn:
        assert conn.execute(sa.select(opportunities.c.data)).scalar_one()["name"] == "new"


def test_a_pruned_customer_event_delivered_again_enqueues_nothing(db) -> None:
    change = customer_event(customer_data("001C", minutes=3))
    take(db, event(opportunity_data("006C", "001C")))
    take(db, change)
    worked_off(db)
    prune(db, KEEP_30_DAYS, NOW)
    assert take(db, change, NOW).outcome is Outcome.UNCHANGED
    assert queued(db) == []


def test_the_lineage_counts_what_was_pruned_and_where_it_went(db, tmp_path: Path) -> None:
    take(db, event(opportunity_data("006T", minutes=0)))
    take(db, event(opportunity_data("006T", minutes=5)), OLD + timedelta(hours=1))
    worked_off(db)
    first = RetentionSettings(inbox_days=30, archive_dir=str(tmp_path))
    events, _ = prune(db, first, NOW)
    take(db, event(opportunity_data("006T", minutes=9)), NOW - timedelta(days=31))
    worked_off(db)
    prune(db, RetentionSettings(inbox_days=30), NOW)  # a second run, without an archive
    take(db, event(opportunity_data("006T", minutes=20)), NOW)
    found = trace(db, "006T")
    assert found is not None
    assert [e["outcome"] for e in found["events"]] == ["applied"]
    pruned = found["events_pruned"]
    assert (pruned["events"], pruned["deliveries"]) == (3, 3)
    assert pruned["first_received_at"] == OLD.isoformat()
    assert pruned["last_received_at"] == (NOW - timedelta(days=31)).isoformat()
    assert pruned["archive"] == str(events.archive)  # the last archive that holds some
    assert "3 earlier event(s) pruned" in lineage(found)
    assert "3 earlier event(s) pruned by retention" in lineage_body(found)  # the dashboard's page


def test_the_counters_never_go_down(db) -> None:
    body = event(opportunity_data("006M"))
    take(db, body)
    take(db, body)
    take(db, event(opportunity_data("006M", minutes=-5)))
    refuse(db, OLD)
    worked_off(db)
    with db.reading() as conn:
        before = _counters(exposition(conn))
    prune(db, KEEP_30_DAYS, NOW)
    with db.reading() as conn:
        after = exposition(conn)
    assert _counters(after) == before
    assert before == {'handoff_events_total{outcome="applied"}': "1",
                      'handoff_events_total{outcome="stale"}': "1",
                      "handoff_duplicates_suppressed_total": "1", "handoff_events_rejected_total": "1"}
    assert 'handoff_pruned_rows_total{table="inbox_events"} 2' in after
    assert 'handoff_pruned_rows_total{table="intake_rejections"} 1' in after


def _counters(text: str) -> dict[str, str]:
    names = ("handoff_events_total", "handoff_duplicates_suppressed_total", "handoff_events_rejected_total")
    return dict(line.rsplit(" ", 1) for line in text.splitlines() if line.startswith(names))


def test_a_dry_run_counts_and_changes_nothing(db, tmp_path: Path) -> None:
    take(db, event(opportunity_data("006D")))
    refuse(db, OLD)
    worked_off(db)
    settings = RetentionSettings(inbox_days=30, rejections_days=30, archive_dir=str(tmp_path / "a"))
    events, refusals = prune(db, settings, NOW, dry_run=True)
    assert (events.rows, refusals.rows, events.archive) == (1, 1, None)
    assert events.describe().startswith("inbox_events: would remove 1 row(s)")
    assert (len(inbox(db)), rejections(db)) == (1, 1)
    assert not (tmp_path / "a").exists()


def test_zero_days_keeps_a_table_for_ever(db) -> None:
    take(db, event(opportunity_data("006F")))
    refuse(db, OLD)
    worked_off(db)
    events, refusals = prune(db, RetentionSettings(inbox_days=0, rejections_days=30), NOW)
    assert (events.cutoff, refusals.rows) == (None, 1)
    assert events.describe() == "inbox_events: kept for ever (retention of 0 days)"
    assert len(inbox(db)) == 1


def test_the_last_old_key_is_found_by_bisection_across_gaps(db) -> None:
    for n in range(20):
        take(db, event(opportunity_data(f"006B{n}")), OLD + timedelta(days=n))
    with db.transaction() as conn:  # gaps, as earlier pruning leaves them
        conn.execute(sa.delete(inbox_events).where(inbox_events.c.seq.in_([3, 4, 5, 11, 12])))
    ib = inbox_events.c
    with db.reading() as conn:
        seqs = dict(conn.execute(sa.select(ib.seq, ib.received_at)).all())
        for days in (-1, 0, 0.5, 4, 12, 13, 19, 25):
            cutoff = OLD + timedelta(days=days)
            expected = max((s for s, t in seqs.items() if t < cutoff), default=0)
            assert last_key_before(conn, ib.seq, ib.received_at, cutoff) == expected, days


def test_the_server_prunes_at_start_and_then_every_interval(db) -> None:
    take(db, event(opportunity_data("006S1")))
    worked_off(db)
    clock = [NOW]
    stop = threading.Event()
    schedule = PruningSchedule(db, RetentionSettings(inbox_days=30, every="0.05s"), lambda: clock[0])
    thread = schedule.start(stop)
    try:
        _until(lambda: inbox(db) == [])
        take(db, event(opportunity_data("006S2")), NOW)
        worked_off(db)
        clock[0] = NOW + timedelta(days=31)  # the event just taken is now old too
        _until(lambda: inbox(db) == [])
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


def _until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.02)
