"""The billing contract (connectors/contract.py), the same tests for every system that issues
invoices — Stripe, and the ERPs that invoice — against its twin: an invoice and a credit note
are issued once per business key, also when the first call's answer was lost; the status and
what is due are read back; vendor errors arrive in handoff's taxonomy."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from handoff.connectors.contract import BillingSource
from handoff.domain import InvoiceRequest, InvoiceStatus, Milestone, Money
from handoff.errors import DataError, PermanentError, ThrottledError, TransientError
from tests.conftest import reset_twin
from tests.connectors import stripe_support
from tests.contract.drivers import ERP_DRIVERS, ErpDriver


@dataclass
class Biller:
    """A system that bills, and the project an invoice hangs on (none for Stripe)."""

    name: str
    twin: Any
    make: Any  # (bad_auth) → connector
    project: Any  # (connector, tag) → (project target id, customer target id)
    refuse: Any = None  # (request) → a request it refuses; default: in a currency it lacks

    def faults(self, **plan: Any) -> None:
        with self.twin.control() as control:
            control.put("/_twin/faults", json=plan).raise_for_status()


def stripe_biller(request: pytest.FixtureRequest) -> Biller:
    twin = request.getfixturevalue("stripe_twin")
    reset_twin(twin)
    return Biller("stripe", twin,
                  lambda bad_auth: stripe_support.connector(
                      twin, **({"api_key": "sk_test_revoked_000000000000"} if bad_auth else {})),
                  lambda _erp, tag: ("no-project", f"C-{tag}"),
                  refuse=lambda r: in_amount(r, Money(Decimal("5.125"), "KWD")))  # KWD: steps of 10 fils


def erp_biller(name: str) -> Any:
    def make(request: pytest.FixtureRequest) -> Biller:
        driver: ErpDriver = ERP_DRIVERS[name](request)
        driver.connector()  # a clean twin

        def project(erp: Any, tag: str) -> tuple[str, str]:
            from tests.contract.test_erp_contract import customer
            from tests.contract.test_erp_contract import project as a_project

            customer_id = erp.upsert_customer(f"HO-C-001CB{tag}", customer(f"CB{tag}")).target_id
            return erp.upsert_project(a_project(f"CB{tag}"), customer_id).target_id, customer_id

        return Biller(name, driver.twin, lambda bad_auth: driver.make(page_size=None, bad_auth=bad_auth),
                      project, REFUSALS.get(name))
    return make


def in_amount(request: InvoiceRequest, amount: Money) -> InvoiceRequest:
    return replace(request, line=replace(request.line, amount=amount))


REFUSALS = {"oracle": lambda r: replace(r, customer_target_id="CDRM_999999")}  # no such account


BILLERS = {"stripe": stripe_biller, **{n: erp_biller(n) for n in ("netsuite", "oracle", "businesscentral")}}


@pytest.fixture(params=sorted(BILLERS))
def biller(request: pytest.FixtureRequest) -> Biller:
    return BILLERS[request.param](request)


def request_for(tag: str, customer_id: str, amount: str = "1200.50", line: str = "M1") -> InvoiceRequest:
    milestone = Milestone(line, "Kick-off", Money(Decimal(amount), "USD"))
    prefix = "HO-CN" if Decimal(amount) < 0 else "HO-I"
    deal = f"006CTCB{tag}"  # the deal of project(f"CB{tag}")
    return InvoiceRequest(f"{prefix}-{deal}-{line}", deal, milestone, date(2026, 11, 26),
                          customer_target_id=customer_id)


def test_it_is_a_billing_source_with_a_budget(biller: Biller) -> None:
    billing = biller.make(False)
    assert isinstance(billing, BillingSource) and billing.budget.source


def test_an_invoice_is_issued_once_even_when_the_first_answer_was_lost(biller: Biller) -> None:
    billing = biller.make(False)
    project, customer_id = biller.project(billing, "L")
    request = request_for("L", customer_id)
    biller.faults(lose_response_rate=1.0, seed=1)
    with pytest.raises(TransientError):
        billing.issue_invoice(request, project)
    biller.faults()
    issued = billing.issue_invoice(request, project)
    assert billing.issue_invoice(request, project).target_id == issued.target_id
    assert issued.total == Money(Decimal("1200.50"), "USD") and issued.status is InvoiceStatus.POSTED
    assert billing.read_invoice(issued.target_id).amount_due == issued.total
    ours = [d for d in billing.document_figures() if d.document_id == issued.target_id]
    assert [(d.total, d.status) for d in ours] == [(Decimal("1200.50"), "posted")]


@pytest.mark.parametrize("retry_after", [2, 0])
def test_throttling_is_a_throttled_error_with_the_wait_when_given(biller: Biller, retry_after: int) -> None:
    billing = biller.make(False)
    project, customer_id = biller.project(billing, f"T{retry_after}")
    biller.faults(throttle_rate=1.0, retry_after_seconds=retry_after)
    with pytest.raises(ThrottledError) as caught:
        billing.issue_invoice(request_for(f"T{retry_after}", customer_id), project)
    if retry_after:
        assert caught.value.retry_after == pytest.approx(retry_after)


def test_unavailability_is_transient(biller: Biller) -> None:
    billing = biller.make(False)
    project, customer_id = biller.project(billing, "U")
    biller.faults(unavailable_rate=1.0)
    with pytest.raises(TransientError) as caught:
        billing.issue_invoice(request_for("U", customer_id), project)
    assert not isinstance(caught.value, ThrottledError)


def test_an_amount_the_system_refuses_is_a_data_error_naming_the_field(biller: Biller) -> None:
    billing = biller.make(False)
    project, customer_id = biller.project(billing, "D")
    request = request_for("D", customer_id)
    bad = (biller.refuse or (lambda r: in_amount(r, Money(Decimal("10.00"), "CHF"))))(request)
    with pytest.raises(DataError) as caught:
        billing.issue_invoice(bad, project)
    assert caught.value.field and caught.value.system == biller.name


def test_a_refused_credential_is_permanent_and_says_so(biller: Biller) -> None:
    billing = biller.make(True)
    with pytest.raises(PermanentError) as caught:
        billing.read_invoice("1")
    assert any(word in caught.value.message.lower()
               for word in ("auth", "key", "token", "credential", "password", "login"))
