"""Stripe mapping without I/O: minor units ↔ exact Decimal (two, zero and three decimals),
Stripe invoices and credit notes as handoff's Invoice, request parameters, idempotency keys,
error translation and settings."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import stripe

from handoff.connectors.stripe import StripeSettings
from handoff.connectors.stripe.errors import KeyConflict, ObjectMissing, translate
from handoff.connectors.stripe.mapping import (
    credit_note_from,
    credit_note_params,
    creditable,
    customer_search_query,
    document_figures_from,
    exponent,
    from_minor,
    idempotency_key,
    invoice_from,
    invoice_item_params,
    invoice_params,
    to_minor,
)
from handoff.domain import InvoiceStatus, Money
from handoff.domain.money import MINOR_UNITS
from handoff.errors import (
    BusinessRuleError,
    ConfigError,
    DataError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from tests.connectors.stripe_support import invoice_request

SETTINGS = StripeSettings(api_key="sk_test_x")
NOV_26 = 1795686727  # 2026-11-26T05:52:07Z


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("1234.56", "USD", 123456), ("0.01", "USD", 1), ("-250.00", "USD", -25000), ("30000.00", "USD", 3000000),
    ("500", "JPY", 500), ("1234567", "JPY", 1234567),
    ("5.120", "KWD", 5120), ("1234.560", "KWD", 1234560), ("0.010", "KWD", 10),
])
def test_minor_units_both_ways_are_exact(amount: str, currency: str, minor: int) -> None:
    money = Money(Decimal(amount), currency)
    assert to_minor(money) == minor
    back = from_minor(minor, currency.lower())
    assert back == Money(back.amount, currency) and back.amount == Decimal(amount)
    assert back.amount.as_tuple().exponent == -MINOR_UNITS[currency]  # the currency's own decimals


def test_amounts_read_from_stripe_keep_the_currencys_exponent() -> None:
    assert str(from_minor(3000000, "usd").amount) == "30000.00"
    assert str(from_minor(500, "jpy").amount) == "500"
    assert str(from_minor(5120, "kwd").amount) == "5.120"
    assert str(from_minor(0, "usd").amount) == "0.00"
    assert from_minor(99999999999999999, "usd").amount == Decimal("999999999999999.99")  # no float


def test_a_three_decimal_amount_stripe_cannot_take_is_refused_naming_the_field() -> None:
    with pytest.raises(DataError) as refused:
        to_minor(Money(Decimal("5.125"), "KWD"))
    assert refused.value.field == "amount" and "last digit of 0" in refused.value.message


@pytest.mark.parametrize("value", [12.5, True, "1250", None])
def test_an_amount_from_stripe_that_is_not_an_integer_is_refused(value: object) -> None:
    with pytest.raises(DataError) as refused:
        from_minor(value, "usd")
    assert refused.value.field == "amount"


def test_every_currency_handoff_bills_in_has_the_same_exponent_in_stripe() -> None:
    assert {code: exponent(code) for code in MINOR_UNITS} == MINOR_UNITS


def test_a_currency_handoff_does_not_keep_is_refused() -> None:
    with pytest.raises(DataError) as refused:
        exponent("XPF")
    assert refused.value.field == "currency"


def stripe_invoice(**changes: object) -> dict:
    invoice = {
        "id": "in_1", "object": "invoice", "number": "ABCD-0001", "status": "open", "currency": "usd",
        "total": 3300000, "total_excluding_tax": 3000000, "subtotal": 3000000, "amount_due": 3300000,
        "amount_paid": 0, "amount_remaining": 3300000, "created": NOV_26 - 3600, "effective_at": NOV_26,
        "due_date": NOV_26 + 30 * 86400, "status_transitions": {"finalized_at": NOV_26},
        "metadata": {"handoff_external_id": "HO-I-006A-M1", "opportunity_id": "006A", "line": "M1"},
        "pre_payment_credit_notes_amount": 0, "post_payment_credit_notes_amount": 0,
    }
    return invoice | changes


def test_an_open_invoice_is_posted_with_its_tax_and_what_remains_due() -> None:
    invoice = invoice_from(stripe_invoice(amount_paid=1000000, amount_remaining=2300000))
    assert (invoice.external_id, invoice.target_id, invoice.number, invoice.status) == (
        "HO-I-006A-M1", "in_1", "ABCD-0001", InvoiceStatus.POSTED)
    assert (invoice.untaxed.amount, invoice.tax.amount, invoice.total.amount) == (
        Decimal("30000.00"), Decimal("3000.00"), Decimal("33000.00"))
    assert invoice.amount_due.amount == Decimal("23000.00") and invoice.paid.amount == Decimal("10000.00")
    assert (invoice.invoice_date, invoice.due_date) == (date(2026, 11, 26), date(2026, 12, 26))


@pytest.mark.parametrize(("status", "expected", "due"), [
    ("draft", InvoiceStatus.DRAFT, "33000.00"), ("open", InvoiceStatus.POSTED, "33000.00"),
    ("paid", InvoiceStatus.PAID, "0.00"), ("uncollectible", InvoiceStatus.POSTED, "33000.00"),
    ("void", InvoiceStatus.CANCELLED, "0.00"),
])
def test_stripe_invoice_statuses_map_to_handoffs(status: str, expected: InvoiceStatus, due: str) -> None:
    remaining = 0 if status == "paid" else 3300000
    invoice = invoice_from(stripe_invoice(status=status, amount_remaining=remaining))
    assert invoice.status is expected and invoice.amount_due.amount == Decimal(due)


def test_an_unknown_status_or_a_missing_tax_breakdown() -> None:
    with pytest.raises(DataError) as refused:
        invoice_from(stripe_invoice(status="deleted"))
    assert refused.value.field == "status"
    taxed = invoice_from(stripe_invoice(total_excluding_tax=None, total_taxes=[{"amount": 300000}]))
    assert taxed.tax.amount == Decimal("3000.00")


def test_a_credit_note_counts_negative_and_settled() -> None:
    note = credit_note_from({"id": "cn_1", "object": "credit_note", "number": "ABCD-0001-CN-01",
                             "status": "issued", "currency": "jpy", "total": 50000,
                             "total_excluding_tax": 50000, "created": NOV_26,
                             "metadata": {"handoff_external_id": "HO-CN-006A-M1#2"}})
    assert (note.status, note.total.amount, note.untaxed.amount, note.amount_due.amount) == (
        InvoiceStatus.PAID, Decimal("-50000"), Decimal("-50000"), Decimal("0"))
    assert note.total.currency == "JPY" and note.external_id == "HO-CN-006A-M1#2"
    void = credit_note_from({"id": "cn_2", "object": "credit_note", "status": "void", "currency": "usd",
                             "total": 100, "created": NOV_26})
    assert void.status is InvoiceStatus.CANCELLED
    figures = document_figures_from({"id": "cn_1", "object": "credit_note", "status": "issued",
                                     "currency": "usd", "total": 100, "created": NOV_26}, "006A")
    assert (figures.deal_id, figures.total, figures.status) == ("006A", Decimal("-1.00"), "paid")


def test_invoice_parameters_leave_a_draft_stripe_never_finalizes_on_its_own() -> None:
    request = invoice_request()
    params = invoice_params(request, "cus_1", "PRJ-7", SETTINGS)
    assert params["auto_advance"] is False and params["pending_invoice_items_behavior"] == "exclude"
    assert (params["currency"], params["collection_method"], params["days_until_due"]) == (
        "usd", "send_invoice", 30)
    assert params["metadata"] == {"handoff_external_id": "HO-I-006A-M1", "opportunity_id": "006A",
                                  "line": "M1", "document": "M1", "project_id": "PRJ-7"}
    item = invoice_item_params(invoice_request(document="M1#2", amount="10.10"), "cus_1", "in_1", "PRJ-7")
    assert (item["amount"], item["invoice"], item["metadata"]["line"], item["metadata"]["document"]) == (
        1010, "in_1", "M1", "M1#2")
    charged = invoice_params(request, "cus_1", "PRJ-7",
                             StripeSettings(api_key="rk_test_x", collection_method="charge_automatically"))
    assert "days_until_due" not in charged


def test_a_credit_note_takes_what_is_due_first_and_names_where_the_rest_goes() -> None:
    credit = invoice_request(document="M1#2", amount="-12000.00")
    open_invoice = stripe_invoice(amount_remaining=1000000)
    params = credit_note_params(credit, open_invoice, "PRJ-7", SETTINGS)
    assert (params["invoice"], params["amount"], params["credit_amount"]) == ("in_1", 1200000, 200000)
    covered = credit_note_params(credit, stripe_invoice(), "PRJ-7", SETTINGS)
    assert "credit_amount" not in covered and "out_of_band_amount" not in covered
    outside = credit_note_params(credit, stripe_invoice(status="paid", amount_remaining=0), "PRJ-7",
                                 StripeSettings(api_key="sk_test_x", post_payment_credit="out_of_band"))
    assert outside["out_of_band_amount"] == 1200000
    assert creditable(stripe_invoice(post_payment_credit_notes_amount=300000)) == 3000000
    assert creditable(stripe_invoice(status="draft")) == 0


def test_idempotency_keys_are_derived_from_the_business_key() -> None:
    assert idempotency_key("HO-I-006A-M1", "invoice") == "handoff:HO-I-006A-M1:invoice"
    assert idempotency_key("HO-I-006A-M1", "invoice") != idempotency_key("HO-I-006A-M1", "item")
    long = idempotency_key("HO-I-" + "9" * 300, "finalize")
    assert len(long) <= 255 and long == idempotency_key("HO-I-" + "9" * 300, "finalize")
    assert customer_search_query("HO-C-O'Brien") == "metadata['handoff_customer']:'HO-C-O\\'Brien'"


def error(kind: type, status: int, message: str = "refused", **body: object) -> stripe.StripeError:
    headers = body.pop("headers", {})
    if kind in (stripe.InvalidRequestError, stripe.CardError):
        return kind(message, body.get("param"), body.get("code"), http_status=status, headers=headers)
    return kind(message, http_status=status, headers=headers)


def test_stripe_errors_land_in_handoffs_taxonomy() -> None:
    throttled = translate(error(stripe.RateLimitError, 429, headers={"Retry-After": "7"}))
    assert isinstance(throttled, ThrottledError) and throttled.retry_after == 7
    assert translate(error(stripe.RateLimitError, 429), throttle_wait=2.5).retry_after == 2.5
    key = translate(error(stripe.AuthenticationError, 401, "Invalid API Key provided: sk_test_****"))
    assert type(key) is PermanentError and "HANDOFF_STRIPE_API_KEY" in key.message
    card = translate(error(stripe.CardError, 402, "Your card was declined.", param="payment_method",
                           code="card_declined"))
    assert isinstance(card, DataError) and card.field == "payment_method"
    invalid = translate(error(stripe.InvalidRequestError, 400, "Invalid email address: x", param="email",
                              code="email_invalid"))
    assert isinstance(invalid, DataError) and invalid.field == "email"
    rule = translate(error(stripe.InvalidRequestError, 400, "This invoice is already finalized"))
    assert isinstance(rule, BusinessRuleError)
    assert isinstance(translate(error(stripe.InvalidRequestError, 404, "No such invoice: 'in_x'")),
                      ObjectMissing)
    assert isinstance(translate(error(stripe.IdempotencyError, 400)), KeyConflict)
    assert isinstance(translate(error(stripe.APIError, 500)), TransientError)
    assert isinstance(translate(error(stripe.APIError, 409)), TransientError)
    assert isinstance(translate(stripe.APIConnectionError("reset", should_retry=True)), TransientError)
    assert isinstance(translate(error(stripe.PermissionError, 403)), PermanentError)


@pytest.mark.parametrize("values", [
    {"api_key": "pk_test_publishable"}, {"api_key": "sk_test_x", "base_url": "api.stripe.com"},
    {"api_key": "sk_test_x", "page_size": 101}, {"api_key": "sk_test_x", "post_payment_credit": "refund"},
    {"api_key": "sk_test_x", "collection_method": "manual"},
])
def test_settings_refuse_what_cannot_work(values: dict) -> None:
    with pytest.raises(ConfigError):
        StripeSettings(**values)


def test_the_key_is_never_shown() -> None:
    assert "sk_test_secret" not in repr(StripeSettings(api_key="sk_test_secret"))
