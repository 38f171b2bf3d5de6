"""Pure parts of the Business Central connector: where handoff's keys go and in which form,
request bodies, BC's documents read back as handoff's `Invoice`, settings, and the translation
of BC's answers into handoff's error taxonomy."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal
from email.message import Message
from typing import Any

import pytest

from handoff.connectors.businesscentral import BusinessCentralSettings
from handoff.connectors.businesscentral.errors import from_response, retry_after_seconds, translate
from handoff.connectors.businesscentral.mapping import (
    CREDIT_MEMOS,
    INVOICES,
    bc_key,
    changed_fields,
    customer_body,
    deal_of_document_key,
    deal_of_project_number,
    document_body,
    document_figures_from,
    document_key,
    entity_number,
    invoice_from,
    line_body,
    odata_string,
    project_body,
    project_figures_from,
)
from handoff.connectors.keepalive import TransportError
from handoff.domain import InvoiceStatus, Milestone, Money
from handoff.errors import (
    BusinessRuleError,
    ConfigError,
    DataError,
    HandoffError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from tests.connectors.businesscentral_support import COMPANY_ID, a_customer, a_project, an_invoice_request

SETTINGS = BusinessCentralSettings("contoso.onmicrosoft.com", "production", COMPANY_ID, "t",
                                   legal_entities=("US01",))
LONG_LINE = Milestone("M1", "x" * 101, Money(Decimal(1), "USD"))
SALESFORCE_DEAL = "006Ak00000AbCdEfGH"  # an 18-character Salesforce id: mixed case, too long verbatim


# --- keys -------------------------------------------------------------------------------------

def test_a_key_that_fits_goes_in_as_it_is_and_reads_back_as_its_deal() -> None:
    assert entity_number("HO-P-006A") == "HO-P-006A"
    assert deal_of_project_number("HO-P-006A") == "006A"
    assert document_key("HO-I-006A-M1#2") == "HO-I-006A-M1#2"
    assert deal_of_document_key("HO-I-006A-M1#2") == "006A"
    assert deal_of_document_key("HO-CN-006A-M1") == "006A"


@pytest.mark.parametrize("external_id", [
    f"HO-P-{SALESFORCE_DEAL}",  # 23 characters: more than No. holds
    "HO-P-006a",  # BC would upper-case it: two deals differing in case would meet
    "HO-P-006A*",  # a wildcard in BC's filters
    "HO-P-A.B",  # '..' makes ranges
])
def test_a_key_bc_cannot_keep_as_it_is_becomes_a_compact_deterministic_one(external_id: str) -> None:
    number = entity_number(external_id)
    assert number.startswith("HO-P-~") and len(number) == 20
    assert number == number.upper() and number == entity_number(external_id)
    assert deal_of_project_number(number) == number  # cannot be read back: named by itself


def test_compact_keys_stay_distinct_and_fill_their_field() -> None:
    numbers = {entity_number(f"HO-C-{SALESFORCE_DEAL[:-1]}{c}") for c in "ABCDEFGH"}
    assert len(numbers) == 8
    long_document = f"HO-I-{SALESFORCE_DEAL}-a0B5g00000XyZabEAF"
    key = document_key(long_document)
    assert key.startswith("HO-I-~") and len(key) == 35
    assert bc_key("somebody else's id", 20).startswith("~")


@pytest.mark.parametrize("external_id", ["", " HO-C-1", "HO-C-1\n"])
def test_a_blank_or_spaced_key_is_a_data_error(external_id: str) -> None:
    with pytest.raises(DataError) as caught:
        entity_number(external_id)
    assert caught.value.field == "external_id"


def test_filter_literals_double_their_quotes() -> None:
    assert odata_string("O'Brien") == "'O''Brien'"


# --- bodies ---------------------------------------------------------------------------------

def test_customer_body_keeps_the_key_in_number() -> None:
    assert customer_body("HO-C-001A", a_customer(currency="EUR", legal_entity="US01"), SETTINGS) == {
        "number": "HO-C-001A", "displayName": "Acme Consulting", "type": "Company", "currencyCode": "EUR"}


def test_project_body_is_what_api_v2_projects_hold() -> None:
    assert project_body(a_project(), SETTINGS) == {"number": "HO-P-006A", "displayName": "Acme rollout"}


@pytest.mark.parametrize(
    ("build", "field"),
    [(lambda: customer_body("HO-C-1", a_customer(legal_entity="FR01"), SETTINGS), "legal_entity"),
     (lambda: project_body(a_project(name="x" * 101), SETTINGS), "name"),
     (lambda: customer_body("HO-C-1", a_customer(name=""), SETTINGS), "name"),
     (lambda: line_body(replace(an_invoice_request(), line=LONG_LINE), SETTINGS), "line.name")],
)
def test_values_bc_cannot_take_are_data_errors_before_any_call(build: Any, field: str) -> None:
    with pytest.raises(DataError) as caught:
        build()
    assert caught.value.field == field


def test_an_invoice_names_its_project_and_bills_one_line_at_the_exact_price() -> None:
    request = an_invoice_request("12345.67")
    assert document_body(request, "cust-id", "HO-P-006A") == {
        "externalDocumentNumber": "HO-I-006A-M1", "customerId": "cust-id", "invoiceDate": "2025-03-10",
        "postingDate": "2025-03-10", "currencyCode": "USD", "customerPurchaseOrderReference": "HO-P-006A"}
    line = line_body(request, SETTINGS)
    assert line == {"lineType": "Item", "lineObjectNumber": "SERVICES", "description": "Kick-off workshop",
                    "quantity": 1, "unitPrice": Decimal("12345.67")}


def test_a_credit_note_is_a_credit_memo_with_positive_amounts() -> None:
    request = an_invoice_request("-400.10", "HO-CN-006A-M1")
    assert document_body(request, "cust-id", "HO-P-006A") == {
        "externalDocumentNumber": "HO-CN-006A-M1", "customerId": "cust-id", "creditMemoDate": "2025-03-10",
        "postingDate": "2025-03-10", "currencyCode": "USD"}
    settings = BusinessCentralSettings("t", "e", COMPANY_ID, "x", line_type="Account",
                                       line_object_number="40400")
    assert line_body(request, settings)["unitPrice"] == Decimal("400.10")
    assert line_body(request, settings)["lineType"] == "Account"


def test_only_fields_that_differ_are_patched() -> None:
    record = {"number": "HO-C-001A", "displayName": "Acme", "type": "Company", "currencyCode": "USD"}
    body = {"number": "HO-C-001A", "displayName": "ACME", "type": "Company", "currencyCode": "usd"}
    assert changed_fields(record, body) == {"displayName": "ACME"}


# --- what BC shows ----------------------------------------------------------------------------

def a_document(status: str = "Open", **changes: Any) -> dict[str, Any]:
    """A sales invoice as BC reads it back (trimmed)."""
    return {"@odata.etag": 'W/"x"', "id": "5d11", "number": "PS-INV103001",
            "externalDocumentNumber": "HO-I-006A-M1", "invoiceDate": "2025-03-10",
            "creditMemoDate": "2025-03-10", "dueDate": "2025-04-09", "currencyCode": "USD",
            "totalAmountExcludingTax": Decimal("100.00"), "totalTaxAmount": Decimal("10.00"),
            "totalAmountIncludingTax": Decimal("110.00"), "remainingAmount": Decimal("110.00"),
            "status": status} | changes


@pytest.mark.parametrize(
    ("status", "expected"),
    [("Draft", InvoiceStatus.DRAFT), ("In Review", InvoiceStatus.DRAFT), ("Open", InvoiceStatus.POSTED),
     ("Paid", InvoiceStatus.PAID), ("Canceled", InvoiceStatus.CANCELLED),
     ("Corrective", InvoiceStatus.POSTED)],
)
def test_bc_statuses_map_to_handoffs(status: str, expected: InvoiceStatus) -> None:
    assert invoice_from(a_document(status), INVOICES).status is expected


def test_an_invoice_reads_back_with_exact_totals_and_what_remains_due() -> None:
    invoice = invoice_from(a_document(remainingAmount=Decimal("40.25")), INVOICES)
    usd = lambda amount: Money(Decimal(amount), "USD")  # noqa: E731
    assert (invoice.untaxed, invoice.tax, invoice.total, invoice.amount_due, invoice.paid) == (
        usd("100.00"), usd("10.00"), usd("110.00"), usd("40.25"), usd("69.75"))
    assert (invoice.number, str(invoice.invoice_date), str(invoice.due_date)) == (
        "PS-INV103001", "2025-03-10", "2025-04-09")


def test_a_credit_memo_reads_back_negative_and_a_settled_one_owes_plain_zero() -> None:
    memo = invoice_from(a_document("Open", externalDocumentNumber="HO-CN-006A-M1"), CREDIT_MEMOS)
    assert (str(memo.total), str(memo.amount_due)) == ("-110.00 USD", "-110.00 USD")
    settled = invoice_from(a_document("Paid"), CREDIT_MEMOS)
    assert str(settled.amount_due) == "0.00 USD" and not settled.amount_due.amount.is_signed()


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"status": "Strange"}, "status"), ({"currencyCode": ""}, "currencyCode"),
     ({"remainingAmount": 1.5}, "remainingAmount")],
)
def test_what_handoff_cannot_read_is_a_data_error(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(DataError) as caught:
        invoice_from(a_document() | changes, INVOICES)
    assert caught.value.field == field


def test_figures_name_the_deal_from_the_key() -> None:
    assert project_figures_from({"number": "HO-P-006A"}).deal_id == "006A"
    memo = document_figures_from(a_document(externalDocumentNumber="HO-CN-006A-M1"), CREDIT_MEMOS)
    assert (memo.deal_id, memo.status, memo.total, memo.untaxed, memo.amount_due) == (
        "006A", "posted", Decimal("-110.00"), Decimal("-100.00"), Decimal("-110.00"))


# --- settings ---------------------------------------------------------------------------------

def test_settings_build_the_api_root_and_keep_the_token_out_of_repr() -> None:
    assert SETTINGS.base_url == (
        "https://api.businesscentral.dynamics.com/v2.0/contoso.onmicrosoft.com/production/api/v2.0")
    assert SETTINGS.company_path == f"companies({COMPANY_ID})"
    assert "'t'" not in repr(SETTINGS)


@pytest.mark.parametrize(
    ("changes", "words"),
    [({"company_id": "CRONUS USA, Inc."}, "company_id"), ({"environment": "prod/x"}, "environment"),
     ({"api_root": "api.businesscentral.dynamics.com"}, "https://"), ({"line_type": "Resource"}, "line_type"),
     ({"page_size": 20_001}, "page_size")],
)
def test_settings_refuse_what_would_send_requests_astray(changes: dict[str, Any], words: str) -> None:
    values = {"tenant": "contoso", "environment": "production", "company_id": COMPANY_ID, "token": "t"}
    with pytest.raises(ConfigError, match=words):
        BusinessCentralSettings(**(values | changes))


# --- errors -----------------------------------------------------------------------------------

def answer(status: int, code: str | None = None, message: str = "Something.",
           headers: dict[str, str] | None = None) -> HandoffError:
    """BC's error body for `status` and `code`, as the connector translates it."""
    body = json.dumps({"error": {"code": code, "message": f"{message}  CorrelationId:  "
                                 "e4b6f1f3-0000-4000-8000-000000000001."}})
    return from_response(status, headers_of(headers or {}), body.encode())


