"""SapConnector against the SAP twin in its own process: idempotent upserts (also after a lost
response), the CSRF token and a stale ETag handled, `$batch` where it saves calls, faults
translated into handoff's error taxonomy, paging, reconciliation's bulk reads, and billing
documents read back as SAP's billing run and payments leave them."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from handoff.connectors.contract import ErpTarget
from handoff.connectors.ports import BillingConnector, ErpSnapshotSource, ProjectFigures
from handoff.connectors.sap import Organization, SapConnector
from handoff.connectors.twin_process import TwinProcess
from handoff.domain import InvoiceStatus, Milestone, Money, ProjectStatus
from handoff.errors import DataError, PermanentError, ThrottledError, TransientError
from handoff.observability import lifecycle
from tests.connectors.sap_support import (
    a_customer,
    a_project,
    bill,
    calls,
    cancel,
    connector,
    forget_requests,
    fresh,
    pay,
    requests_seen,
    set_faults,
    set_twin,
    settings_for,
    summary,
    twin_records,
)


@pytest.fixture
def twin(sap_twin: TwinProcess) -> TwinProcess:
    return fresh(sap_twin)  # type: ignore[return-value]


@pytest.fixture
def sap(twin: TwinProcess) -> Iterator[SapConnector]:
    with connector(twin) as made:
        yield made


@pytest.fixture
def customer_id(sap: SapConnector) -> str:
    return sap.upsert_customer("HO-C-001A", a_customer()).target_id


def seed_losing(request: int, rate: float = 0.5) -> int:
    """A fault seed whose draws let `request - 1` requests through, then lose the next one's
    response (sandbox.py draws one number per request)."""
    for seed in range(10_000):
        rolls = random.Random(seed)
        draws = [rolls.random() for _ in range(request)]
        if all(d >= rate for d in draws[:-1]) and draws[-1] < rate:
            return seed
    raise AssertionError("no such seed")


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


# --- ports ---------------------------------------------------------------------------------------------

def test_the_connector_is_an_erp_target_with_a_budget_but_issues_no_invoices(sap: SapConnector) -> None:
    assert isinstance(sap, ErpTarget) and isinstance(sap, ErpSnapshotSource)
    assert not isinstance(sap, BillingConnector)  # SAP's billing run makes billing documents
    assert sap.budget.concurrency == 16 and "no published OData rate limit" in sap.budget.source


# --- customers -----------------------------------------------------------------------------------------

def test_upserting_a_customer_twice_leaves_one_partner_with_one_number(
    sap: SapConnector, twin: TwinProcess
) -> None:
    first = sap.upsert_customer("HO-C-001A", a_customer())
    second = sap.upsert_customer("HO-C-001A", a_customer(name="Acme Consulting Ltd"))
    assert (first.target_id, first.created, second.target_id, second.created) == (
        first.target_id, True, first.target_id, False)
    [partner] = twin_records(twin, "A_BusinessPartner")
    assert (partner["OrganizationBPName1"], partner["BusinessPartnerIDByExtSystem"]) == (
        "Acme Consulting Ltd", "HO-C-001A")
    assert partner["Customer"] == first.target_id
    assert twin_records(twin, "A_CustomerSalesArea")[0]["Currency"] == "USD"


def test_an_unchanged_customer_costs_one_read(
    sap: SapConnector, twin: TwinProcess, customer_id: str
) -> None:
    forget_requests(twin)
    assert sap.upsert_customer("HO-C-001A", a_customer()).target_id == customer_id
    assert calls(twin) == ["GET A_BusinessPartner"]


def test_an_account_id_too_long_for_the_external_id_field_is_found_again(
    sap: SapConnector, twin: TwinProcess
) -> None:
    external_id = "HO-C-001Dn00000AbCdEFAQ"  # 23 characters; the field holds 20
    first = sap.upsert_customer(external_id, a_customer())
    assert sap.upsert_customer(external_id, a_customer()).target_id == first.target_id
    assert len(twin_records(twin, "A_BusinessPartner")[0]["BusinessPartnerIDByExtSystem"]) == 20
    assert sap.get_customer(external_id) is not None


def test_a_lost_create_of_a_customer_is_found_by_the_retry(sap: SapConnector, twin: TwinProcess) -> None:
    sap.upsert_customer("HO-C-OTHER", a_customer())  # the session and its token exist now
    set_faults(twin, lose_response_rate=0.5, seed=seed_losing(2))  # the look-up passes, the POST is lost
    with pytest.raises(TransientError):
        sap.upsert_customer("HO-C-001A", a_customer())
    set_faults(twin)
    assert summary(twin)["counts"]["A_BusinessPartner"] == 2  # it was committed
    retried = sap.upsert_customer("HO-C-001A", a_customer())
    assert retried.created is False
    assert summary(twin)["counts"]["A_BusinessPartner"] == 2


# --- projects ------------------------------------------------------------------------------------------

def test_a_project_is_made_with_a_billing_wbs_element_per_milestone(
    sap: SapConnector, twin: TwinProcess, customer_id: str
) -> None:
    result = sap.upsert_project(a_project(), customer_id)
    assert result.created is True
    [project] = twin_records(twin, "A_EnterpriseProject")
    partner = twin_records(twin, "A_BusinessPartner")[0]
    assert (project["ProjectUUID"], project["Project"], project["CustomerUUID"]) == (
        result.target_id, "HO-P-006A", partner["BusinessPartnerUUID"])
    assert (project["ProjectStartDate"], project["ProjectCurrency"], project["CompanyCode"]) == (
        "/Date(1740787200000)/", "USD", "1710")
    elements = twin_records(twin, "A_EnterpriseProjectElement")
    assert [(e["ProjectElement"], e["ProjectElementDescription"], e["WBSElementIsBillingElement"])
            for e in elements] == [("HO-P-006A.M1", "Kick-off workshop", True),
                                   ("HO-P-006A.M2", "Go-live", True)]


def test_upserting_a_project_again_changes_nothing_and_writes_nothing(
    sap: SapConnector, twin: TwinProcess, customer_id: str
) -> None:
    first = sap.upsert_project(a_project(), customer_id)
    forget_requests(twin)
    second = sap.upsert_project(a_project(), customer_id)
    assert (second.target_id, second.created) == (first.target_id, False)
    assert calls(twin) == ["GET A_EnterpriseProject"]
    assert summary(twin)["elements_per_project"] == {"HO-P-006A": 2}


def test_changes_to_a_project_go_in_one_batch_change_set(
    sap: SapConnector, twin: TwinProcess, customer_id: str
) -> None:
    sap.upsert_project(a_project(), customer_id)
    forget_requests(twin)
    grown = a_project(name="Acme rollout, phase 1", status=ProjectStatus.ACTIVE, milestones=(
        Milestone("M1", "Kick-off and discovery", usd("234567.89")),
        Milestone("M2", "Go-live", usd("900000.00")), Milestone("M3", "Hypercare", usd("100000.00"))))
    sap.upsert_project(grown, customer_id)
    assert calls(twin) == ["GET A_EnterpriseProject", "POST $batch"]
    [project] = twin_records(twin, "A_EnterpriseProject")
    assert (project["ProjectDescription"], project["ProcessingStatus"]) == ("Acme rollout, phase 1", "10")
    elements = {e["ProjectElement"]: e for e in twin_records(twin, "A_EnterpriseProjectElement")}
    assert elements["HO-P-006A.M1"]["ProjectElementDescription"] == "Kick-off and discovery"
    assert elements["HO-P-006A.M3"]["ProcessingStatus"] == "10"
    assert sap.upsert_project(a_project(status=ProjectStatus.PENDING), customer_id).created is False
    assert twin_records(twin, "A_EnterpriseProject")[0]["ProcessingStatus"] == "10"  # never taken back


def test_a_lost_create_of_a_project_is_found_by_the_retry(
    sap: SapConnector, twin: TwinProcess, customer_id: str
) -> None:
    sap.upsert_project(a_project("HO-P-OTHER"), customer_id)  # the partner's GUID and the token are known
    set_faults(twin, lose_response_rate=0.5, seed=seed_losing(2))  # the look-up passes, the POST is lost
    forget_requests(twin)
    with pytest.raises(TransientError):
        sap.upsert_project(a_project(), customer_id)
    assert [(r["method"], r["fault"]) for r in requests_seen(twin)] == [
        ("GET", None), ("POST", "lose_response")]
    set_faults(twin)
    committed = [p for p in twin_records(twin, "A_EnterpriseProject") if p["Project"] == "HO-P-006A"]
    assert len(committed) == 1
    retried = sap.upsert_project(a_project(), customer_id)
    assert (retried.target_id, retried.created) == (committed[0]["ProjectUUID"], False)
    assert summary(twin)["elements_per_project"] == {"HO-P-OTHER": 2, "HO-P-006A": 2}


def test_an_expired_csrf_token_is_fetched_again_and_the_write_sent_once_more(
    sap: SapConnector, twin: TwinProcess
) -> None:
    set_twin(twin, csrf_lifetime_seconds=0.3)
    customer_id = sap.upsert_customer("HO-C-001A", a_customer()).target_id  # fetches a token
    time.sleep(0.4)
    forget_requests(twin)
    assert sap.upsert_customer("HO-C-001A", a_customer(name="Acme Two")).target_id == customer_id
    patch = f"PATCH A_BusinessPartner('{customer_id}')"
    assert calls(twin) == ["GET A_BusinessPartner", patch, "HEAD ", patch]  # refused, fetched, sent again
    assert twin_records(twin, "A_BusinessPartner")[0]["OrganizationBPName1"] == "Acme Two"


def test_a_stale_etag_is_read_again_and_the_change_made_on_the_fresh_record(
    sap: SapConnector, twin: TwinProcess, customer_id: str
) -> None:
    project_id = sap.upsert_project(a_project(), customer_id).target_id
    set_twin(twin, edit_before_next_write=True)  # someone saves the project in SAP meanwhile
    forget_requests(twin)
    sap.upsert_project(a_project(name="Acme rollout, renamed"), customer_id)
    patch = f"PATCH A_EnterpriseProject(guid'{project_id}')"
    # 412, read again, 204
    assert calls(twin) == ["GET A_EnterpriseProject", patch, "GET A_EnterpriseProject", patch]
    [project] = twin_records(twin, "A_EnterpriseProject")
    assert (project["ProjectDescription"], project["LastChangedByUser"]) == ("Acme rollout, renamed",
                                                                            "HANDOFF_COMM")


def test_a_stale_etag_in_a_change_set_sends_the_whole_change_set_again(
    sap: SapConnector, twin: TwinProcess, customer_id: str
) -> None:
    sap.upsert_project(a_project(), customer_id)
    set_twin(twin, edit_before_next_write=True)
    forget_requests(twin)
    grown = a_project(name="Acme rollout, renamed", milestones=(
        *a_project().milestones, Milestone("M3", "Hypercare", usd("1.00"))))
    sap.upsert_project(grown, customer_id)
    assert calls(twin) == ["GET A_EnterpriseProject", "POST $batch", "GET A_EnterpriseProject", "POST $batch"]
    assert summary(twin)["elements_per_project"] == {"HO-P-006A": 3}  # the first change set left nothing
    assert twin_records(twin, "A_EnterpriseProject")[0]["ProjectDescription"] == "Acme rollout, renamed"


def test_a_refused_change_set_is_the_error_of_its_failing_request_and_changes_nothing(
    twin: TwinProcess, customer_id: str
) -> None:
    with connector(twin) as sap:
        sap.upsert_project(a_project(), customer_id)
    moved = Organization("1710", "17101101", "YB999")  # a profit centre SAP does not have
    grown = a_project(milestones=(*a_project().milestones, Milestone("M3", "Hypercare", usd("1.00"))))
    with connector(twin, organizations={"US01": moved}) as sap, pytest.raises(DataError) as caught:
        sap.upsert_project(grown, customer_id)
    assert caught.value.field == "ProfitCenter"
    assert summary(twin)["elements_per_project"] == {"HO-P-006A": 2}


def test_one_connector_shared_by_sixteen_threads_makes_one_project_per_key(
    sap: SapConnector, twin: TwinProcess, customer_id: str
) -> None:
    keys = [f"HO-P-T{n}" for n in range(20)] * 4
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda key: sap.upsert_project(a_project(key), customer_id), keys))
    assert len({result.target_id for result in results}) == 20
    assert summary(twin)["counts"]["A_EnterpriseProject"] == 20
    assert set(summary(twin)["elements_per_project"].values()) == {2}


# --- errors --------------------------------------------------------------------------------------------

def test_a_value_sap_refuses_is_a_data_error_naming_the_field(twin: TwinProcess, customer_id: str) -> None:
    with connector(twin, project_profile_code="ZZ99") as sap, pytest.raises(DataError) as caught:
        sap.upsert_project(a_project(), customer_id)
    assert caught.value.field == "ProjectProfileCode"
    assert "ProjectProfileCode ZZ99 does not exist" in str(caught.value)


def test_an_unmapped_legal_entity_is_refused_before_any_call(sap: SapConnector, twin: TwinProcess) -> None:
    forget_requests(twin)
    with pytest.raises(DataError) as caught:
        sap.upsert_customer("HO-C-1", a_customer(legal_entity="FR01"))
    assert caught.value.field == "legal_entity"
    with pytest.raises(DataError) as caught:
        sap.upsert_project(a_project(legal_entity="FR01"), "10300001")
    assert caught.value.field == "legal_entity" and requests_seen(twin) == []


def test_an_unknown_business_partner_is_a_data_error(sap: SapConnector) -> None:
    with pytest.raises(DataError) as caught:
        sap.upsert_project(a_project(), "99999999")
    assert caught.value.field == "CustomerUUID"


def test_a_wrong_password_is_permanent_with_what_to_check(twin: TwinProcess) -> None:
    with connector(twin, password="expired") as sap, pytest.raises(PermanentError) as caught:
        sap.upsert_customer("HO-C-1", a_customer())
    assert "SAP refused the credentials of communication user 'HANDOFF_COMM'" in str(caught.value)
    assert "HANDOFF_SAP_PASSWORD" in str(caught.value)
    with connector(twin, sap_client="200") as sap, pytest.raises(PermanentError):
        sap.get_customer("HO-C-1")


def test_throttling_is_throttled_error_with_retry_after(sap: SapConnector, twin: TwinProcess) -> None:
    set_faults(twin, throttle_rate=1.0, retry_after_seconds=3)
    with pytest.raises(ThrottledError) as caught:
        sap.upsert_customer("HO-C-1", a_customer())
    assert caught.value.retry_after == 3.0


def test_unavailable_is_transient(sap: SapConnector, twin: TwinProcess) -> None:
    set_faults(twin, unavailable_rate=1.0)
    with pytest.raises(TransientError) as caught:
        sap.get_project("HO-P-1")
    assert not isinstance(caught.value, ThrottledError)


def test_a_maintenance_window_is_transient_with_its_remaining_time(
    sap: SapConnector, twin: TwinProcess
) -> None:
    set_faults(twin, maintenance_seconds=2)
    with pytest.raises(TransientError) as caught:
        sap.get_customer("HO-C-1")
    assert caught.value.retry_after in (1.0, 2.0)


def test_a_refused_connection_is_transient() -> None:
    nowhere = TwinProcess("sap", Path("."))  # a port nothing listens on (never started)
    with SapConnector(settings_for(nowhere)) as sap, pytest.raises(TransientError):
        sap.get_customer("HO-C-1")


# --- observability -------------------------------------------------------------------------------------

def test_every_call_carries_the_deals_trace(sap: SapConnector, twin: TwinProcess) -> None:
    correlation_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    forget_requests(twin)
    with lifecycle(correlation_id, "006A"):
        customer = sap.upsert_customer("HO-C-001A", a_customer()).target_id
        sap.upsert_project(a_project(), customer)
    seen = requests_seen(twin)
    assert len(seen) == 7  # look-up, token, create; partner GUID, look-up, token, create
    assert all(r["correlation_id"] == correlation_id and r["traceparent"].split("-")[1] == correlation_id
               for r in seen)


# --- reconciliation and billing documents ------------------------------------------------------------------

@pytest.fixture
def billed(sap: SapConnector, twin: TwinProcess, customer_id: str) -> dict[str, str]:
    """Two handoff projects, one project of someone else's, and their billing documents."""
    sap.upsert_project(a_project(), customer_id)
    sap.upsert_project(a_project("HO-P-006B", opportunity_id="006B", milestones=()), customer_id)
    sap.upsert_project(a_project("OTHER-1", milestones=()), customer_id)
    documents = {
        "m1": bill(twin, "HO-P-006A", "234567.89", wbs_element="HO-P-006A.M1", billing_date="2025-03-10"),
        "m2": bill(twin, "HO-P-006A", "1000000.00", tax_amount="190000.00", wbs_element="HO-P-006A.M2"),
        "credit": bill(twin, "HO-P-006A", "400.10", kind="credit_memo", wbs_element="HO-P-006A.M2"),
        "fee": bill(twin, "HO-P-006B", "5000.00"),
        "draft": bill(twin, "HO-P-006B", "10.00", posted=False),
        "cancelled": bill(twin, "HO-P-006B", "20.00"),
        "other": bill(twin, "OTHER-1", "99.00"),
    }
    numbers = {name: document["BillingDocument"] for name, document in documents.items()}
    pay(twin, numbers["m1"], "234567.89")
    pay(twin, numbers["m2"], "190000.00")
    numbers["cancellation"] = cancel(twin, numbers["cancelled"])["BillingDocument"]
    return numbers


