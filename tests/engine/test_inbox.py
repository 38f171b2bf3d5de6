"""Intake on a real database: idempotency, versions, and bad input that changes nothing."""

import json

import pytest
import sqlalchemy as sa

from handoff.engine.clock import utcnow
from handoff.engine.inbox import Outcome, accept
from handoff.errors import IntakeError
from handoff.store.metrics import counts as derived_counts
from handoff.store.tables import intake_rejections, opportunities, reconcile_queue
from tests.factories import customer_data, customer_event, event, opportunity_data


def counts(db) -> dict[str, int]:
    with db.reading() as conn:
        tables = {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                  for t in (opportunities, reconcile_queue, intake_rejections)}
        return tables | derived_counts(conn)


def test_new_event_is_stored_applied_and_enqueued_once(db) -> None:
    body = event(opportunity_data())
    assert accept(db, body, utcnow()).outcome is Outcome.APPLIED
    assert accept(db, body, utcnow()).outcome is Outcome.DUPLICATE
    c = counts(db)
    assert (c["opportunities"], c["reconcile_queue"], c["duplicates_suppressed"]) == (1, 1, 1)


def test_same_id_with_different_content_is_refused_and_recorded(db) -> None:
    body = event(opportunity_data(), event_id="e-1")
    accept(db, body, utcnow())
    changed = event(opportunity_data(amount="1.00"), event_id="e-1")
    with pytest.raises(IntakeError) as refused:
        accept(db, changed, utcnow())
    assert refused.value.status == 409
    with db.reading() as conn:
        held = conn.execute(sa.select(opportunities.c.data)).scalar_one()
    assert held["amount"] == "120000.00"
    assert counts(db)["intake_rejections"] == 1


def test_an_older_version_never_overwrites_a_newer_one(db) -> None:
    accept(db, event(opportunity_data(minutes=10, name="new")), utcnow())
    late = accept(db, event(opportunity_data(minutes=5, name="old")), utcnow())
    same = accept(db, event(opportunity_data(minutes=10, name="new")), utcnow())
    assert (late.outcome, same.outcome) == (Outcome.STALE, Outcome.UNCHANGED)
    with db.reading() as conn:
        assert conn.execute(sa.select(opportunities.c.data)).scalar_one()["name"] == "new"


def test_a_customer_change_enqueues_its_deals(db) -> None:
    accept(db, event(opportunity_data("006A", "001X")), utcnow())
    accept(db, event(opportunity_data("006B", "001X")), utcnow())
    with db.transaction() as conn:
        conn.execute(sa.delete(reconcile_queue))
    accept(db, customer_event(customer_data("001X")), utcnow())
    with db.reading() as conn:
        keys = set(conn.execute(sa.select(reconcile_queue.c.key)).scalars())
    assert keys == {"opportunity:006A", "opportunity:006B"}
    with db.transaction() as conn:
        conn.execute(sa.delete(reconcile_queue))
    accept(db, customer_event(customer_data("001X", minutes=1, credit_hold=True)), utcnow())
    with db.reading() as conn:
        keys = set(conn.execute(sa.select(reconcile_queue.c.key)).scalars())
    assert keys == {"opportunity:006A", "opportunity:006B", "billing:006A", "billing:006B"}


BAD = [
    (b"{not json", 400, "not valid JSON"),
    ({"specversion": "1.0", "source": "/x", "type": "t"}, 400, "'id' is missing"),
    ({**event(opportunity_data()), "specversion": "0.3"}, 400, "specversion"),
    (event(opportunity_data(), kind="com.example.unknown"), 422, "unknown event type"),
    (event(opportunity_data(currency="XXQ")), 422, "data.currency"),
    (event(opportunity_data(amount="-5.00")), 422, "data.amount: -5.00 is negative"),
    (event(opportunity_data(amount=12.5)), 422, "data.amount"),
    (event(opportunity_data(version="2026-11-01T09:00:00")), 422, "no time zone"),
    (event(opportunity_data(billing_method="barter")), 422, "data.billing_method"),
    (customer_event(customer_data(validation_status="maybe")), 422, "validation_status"),
]


@pytest.mark.parametrize("body, status, message", BAD)
def test_bad_input_is_refused_named_recorded_and_changes_nothing(db, body, status, message) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    with pytest.raises(IntakeError) as refused:
        accept(db, raw, utcnow())
    assert refused.value.status == status and message in refused.value.message
    c = counts(db)
    assert (c["opportunities"], c["reconcile_queue"], c["intake_rejections"]) == (0, 0, 1)
    assert c.get("events_accepted", 0) == 0


def test_the_same_event_raced_by_many_threads_is_applied_once(db) -> None:
    from concurrent.futures import ThreadPoolExecutor

    body = event(opportunity_data("006RACE"), event_id="race-1")
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: accept(db, body, utcnow()).outcome, range(16)))
    assert outcomes.count(Outcome.APPLIED) == 1
    assert outcomes.count(Outcome.DUPLICATE) == 15
    c = counts(db)
    assert (c["events_accepted"], c["duplicates_suppressed"], c["reconcile_queue"]) == (1, 15, 1)
