"""The reconcile queue on a real database: collapse, leases, generations."""

from datetime import timedelta

from handoff.engine import queue
from handoff.engine.clock import utcnow

LEASE = timedelta(seconds=30)


def test_a_key_is_held_once_however_often_it_changes(db) -> None:
    now = utcnow()
    with db.transaction() as conn:
        for _ in range(5):
            queue.enqueue(conn, "opportunity:1", now)
        assert queue.depth(conn) == 1


def test_one_worker_per_key_until_the_lease_expires(db) -> None:
    now = utcnow()
    with db.transaction() as conn:
        queue.enqueue(conn, "k", now)
        first = queue.claim(conn, "w1", 10, now, LEASE)
        assert [c.key for c in first] == ["k"]
        assert queue.claim(conn, "w2", 10, now, LEASE) == []
        later = now + LEASE + timedelta(seconds=1)  # w1 died: its lease runs out
        assert [c.key for c in queue.claim(conn, "w2", 10, later, LEASE)] == ["k"]
        queue.complete(conn, first, "w1")  # the dead worker's word counts no more
        assert queue.depth(conn) == 1


def test_a_key_changed_during_work_is_handed_out_again(db) -> None:
    now = utcnow()
    with db.transaction() as conn:
        queue.enqueue(conn, "k", now)
        (claim,) = queue.claim(conn, "w1", 10, now, LEASE)
        queue.enqueue(conn, "k", now)  # a newer version arrived meanwhile
        queue.complete(conn, [claim], "w1")
        (again,) = queue.claim(conn, "w1", 10, now, LEASE)
        assert again.generation == claim.generation + 1
        queue.complete(conn, [again], "w1")
        assert queue.depth(conn) == 0


def test_retry_later_waits_for_its_due_time(db) -> None:
    now = utcnow()
    with db.transaction() as conn:
        queue.enqueue(conn, "k", now)
        (claim,) = queue.claim(conn, "w1", 10, now, LEASE)
        queue.retry_later_many(conn, [(claim, now + timedelta(seconds=5), "503")], "w1")
        assert queue.claim(conn, "w1", 10, now + timedelta(seconds=4), LEASE) == []
        (again,) = queue.claim(conn, "w1", 10, now + timedelta(seconds=6), LEASE)
        assert again.attempts == 1
        assert queue.next_due(conn) == now + timedelta(seconds=5)


def test_claims_are_due_first_and_limited(db) -> None:
    now = utcnow()
    with db.transaction() as conn:
        for i in range(5):
            queue.enqueue(conn, f"k{i}", now - timedelta(seconds=i))
        claimed = queue.claim(conn, "w", 2, now, LEASE)
    assert {c.key for c in claimed} == {"k4", "k3"}  # RETURNING order is unspecified


def test_released_keys_are_due_for_anyone_at_once(db) -> None:
    now = utcnow()
    with db.transaction() as conn:
        queue.enqueue_many(conn, ["a", "b"], now)
        claimed = queue.claim(conn, "w1", 10, now, LEASE)
        queue.release(conn, claimed, "w1")
        assert {c.key for c in queue.claim(conn, "w2", 10, now, LEASE)} == {"a", "b"}


def test_claims_only_the_keys_of_one_controller(db) -> None:
    now = utcnow()
    with db.transaction() as conn:
        queue.enqueue_many(conn, ["opportunity:1", "crm:1", "crm:2"], now)
        assert {c.key for c in queue.claim(conn, "w", 10, now, LEASE, "crm:")} == {"crm:1", "crm:2"}