def test_project_figures_list_handoffs_projects_without_a_value(
    sap: SapConnector, billed: dict[str, str]
) -> None:
    assert sorted(sap.project_figures(), key=lambda p: p.deal_id) == [
        ProjectFigures("006A", "USD", None), ProjectFigures("006B", "USD", None)]


def test_document_figures_list_every_billing_document_of_handoffs_projects(
    sap: SapConnector, billed: dict[str, str]
) -> None:
    figures = {f.document_id: f for f in sap.document_figures()}
    assert billed["other"] not in figures and billed["cancellation"] not in figures
    view = {name: (figures[n].deal_id, figures[n].status, figures[n].total, figures[n].amount_due)
            for name, n in billed.items() if n in figures}
    assert view == {
        "m1": ("006A", "paid", Decimal("234567.89"), Decimal("0.00")),
        "m2": ("006A", "posted", Decimal("1190000.00"), Decimal("1000000.00")),
        "credit": ("006A", "posted", Decimal("-400.10"), Decimal("-400.10")),
        "fee": ("006B", "posted", Decimal("5000.00"), Decimal("5000.00")),
        "draft": ("006B", "draft", Decimal("10.00"), Decimal("10.00")),
        "cancelled": ("006B", "cancelled", Decimal("20.00"), Decimal("0.00")),
    }
    assert figures[billed["m2"]].untaxed == Decimal("1000000.00")


