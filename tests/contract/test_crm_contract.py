"""The CRM contract (connectors/contract.py), the same tests for every CRM connector against
its twin: the change feed pages and matches a read of one record, write-back is idempotent,
deal figures come in bulk, vendor errors arrive in handoff's taxonomy."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from handoff.connectors.contract import CrmSource
from handoff.connectors.fieldmap import parse_field_map
from handoff.connectors.ports import BillingSummary, CrmStatusUpdate
from handoff.demo.scenario import cloud_event
from handoff.demo.systems import seeder_for
from handoff.domain import Money, ProvisioningStatus
from handoff.engine.clock import utcnow
from handoff.engine.inbox import Outcome, accept
from handoff.engine.payloads import OPPORTUNITY_CHANGED
from handoff.errors import DataError, PermanentError, ThrottledError, TransientError
from tests.contract.drivers import ACCOUNT, CRM_DRIVERS, DEAL, CrmDriver

CANONICAL_DEAL_KEYS = {"id", "name", "account_id", "stage", "is_won", "amount", "currency", "close_date",
                       "billing_method", "contract_status", "sow_status", "legal_entity", "owner",
                       "description", "modified_by", "version"}


@pytest.fixture(params=sorted(CRM_DRIVERS))
def driver(request: pytest.FixtureRequest) -> CrmDriver:
    return CRM_DRIVERS[request.param](request)


def seeded(driver: CrmDriver, crm: Any, count: int) -> list[str]:
    return [driver.seed(crm, ACCOUNT | {"name": f"Account {n}"},
                        DEAL | {"name": f"Deal {n}", "stage": driver.won_stage,
                                "amount": Decimal("1000.25") * (n + 1)}) for n in range(count)]


def test_it_is_a_whole_crm_source_with_a_budget(driver: CrmDriver) -> None:
    crm = driver.connector()
    assert isinstance(crm, CrmSource)
    assert crm.budget.source and (crm.budget.concurrency or crm.budget.requests)


def test_the_change_feed_reads_every_page_and_matches_a_read_of_one(driver: CrmDriver) -> None:
    crm = driver.connector(page_size=2)
    since = datetime.now(UTC) - timedelta(minutes=5)
    ids = seeded(driver, crm, 5)
    feed = list(crm.changed_opportunities(since))
    assert sorted(d["id"] for d in feed) == sorted(ids)
    assert all(set(d) >= CANONICAL_DEAL_KEYS for d in feed)
    one = crm.opportunity_event_data(ids[2])
    assert one == next(d for d in feed if d["id"] == ids[2])
    assert Decimal(one["amount"]) == Decimal("3000.75") and one["currency"] == "USD" and one["is_won"]
    accounts = list(crm.changed_accounts(since))
    assert crm.customer_event_data(one["account_id"]) in accounts
    assert not list(crm.changed_opportunities(datetime.now(UTC) + timedelta(minutes=1)))


def test_write_back_twice_leaves_what_one_call_does_and_figures_come_in_bulk(driver: CrmDriver) -> None:
    crm = driver.connector(page_size=2)
    ids = seeded(driver, crm, 3)
    billed = BillingSummary(Money(Decimal("1000.25"), "USD"), Money(Decimal("250.00"), "USD"),
                            Money(Decimal("750.25"), "USD"), 3, ("INV-1",))
    updates = [CrmStatusUpdate(deal, ProvisioningStatus.PROVISIONED, "project made", f"P-{n}", billed)
               for n, deal in enumerate(ids)]
    assert crm.write_back_many(updates) == [None] * 3
    assert crm.write_back_many(updates) == [None] * 3
    figures = {f.deal_id: f for f in crm.deal_figures()}
    assert set(figures) == set(ids)
    assert {(f.invoiced, f.paid, f.is_won) for f in figures.values()} == {
        (Decimal("1000.25"), Decimal("250.00"), True)}


@pytest.mark.parametrize("retry_after", [2, 0])
def test_throttling_is_a_throttled_error_with_the_wait_when_given(driver: CrmDriver,
                                                                  retry_after: int) -> None:
    crm = driver.connector()
    [deal] = seeded(driver, crm, 1)
    driver.faults(throttle_rate=1.0, retry_after_seconds=retry_after)
    with pytest.raises(ThrottledError) as caught:
        crm.opportunity_event_data(deal)
    if retry_after:
        assert caught.value.retry_after == pytest.approx(retry_after)


def test_a_long_retry_after_holds_every_call_without_making_it(driver: CrmDriver) -> None:
    crm = driver.connector()
    [deal] = seeded(driver, crm, 1)
    driver.faults(throttle_rate=1.0, retry_after_seconds=30)
    with pytest.raises(ThrottledError):
        crm.opportunity_event_data(deal)
    driver.faults()  # the system would answer now, but the connector is told to wait 30 s
    started = time.monotonic()
    with pytest.raises(ThrottledError) as held:
        crm.opportunity_event_data(deal)
    assert time.monotonic() - started < 1 and 25 < held.value.retry_after <= 30  # type: ignore[operator]


def test_unavailability_is_transient(driver: CrmDriver) -> None:
    crm = driver.connector()
    [deal] = seeded(driver, crm, 1)
    driver.faults(unavailable_rate=1.0)
    with pytest.raises(TransientError) as caught:
        crm.opportunity_event_data(deal)
    assert not isinstance(caught.value, ThrottledError)


def test_a_refused_credential_is_permanent_and_says_so(driver: CrmDriver) -> None:
    crm = driver.connector(bad_auth=True)
    with pytest.raises(PermanentError) as caught:
        list(crm.changed_opportunities(datetime.now(UTC) - timedelta(minutes=1)))
    assert caught.value.system == driver.name
    assert any(word in caught.value.message.lower()
               for word in ("auth", "session", "token", "credential", "login"))


def test_a_configured_field_mapping_reads_fields_where_the_firm_keeps_them(driver: CrmDriver) -> None:
    """The firm keeps its company code in the description: mapped through a lookup table; and
    every deal is billed by fixed fee whatever the CRM says."""
    rules = {"opportunity": {"legal_entity": {"from": DESCRIPTION[driver.name],
                                              "lookup": {"Company 1000": "UK01"}},
                             "billing_method": {"constant": "fixed_fee"}}}
    crm = driver.connector(field_map=parse_field_map(driver.name, rules, lambda _key: ""))
    since = datetime.now(UTC) - timedelta(minutes=5)
    deal = driver.seed(crm, ACCOUNT, DEAL | {"stage": driver.won_stage, "description": "Company 1000",
                                             "billing_method": "milestone"})
    [seen] = list(crm.changed_opportunities(since))
    assert (seen["legal_entity"], seen["billing_method"]) == ("UK01", "fixed_fee")
    assert crm.opportunity_event_data(deal) == seen
    driver.faults()
    crm.update_opportunity(deal, {DESCRIPTION[driver.name]: "Company 9999"})
    with pytest.raises(DataError) as caught:
        crm.opportunity_event_data(deal)
    assert caught.value.field == "legal_entity" and "Company 9999" in caught.value.message


DESCRIPTION = {"salesforce": "Description", "hubspot": "description", "dynamics": "description"}


def test_a_change_feeds_versions_order_so_an_older_delivery_is_ignored(driver: CrmDriver, db: Any) -> None:
    """Each CRM's version stamp compares as time does: the newer read wins in the inbox and the
    older one, delivered late, is kept as stale and applies nothing."""
    crm = driver.connector()
    since = datetime.now(UTC) - timedelta(minutes=5)
    [deal] = seeded(driver, crm, 1)
    older = crm.opportunity_event_data(deal)
    time.sleep(1.1)  # a CRM stamps versions to the second (Dataverse) or millisecond
    seeder_for(crm).update_opportunity(deal, {"name": "Renamed deal"})
    newer = crm.opportunity_event_data(deal)
    assert newer["version"] > older["version"] and newer["name"] == "Renamed deal"
    assert [d["id"] for d in crm.changed_opportunities(since)] == [deal]
    outcomes = [accept(db, cloud_event(OPPORTUNITY_CHANGED, data), utcnow()).outcome
                for data in (newer, older)]
    assert outcomes == [Outcome.APPLIED, Outcome.STALE]
