"""The CRM poll against the Salesforce twin over HTTP, on a real database: cursors, the
overlap, a change seen by an event and by a poll applied once, refused records passed over."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from handoff.bootstrap import build_worker, poll_schedules
from handoff.config import PollSettings, Settings
from handoff.connectors.memory import MemoryCrm, MemoryErp
from handoff.connectors.salesforce import SalesforceConnector
from handoff.connectors.salesforce.mapping import account_record, opportunity_record
from handoff.engine.clock import utcnow
from handoff.engine.cloudevents import change_event
from handoff.engine.inbox import Outcome, accept
from handoff.engine.payloads import OPPORTUNITY_CHANGED
from handoff.errors import ConfigError, TransientError
from handoff.flows.polling import CURSOR_FORMAT, PollCounts, crm_poll, read_cursor, store_cursor
from handoff.store.tables import inbox_events, intake_rejections, opportunities, poll_cursors
from tests.connectors.salesforce_helpers import connector, set_faults

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
DEAL = {
    "stage": "Closed Won", "amount": "1234567.89", "currency": "EUR", "close_date": "2026-11-26",
    "billing_method": "time_and_materials", "contract_status": "approved",
    "sow_status": "pending", "legal_entity": "DE01", "description": "Phase 1",
}


def seed_deal(crm: SalesforceConnector, name: str, **deal: str) -> tuple[str, str]:
    """An account and its won deal in the twin; their ids."""
    account_id = crm.create_account(account_record({"name": name, "currency": "EUR"}))
    fields = opportunity_record(DEAL | {"name": f"{name} rollout", "account_id": account_id} | deal)
    return account_id, crm.create_opportunity(fields)


def poll(db, crm: SalesforceConnector, **options: timedelta) -> PollCounts:
    return crm_poll(crm, **options).run(db, utcnow())


def cursors(db) -> dict[str, str]:
    with db.reading() as conn:
        return {r.object: r.cursor for r in conn.execute(sa.select(poll_cursors))}


def newest_versions(crm: SalesforceConnector) -> dict[str, str]:
    """The cursors a poll that read everything stores."""
    feeds = (("accounts", crm.changed_accounts), ("opportunities", crm.changed_opportunities))
    return {name: max(datetime.fromisoformat(d["version"]) for d in changes(LONG_AGO))
            .strftime(CURSOR_FORMAT) for name, changes in feeds}


def held_opportunity(db, opportunity_id: str) -> dict:
    with db.reading() as conn:
        return conn.execute(sa.select(opportunities.c.data)
                            .where(opportunities.c.id == opportunity_id)).scalar_one()


def test_the_first_poll_takes_every_record_and_sets_the_cursors(db, crm) -> None:
    _, first = seed_deal(crm, "Globex")
    _, second = seed_deal(crm, "Initech")
    assert poll(db, crm) == PollCounts(applied=4)
    assert cursors(db) == newest_versions(crm)
    assert held_opportunity(db, first)["name"] == "Globex rollout"
    assert held_opportunity(db, second)["billing_method"] == "time_and_materials"


def test_a_poll_without_changes_applies_nothing(db, crm) -> None:
    seed_deal(crm, "Globex")
    seed_deal(crm, "Initech")
    poll(db, crm)
    stored = cursors(db)
    assert poll(db, crm) == PollCounts(duplicate=4)  # the overlap re-reads; intake dedupes
    assert cursors(db) == stored


def test_a_record_changed_after_a_poll_is_applied_by_the_next(db, crm) -> None:
    _, deal = seed_deal(crm, "Globex")
    poll(db, crm)
    crm.update_opportunity(deal, {"Description": "Phase 2"})
    assert poll(db, crm) == PollCounts(applied=1, duplicate=1)
    assert held_opportunity(db, deal)["description"] == "Phase 2"
    assert cursors(db) == newest_versions(crm)


def webhook(data: dict) -> dict:
    return change_event(OPPORTUNITY_CHANGED, data, "/crm/salesforce", utcnow())


def test_a_version_an_event_brought_first_is_unchanged_for_the_poll(db, crm) -> None:
    _, deal = seed_deal(crm, "Globex")
    [data] = crm.changed_opportunities(LONG_AGO)
    assert accept(db, webhook(data), utcnow()).outcome is Outcome.APPLIED
    assert poll(db, crm) == PollCounts(applied=1, unchanged=1)  # the account, the deal
    with db.reading() as conn:
        outcomes = conn.execute(sa.select(inbox_events.c.source, inbox_events.c.outcome)
                                .where(inbox_events.c.subject == deal)).all()
    assert sorted(outcomes) == [("/crm/salesforce", "applied"), ("/crm/salesforce/poll", "unchanged")]


def test_a_version_the_poll_brought_first_is_unchanged_for_the_event(db, crm) -> None:
    seed_deal(crm, "Globex")
    poll(db, crm)
    [data] = crm.changed_opportunities(LONG_AGO)
    assert accept(db, webhook(data), utcnow()).outcome is Outcome.UNCHANGED


def test_a_record_intake_refuses_is_counted_and_does_not_hold_the_cursor(db, crm) -> None:
    _, good = seed_deal(crm, "Globex")
    _, bad = seed_deal(crm, "Initech", amount="-250.00")  # the newest change
    assert poll(db, crm) == PollCounts(applied=3, rejected=1)
    assert cursors(db) == newest_versions(crm)
    assert held_opportunity(db, good)["amount"] == "1234567.89"
    with db.reading() as conn:
        refused = conn.execute(sa.select(intake_rejections)).one()
    assert (refused.source, refused.event_id.split("@")[0]) == ("/crm/salesforce/poll", bad)
    assert refused.field == "data.amount" and refused.status_code == 422


def test_a_cursor_never_moves_back(db) -> None:
    """A worker whose poll read less and finished later leaves the newer cursor."""
    newer, older = datetime(2026, 11, 26, 10, 0, 1, 5000, UTC), datetime(2026, 11, 26, 9, 59, tzinfo=UTC)
    store_cursor(db, "salesforce", "opportunities", newer, utcnow())
    store_cursor(db, "salesforce", "opportunities", older, utcnow())
    assert read_cursor(db, "salesforce", "opportunities") == newer


def test_a_failed_poll_stores_no_cursor_and_the_next_reads_it_all(db, crm, twin) -> None:
    seed_deal(crm, "Globex")
    set_faults(twin, unavailable_rate=1.0)
    with pytest.raises(TransientError):
        poll(db, crm)
    assert cursors(db) == {}
    set_faults(twin)
    assert poll(db, crm) == PollCounts(applied=2)


def test_a_new_poll_starts_from_the_stored_cursor(db, crm, twin) -> None:
    account, deal = seed_deal(crm, "Globex")
    seed_deal(crm, "Initech")
    time.sleep(1.01 - time.time() % 1)  # SOQL compares whole seconds: change in the next one
    crm.update_account(account, {"Validation_Status__c": "Valid"})
    crm.update_opportunity(deal, {"SOW_Status__c": "Approved"})
    poll(db, crm)
    restarted = connector(twin)
    assert poll(db, restarted, overlap=timedelta(0)) == PollCounts(duplicate=2)
    restarted.close()


def test_the_worker_polls_when_it_starts(db, crm) -> None:
    _, deal = seed_deal(crm, "Globex")
    build_worker(Settings(), db, crm, MemoryErp()).run(until_idle=True)
    assert held_opportunity(db, deal)["name"] == "Globex rollout"


def test_a_failing_poll_does_not_stop_the_worker(db, crm, twin, caplog) -> None:
    seed_deal(crm, "Globex")
    set_faults(twin, unavailable_rate=1.0)
    build_worker(Settings(), db, crm, MemoryErp()).run(until_idle=True)
    assert "salesforce poll failed; next run in 0:05:00" in caplog.text
    assert cursors(db) == {}


def test_the_poll_is_a_schedule_when_wanted_and_possible(crm) -> None:
    [schedule] = poll_schedules(Settings(poll=PollSettings(crm_minutes=2)), crm, MemoryErp())
    assert (schedule.name, schedule.every) == ("salesforce poll", timedelta(minutes=2))
    assert poll_schedules(Settings(poll=PollSettings(crm_minutes=0)), crm, MemoryErp()) == []
    assert poll_schedules(Settings(), MemoryCrm(), MemoryErp()) == []  # they cannot list changes


@pytest.mark.parametrize("minutes", [-1.0, float("nan"), float("inf")])
def test_poll_minutes_must_be_zero_or_more(minutes: float) -> None:
    with pytest.raises(ConfigError, match=r"\[poll\] crm_minutes"):
        PollSettings(crm_minutes=minutes)
