"""NetSuiteConnector against the running twin: idempotent upserts, invoices and credit notes
issued once, faults translated into handoff's error taxonomy, exact money, paging."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from handoff.connectors.netsuite import NetSuiteConnector, NetSuiteSettings
from handoff.connectors.ports import BillingConnector
from handoff.connectors.twin_process import TwinProcess, free_port
from handoff.domain import InvoiceStatus, Money
from handoff.errors import DataError, PermanentError, ThrottledError, TransientError
from tests.conftest import reset_twin
from tests.connectors.netsuite_support import (
    TOKEN,
    a_customer,
    a_project,
    an_invoice_request,
    pay,
    requests_seen,
    set_faults,
    set_twin_settings,
    summary,
    twin_records,
)


def settings_for(twin: TwinProcess, **options: Any) -> NetSuiteSettings:
    return NetSuiteSettings(f"{twin.base_url}/services/rest", TOKEN,
                            subsidiary_ids={"UK01": "3"}, timeout=5.0, **options)


@pytest.fixture
def netsuite(netsuite_twin: TwinProcess) -> Iterator[NetSuiteConnector]:
    reset_twin(netsuite_twin)
    with NetSuiteConnector(settings_for(netsuite_twin)) as connector:
        yield connector


@pytest.fixture
def customer_id(netsuite: NetSuiteConnector) -> str:
    return netsuite.upsert_customer("HO-CUST-1", a_customer()).target_id


def test_upserting_a_customer_twice_leaves_one_record_with_one_id(
    netsuite: NetSuiteConnector, netsuite_twin: TwinProcess
) -> None:
    first = netsuite.upsert_customer("HO-CUST-1", a_customer())
    second = netsuite.upsert_customer("HO-CUST-1", a_customer(name="Acme Consulting Ltd"))
    assert first.target_id == second.target_id
    assert summary(netsuite_twin)["counts"]["customer"] == 1
    record = netsuite.get_customer("HO-CUST-1")
    assert record is not None and record["companyName"] == "Acme Consulting Ltd"


def test_upserting_a_project_twice_leaves_one_project_under_its_customer(
    netsuite: NetSuiteConnector, netsuite_twin: TwinProcess, customer_id: str
) -> None:
    first = netsuite.upsert_project(a_project(), customer_id)
    second = netsuite.upsert_project(a_project(name="Acme rollout, phase 1"), customer_id)
    assert first.target_id == second.target_id
    assert summary(netsuite_twin)["jobs_per_parent"] == {customer_id: 1}


def test_a_project_reads_back_exactly_as_mapped(
    netsuite: NetSuiteConnector, customer_id: str
) -> None:
    netsuite.upsert_project(a_project(legal_entity="UK01"), customer_id)
    job = netsuite.get_project("HO-OPP-1")
    assert job is not None
    assert job["jobPrice"] == Decimal("1234567.89")
    assert (job["parent"]["id"], job["subsidiary"]["refName"]) == (customer_id, "UK01")
    assert (job["currency"]["refName"], job["startDate"]) == ("US Dollar", "2025-03-01")
    assert (job["jobBillingType"]["refName"], job["entityStatus"]["refName"]) == (
        "Fixed Bid, Interval", "Pending")


def test_looking_up_an_unknown_external_id_gives_none(netsuite: NetSuiteConnector) -> None:
    assert netsuite.get_project("HO-NOPE") is None


def test_a_lost_response_is_transient_and_the_retry_finds_the_committed_record(
    netsuite: NetSuiteConnector, netsuite_twin: TwinProcess, customer_id: str
) -> None:
    set_faults(netsuite_twin, lose_response_rate=1.0)
    with pytest.raises(TransientError):
        netsuite.upsert_project(a_project(), customer_id)
    set_faults(netsuite_twin)
    committed = twin_records(netsuite_twin, "job")
    assert [job["externalId"] for job in committed] == ["HO-OPP-1"]
    retried = netsuite.upsert_project(a_project(), customer_id)
    assert retried.target_id == committed[0]["id"]
    assert summary(netsuite_twin)["counts"]["job"] == 1


def test_throttling_is_throttled_error_with_retry_after(
    netsuite: NetSuiteConnector, netsuite_twin: TwinProcess
) -> None:
    set_faults(netsuite_twin, throttle_rate=1.0, retry_after_seconds=3)
    with pytest.raises(ThrottledError) as caught:
        netsuite.upsert_customer("HO-CUST-1", a_customer())
    assert caught.value.retry_after == 3.0


def test_unavailable_is_transient(netsuite: NetSuiteConnector, netsuite_twin: TwinProcess) -> None:
    set_faults(netsuite_twin, unavailable_rate=1.0)
    with pytest.raises(TransientError) as caught:
        netsuite.upsert_customer("HO-CUST-1", a_customer())
    assert not isinstance(caught.value, ThrottledError)


def test_a_maintenance_window_is_transient_with_its_remaining_time(
    netsuite: NetSuiteConnector, netsuite_twin: TwinProcess
) -> None:
    set_faults(netsuite_twin, maintenance_seconds=2)
    with pytest.raises(TransientError) as caught:
        netsuite.get_customer("HO-CUST-1")
    assert caught.value.retry_after in (1.0, 2.0)


def test_an_unmapped_currency_is_refused_before_any_call(
    netsuite: NetSuiteConnector, netsuite_twin: TwinProcess
) -> None:
    with pytest.raises(DataError) as caught:
        netsuite.upsert_customer("HO-CUST-1", a_customer(currency="JPY"))
    assert caught.value.field == "currency"
    assert requests_seen(netsuite_twin) == 0


def test_an_unknown_parent_is_a_data_error_on_parent(netsuite: NetSuiteConnector) -> None:
    with pytest.raises(DataError) as caught:
        netsuite.upsert_project(a_project(), "999999")
    assert caught.value.field == "parent"
    assert "Invalid Field Value 999999" in str(caught.value)


def test_a_bad_token_is_permanent(netsuite_twin: TwinProcess) -> None:
    settings = NetSuiteSettings(f"{netsuite_twin.base_url}/services/rest", "expired")
    with NetSuiteConnector(settings) as connector, pytest.raises(PermanentError) as caught:
        connector.upsert_customer("HO-CUST-1", a_customer())
    assert "NetSuite refused the credentials: Invalid login attempt." in str(caught.value)


def test_list_ids_walks_every_page(netsuite_twin: TwinProcess) -> None:
    reset_twin(netsuite_twin)
    with NetSuiteConnector(settings_for(netsuite_twin, page_size=2)) as connector:
        ids = [connector.upsert_customer(f"HO-C-{n}", a_customer()).target_id for n in range(5)]
        assert list(connector.list_ids("customer")) == ids


def test_without_location_the_id_is_read_back_by_external_id(
    netsuite: NetSuiteConnector, netsuite_twin: TwinProcess
) -> None:
    set_twin_settings(netsuite_twin, omit_location_on_put=True)
    result = netsuite.upsert_customer("HO-CUST-1", a_customer())
    assert result.target_id == twin_records(netsuite_twin, "customer")[0]["id"]
    assert requests_seen(netsuite_twin) == 2  # the PUT, then GET …/customer/eid:HO-CUST-1


def test_a_refused_connection_is_transient() -> None:
    settings = NetSuiteSettings(f"http://127.0.0.1:{free_port()}/services/rest", TOKEN)
    with NetSuiteConnector(settings) as connector, pytest.raises(TransientError):
        connector.get_customer("HO-CUST-1")


def test_one_connector_shared_by_sixteen_threads_makes_one_project_per_key(
    netsuite: NetSuiteConnector, netsuite_twin: TwinProcess, customer_id: str
) -> None:
    keys = [f"HO-OPP-{n}" for n in range(20)] * 4
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda key: netsuite.upsert_project(a_project(key), customer_id),
                                keys))
    assert len({result.target_id for result in results}) == 20
    totals = summary(netsuite_twin)
    assert (totals["counts"]["job"], totals["duplicate_external_ids"]) == (20, 0)


# --- invoices and credit notes -------------------------------------------------------------

def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


@pytest.fixture
def project_id(netsuite: NetSuiteConnector, customer_id: str) -> str:
    return netsuite.upsert_project(a_project(), customer_id).target_id


def test_the_connector_invoices(netsuite: NetSuiteConnector) -> None:
    assert isinstance(netsuite, BillingConnector)


def test_an_invoice_is_posted_with_its_number_and_totals_exact_to_the_cent(
    netsuite: NetSuiteConnector, netsuite_twin: TwinProcess, customer_id: str, project_id: str
) -> None:
    invoice = netsuite.issue_invoice(an_invoice_request("12345.67"), project_id)
    assert (invoice.external_id, invoice.number, invoice.status) == (
        "HO-I-006A-M1", "INV10001", InvoiceStatus.POSTED)
    assert (invoice.untaxed, invoice.tax, invoice.total, invoice.amount_due) == (
        usd("12345.67"), usd("0"), usd("12345.67"), usd("12345.67"))
    assert (invoice.invoice_date, invoice.due_date) == (date(2025, 3, 10), date(2025, 4, 9))
    [record] = twin_records(netsuite_twin, "invoice")
    assert (record["entity"]["id"], record["job"]["id"]) == (customer_id, project_id)
    assert record["item"]["items"][0]["description"] == "Kick-off workshop"
    assert netsuite.read_invoice(invoice.target_id) == invoice


def test_issuing_again_finds_the_invoice_and_writes_nothing(
    netsuite: NetSuiteConnector, netsuite_twin: TwinProcess, project_id: str
) -> None:
    first = netsuite.issue_invoice(an_invoice_request(), project_id)
    seen = requests_seen(netsuite_twin)
    assert netsuite.issue_invoice(an_invoice_request(), project_id) == first
    assert requests_seen(netsuite_twin) == seen + 1  # GET …/invoice/eid:HO-I-006A-M1 only
    assert summary(netsuite_twin)["transactions"]["invoice"] == 1


def test_after_a_lost_response_the_retry_finds_the_committed_invoice(
    netsuite: NetSuiteConnector, netsuite_twin: TwinProcess, project_id: str
) -> None:
    # Seed 0 rolls 0.84, 0.76, 0.42: the look-up and the job read pass, the PUT commits and
    # its response is lost.
    set_faults(netsuite_twin, lose_response_rate=0.5, seed=0)
    seen = requests_seen(netsuite_twin)
    with pytest.raises(TransientError):
        netsuite.issue_invoice(an_invoice_request(), project_id)
    assert requests_seen(netsuite_twin) == seen + 3
    set_faults(netsuite_twin)
    [committed] = twin_records(netsuite_twin, "invoice")
    retried = netsuite.issue_invoice(an_invoice_request(), project_id)
    assert (retried.target_id, retried.number) == (committed["id"], "INV10001")
    assert summary(netsuite_twin)["transactions"]["invoice"] == 1


def test_a_credit_note_is_a_credit_memo_that_comes_back_negative(
    netsuite: NetSuiteConnector, netsuite_twin: TwinProcess, project_id: str
) -> None:
    credit = netsuite.issue_invoice(an_invoice_request("-400.10", "HO-CN-006A-M1"), project_id)
    assert (credit.number, credit.status) == ("CM10001", InvoiceStatus.POSTED)
    assert (credit.untaxed, credit.total, credit.amount_due) == (
        usd("-400.10"), usd("-400.10"), usd("-400.10"))
    [memo] = twin_records(netsuite_twin, "creditMemo")
    assert memo["total"] > 0  # NetSuite keeps credit memos positive
    assert netsuite.read_invoice(credit.target_id) == credit


def test_a_second_document_for_a_line_gets_an_id_netsuite_accepts(
    netsuite: NetSuiteConnector, project_id: str
) -> None:
    first = netsuite.issue_invoice(an_invoice_request("100"), project_id)
    second = netsuite.issue_invoice(an_invoice_request("50", "HO-I-006A-M1#2", "M1#2"),
                                    project_id)
    assert second.external_id == "HO-I-006A-M1#2" and second.target_id != first.target_id


def test_read_invoice_follows_payments_until_paid(
    netsuite: NetSuiteConnector, netsuite_twin: TwinProcess, project_id: str
) -> None:
    invoice = netsuite.issue_invoice(an_invoice_request("12345.67"), project_id)
    pay(netsuite_twin, invoice.target_id, "10000.00")
    partly = netsuite.read_invoice(invoice.target_id)
    assert (partly.status, partly.amount_due, partly.paid) == (
        InvoiceStatus.POSTED, usd("2345.67"), usd("10000.00"))
    pay(netsuite_twin, invoice.target_id, "2345.67")
    paid = netsuite.read_invoice(invoice.target_id)
    assert (paid.status, paid.amount_due, paid.paid) == (
        InvoiceStatus.PAID, usd("0.00"), usd("12345.67"))


def test_an_unknown_project_or_document_is_permanent(netsuite: NetSuiteConnector) -> None:
    with pytest.raises(PermanentError):
        netsuite.issue_invoice(an_invoice_request(), "999999")
    with pytest.raises(PermanentError, match="no invoice or credit memo 999999"):
        netsuite.read_invoice("999999")


def test_an_item_netsuite_does_not_have_is_a_data_error_on_the_line(
    netsuite_twin: TwinProcess, project_id: str
) -> None:
    with NetSuiteConnector(settings_for(netsuite_twin, service_item_id="9999")) as connector, \
            pytest.raises(DataError) as caught:
        connector.issue_invoice(an_invoice_request(), project_id)
    assert caught.value.field == "item.items[0].item"