def headers_of(values: dict[str, str]) -> Message:
    """Headers as http.client gives them: case-insensitive."""
    message = Message()
    for name, value in values.items():
        message[name] = value
    return message


@pytest.mark.parametrize(
    ("status", "code", "message", "kind"),
    [(429, "Application_TooManyRequests", "Too many requests reached.", ThrottledError),
     (503, "Internal_TenantUnavailable", "The tenant 'x' is not accessible", TransientError),
     (504, None, "Gateway Timeout", TransientError),
     (408, None, "Request Timeout", TransientError),
     (409, "Request_EntityChanged", "Another user has already changed the record.", TransientError),
     (412, None, "Precondition failed", TransientError),
     (400, "Application_DialogException", 'The "currencyCode" does not match to a Currency.', DataError),
     (400, "Application_StringExceededLength", "The length of the string is 23, …", DataError),
     (400, "Application_DialogException", "You may not enter numbers manually.", BusinessRuleError),
     (409, "Internal_EntityWithSameKeyExists", "The Customer already exists.", BusinessRuleError),
     (401, "Authentication_InvalidCredentials", "The server has rejected the client credentials.",
      PermanentError),
     (403, "Authorization_InsufficientPermissions", "No permission.", PermanentError),
     (404, "Internal_RecordNotFound", "The Customer does not exist.", PermanentError),
     (400, "BadRequest", "The property 'colour' does not exist on type 'Microsoft.NAV.customer'.",
      PermanentError)],
)
def test_each_answer_lands_in_its_class(status: int, code: str | None, message: str, kind: type) -> None:
    error = answer(status, code, message)
    assert type(error) is kind and error.system == "businesscentral"