def test_bulk_reads_walk_every_page(twin: TwinProcess, customer_id: str) -> None:
    with connector(twin, page_size=2) as sap:
        for n in range(5):
            sap.upsert_project(a_project(f"HO-P-{n}", milestones=()), customer_id)
            bill(twin, f"HO-P-{n}", "100.00")
        forget_requests(twin)
        assert sorted(p.deal_id for p in sap.project_figures()) == [str(n) for n in range(5)]
        skips = [r["query"] for r in requests_seen(twin) if "%24skip" in r["query"] or "$skip" in r["query"]]
        assert len(skips) == 2  # pages at $skip=2 and $skip=4 after the first
        assert len(list(sap.document_figures())) == 5


def test_server_side_pages_are_followed(sap: SapConnector, twin: TwinProcess, customer_id: str) -> None:
    for n in range(5):
        sap.upsert_project(a_project(f"HO-P-{n}", milestones=()), customer_id)
    set_twin(twin, server_page_size=2)
    forget_requests(twin)
    assert len(list(sap.project_figures())) == 5
    assert [r["query"].count("skiptoken") for r in requests_seen(twin)] == [0, 1, 1]


def test_read_invoice_follows_payments_until_paid(
    sap: SapConnector, twin: TwinProcess, customer_id: str
) -> None:
    sap.upsert_project(a_project(), customer_id)
    number = bill(twin, "HO-P-006A", "12345.67", wbs_element="HO-P-006A.M1", billing_date="2025-03-10",
                  terms_days=30)["BillingDocument"]
    invoice = sap.read_invoice(number)
    assert (invoice.number, invoice.status, invoice.total, invoice.amount_due) == (
        number, InvoiceStatus.POSTED, usd("12345.67"), usd("12345.67"))
    assert (invoice.invoice_date, invoice.due_date) == (date(2025, 3, 10), date(2025, 4, 9))
    pay(twin, number, "10000.00")
    partly = sap.read_invoice(number)
    assert (partly.status, partly.amount_due, partly.paid) == (InvoiceStatus.POSTED, usd("2345.67"),
                                                               usd("10000.00"))
    pay(twin, number, "2345.67")
    paid = sap.read_invoice(number)
    assert (paid.status, paid.amount_due, paid.paid) == (InvoiceStatus.PAID, usd("0.00"), usd("12345.67"))


def test_an_unknown_billing_document_is_permanent(sap: SapConnector) -> None:
    with pytest.raises(PermanentError, match="SAP has no billing document 90009999"):
        sap.read_invoice("90009999")
