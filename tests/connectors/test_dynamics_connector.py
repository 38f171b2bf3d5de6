"""DynamicsConnector against the twin in its own process: the CRM port, change reading,
reconciliation figures, idempotent upserts, pacing, tracing, and every failure arriving as the
right class of handoff's error taxonomy."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from handoff.connectors.contract import CrmSource
from handoff.connectors.dynamics import ColumnNames, DynamicsConnector
from handoff.connectors.dynamics.errors import PreconditionFailed, RecordNotFound
from handoff.connectors.dynamics.mapping import account_columns, opportunity_columns
from handoff.connectors.fieldmap import parse_field_map
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
from handoff.observability import lifecycle, new_trace_id
from handoff.webhooks.reading import crm_readers
from tests.connectors.dynamics_support import (
    api,
    connector,
    fresh,
    requests_log,
    requests_seen,
    set_faults,
    set_twin,
    twin_records,
)

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
MISSING = "0b7f2e10-0000-4000-8000-00000000dead"
DEAL = {
    "name": "Globex migration", "amount": "1234567.89", "currency": "EUR", "close_date": "2026-11-26",
    "billing_method": "time_and_materials", "contract_status": "approved", "sow_status": "pending",
    "legal_entity": "Handoff GmbH", "description": "Phase 1",
}



@pytest.fixture
def twin(dynamics_twin: TwinProcess) -> TwinProcess:
    return fresh(dynamics_twin)


@pytest.fixture
def crm(twin: TwinProcess) -> Iterator[DynamicsConnector]:
    with connector(twin) as c:
        yield c


@pytest.fixture
def account_id(crm: DynamicsConnector) -> str:
    return crm.create_account(account_columns({"name": "Globex", "currency": "EUR"}, crm.currency_ids()))


@pytest.fixture
def deal_id(crm: DynamicsConnector, account_id: str) -> str:
    deal = crm.create_opportunity(opportunity_columns(DEAL, crm.currency_ids()), account_id=account_id)
    crm.win_opportunity(deal)
    return deal


def provisioned(deal_id: str, detail: str = "project created", **changes: object) -> CrmStatusUpdate:
    return CrmStatusUpdate(deal_id, ProvisioningStatus.PROVISIONED, detail, "PRJ-7", **changes)


def seed_opportunities(crm: DynamicsConnector, count: int) -> list[str]:
    return [crm.create_opportunity({"name": f"Deal {n}"}) for n in range(count)]


def freeze(twin: TwinProcess, moment: str) -> None:
    set_twin(twin, frozen_clock=moment)


def test_the_connector_is_a_whole_crm_source_with_a_budget(crm: DynamicsConnector) -> None:
    assert crm.system == "dynamics"
    assert isinstance(crm, CrmSource)  # connectors/contract.py
    assert isinstance(crm, CrmChangeFeed) and isinstance(crm, CrmSnapshotSource)
    assert (crm.budget.requests, crm.budget.window_seconds, crm.budget.concurrency) == (6000, 300.0, 52)
    assert crm_readers(crm) == {"dynamics": crm}  # webhooks read records through it as it is


# --- the CRM port ----------------------------------------------------------------------------------

def test_write_back_round_trip(crm: DynamicsConnector, deal_id: str) -> None:
    billing = BillingSummary(Money(Decimal("1000.10"), "EUR"), Money(Decimal("250"), "EUR"),
                             Money(Decimal("750.10"), "EUR"), 3, ("INV/0001",))
    assert crm.write_back_many([provisioned(deal_id, billing=billing)]) == [None]
    row = crm.get_opportunity(deal_id)
    assert (row["handoff_projectid"], row["handoff_status"], row["handoff_statusdetail"]) == (
        "PRJ-7", "provisioned", "project created")
    assert (row["handoff_invoicedamount"], row["handoff_paidamount"], row["handoff_openbalance"],
            row["handoff_daysoverdue"]) == (Decimal("1000.10"), Decimal("250"), Decimal("750.10"), 3)
    assert row["handoff_invoicenumbers"] == "INV/0001"
    crm.write_back_many([CrmStatusUpdate(deal_id, ProvisioningStatus.PARKED, "SOW missing")])
    assert crm.get_opportunity(deal_id)["handoff_projectid"] is None  # cleared


def test_write_back_many_reports_each_update(
    twin: TwinProcess, crm: DynamicsConnector, deal_id: str
) -> None:
    outcomes = crm.write_back_many([provisioned(deal_id), provisioned(MISSING), provisioned("not-an-id")])
    assert outcomes[0] is None
    assert isinstance(outcomes[1], RecordNotFound) and MISSING in str(outcomes[1])
    assert isinstance(outcomes[2], DataError) and outcomes[2].field == "opportunity_id"
    assert crm.get_opportunity(deal_id)["handoff_status"] == "provisioned"
    assert len(twin_records(twin, "opportunities")) == 1  # If-Match: * made no opportunity of MISSING


def test_write_back_many_sends_one_batch_per_hundred(
    twin: TwinProcess, crm: DynamicsConnector
) -> None:
    ids = seed_opportunities(crm, 250)
    before = requests_seen(twin)
    assert crm.write_back_many([provisioned(i) for i in ids]) == [None] * 250
    assert requests_seen(twin) - before == 3
    assert [r["path"] for r in requests_log(twin)[-3:]] == ["/api/data/v9.2/$batch"] * 3
    assert {r["handoff_status"] for r in twin_records(twin, "opportunities")} == {"provisioned"}


def test_an_opportunity_twice_in_one_batch_ends_with_the_last(crm: DynamicsConnector, deal_id: str) -> None:
    outcomes = crm.write_back_many([provisioned(deal_id, "first"), provisioned(deal_id, "second")])
    assert outcomes == [None, None]
    assert crm.get_opportunity(deal_id)["handoff_statusdetail"] == "second"


def test_a_column_the_environment_lacks_is_a_data_error_naming_it(
    twin: TwinProcess, deal_id: str
) -> None:
    misconfigured = connector(twin, columns=ColumnNames(status="handoff_state"))
    other = misconfigured.create_opportunity({"name": "Other"})
    outcomes = misconfigured.write_back_many([provisioned(deal_id), provisioned(other)])  # a $batch
    assert len(outcomes) == 2
    assert all(isinstance(o, DataError) and o.field == "handoff_state" for o in outcomes)
    [single] = misconfigured.write_back_many([provisioned(deal_id)])  # a plain PATCH
    assert isinstance(single, DataError) and single.field == "handoff_state"


def test_a_value_too_long_for_its_column_is_a_data_error_naming_it(crm: DynamicsConnector) -> None:
    with pytest.raises(DataError) as exc_info:
        crm.create_account({"name": "x" * 161})
    assert exc_info.value.field == "name" and "maximum allowed length of '160'" in str(exc_info.value)


def test_one_connector_serves_many_threads(crm: DynamicsConnector, deal_id: str) -> None:
    def write(n: int) -> None:
        crm.write_back(provisioned(deal_id, detail=f"write {n}"))

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(write, range(120)))
    assert crm.get_opportunity(deal_id)["handoff_statusdetail"].startswith("write")


def test_every_call_carries_the_deals_trace(
    twin: TwinProcess, crm: DynamicsConnector, deal_id: str
) -> None:
    correlation_id = new_trace_id()
    with lifecycle(correlation_id, deal_id):
        crm.write_back_many([provisioned(deal_id), provisioned(deal_id, "again")])
        crm.opportunity_event_data(deal_id)
    seen = requests_log(twin)[-2:]
    assert [r["method"] for r in seen] == ["POST", "GET"]
    assert all(r["correlation_id"] == correlation_id for r in seen)
    assert all(r["traceparent"].split("-")[1] == correlation_id for r in seen)


# --- alternate-key upserts -------------------------------------------------------------------------

def test_a_lost_response_after_commit_is_transient_and_the_retry_leaves_one_account(
    twin: TwinProcess, crm: DynamicsConnector
) -> None:
    set_faults(twin, lose_response_rate=1.0)
    with pytest.raises(TransientError) as exc_info:
        crm.upsert_account("HO-C-42", {"name": "Initech"})
    assert type(exc_info.value) is TransientError
    set_faults(twin)
    account = crm.upsert_account("HO-C-42", {"name": "Initech Ltd"})
    [row] = twin_records(twin, "accounts")
    assert (row["accountid"], row["name"], row["handoff_key"]) == (account, "Initech Ltd", "HO-C-42")


def test_upserts_can_be_create_only_or_update_only(crm: DynamicsConnector) -> None:
    created = crm.upsert_account("K-1", {"name": "A"}, only="create")
    with pytest.raises(PreconditionFailed):
        crm.upsert_account("K-1", {"name": "B"}, only="create")
    assert crm.upsert_account("K-1", {"name": "B"}, only="update") == created
    with pytest.raises(RecordNotFound):
        crm.upsert_account("K-2", {"name": "C"}, only="update")
    assert crm.get_account(created)["name"] == "B"
    assert crm.upsert_opportunity("O'Brien/1", {"name": "Quoted key"}) == crm.upsert_opportunity(
        "O'Brien/1", {"name": "Quoted key"})


def test_a_lost_write_back_response_is_transient_though_the_write_committed(
    twin: TwinProcess, crm: DynamicsConnector, deal_id: str
) -> None:
    set_faults(twin, lose_response_rate=1.0)
    [outcome] = crm.write_back_many([provisioned(deal_id)])
    assert type(outcome) is TransientError
    set_faults(twin)
    assert crm.get_opportunity(deal_id)["handoff_status"] == "provisioned"


# --- reading changes -------------------------------------------------------------------------------

def test_changed_opportunities_yield_canonical_event_data(
    crm: DynamicsConnector, account_id: str, deal_id: str
) -> None:
    [data] = crm.changed_opportunities(LONG_AGO)
    assert data == DEAL | {"id": deal_id, "account_id": account_id, "stage": "Won", "is_won": True,
                           "owner": data["owner"], "modified_by": data["modified_by"],
                           "version": data["version"]}
    assert data["version"].endswith(".000Z") and data["owner"]
    assert crm.opportunity_event_data(deal_id) == data  # what a webhook's fetch-then-event reads


def test_changed_opportunities_only_after_the_given_moment(crm: DynamicsConnector, deal_id: str) -> None:
    [first] = crm.changed_opportunities(LONG_AGO)
    stamp = datetime.fromisoformat(first["version"])
    assert [d["id"] for d in crm.changed_opportunities(stamp - timedelta(seconds=1))] == [deal_id]
    assert list(crm.changed_opportunities(stamp)) == []
    assert list(crm.changed_opportunities(stamp + timedelta(milliseconds=999))) == []  # floored
    with pytest.raises(ValueError):
        list(crm.changed_opportunities(datetime(2000, 1, 1)))


def test_change_feeds_read_every_page(twin: TwinProcess) -> None:
    crm = connector(twin, page_size=2)
    freeze(twin, "2026-11-26T10:00:00Z")
    early = seed_opportunities(crm, 3)
    freeze(twin, "2026-11-26T10:00:01Z")
    late = seed_opportunities(crm, 4)
    accounts = [crm.create_account({"name": f"A{n}"}) for n in range(5)]
    read = [d["id"] for d in crm.changed_opportunities(LONG_AGO)]
    assert read == sorted(early) + sorted(late)  # modifiedon, then the row id
    assert sorted(d["id"] for d in crm.changed_accounts(LONG_AGO)) == sorted(accounts)
    pages = [r for r in requests_log(twin) if r["path"].endswith("/opportunities") and r["method"] == "GET"]
    assert len(pages) == 4 and "$skiptoken" in pages[-1]["query"]


def test_a_record_edited_while_the_feed_is_read_is_not_lost(twin: TwinProcess) -> None:
    crm = connector(twin, page_size=2)
    freeze(twin, "2026-11-26T10:00:00Z")
    ids = sorted(seed_opportunities(crm, 6))
    feed = crm.changed_opportunities(LONG_AGO)
    read = [next(feed)["id"], next(feed)["id"]]
    freeze(twin, "2026-11-26T10:00:05Z")
    crm.update_opportunity(ids[0], {"description": "edited mid-read"})  # read: moves to the end
    crm.update_opportunity(ids[3], {"description": "edited mid-read"})  # unread: moves to the end
    read += [d["id"] for d in feed]
    assert read == [*ids[:3], *ids[4:], *sorted([ids[0], ids[3]])]  # nothing skipped


def test_changed_accounts_yield_customer_event_data(
    twin: TwinProcess, crm: DynamicsConnector
) -> None:
    account_id = crm.create_account(account_columns({
        "name": "Initech", "currency": "GBP", "tax_jurisdiction": "GB", "legal_entity": "Initech Ltd",
        "validation_status": "valid"}, crm.currency_ids()))
    [data] = crm.changed_accounts(LONG_AGO)
    assert data == {"id": account_id, "name": "Initech", "currency": "GBP", "tax_jurisdiction": "GB",
                    "legal_entity": "Initech Ltd", "validation_status": "valid", "version": data["version"]}
    assert crm.customer_event_data(account_id) == data


def test_a_currency_added_after_the_table_was_read_is_found(
    crm: DynamicsConnector, twin: TwinProcess
) -> None:
    assert "CHF" not in crm.currency_ids()
    with api(twin) as client:
        response = client.post("transactioncurrencies",
                               json={"isocurrencycode": "CHF", "currencyname": "Franc"})
        chf = response.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    account = crm.create_account({"name": "Swiss",
                                  "transactioncurrencyid@odata.bind": f"/transactioncurrencies({chf})"})
    assert crm.customer_event_data(account)["currency"] == "CHF"


def test_a_configured_field_mapping_reads_columns_where_the_firm_keeps_them(
    twin: TwinProcess
) -> None:
    rules = {"opportunity": {"legal_entity": {"from": "description", "lookup": {"Company 1000": "UK01"}},
                             "billing_method": {"constant": "fixed_fee"}}}
    crm = connector(twin, field_map=parse_field_map("dynamics", rules, lambda _key: ""))
    deal = crm.create_opportunity({"name": "Mapped", "description": "Company 1000",
                                   "handoff_billingmethod": "milestone"})
    [seen] = crm.changed_opportunities(LONG_AGO)
    assert (seen["legal_entity"], seen["billing_method"]) == ("UK01", "fixed_fee")
    assert crm.opportunity_event_data(deal) == seen


# --- reconciliation --------------------------------------------------------------------------------

def test_deal_figures_page_through_every_opportunity(twin: TwinProcess, deal_id: str) -> None:
    crm = connector(twin, page_size=2)
    others = seed_opportunities(crm, 4)
    crm.write_back_many([provisioned(deal_id, billing=BillingSummary(
        Money(Decimal("1000.10"), "EUR"), Money(Decimal("0"), "EUR"), Money(Decimal("1000.10"), "EUR"), 0))])
    figures = {f.deal_id: f for f in crm.deal_figures()}
    assert sorted(figures) == sorted([deal_id, *others])
    assert figures[deal_id] == DealFigures(deal_id, "EUR", Decimal("1234567.89"), True, "approved",
                                           "pending", Decimal("1000.10"), Decimal("0.00"))
    assert figures[others[0]] == DealFigures(others[0], "USD", None, False, None, None)  # the base currency


# --- limits, and failures translated ---------------------------------------------------------------

def test_service_protection_429_is_a_throttled_error_with_retry_after(
    twin: TwinProcess, crm: DynamicsConnector, deal_id: str
) -> None:
    set_twin(twin, request_limit=1, window_seconds=60)  # spent on creating and winning the deal
    with pytest.raises(ThrottledError) as exc_info:
        crm.opportunity_event_data(deal_id)
    assert 55 <= exc_info.value.retry_after <= 60  # type: ignore[operator]
    assert "0x80072322" in str(exc_info.value) and "number of requests limit" in str(exc_info.value)


def test_a_429_without_retry_after_waits_as_its_code_says(
    twin: TwinProcess, crm: DynamicsConnector, deal_id: str
) -> None:
    set_twin(twin, request_limit=1, window_seconds=60, send_retry_after=False)
    outcomes = crm.write_back_many([provisioned(deal_id, str(n)) for n in range(3)])
    assert all(isinstance(o, ThrottledError) and o.retry_after == 60.0 for o in outcomes)


def test_an_injected_throttle_carries_retry_after(
    twin: TwinProcess, crm: DynamicsConnector, deal_id: str
) -> None:
    set_faults(twin, throttle_rate=1.0, retry_after_seconds=7)
    with pytest.raises(ThrottledError) as exc_info:
        crm.write_back(provisioned(deal_id))
    assert exc_info.value.retry_after == 7


def test_the_concurrency_bound_keeps_the_connector_under_the_limit(
    twin: TwinProcess, deal_id: str
) -> None:
    set_twin(twin, concurrency_limit=2, hold_ms=100)
    crowded = connector(twin, max_concurrency=8)
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: _outcome(lambda: crowded.get_opportunity(deal_id)), range(6)))
    throttled = [r for r in results if isinstance(r, ThrottledError)]
    assert throttled and all("concurrent" in str(r) and r.retry_after == 1 for r in throttled)
    polite = connector(twin, max_concurrency=2)
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(lambda _: _outcome(lambda: polite.get_opportunity(deal_id)), range(6)))
    assert not any(isinstance(r, Exception) for r in results)


def test_pacing_keeps_the_connector_under_the_request_limit(twin: TwinProcess) -> None:
    set_twin(twin, request_limit=3, window_seconds=0.4)
    crm = connector(twin, requests_per_window=3, window_seconds=0.5)
    started = time.monotonic()
    for n in range(7):
        crm.create_account({"name": f"A{n}"})
    assert time.monotonic() - started >= 0.9  # two full windows waited, and no 429


def test_a_bad_token_is_permanent_with_a_clear_message(twin: TwinProcess) -> None:
    with pytest.raises(PermanentError, match="HANDOFF_DYNAMICS_ACCESS_TOKEN") as exc_info:
        connector(twin, access_token="eyJ.expired").create_account({"name": "X"})
    assert "HTTP 401" in str(exc_info.value) and type(exc_info.value) is PermanentError


def test_unavailability_is_transient(twin: TwinProcess, crm: DynamicsConnector, deal_id: str) -> None:
    set_faults(twin, unavailable_rate=1.0)
    with pytest.raises(TransientError) as exc_info:
        crm.write_back(provisioned(deal_id))
    assert not isinstance(exc_info.value, ThrottledError)
    outcomes = crm.write_back_many([provisioned(deal_id), provisioned(deal_id)])  # a $batch refused whole
    assert all(type(o) is TransientError for o in outcomes)


def test_a_missing_opportunity_is_permanent(crm: DynamicsConnector) -> None:
    with pytest.raises(RecordNotFound):
        crm.opportunity_event_data(MISSING)
    with pytest.raises(DataError):
        crm.opportunity_event_data("not-a-guid")


def test_an_unreachable_environment_is_transient(twin: TwinProcess) -> None:
    with pytest.raises(TransientError):
        connector(twin, base_url="http://127.0.0.1:9", timeout=2.0).create_account({"name": "X"})


def test_who_am_i(crm: DynamicsConnector) -> None:
    assert set(crm.who_am_i()) >= {"UserId", "BusinessUnitId", "OrganizationId"}


def _outcome(call: object) -> object:
    try:
        return call()  # type: ignore[operator]
    except Exception as exc:  # the test inspects what each thread got
        return exc