@pytest.mark.parametrize(
    ("message", "field"),
    [('The "currencyCode" does not match to a Currency.', "currencyCode"),
     ("Field 'taxable' must not be blank or empty.", "taxable"),
     ("Item does not exist.", "lineObjectNumber"),
     ("The sell-to customer cannot be found.", "customerId")],
)
def test_a_validation_error_names_the_property_bc_names(message: str, field: str) -> None:
    error = answer(400, "Application_DialogException", message)
    assert isinstance(error, DataError) and error.field == field
    assert "CorrelationId" in error.message  # kept for Microsoft support


def test_refused_credentials_say_which_setting_to_check() -> None:
    error = answer(401, "Authentication_InvalidCredentials",
                   "The server has rejected the client credentials.")
    assert "Business Central refused the credentials" in str(error)
    assert "HANDOFF_BUSINESSCENTRAL_TOKEN" in str(error)


@pytest.mark.parametrize(("headers", "wait"), [({"Retry-After": "7"}, 7.0), ({}, None)])
def test_throttling_carries_retry_after_only_when_sent(headers: dict[str, str], wait: float | None) -> None:
    throttled = answer(429, "Application_TooManyRequests", headers=headers)
    assert isinstance(throttled, ThrottledError) and throttled.retry_after == wait
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


@pytest.mark.parametrize(("retryable", "kind"), [(True, TransientError), (False, PermanentError)])
def test_each_failed_call_lands_in_its_class(retryable: bool, kind: type) -> None:
    error = translate(TransportError("ConnectionResetError: reset by peer", retryable=retryable))
    assert type(error) is kind and "reset by peer" in error.message


def test_a_body_not_in_bcs_format_still_translates() -> None:
    error = from_response(502, headers_of({}), b"<html>Bad Gateway</html>")
    assert isinstance(error, TransientError) and "Bad Gateway" in error.message
    assert "Service Unavailable" in from_response(503, headers_of({}), b"").message
