"""BusinessCentralConnector against the twin in its own process: idempotent upserts by the key
kept in No., stale ETags, invoices and credit memos issued once and posted, payments read
back, paged reconciliation reads, and every failure arriving as the right class of handoff's
error taxonomy."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from handoff.connectors.businesscentral import BusinessCentralConnector
from handoff.connectors.businesscentral.settings import BusinessCentralSettings
from handoff.connectors.ports import BillingConnector, DocumentFigures, ErpSnapshotSource, ProjectFigures
from handoff.connectors.twin_process import TwinProcess, free_port
from handoff.domain import Invoice, InvoiceStatus, Money
from handoff.errors import DataError, PermanentError, ThrottledError, TransientError
from handoff.observability import lifecycle, trace_id_of
from tests.connectors.businesscentral_support import (
    COMPANY_ID,
    TOKEN,
    a_customer,
    a_project,
    an_invoice_request,
    api,
    connector,
    fresh,
    pay,
    requests_log,
    requests_seen,
    set_faults,
    set_twin,
    summary,
    twin_records,
)

SALESFORCE_PROJECT = "HO-P-006Ak00000AbCdEfGH"  # 23 characters, mixed case: No. cannot hold it as it is
CORRELATION = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def twin(businesscentral_twin: TwinProcess) -> TwinProcess:
    return fresh(businesscentral_twin)  # type: ignore[return-value]


@pytest.fixture
def erp(twin: TwinProcess) -> Iterator[BusinessCentralConnector]:
    with connector(twin) as c:
        yield c


@pytest.fixture
def customer_id(erp: BusinessCentralConnector) -> str:
    return erp.upsert_customer("HO-C-001A", a_customer()).target_id


@pytest.fixture
def project_id(erp: BusinessCentralConnector, customer_id: str) -> str:
    return erp.upsert_project(a_project(), customer_id).target_id


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def test_the_connector_is_an_erp_that_invoices_and_lists_in_bulk(erp: BusinessCentralConnector) -> None:
    assert erp.system == "businesscentral"
    assert isinstance(erp, BillingConnector) and isinstance(erp, ErpSnapshotSource)


# --- customers and projects -------------------------------------------------------------------

def test_upserting_a_customer_twice_leaves_one_record_with_one_id(
    erp: BusinessCentralConnector, twin: TwinProcess
) -> None:
    first = erp.upsert_customer("HO-C-001A", a_customer())
    second = erp.upsert_customer("HO-C-001A", a_customer(name="Acme Consulting Ltd", currency="EUR"))
    assert (first.target_id, first.created, second.created) == (second.target_id, True, False)
    [record] = twin_records(twin, "customers")
    assert (record["number"], record["displayName"], record["currencyCode"]) == (
        "HO-C-001A", "Acme Consulting Ltd", "EUR")


def test_an_unchanged_customer_is_read_and_not_written(
    erp: BusinessCentralConnector, twin: TwinProcess, customer_id: str
) -> None:
    seen = requests_seen(twin)
    assert erp.upsert_customer("HO-C-001A", a_customer()).target_id == customer_id
    assert requests_seen(twin) == seen + 1  # GET customers?$filter=number eq 'HO-C-001A'


def test_a_lost_response_is_transient_and_the_retry_finds_the_committed_record(
    erp: BusinessCentralConnector, twin: TwinProcess
) -> None:
    # Seed 0 rolls 0.84, 0.76: the look-up passes, the POST commits and its answer is lost.
    set_faults(twin, lose_response_rate=0.8, seed=0)
    with pytest.raises(TransientError):
        erp.upsert_customer("HO-C-001A", a_customer())
    set_faults(twin)
    [committed] = twin_records(twin, "customers")
    retried = erp.upsert_customer("HO-C-001A", a_customer())
    assert (retried.target_id, retried.created) == (committed["id"], False)
    assert summary(twin)["counts"]["customers"] == 1


@pytest.mark.parametrize("stale_status", [409, 412])
def test_a_stale_etag_is_read_again_and_the_update_lands(
    erp: BusinessCentralConnector, twin: TwinProcess, customer_id: str,
    monkeypatch: pytest.MonkeyPatch, stale_status: int
) -> None:
    set_twin(twin, stale_etag_status=stale_status)
    before = erp.get_customer("HO-C-001A")
    with api(twin) as bc:  # another user edits the customer after handoff read it
        bc.patch(f"customers({customer_id})", json={"email": "ap@acme.test"}, headers={"If-Match": "*"})
    looks = stale_first(monkeypatch, erp, before)
    result = erp.upsert_customer("HO-C-001A", a_customer(name="Acme Consulting Ltd"))
    assert (result.target_id, result.created, looks) == (customer_id, False, [1, 2])
    [record] = twin_records(twin, "customers")
    assert (record["displayName"], record["email"]) == ("Acme Consulting Ltd", "ap@acme.test")


def test_an_etag_that_stays_stale_is_transient_after_the_configured_attempts(
    twin: TwinProcess, customer_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with connector(twin, update_attempts=2) as erp:
        stale = erp.get_customer("HO-C-001A")
        with api(twin) as bc:
            bc.patch(f"customers({customer_id})", json={"email": "x@y.z"}, headers={"If-Match": "*"})
        monkeypatch.setattr(erp, "_find", lambda *args, **kwargs: stale)
        with pytest.raises(TransientError, match="kept changing"):
            erp.upsert_customer("HO-C-001A", a_customer(name="Renamed"))


def stale_first(monkeypatch: pytest.MonkeyPatch, erp: BusinessCentralConnector,
                stale: dict[str, Any] | None) -> list[int]:
    """The connector's first look-up answers the record as it was before another user's edit."""
    real, looks = erp._find, []

    def find(*args: Any, **kwargs: Any) -> dict[str, Any] | None:
        looks.append(len(looks) + 1)
        return stale if len(looks) == 1 else real(*args, **kwargs)

    monkeypatch.setattr(erp, "_find", find)
    return looks


def test_sixteen_threads_make_one_customer_per_key(
    erp: BusinessCentralConnector, twin: TwinProcess
) -> None:
    keys = [f"HO-C-{n}" for n in range(10)] * 4
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda key: erp.upsert_customer(key, a_customer()), keys))
    assert len({result.target_id for result in results}) == 10
    totals = summary(twin)
    assert (totals["counts"]["customers"], totals["duplicate_numbers"]) == (10, 0)


def test_upserting_a_project_twice_leaves_one_project(
    erp: BusinessCentralConnector, twin: TwinProcess, customer_id: str
) -> None:
    first = erp.upsert_project(a_project(), customer_id)
    second = erp.upsert_project(a_project(name="Acme rollout, phase 1"), customer_id)
    assert first.target_id == second.target_id
    [project] = twin_records(twin, "projects")
    assert (project["number"], project["displayName"]) == ("HO-P-006A", "Acme rollout, phase 1")


def test_a_key_too_long_for_no_is_kept_compact_and_found_again(
    erp: BusinessCentralConnector, twin: TwinProcess, customer_id: str
) -> None:
    first = erp.upsert_project(a_project(SALESFORCE_PROJECT), customer_id)
    again = erp.upsert_project(a_project(SALESFORCE_PROJECT), customer_id)
    assert (first.target_id, again.created) == (again.target_id, False)
    [project] = twin_records(twin, "projects")
    assert project["number"].startswith("HO-P-~") and len(project["number"]) == 20
    found = erp.get_project(SALESFORCE_PROJECT)
    assert found is not None and found["id"] == first.target_id
    assert erp.get_project(SALESFORCE_PROJECT.upper()) is None  # another deal's id: another key


# --- failures ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("retry_after_seconds", "expected"), [(3, 3.0), (0, None)])
def test_throttling_is_throttled_error_with_retry_after_when_sent(
    erp: BusinessCentralConnector, twin: TwinProcess, retry_after_seconds: int,
    expected: float | None
) -> None:
    set_faults(twin, throttle_rate=1.0, retry_after_seconds=retry_after_seconds)
    with pytest.raises(ThrottledError) as caught:
        erp.upsert_customer("HO-C-001A", a_customer())
    assert caught.value.retry_after == expected


@pytest.mark.parametrize(("send_retry_after", "expected"), [(False, None), (True, 60.0)])
def test_bcs_rate_limit_is_throttled_error(
    erp: BusinessCentralConnector, twin: TwinProcess, send_retry_after: bool,
    expected: float | None
) -> None:
    set_twin(twin, requests_per_window=1, window_seconds=60, send_retry_after=send_retry_after)
    erp.get_customer("HO-C-001A")
    with pytest.raises(ThrottledError, match="Too many requests") as caught:
        erp.get_customer("HO-C-001A")
    assert caught.value.retry_after == expected


def test_unavailable_is_transient(erp: BusinessCentralConnector, twin: TwinProcess) -> None:
    set_faults(twin, unavailable_rate=1.0)
    with pytest.raises(TransientError) as caught:
        erp.upsert_customer("HO-C-001A", a_customer())
    assert not isinstance(caught.value, ThrottledError) and "503" in caught.value.message


def test_a_maintenance_window_is_transient_with_its_remaining_time(
    erp: BusinessCentralConnector, twin: TwinProcess
) -> None:
    set_faults(twin, maintenance_seconds=2)
    with pytest.raises(TransientError) as caught:
        erp.get_customer("HO-C-001A")
    assert caught.value.retry_after in (1.0, 2.0)


def test_a_currency_bc_does_not_have_is_a_data_error_naming_the_field(erp: BusinessCentralConnector) -> None:
    with pytest.raises(DataError) as caught:
        erp.upsert_customer("HO-C-001A", a_customer(currency="JPY"))
    assert caught.value.field == "currencyCode"
    assert 'The "currencyCode" does not match to a Currency.' in caught.value.message


def test_a_legal_entity_of_another_company_is_refused_before_any_call(
    erp: BusinessCentralConnector, twin: TwinProcess
) -> None:
    with pytest.raises(DataError) as caught:
        erp.upsert_customer("HO-C-001A", a_customer(legal_entity="FR01"))
    assert caught.value.field == "legal_entity"
    assert requests_seen(twin) == 0


def test_a_bad_token_is_permanent_with_a_clear_message(twin: TwinProcess) -> None:
    with connector(twin, token="expired") as erp, pytest.raises(PermanentError) as caught:
        erp.upsert_customer("HO-C-001A", a_customer())
    assert "Business Central refused the credentials: The server has rejected the client credentials." \
        in str(caught.value)
    assert "HANDOFF_BUSINESSCENTRAL_TOKEN" in str(caught.value)


def test_a_refused_connection_is_transient() -> None:
    settings = BusinessCentralSettings.for_twin(f"http://127.0.0.1:{free_port()}", TOKEN, COMPANY_ID)
    with BusinessCentralConnector(settings) as erp, pytest.raises(TransientError):
        erp.get_customer("HO-C-001A")


def test_every_call_names_the_deal(erp: BusinessCentralConnector, twin: TwinProcess) -> None:
    with lifecycle(CORRELATION, "006A"):
        erp.upsert_customer("HO-C-001A", a_customer())
    calls = requests_log(twin)
    assert [call["method"] for call in calls] == ["GET", "POST"]
    assert all(call["correlation_id"] == CORRELATION for call in calls)
    assert all(trace_id_of(call["traceparent"]) == CORRELATION for call in calls)


def test_a_next_link_to_another_host_is_not_followed_with_the_token(erp: BusinessCentralConnector) -> None:
    with pytest.raises(PermanentError, match="not followed"):
        erp._relative("https://elsewhere.example/v2.0/x/y/api/v2.0/companies(1)/customers?$skiptoken=a")


# --- invoices and credit notes ----------------------------------------------------------------

def test_an_invoice_is_issued_posted_and_exact_to_the_cent(
    erp: BusinessCentralConnector, twin: TwinProcess, customer_id: str, project_id: str
) -> None:
    invoice = erp.issue_invoice(an_invoice_request("12345.67", customer_target_id=customer_id), project_id)
    assert (invoice.external_id, invoice.number, invoice.status) == (
        "HO-I-006A-M1", "PS-INV103001", InvoiceStatus.POSTED)
    assert (invoice.untaxed, invoice.tax, invoice.total, invoice.amount_due) == (
        usd("12345.67"), usd("0"), usd("12345.67"), usd("12345.67"))
    assert (invoice.invoice_date, invoice.due_date) == (date(2025, 3, 10), date(2025, 4, 9))
    [record] = twin_records(twin, "salesInvoices")
    assert (record["customerId"], record["customerPurchaseOrderReference"]) == (customer_id, "HO-P-006A")
    assert [line["description"] for line in record["salesInvoiceLines"]] == ["Kick-off workshop"]
    assert erp.read_invoice(invoice.target_id) == invoice


def test_issuing_again_finds_the_invoice_and_writes_nothing(
    erp: BusinessCentralConnector, twin: TwinProcess, customer_id: str, project_id: str
) -> None:
    request = an_invoice_request(customer_target_id=customer_id)
    first = erp.issue_invoice(request, project_id)
    seen = requests_seen(twin)
    assert erp.issue_invoice(request, project_id) == first
    assert requests_seen(twin) == seen + 1  # GET salesInvoices?$filter=externalDocumentNumber eq …
    assert summary(twin)["counts"]["salesInvoices"] == 1


def test_after_a_lost_response_the_retry_finds_the_committed_draft_and_finishes_it(
    erp: BusinessCentralConnector, twin: TwinProcess, customer_id: str, project_id: str
) -> None:
    # Seed 0 rolls 0.84, 0.76, 0.42: the look-up and the project read pass, the draft's POST
    # commits and its answer is lost.
    request = an_invoice_request(customer_target_id=customer_id)
    set_faults(twin, lose_response_rate=0.5, seed=0)
    with pytest.raises(TransientError):
        erp.issue_invoice(request, project_id)
    set_faults(twin)
    [draft] = twin_records(twin, "salesInvoices")
    assert (draft["status"], draft["salesInvoiceLines"]) == ("Draft", [])
    retried = erp.issue_invoice(request, project_id)
    assert (retried.target_id, retried.number, retried.status) == (
        draft["id"], "PS-INV103001", InvoiceStatus.POSTED)
    assert (summary(twin)["counts"]["salesInvoices"], summary(twin)["counts"]["salesInvoiceLines"]) == (1, 1)


@pytest.mark.parametrize(
    ("seed", "lost"),
    # The steps: look-up, project read, draft POST, line POST, Microsoft.NAV.post, read back.
    [(0, "the line's POST"), (3, "a look-up, the posting action, then the look-up again")],
)
def test_answers_lost_at_any_step_still_make_one_posted_invoice_with_one_line(
    erp: BusinessCentralConnector, twin: TwinProcess, customer_id: str, project_id: str,
    seed: int, lost: str
) -> None:
    request = an_invoice_request(customer_target_id=customer_id)
    set_faults(twin, lose_response_rate=0.3, seed=seed)
    for _ in range(30):
        try:
            invoice = erp.issue_invoice(request, project_id)
            break
        except TransientError:
            continue
    else:
        pytest.fail("never issued")
    set_faults(twin)
    totals = summary(twin)
    assert (totals["counts"]["salesInvoices"], totals["counts"]["salesInvoiceLines"]) == (1, 1)
    assert totals["statuses"]["salesInvoices"] == {"Open": 1}
    assert invoice.total == usd("12345.67")


def test_a_draft_policy_leaves_the_invoice_for_finance_to_post(
    erp: BusinessCentralConnector, customer_id: str, project_id: str
) -> None:
    draft = erp.issue_invoice(an_invoice_request(customer_target_id=customer_id, post=False), project_id)
    assert (draft.status, draft.number) == (InvoiceStatus.DRAFT, "S-INV100001")
    posted = erp.issue_invoice(an_invoice_request(customer_target_id=customer_id), project_id)
    assert (posted.target_id, posted.status) == (draft.target_id, InvoiceStatus.POSTED)


def test_read_invoice_follows_payments_until_paid(
    erp: BusinessCentralConnector, twin: TwinProcess, customer_id: str, project_id: str
) -> None:
    invoice = erp.issue_invoice(an_invoice_request("12345.67", customer_target_id=customer_id), project_id)
    pay(twin, invoice.target_id, "10000.00")
    partly = erp.read_invoice(invoice.target_id)
    assert (partly.status, partly.amount_due, partly.paid) == (
        InvoiceStatus.POSTED, usd("2345.67"), usd("10000.00"))
    pay(twin, invoice.target_id, "2345.67")
    paid = erp.read_invoice(invoice.target_id)
    assert (paid.status, paid.amount_due, paid.paid) == (InvoiceStatus.PAID, usd("0"), usd("12345.67"))


def test_a_credit_note_is_a_sales_credit_memo_that_comes_back_negative(
    erp: BusinessCentralConnector, twin: TwinProcess, customer_id: str, project_id: str
) -> None:
    request = an_invoice_request("-400.10", "HO-CN-006A-M1", customer_target_id=customer_id)
    credit = erp.issue_invoice(request, project_id)
    assert (credit.external_id, credit.number, credit.status) == (
        "HO-CN-006A-M1", "PS-CR104001", InvoiceStatus.POSTED)
    assert (credit.untaxed, credit.total, credit.amount_due) == (
        usd("-400.10"), usd("-400.10"), usd("-400.10"))
    [memo] = twin_records(twin, "salesCreditMemos")
    assert memo["totalAmountIncludingTax"] == Decimal("400.10")  # BC keeps credit memos positive
    assert summary(twin)["counts"]["salesInvoices"] == 0
    assert erp.read_invoice(credit.target_id) == credit


def test_without_the_customer_an_invoice_cannot_be_made(
    erp: BusinessCentralConnector, twin: TwinProcess, project_id: str
) -> None:
    with pytest.raises(PermanentError, match="customer_target_id"):
        erp.issue_invoice(an_invoice_request(), project_id)
    assert summary(twin)["counts"]["salesInvoices"] == 0


def test_an_unknown_project_or_document_is_permanent(erp: BusinessCentralConnector, customer_id: str) -> None:
    unknown = "00000000-0000-4000-8000-000000000999"
    with pytest.raises(PermanentError):
        erp.issue_invoice(an_invoice_request(customer_target_id=customer_id), unknown)
    with pytest.raises(PermanentError, match=f"no sales invoice or credit memo {unknown}"):
        erp.read_invoice(unknown)


def test_an_item_bc_does_not_have_is_a_data_error_on_the_line(
    twin: TwinProcess, customer_id: str, project_id: str
) -> None:
    with connector(twin, line_object_number="NOPE") as erp, pytest.raises(DataError) as caught:
        erp.issue_invoice(an_invoice_request(customer_target_id=customer_id), project_id)
    assert caught.value.field == "lineObjectNumber"


# --- reconciliation ---------------------------------------------------------------------------

def test_project_figures_walk_every_page(twin: TwinProcess, customer_id: str) -> None:
    with connector(twin, page_size=2) as erp:
        for n in range(5):
            erp.upsert_project(a_project(f"HO-P-D{n}"), customer_id)
        with api(twin) as bc:  # a project made by hand, not handoff's
            bc.post("projects", json={"number": "J-MANUAL", "displayName": "Internal"})
        seen = requests_seen(twin)
        figures = list(erp.project_figures())
    assert figures == [ProjectFigures(f"D{n}", None, None) for n in range(5)]
    assert requests_seen(twin) == seen + 3  # pages of 2, 2 and 1


def test_document_figures_walk_every_page_of_invoices_and_credit_memos(
    twin: TwinProcess, customer_id: str, project_id: str
) -> None:
    with connector(twin, page_size=2) as erp:
        def issue(amount: str, external_id: str) -> Invoice:
            return erp.issue_invoice(an_invoice_request(amount, external_id, customer_target_id=customer_id),
                                     project_id)

        invoices = [issue(amount, f"HO-I-D{n}-M1") for n, amount in enumerate(["100.00", "200.00", "300.00"])]
        pay(twin, invoices[1].target_id, "200.00")
        credit = issue("-50.00", "HO-CN-D0-M2")
        seen = requests_seen(twin)
        figures = list(erp.document_figures())
    assert figures == [
        DocumentFigures("D0", invoices[0].target_id, "USD", "posted", Decimal("100.00"), Decimal("100.00"),
                        Decimal("100.00")),
        DocumentFigures("D1", invoices[1].target_id, "USD", "paid", Decimal("200.00"), Decimal("200.00"),
                        Decimal("0")),
        DocumentFigures("D2", invoices[2].target_id, "USD", "posted", Decimal("300.00"), Decimal("300.00"),
                        Decimal("300.00")),
        DocumentFigures("D0", credit.target_id, "USD", "posted", Decimal("-50.00"), Decimal("-50.00"),
                        Decimal("-50.00")),
    ]
    assert requests_seen(twin) == seen + 3  # invoices: 2 + 1; credit memos: 1
