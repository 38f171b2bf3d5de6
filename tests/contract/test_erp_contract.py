"""The ERP/PSA contract (connectors/contract.py), the same tests for every ERP connector: a
customer and a project upserted by handoff's external ids stay one record each — also when
the first call's response is lost —, the bulk listings page, an invoice is issued once per
business key, vendor errors arrive in handoff's taxonomy. Faults are injected where the ERP
is a twin; Tryton is a real server and runs the rest."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from handoff.connectors.contract import BillingSource, ErpTarget
from handoff.domain import BillingMethod, Customer, InvoiceRequest, Milestone, Money, Project
from handoff.errors import DataError, HandoffError, PermanentError, ThrottledError, TransientError
from tests.contract.drivers import ERP_DRIVERS, ERP_TWINS, ErpDriver


@pytest.fixture(params=sorted(ERP_DRIVERS))
def driver(request: pytest.FixtureRequest) -> ErpDriver:
    return ERP_DRIVERS[request.param](request)


@pytest.fixture(params=[name for name in sorted(ERP_DRIVERS) if name != "sap"])
def billing_driver(request: pytest.FixtureRequest) -> ErpDriver:
    """The ERPs that issue invoices themselves."""
    return ERP_DRIVERS[request.param](request)


@pytest.fixture(params=ERP_TWINS)
def twin_driver(request: pytest.FixtureRequest) -> ErpDriver:
    return ERP_DRIVERS[request.param](request)


def customer(n: str) -> Customer:
    return Customer(id=f"001CT{n}", name=f"Contract customer {n}", currency="USD", legal_entity="US01",
                    tax_jurisdiction="US-CA")


def project(n: str, value: str = "90000.00") -> Project:
    return Project(external_id=f"HO-P-006CT{n}", opportunity_id=f"006CT{n}", name=f"Contract project {n}",
                   customer_external_id=f"HO-C-001CT{n}", value=Money(Decimal(value), "USD"),
                   billing_method=BillingMethod.FIXED_FEE, start_date=date(2026, 11, 20),
                   legal_entity="US01")


def provision(erp: Any, n: str, value: str = "90000.00") -> str:
    made = erp.upsert_customer(f"HO-C-001CT{n}", customer(n))
    return erp.upsert_project(project(n, value), made.target_id).target_id


def test_it_is_a_whole_erp_target_with_a_budget(driver: ErpDriver) -> None:
    erp = driver.connector()
    assert isinstance(erp, ErpTarget) and isinstance(erp, BillingSource) == driver.bills
    assert erp.budget.source and erp.budget.concurrency


def test_upserts_by_external_id_leave_one_record_and_the_listing_pages(driver: ErpDriver) -> None:
    erp = driver.connector(page_size=2)
    tag = driver.name[:2].upper()
    first = provision(erp, f"{tag}1")
    assert provision(erp, f"{tag}1", "95000.00") == first  # the same project, changed
    for n in range(2, 6):
        provision(erp, f"{tag}{n}")
    figures = {f.deal_id: f for f in erp.project_figures() if f.deal_id.startswith(f"006CT{tag}")}
    assert sorted(figures) == [f"006CT{tag}{n}" for n in range(1, 6)]
    if driver.holds_value:
        assert (figures[f"006CT{tag}1"].value, figures[f"006CT{tag}1"].currency) == (
            Decimal("95000.00"), "USD")


def test_an_invoice_is_issued_once_per_business_key(billing_driver: ErpDriver) -> None:
    driver = billing_driver
    erp = driver.connector()
    tag = driver.name[:2].upper() + "I"
    customer_id = erp.upsert_customer(f"HO-C-001CT{tag}", customer(tag)).target_id
    project_id = erp.upsert_project(project(tag), customer_id).target_id
    line = Milestone("fee", "Fixed fee", Money(Decimal("90000.00"), "USD"))
    request = InvoiceRequest(f"HO-I-006CT{tag}-fee", f"006CT{tag}", line, date(2026, 11, 26),
                             customer_target_id=customer_id)
    first, again = erp.issue_invoice(request, project_id), erp.issue_invoice(request, project_id)
    assert first.target_id == again.target_id and first.total == Money(Decimal("90000.00"), "USD")
    assert erp.read_invoice(first.target_id).amount_due == first.total
    documents = [d for d in erp.document_figures() if d.document_id == first.target_id]
    assert [(d.total, d.status) for d in documents] == [(Decimal("90000.00"), "posted")]
    if driver.names_documents:
        assert documents[0].deal_id == f"006CT{tag}"


def test_a_call_whose_answer_was_lost_leaves_one_record_when_repeated(twin_driver: ErpDriver) -> None:
    erp = twin_driver.connector()
    made = erp.upsert_customer("HO-C-001CTLOST", customer("LOST"))
    twin_driver.faults(lose_response_rate=1.0)
    with pytest.raises(TransientError):
        erp.upsert_project(project("LOST"), made.target_id)
    twin_driver.faults()
    erp.upsert_project(project("LOST"), made.target_id)
    assert [f.deal_id for f in erp.project_figures()].count("006CTLOST") == 1


@pytest.mark.parametrize("retry_after", [3, 0])
def test_throttling_is_a_throttled_error_with_the_wait_when_given(twin_driver: ErpDriver,
                                                                  retry_after: int) -> None:
    erp = twin_driver.connector()
    twin_driver.faults(throttle_rate=1.0, retry_after_seconds=retry_after)
    with pytest.raises(ThrottledError) as caught:
        erp.upsert_customer("HO-C-001CTT", customer("T"))
    if retry_after:
        assert caught.value.retry_after == pytest.approx(retry_after)


def test_a_long_retry_after_holds_every_call_without_making_it(twin_driver: ErpDriver) -> None:
    erp = twin_driver.connector()
    twin_driver.faults(throttle_rate=1.0, retry_after_seconds=30)
    with pytest.raises(ThrottledError):
        erp.upsert_customer("HO-C-001CTH", customer("H"))
    twin_driver.faults()  # the system would answer now, but the connector is told to wait 30 s
    started = time.monotonic()
    with pytest.raises(ThrottledError) as held:
        erp.upsert_customer("HO-C-001CTH", customer("H"))
    assert time.monotonic() - started < 1 and 25 < held.value.retry_after <= 30  # type: ignore[operator]


def test_unavailability_is_transient(twin_driver: ErpDriver) -> None:
    erp = twin_driver.connector()
    twin_driver.faults(unavailable_rate=1.0)
    with pytest.raises(TransientError) as caught:
        erp.upsert_customer("HO-C-001CTU", customer("U"))
    assert not isinstance(caught.value, ThrottledError)


def test_a_record_the_erp_refuses_is_a_data_error_naming_the_field(driver: ErpDriver) -> None:
    erp = driver.connector()
    customer_id = erp.upsert_customer("HO-C-001CTBAD", customer("BAD")).target_id
    if driver.refusal == "unknown legal entity":
        with pytest.raises(DataError) as caught:
            erp.upsert_customer("HO-C-001CTLE", replace(customer("LE"), legal_entity="XX99"))
        assert caught.value.field and caught.value.system == driver.name
        return
    if driver.refusal == "customer currency":
        with pytest.raises(DataError) as caught:
            erp.upsert_customer("HO-C-001CTYEN", replace(customer("YEN"), currency="JPY"))
        assert caught.value.field and caught.value.system == driver.name
        return
    refused = {"missing customer": (project("BAD"), "999999", None),
               "another currency": (replace(project("BAD"), value=Money(Decimal("10.00"), "EUR")),
                                    customer_id, "currency")}
    bad_project, customer_target, field = refused[driver.refusal]
    with pytest.raises(DataError) as caught:
        erp.upsert_project(bad_project, customer_target)
    assert caught.value.field and caught.value.system == driver.name
    assert field is None or caught.value.field == field


def test_a_refused_credential_is_permanent_and_says_so(driver: ErpDriver) -> None:
    erp = driver.connector(bad_auth=True)
    with pytest.raises(HandoffError) as caught:
        erp.upsert_customer("HO-C-001CTA", customer("A"))
    assert isinstance(caught.value, PermanentError), caught.value
    assert any(word in caught.value.message.lower()
               for word in ("auth", "login", "token", "credential", "password"))
