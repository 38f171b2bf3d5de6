"""HubSpotConnector against the twin in its own process: the CRM port, change reading,
reconciliation figures, pacing, and every failure arriving as the right class of handoff's
error taxonomy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from handoff.connectors.hubspot import HubSpotConnector, PropertyNames
from handoff.connectors.hubspot.mapping import company_properties, customer_event_data, deal_properties
from handoff.connectors.ports import (
    BillingSummary,
    CrmChangeFeed,
    CrmSnapshotSource,
    CrmStatusUpdate,
    DealFigures,
)
from handoff.connectors.twin_process import TwinProcess
from handoff.domain import Money, ProvisioningStatus
from handoff.errors import DataError, PermanentError, ThrottledError, TransientError
from tests.connectors.hubspot_support import (
    api,
    connector,
    fresh,
    requests_seen,
    set_faults,
    set_twin,
    twin_records,
)

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
DEAL = {
    "name": "Globex migration", "stage": "closedwon", "amount": "1234567.89", "currency": "EUR",
    "close_date": "2026-11-26", "billing_method": "time_and_materials",
    "contract_status": "approved", "sow_status": "pending", "legal_entity": "Handoff GmbH",
    "description": "Phase 1",
}



@pytest.fixture
def twin(hubspot_twin: TwinProcess) -> TwinProcess:
    return fresh(hubspot_twin, search_per_second=1000)  # search's 4/s has a test of its own


@pytest.fixture
def crm(twin: TwinProcess) -> Iterator[HubSpotConnector]:
    with connector(twin) as c:
        yield c


@pytest.fixture
def company_id(crm: HubSpotConnector) -> str:
    return crm.create_account(company_properties({"name": "Globex", "currency": "EUR"}))


@pytest.fixture
def deal_id(crm: HubSpotConnector, company_id: str) -> str:
    return crm.create_opportunity(deal_properties(DEAL), company_id=company_id)


def provisioned(deal_id: str, detail: str = "project created", **changes: object) -> CrmStatusUpdate:
    return CrmStatusUpdate(deal_id, ProvisioningStatus.PROVISIONED, detail, "PRJ-7", **changes)


def seed_deals(twin: TwinProcess, count: int) -> list[str]:
    """Many deals, by batch create (100 a call)."""
    ids: list[str] = []
    with api(twin) as client:
        for start in range(0, count, 100):
            inputs = [{"properties": {"dealname": f"Deal {n}", "dealstage": "appointmentscheduled"}}
                      for n in range(start, min(count, start + 100))]
            response = client.post("/crm/v3/objects/deals/batch/create", json={"inputs": inputs})
            response.raise_for_status()
            ids += [r["id"] for r in response.json()["results"]]
    return ids


def test_the_connector_implements_the_crm_ports(crm: HubSpotConnector) -> None:
    assert crm.system == "hubspot"
    assert isinstance(crm, CrmChangeFeed) and isinstance(crm, CrmSnapshotSource)


# --- the CRM port ----------------------------------------------------------------------------------

def test_write_back_round_trip(crm: HubSpotConnector, deal_id: str) -> None:
    billing = BillingSummary(Money(Decimal("1000.10"), "EUR"), Money(Decimal("250"), "EUR"),
                             Money(Decimal("750.10"), "EUR"), 3, ("INV/0001",))
    assert crm.write_back_many([provisioned(deal_id, billing=billing)]) == [None]
    props = crm.get_opportunity(deal_id)
    assert (props["handoff_project_id"], props["handoff_status"], props["handoff_status_detail"]) == (
        "PRJ-7", "provisioned", "project created")
    assert (props["handoff_invoiced_amount"], props["handoff_paid_amount"],
            props["handoff_open_balance"], props["handoff_days_overdue"]) == (
        "1000.10", "250.00", "750.10", "3")
    assert props["handoff_invoice_numbers"] == "INV/0001"
    crm.write_back_many([CrmStatusUpdate(deal_id, ProvisioningStatus.PARKED, "SOW missing")])
    assert crm.get_opportunity(deal_id)["handoff_project_id"] is None  # cleared


def test_write_back_many_reports_each_update(
    twin: TwinProcess, crm: HubSpotConnector, deal_id: str
) -> None:
    outcomes = crm.write_back_many([provisioned(deal_id), provisioned("99999999"),
                                    provisioned("not-an-id")])
    assert outcomes[0] is None
    assert isinstance(outcomes[1], PermanentError) and "99999999" in str(outcomes[1])
    assert isinstance(outcomes[2], PermanentError) and "usually numeric" in str(outcomes[2])
    assert twin_records(twin, "deals")[0]["properties"]["handoff_status"] == "provisioned"


def test_write_back_many_sends_batches_of_100(twin: TwinProcess, crm: HubSpotConnector) -> None:
    ids = seed_deals(twin, 250)
    before = requests_seen(twin)
    assert crm.write_back_many([provisioned(i) for i in ids]) == [None] * 250
    assert requests_seen(twin) - before == 3
    assert {r["properties"]["handoff_status"] for r in twin_records(twin, "deals")} == {"provisioned"}


def test_a_deal_twice_in_one_call_is_written_in_order(
    twin: TwinProcess, crm: HubSpotConnector, deal_id: str
) -> None:
    before = requests_seen(twin)
    outcomes = crm.write_back_many([provisioned(deal_id, "first"), provisioned(deal_id, "second")])
    assert outcomes == [None, None] and requests_seen(twin) - before == 2  # HubSpot refuses duplicates
    assert crm.get_opportunity(deal_id)["handoff_status_detail"] == "second"


def test_a_batch_refused_for_one_deal_is_retried_deal_by_deal(
    twin: TwinProcess, crm: HubSpotConnector, deal_id: str
) -> None:
    set_twin(twin, batch_errors="whole_batch")  # a HubSpot that refuses the batch as a whole
    outcomes = crm.write_back_many([provisioned(deal_id), provisioned("99999999")])
    assert outcomes[0] is None and isinstance(outcomes[1], PermanentError)
    assert crm.get_opportunity(deal_id)["handoff_status"] == "provisioned"


@pytest.mark.parametrize("batch_errors", ["per_input", "whole_batch"])
def test_a_property_the_portal_lacks_is_a_data_error_naming_it(
    twin: TwinProcess, deal_id: str, batch_errors: str
) -> None:
    set_twin(twin, batch_errors=batch_errors)
    misconfigured = connector(twin, properties=PropertyNames(status="handoff_state"))
    other = misconfigured.create_opportunity({"dealname": "Other"})
    outcomes = misconfigured.write_back_many([provisioned(deal_id), provisioned(other)])
    assert len(outcomes) == 2
    assert all(isinstance(o, DataError) and o.field == "handoff_state" for o in outcomes)


def test_a_throttled_batch_marks_every_update(
    twin: TwinProcess, crm: HubSpotConnector, deal_id: str
) -> None:
    set_faults(twin, throttle_rate=1.0, retry_after_seconds=3)
    outcomes = crm.write_back_many([provisioned(deal_id, str(n)) for n in range(3)])
    assert len(outcomes) == 3 and all(isinstance(o, ThrottledError) for o in outcomes)
    assert outcomes[0].retry_after == 3  # type: ignore[union-attr]


def test_one_connector_serves_many_threads(crm: HubSpotConnector, deal_id: str) -> None:
    def write(n: int) -> None:
        crm.write_back(provisioned(deal_id, detail=f"write {n}"))

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(write, range(160)))
    assert crm.get_opportunity(deal_id)["handoff_status_detail"].startswith("write")


# --- reading changes -------------------------------------------------------------------------------

def test_changed_opportunities_yield_canonical_event_data(
    crm: HubSpotConnector, company_id: str, deal_id: str
) -> None:
    [data] = crm.changed_opportunities(LONG_AGO)
    assert data == DEAL | {"id": deal_id, "account_id": company_id, "is_won": True, "owner": None,
                           "modified_by": None, "version": data["version"]}
    assert data["amount"] == "1234567.89" and data["version"].endswith("Z")
    assert crm.company_of(deal_id) == company_id


def test_a_deal_without_a_company_has_no_account(crm: HubSpotConnector, company_id: str) -> None:
    lone = crm.create_opportunity({"dealname": "Lone"})
    assert [d["account_id"] for d in crm.changed_opportunities(LONG_AGO)] == [None]
    crm.associate(lone, company_id)
    assert [d["account_id"] for d in crm.changed_opportunities(LONG_AGO)] == [company_id]


def test_changed_opportunities_only_after_the_given_moment(crm: HubSpotConnector, deal_id: str) -> None:
    [first] = crm.changed_opportunities(LONG_AGO)
    stamp = datetime.fromisoformat(first["version"])
    assert [d["id"] for d in crm.changed_opportunities(stamp - timedelta(microseconds=1))] == [deal_id]
    assert list(crm.changed_opportunities(stamp)) == []
    with pytest.raises(ValueError):
        list(crm.changed_opportunities(datetime(2000, 1, 1)))


def test_changed_opportunities_read_every_page(twin: TwinProcess) -> None:
    ids = seed_deals(twin, 7)
    crm = connector(twin, page_size=2)
    assert [d["id"] for d in crm.changed_opportunities(LONG_AGO)] == ids


def test_deals_modified_in_one_millisecond_are_each_read_once(twin: TwinProcess) -> None:
    set_twin(twin, frozen_clock_ms=1_795_687_200_000)
    ids = seed_deals(twin, 5)
    crm = connector(twin, page_size=2)
    assert sorted(d["id"] for d in crm.changed_opportunities(LONG_AGO)) == sorted(ids)


def test_a_deal_edited_while_the_feed_is_read_costs_no_other_deal(twin: TwinProcess) -> None:
    ids = seed_deals(twin, 6)
    crm = connector(twin, page_size=2)
    feed = crm.changed_opportunities(LONG_AGO)
    read = [next(feed)["id"], next(feed)["id"]]
    crm.update_opportunity(ids[0], {"description": "edited mid-read"})  # moves to the end
    read += [d["id"] for d in feed]
    assert read == ids + [ids[0]]  # offset paging would have skipped ids[2]


def test_a_feed_deeper_than_the_search_cap_is_read_whole(twin: TwinProcess) -> None:
    set_twin(twin, search_result_cap=4)
    ids = seed_deals(twin, 9)
    crm = connector(twin, page_size=2, search_result_cap=4)
    assert [d["id"] for d in crm.changed_opportunities(LONG_AGO)] == ids


def test_changed_accounts_yield_customer_event_data(twin: TwinProcess, crm: HubSpotConnector) -> None:
    account_id = crm.create_account(company_properties({
        "name": "Initech", "currency": "GBP", "tax_jurisdiction": "GB",
        "legal_entity": "Initech Ltd", "validation_status": "valid"}))
    [data] = crm.changed_accounts(LONG_AGO)
    assert data == {"id": account_id, "name": "Initech", "currency": "GBP",
                    "tax_jurisdiction": "GB", "legal_entity": "Initech Ltd",
                    "validation_status": "valid", "version": data["version"]}
    assert customer_event_data(twin_records(twin, "companies")[0]) == data


# --- reconciliation --------------------------------------------------------------------------------

def test_deal_figures_page_through_every_deal(twin: TwinProcess, deal_id: str) -> None:
    others = seed_deals(twin, 4)
    crm = connector(twin, page_size=2)
    crm.write_back_many([provisioned(deal_id, billing=BillingSummary(
        Money(Decimal("1000.10"), "EUR"), Money(Decimal("0"), "EUR"), Money(Decimal("1000.10"), "EUR"), 0))])
    figures = list(crm.deal_figures())
    assert [f.deal_id for f in figures] == [deal_id, *others]
    assert figures[0] == DealFigures(deal_id, "EUR", Decimal("1234567.89"), True, "approved",
                                     "pending", Decimal("1000.10"), Decimal("0.00"))
    assert figures[1].is_won is False and figures[1].sold_value is None
    assert crm.won_stages() == {"closedwon"}  # read from the deal pipelines


def test_configured_won_stages_skip_the_pipelines(twin: TwinProcess, deal_id: str) -> None:
    crm = connector(twin, won_stages=("contractsent",))
    [figures] = crm.deal_figures()
    assert figures.is_won is False


# --- pacing ----------------------------------------------------------------------------------------

def test_pacing_keeps_the_connector_under_the_burst_limit(twin: TwinProcess) -> None:
    set_twin(twin, burst_limit=3, burst_window_seconds=0.4)
    crm = connector(twin, requests_per_window=3, window_seconds=0.5)
    started = time.monotonic()
    for n in range(7):
        crm.create_account({"name": f"C{n}"})
    assert time.monotonic() - started >= 0.9  # two full windows waited, and no 429


def test_search_pacing_keeps_under_the_search_rate(twin: TwinProcess) -> None:
    set_twin(twin, search_per_second=4)
    seed_deals(twin, 3)
    crm = connector(twin, page_size=1, search_requests_per_second=3.0)  # the default
    before, started = requests_seen(twin), time.monotonic()
    assert len(list(crm.changed_opportunities(LONG_AGO))) == 3
    assert requests_seen(twin) - before == 5 + 3 + 1  # searches, company reads, pipelines
    assert time.monotonic() - started >= 0.9


# --- failures, translated --------------------------------------------------------------------------

def test_hubspots_429_is_a_throttled_error_with_the_policys_wait(
    twin: TwinProcess, crm: HubSpotConnector, deal_id: str
) -> None:
    set_twin(twin, burst_limit=2, burst_window_seconds=60)  # spent on creating the deal
    with pytest.raises(ThrottledError) as exc_info:
        crm.get_opportunity(deal_id)
    assert exc_info.value.retry_after == 60.0  # X-HubSpot-RateLimit-Interval-Milliseconds
    assert "TEN_SECONDLY_ROLLING" in str(exc_info.value)
    set_twin(twin, send_retry_after=True)
    with pytest.raises(ThrottledError) as exc_info:
        crm.get_opportunity(deal_id)
    assert 0 < exc_info.value.retry_after <= 60  # type: ignore[operator]


def test_an_injected_throttle_carries_retry_after(
    twin: TwinProcess, crm: HubSpotConnector, deal_id: str
) -> None:
    set_faults(twin, throttle_rate=1.0, retry_after_seconds=7)
    with pytest.raises(ThrottledError) as exc_info:
        crm.write_back(provisioned(deal_id))
    assert exc_info.value.retry_after == 7


def test_a_bad_token_is_permanent_with_a_clear_message(twin: TwinProcess) -> None:
    with pytest.raises(PermanentError, match="HANDOFF_HUBSPOT_ACCESS_TOKEN") as exc_info:
        connector(twin, access_token="pat-na1-revoked").create_account({"name": "X"})
    assert "INVALID_AUTHENTICATION" in str(exc_info.value)


@pytest.mark.parametrize(("properties", "field"), [
    ({"name": "X", "credit_limit": "5"}, "credit_limit"),
    ({"name": "X", "validation_status": "approved"}, "validation_status"),
])
def test_a_refused_value_is_a_data_error_naming_the_property(
    crm: HubSpotConnector, properties: dict[str, str], field: str
) -> None:
    with pytest.raises(DataError) as exc_info:
        crm.create_account(properties)
    assert exc_info.value.field == field


def test_unavailability_is_transient(twin: TwinProcess, crm: HubSpotConnector, deal_id: str) -> None:
    set_faults(twin, unavailable_rate=1.0)
    with pytest.raises(TransientError) as exc_info:
        crm.write_back(provisioned(deal_id))
    assert not isinstance(exc_info.value, ThrottledError)


def test_a_lost_response_is_transient_though_the_write_committed(
    twin: TwinProcess, crm: HubSpotConnector, deal_id: str
) -> None:
    set_faults(twin, lose_response_rate=1.0)
    [outcome] = crm.write_back_many([provisioned(deal_id)])
    assert type(outcome) is TransientError
    set_faults(twin)
    assert crm.get_opportunity(deal_id)["handoff_status"] == "provisioned"


def test_a_missing_deal_is_permanent(crm: HubSpotConnector) -> None:
    with pytest.raises(PermanentError):
        crm.get_opportunity("99999999")


def test_an_unreachable_portal_is_transient(twin: TwinProcess) -> None:
    with pytest.raises(TransientError):
        connector(twin, base_url="http://127.0.0.1:9", timeout=2.0).create_account({"name": "X"})
