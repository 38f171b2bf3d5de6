"""Set-based storing gives what storing one by one gives: the same outcome for each event,
the same canonical state, inbox, refusals and queue keys, however the events are grouped."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from handoff.engine.batch import accept_batch
from handoff.engine.clock import utcnow
from handoff.engine.inbox import accept
from handoff.errors import IntakeError
from handoff.store.db import Database, open_database
from handoff.store.tables import (
    customers,
    inbox_events,
    intake_rejections,
    milestone_progress,
    opportunities,
    reconcile_queue,
)
from tests.factories import (
    customer_data,
    customer_event,
    event,
    milestone_data,
    milestone_event,
    opportunity_data,
)

DEALS = [f"006{n:015d}" for n in range(6)]
ACCOUNTS = [f"001{n:015d}" for n in range(3)]


def random_events(seed: int, count: int) -> list[dict[str, Any]]:
    """Deal, customer and milestone changes in any order, with repeats, stale versions and
    repeats that carry other content under the same id."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for n in range(count):
        roll = rng.random()
        if events and roll < 0.2:
            events.append(rng.choice(events))  # a redelivery
        elif events and roll < 0.25:
            again = rng.choice(events)
            events.append(again | {"data": again["data"] | {"version": "2026-11-30T00:00:00Z"}})
        elif roll < 0.6:
            deal = rng.choice(DEALS)
            events.append(event(opportunity_data(deal, ACCOUNTS[DEALS.index(deal) % 3],
                                                 minutes=rng.randrange(6), name=f"v{n}"),
                                event_id=f"o{n}"))
        elif roll < 0.8:
            events.append(customer_event(customer_data(rng.choice(ACCOUNTS), minutes=rng.randrange(6),
                                                       credit_hold=rng.random() < 0.3, name=f"v{n}"),
                                         event_id=f"c{n}"))
        else:
            events.append(milestone_event(milestone_data(rng.choice(DEALS), rng.choice(["M1", "M2"]),
                                                         minutes=rng.randrange(6)), event_id=f"m{n}"))
    return events


def one_by_one(db: Database, events: list[dict[str, Any]]) -> list[str]:
    outcomes = []
    for body in events:
        try:
            outcomes.append(accept(db, body, utcnow()).outcome.value)
        except IntakeError as exc:
            outcomes.append(f"refused {exc.status}")
    return outcomes


def in_sets(db: Database, events: list[dict[str, Any]], rng: random.Random) -> list[str]:
    outcomes: list[str] = []
    while len(outcomes) < len(events):
        chunk = events[len(outcomes):len(outcomes) + rng.randint(1, 25)]
        for result in accept_batch(db, chunk, utcnow()):
            view = result.view()
            outcomes.append(view["outcome"] if result.accepted else f"refused {view['status']}")
    return outcomes


def held(db: Database) -> dict[str, Any]:
    """All that storing leaves behind, but what is random by design (correlation ids) and how
    often a queued key was bumped."""
    with db.reading() as conn:
        def rows(select: sa.Select) -> list[tuple[Any, ...]]:
            return sorted(tuple(row) for row in conn.execute(select))
        return {
            "opportunities": rows(sa.select(opportunities.c.id, opportunities.c.version,
                                            opportunities.c.data)),
            "customers": rows(sa.select(customers.c.id, customers.c.version, customers.c.data)),
            "milestones": rows(sa.select(milestone_progress.c.opportunity_id,
                                         milestone_progress.c.milestone_id, milestone_progress.c.version)),
            "inbox": rows(sa.select(inbox_events.c.source, inbox_events.c.event_id, inbox_events.c.outcome,
                                    inbox_events.c.deliveries, inbox_events.c.subject,
                                    inbox_events.c.body_hash)),
            "refusals": rows(sa.select(intake_rejections.c.event_id, intake_rejections.c.status_code)),
            "queue": rows(sa.select(reconcile_queue.c.key)),
        }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_grouping_gives_what_one_by_one_gives(db: Database, tmp_path: Path, seed: int) -> None:
    events = random_events(seed, 160)
    reference = open_database(f"sqlite:///{tmp_path / 'reference.db'}")
    expected = one_by_one(reference, events)
    assert {"applied", "duplicate", "stale", "unchanged", "refused 409"} <= set(expected)
    assert in_sets(db, events, random.Random(seed)) == expected
    assert held(db) == held(reference)
    reference.dispose()


def test_correlation_ids_are_the_deals_own(db: Database) -> None:
    """A new deal's events in one set, the repeat included, all carry the id it was given."""
    first = event(opportunity_data(DEALS[0], minutes=1), event_id="a")
    results = accept_batch(db, [first, event(opportunity_data(DEALS[0], minutes=2), event_id="b"),
                                first], utcnow())
    ids = {r.accepted.correlation_id for r in results if r.accepted}
    with db.reading() as conn:
        stored = conn.execute(sa.select(opportunities.c.correlation_id)).scalar_one()
    assert ids == {stored}
    assert [r.accepted.outcome.value for r in results if r.accepted] == ["applied", "applied", "duplicate"]
