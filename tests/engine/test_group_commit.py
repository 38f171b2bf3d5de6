"""Group commit: requests arriving while the store is busy are committed together, each is
told its own events' outcome, and one that the database refuses fails alone."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import replace

import pytest
import sqlalchemy as sa

from handoff.engine.group_commit import GroupCommit
from handoff.engine.inbox import Outcome, parse_body
from handoff.engine.inbox_store import Accepted
from handoff.store.db import Database
from handoff.store.tables import inbox_events
from tests.factories import event, opportunity_data


@contextmanager
def store_held(db: Database) -> Iterator[None]:
    """The store busy with another writer: the group-commit thread waits behind it."""
    with db.transaction() as conn:
        if db.is_postgres:
            conn.execute(sa.text("LOCK TABLE inbox_events IN ACCESS EXCLUSIVE MODE"))
        yield


def deal_event(n: int) -> dict:
    return event(opportunity_data(f"006{n:015d}"), event_id=f"e{n}")


def test_requests_waiting_for_the_store_commit_together(db: Database) -> None:
    commits = GroupCommit(db)
    with store_held(db):
        futures = [commits.submit([parse_body(deal_event(n))]) for n in range(20)]
    outcomes = [future.result(timeout=30) for future in futures]
    assert [[a.outcome for a in o] for o in outcomes] == [[Outcome.APPLIED]] * 20
    assert [o[0].subject for o in outcomes] == [f"006{n:015d}" for n in range(20)]
    assert commits.groups <= 2 and commits.events == 20
    with db.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(inbox_events)).scalar_one() == 20


def test_a_request_the_database_refuses_fails_alone(db: Database) -> None:
    commits = GroupCommit(db)
    good = [parse_body(deal_event(n)) for n in range(3)]
    unstorable_event, change = parse_body(deal_event(9))
    unstorable = (replace(unstorable_event, data={"not JSON": {1, 2}}), change)
    with store_held(db):
        futures: list[Future] = [commits.submit([good[0]]), commits.submit([unstorable]),
                                 commits.submit(good[1:])]
    assert futures[0].result(timeout=30) == [Accepted(Outcome.APPLIED, good[0][1].id,
                                                      futures[0].result()[0].correlation_id)]
    with pytest.raises((sa.exc.StatementError, TypeError)):  # as each driver words it
        futures[1].result(timeout=30)
    assert [a.outcome for a in futures[2].result(timeout=30)] == [Outcome.APPLIED] * 2
    with db.reading() as conn:
        stored = conn.execute(sa.select(inbox_events.c.event_id).order_by(inbox_events.c.event_id))
        assert stored.scalars().all() == ["e0", "e1", "e2"]
