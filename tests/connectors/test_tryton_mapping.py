"""Pure parts of the Tryton connector: JSON-RPC values, error translation, record mapping."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import orjson
import pytest

from handoff.connectors.keepalive import TransportError
from handoff.connectors.ports import DocumentFigures, ProjectFigures
from handoff.connectors.tryton.errors import TrytonRpcError, from_http_status, translate
from handoff.connectors.tryton.jsonrpc import decode, dumps
from handoff.connectors.tryton.mapping import (
    document_figures_from,
    invoice_from,
    milestone_progress_data,
    project_deal,
    project_figures_from,
    project_values,
    task_values,
    work_ancestry,
)
from handoff.connectors.tryton.settings import TrytonSettings
from handoff.domain import BillingMethod, InvoiceRequest, InvoiceStatus, Milestone, Money, Project
from handoff.errors import (
    BusinessRuleError,
    ConfigError,
    PermanentError,
    ThrottledError,
    TransientError,
)


def test_values_round_trip_through_trytons_tagged_json() -> None:
    values = {"amount": Decimal("1234.57"), "on": dt.date(2026, 11, 26),
              "at": dt.datetime(2026, 11, 26, 9, 30, 1, 5, tzinfo=dt.UTC),
              "effort": dt.timedelta(hours=1), "blob": b"\x00\xff", "plain": [1, "a", None]}
    wire = orjson.loads(dumps(values))
    assert wire["amount"] == {"__class__": "Decimal", "decimal": "1234.57"}
    assert decode(wire) == values


def test_a_user_error_is_a_business_rule_with_trytons_message() -> None:
    error = TrytonRpcError("model.project.work.invoice", [
        "UserError", ["Missing revenue account on product 'Services'.", "Set it.", None]])
    translated = error.translated()
    assert type(translated) is BusinessRuleError and translated.system == "tryton"
    assert translated.message == "Missing revenue account on product 'Services'. — Set it."


@pytest.mark.parametrize(("error", "kind"), [
    (["UserError", ["You are not allowed to create records of 'Party'.", "", None]],
     PermanentError),
    (["UserError", ['You are not allowed to modify the field "Invoice Method" in record "P" of '
                    '"Project Work".', "", None]], BusinessRuleError),
    (["UserWarning", ["warn_name", "Check the amount.", ""]], BusinessRuleError),
    (["ConcurrencyException", "Records were modified in the meanwhile"], TransientError),
    (["division by zero", "Traceback ..."], TransientError),
])
def test_each_rpc_error_lands_in_its_class(error: list, kind: type) -> None:
    assert type(TrytonRpcError("m", error).translated()) is kind


@pytest.mark.parametrize(("status", "kind"), [
    (429, ThrottledError), (503, TransientError), (500, TransientError),
    (401, PermanentError), (403, PermanentError), (404, PermanentError)])
def test_each_http_status_lands_in_its_class(status: int, kind: type) -> None:
    assert type(from_http_status(status, {}, b"", "model.party.party.search")) is kind


def test_transport_failures_are_retried_unless_the_certificate_is_untrusted() -> None:
    assert type(translate(TransportError("reset", retryable=True))) is TransientError
    assert type(translate(TransportError("cert", retryable=False))) is PermanentError


def test_a_milestone_task_bills_one_hour_at_the_milestones_amount() -> None:
    request = InvoiceRequest("HO-I-006A-M1", "006A",
                               Milestone("M1", "Discovery", Money(Decimal("30000.00"), "USD")),
                               dt.date(2026, 11, 26))
    values = task_values(request, project_id=7, company_id=1, product_id=3)
    assert values["comment"].startswith("[handoff HO-M-006A-M1]\n") and values["parent"] == 7
    assert values["list_price"] == Decimal("30000.00")
    assert values["effort_duration"] == dt.timedelta(hours=1)


def test_an_invoice_reads_back_exactly() -> None:
    record = {"id": 12, "number": "INV/0001", "state": "posted", "reference": "HO-I-006A-M1",
              "invoice_date": dt.date(2026, 11, 26), "untaxed_amount": Decimal("30000.00"),
              "tax_amount": Decimal("0.00"), "total_amount": Decimal("30000.00"),
              "amount_to_pay": Decimal("30000.00"), "currency.": {"id": 1, "code": "USD"},
              "lines_to_pay.": [{"id": 5, "maturity_date": dt.date(2026, 12, 26)}]}
    invoice = invoice_from(record, "HO-I-006A-M1")
    assert (invoice.target_id, invoice.number, invoice.status) == ("12", "INV/0001",
                                                                   InvoiceStatus.POSTED)
    assert invoice.total == Money(Decimal("30000.00"), "USD")
    assert invoice.paid.amount == 0 and invoice.due_date == dt.date(2026, 12, 26)


def test_settings_refuse_a_url_without_a_scheme() -> None:
    with pytest.raises(ConfigError, match="must start with"):
        TrytonSettings("erp.example.com", "tryton", "handoff", "secret")


def test_a_planned_milestone_task_set_done_becomes_milestone_progress() -> None:
    done = dt.datetime(2026, 11, 20, 15, 30, tzinfo=dt.UTC)
    record = {"comment": "[handoff HO-M-006A-M2]\nMilestone M2 of opportunity 006A.",
              "parent.": {"comment": "[handoff HO-P-006A]\nProvisioned by handoff"},
              "write_date": done, "create_date": done - dt.timedelta(days=9)}
    assert milestone_progress_data(record) == {
        "opportunity_id": "006A", "id": "M2", "status": "achieved", "achieved_on": "2026-11-20",
        "version": "2026-11-20T15:30:00+00:00"}
    assert milestone_progress_data({**record, "comment": "made by hand"}) is None


def provisioned(deal: str, value: str, currency: str = "USD") -> dict:
    """A project record as handoff writes it (the comment project_values makes)."""
    project = Project(f"HO-P-{deal}", deal, "Rollout", f"HO-C-{deal}", Money(Decimal(value), currency),
                      BillingMethod.FIXED_FEE, dt.date(2026, 11, 2))
    return {"id": 7, "comment": project_values(project, party_id=3, company_id=1)["comment"]}


@pytest.mark.parametrize(("value", "currency", "read"), [
    ("120000", "USD", "120000.00"), ("393250.5", "GBP", "393250.50"), ("5000", "JPY", "5000")])
def test_a_project_reads_back_the_value_and_currency_handoff_wrote_in_its_comment(
        value: str, currency: str, read: str) -> None:
    figures = project_figures_from(provisioned("006A", value, currency))
    assert figures == ProjectFigures("006A", currency, Decimal(read))
    assert str(figures.value) == read  # exactly as written, the currency's decimals included


def test_a_deal_id_with_dashes_and_parentheses_is_read_whole() -> None:
    assert project_figures_from(provisioned("ACME-(EU)-42", "9.99")) == ProjectFigures(
        "ACME-(EU)-42", "USD", Decimal("9.99"))


@pytest.mark.parametrize("comment", [
    "[handoff HO-P-006A]",                                           # no second line
    "[handoff HO-P-006A]\nValue agreed with the customer: 50k",       # rewritten by hand
    "[handoff HO-P-006A]\nProvisioned by handoff from opportunity 006A (fifty USD, fixed_fee).",
    "[handoff HO-P-006A]\nProvisioned by handoff from opportunity 006B (100.00 USD, fixed_fee).",
])
def test_a_project_whose_comment_does_not_state_its_value_reads_as_unknown(comment: str) -> None:
    assert project_figures_from({"id": 7, "comment": comment}) == ProjectFigures("006A", None, None)


def test_a_work_without_handoffs_project_marker_is_no_project_of_handoffs() -> None:
    assert project_figures_from({"id": 7, "comment": "Internal project"}) is None
    assert project_figures_from({"id": 7, "comment": None}) is None
    assert project_deal("[handoff HO-M-006A-M1]\nMilestone M1 of opportunity 006A.") is None
    assert project_deal("[handoff HO-P-006A] (moved)") == "006A"


def test_a_works_ancestry_is_its_path_nearest_first() -> None:
    assert work_ancestry({"id": 31, "path": "4/17/31/"}) == [31, 17, 4]
    assert work_ancestry({"id": 31, "path": None}) == [31]


def invoice_record(**changes: object) -> dict:
    return {"id": 12, "number": "INV/0001", "state": "posted", "reference": "HO-I-006A-M1",
            "invoice_date": dt.date(2026, 11, 26), "untaxed_amount": Decimal("30000.00"),
            "tax_amount": Decimal("2400.00"), "total_amount": Decimal("32400.00"),
            "amount_to_pay": Decimal("12400.00"), "currency.": {"id": 1, "code": "USD"},
            "lines_to_pay.": []} | changes


def test_an_invoice_of_a_deal_becomes_its_document_figures() -> None:
    assert document_figures_from(invoice_record(), "006A") == DocumentFigures(
        "006A", "12", "USD", "posted", Decimal("32400.00"), Decimal("30000.00"), Decimal("12400.00"))


def test_a_credit_note_counts_negative_and_a_cancelled_or_unposted_invoice_keeps_its_state() -> None:
    credit = document_figures_from(invoice_record(
        reference="HO-CN-006A-fee#2", total_amount=Decimal("-5000.00"),
        untaxed_amount=Decimal("-5000.00"), tax_amount=Decimal(0),
        amount_to_pay=Decimal("-5000.00")), "006A")
    assert (credit.total, credit.untaxed, credit.amount_due) == (Decimal("-5000.00"),) * 3
    assert document_figures_from(invoice_record(state="cancelled"), "006A").status == "cancelled"
    draft = document_figures_from(invoice_record(state="validated", number=None, reference=None,
                                                 amount_to_pay=None), "006A")
    assert (draft.status, draft.amount_due) == ("draft", Decimal(0))
    assert document_figures_from(invoice_record(state="paid", amount_to_pay=Decimal(0)),
                                 "006A").status == "paid"
