"""Pure parts of the Oracle connector: mapping to request bodies and queries, reading
documents back, settings, and the translation of Oracle's answers into handoff's error
taxonomy."""

from __future__ import annotations

import json
from decimal import Decimal
from email.message import Message
from typing import Any

import pytest

from handoff.connectors import exact_json
from handoff.connectors.keepalive import TransportError
from handoff.connectors.oracle.errors import from_response, translate
from handoff.connectors.oracle.mapping import (
    CREDIT_MEMOS,
    INVOICES,
    customer_body,
    customer_query,
    deal_of_document,
    document_body,
    document_figures_from,
    document_query,
    handoff_documents_query,
    handoff_projects_query,
    invoice_from,
    project_body,
    project_changes,
    quoted,
)
from handoff.connectors.oracle.settings import OracleSettings
from handoff.domain import BillingMethod, InvoiceStatus, Money, ProjectStatus
from handoff.errors import (
    BusinessRuleError,
    ConfigError,
    DataError,
    HandoffError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from tests.connectors.oracle_support import BUSINESS_UNITS, a_customer, a_project, an_invoice_request

SETTINGS = OracleSettings("https://pod.example.com", user="u", password="p",
                          business_units=BUSINESS_UNITS)


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


# --- request bodies and queries -------------------------------------------------------------

def test_a_customer_is_an_account_carrying_handoffs_id_as_its_source_system_reference() -> None:
    assert customer_body("HO-C-001A", a_customer(currency="GBP"), SETTINGS) == {
        "SourceSystem": "HANDOFF", "SourceSystemReferenceValue": "HO-C-001A",
        "OrganizationName": "Acme Consulting", "Type": "ZCA_CUSTOMER", "CurrencyCode": "GBP"}


def test_a_project_carries_its_reference_business_unit_type_customer_and_exact_value() -> None:
    project = a_project(legal_entity="UK01", billing_method=BillingMethod.TIME_AND_MATERIALS,
                        status=ProjectStatus.ACTIVE)
    body = project_body(project, "CDRM_100001", SETTINGS)
    assert body == {
        "ProjectName": "Acme rollout", "SourceApplicationCode": "HANDOFF",
        "SourceProjectReference": "HO-P-006A", "ProjectCurrencyCode": "USD",
        "ProjectType": "Time and Materials", "BusinessUnitName": "UK1 Business Unit",
        "ProjectStartDate": "2025-03-01", "ProjectValue": Decimal("1234567.89"),
        "ProjectStatus": "Approved", "ProjectCustomers": [{"PartyNumber": "CDRM_100001"}]}
    assert b'"ProjectValue":1234567.89' in exact_json.dumps(body)


def test_a_project_update_sends_only_what_oracle_lets_change() -> None:
    assert set(project_changes(a_project(), SETTINGS)) == {
        "ProjectName", "ProjectStartDate", "ProjectValue", "ProjectStatus"}


def test_a_project_without_a_legal_entity_goes_to_the_default_business_unit() -> None:
    assert project_body(a_project(), "CDRM_1", SETTINGS)["BusinessUnitName"] == "US1 Business Unit"


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"legal_entity": "FR01"}, "legal_entity"),
     ({"external_id": "HO-P-" + "9" * 200}, "external_id"),
     ({"external_id": "HO-P-\n1"}, "external_id")],
)
def test_values_oracle_has_no_name_for_are_data_errors(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(DataError) as caught:
        project_body(a_project(**changes), "CDRM_1", SETTINGS)
    assert caught.value.field == field


def test_an_unmapped_billing_method_or_status_is_a_data_error() -> None:
    settings = OracleSettings("https://pod.example.com", token="t", project_types={},
                              project_statuses={})
    with pytest.raises(DataError) as caught:
        project_body(a_project(), "CDRM_1", settings)
    assert caught.value.field == "billing_method"


def test_an_invoice_is_one_line_in_the_projects_business_unit_with_the_key_in_cross_reference() -> None:
    body = document_body(an_invoice_request("12345.67"), "CDRM_1", "UK1 Business Unit", SETTINGS)
    assert body == {
        "BusinessUnit": "UK1 Business Unit", "TransactionSource": "Manual",
        "TransactionType": "Invoice", "TransactionDate": "2025-03-10",
        "AccountingDate": "2025-03-10", "BillToCustomerNumber": "CDRM_1",
        "CrossReference": "HO-I-006A-M1", "InvoiceCurrencyCode": "USD", "PaymentTerms": "30 Net",
        "InvoiceStatus": "Complete",
        "receivablesInvoiceLines": [{"LineNumber": 1, "Description": "Kick-off workshop",
                                     "Quantity": 1, "UnitSellingPrice": Decimal("12345.67"),
                                     "MemoLine": "Professional Services"}]}


def test_an_invoice_left_as_a_draft_is_incomplete_and_a_memo_line_can_be_left_out() -> None:
    settings = OracleSettings("https://pod.example.com", token="t", memo_line=None)
    body = document_body(an_invoice_request(post=False), "CDRM_1", "US1 Business Unit", settings)
    assert body["InvoiceStatus"] == "Incomplete"
    assert "MemoLine" not in body["receivablesInvoiceLines"][0]


def test_a_credit_note_is_an_on_account_credit_memo_kept_negative() -> None:
    body = document_body(an_invoice_request("-400.10", "HO-CN-006A-M1"), "CDRM_1",
                         "US1 Business Unit", SETTINGS)
    assert (body["TransactionType"], body["CreditMemoCurrency"], body["CrossReference"]) == (
        "Credit Memo", "USD", "HO-CN-006A-M1")
    assert body["receivablesCreditMemoLines"] == [
        {"LineNumber": 1, "LineDescription": "Kick-off workshop",
         "LineAmountCredit": Decimal("-400.10"), "MemoLine": "Professional Services"}]
    assert "InvoiceStatus" not in body and "PaymentTerms" not in body


def test_queries_filter_on_the_key_fields_in_expression_syntax() -> None:
    assert customer_query("HO-C-1", SETTINGS) == (
        "SourceSystem='HANDOFF' and SourceSystemReferenceValue='HO-C-1'")
    assert document_query("HO-I-006A-M1#2") == "CrossReference='HO-I-006A-M1#2'"
    assert handoff_projects_query(SETTINGS) == (
        "SourceApplicationCode='HANDOFF' and SourceProjectReference LIKE 'HO-P-%'")
    assert handoff_documents_query(CREDIT_MEMOS) == "CrossReference LIKE 'HO-CN-%'"
    assert quoted("O'Brien") == "'O''Brien'"


# --- documents read back --------------------------------------------------------------------

def an_invoice(status: str = "Complete", lines: Any = None, **changes: Any) -> dict[str, Any]:
    """A receivables invoice as Oracle reads it back with its lines (trimmed)."""
    rows = lines if lines is not None else {"items": [
        {"Quantity": Decimal("1"), "UnitSellingPrice": Decimal("100.00")}], "count": 1}
    return {"CustomerTransactionId": 300100170996427, "TransactionNumber": "1007",
            "CrossReference": "HO-I-006A-M1#2", "TransactionDate": "2025-03-10",
            "DueDate": "2025-04-09", "InvoiceCurrencyCode": "USD", "InvoiceStatus": status,
            "EnteredAmount": Decimal("110.00"), "InvoiceBalanceAmount": Decimal("110.00"),
            "receivablesInvoiceLines": rows} | changes


@pytest.mark.parametrize(
    ("status", "balance", "expected"),
    [("Complete", "110.00", InvoiceStatus.POSTED), ("Complete", "10.00", InvoiceStatus.POSTED),
     ("Complete", "0", InvoiceStatus.PAID), ("Incomplete", "110.00", InvoiceStatus.DRAFT)],
)
def test_oracle_statuses_and_balances_map_to_handoffs(status: str, balance: str,
                                                      expected: InvoiceStatus) -> None:
    record = an_invoice(status, InvoiceBalanceAmount=Decimal(balance))
    assert invoice_from(record, INVOICES).status is expected


def test_an_invoice_reads_back_with_tax_beyond_its_lines_and_what_is_still_due() -> None:
    invoice = invoice_from(an_invoice(InvoiceBalanceAmount=Decimal("60.5")), INVOICES)
    assert (invoice.external_id, invoice.target_id, invoice.number) == (
        "HO-I-006A-M1#2", "300100170996427", "1007")
    assert (invoice.untaxed, invoice.tax, invoice.total, invoice.amount_due, invoice.paid) == (
        usd("100.00"), usd("10.00"), usd("110.00"), usd("60.50"), usd("49.50"))
    assert (str(invoice.invoice_date), str(invoice.due_date)) == ("2025-03-10", "2025-04-09")


def test_lines_read_as_an_array_before_framework_version_3_count_the_same() -> None:
    lines = [{"Quantity": 2, "UnitSellingPrice": Decimal("50.00")}]
    assert invoice_from(an_invoice(lines=lines), INVOICES).untaxed == usd("100.00")


def test_a_credit_memo_reads_back_negative_and_unapplied() -> None:
    memo = {"CustomerTransactionId": 3001, "TransactionNumber": "CM10001",
            "CrossReference": "HO-CN-006A-M1", "CreditMemoCurrency": "USD",
            "EnteredAmount": Decimal("-400.10"), "TransactionDate": "2025-03-10",
            "receivablesCreditMemoLines": [{"LineAmountCredit": Decimal("-400.10")}]}
    credit = invoice_from(memo, CREDIT_MEMOS)
    assert (credit.status, credit.untaxed, credit.total, credit.amount_due, credit.due_date) == (
        InvoiceStatus.POSTED, usd("-400.10"), usd("-400.10"), usd("-400.10"), None)


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"InvoiceStatus": "Frozen"}, "InvoiceStatus"),
     ({"InvoiceCurrencyCode": "XXX"}, "InvoiceCurrencyCode"),
     ({"InvoiceBalanceAmount": None}, "InvoiceBalanceAmount")],
)
def test_what_handoff_cannot_read_is_a_data_error(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(DataError) as caught:
        invoice_from(an_invoice() | changes, INVOICES)
    assert caught.value.field == field


def test_a_documents_deal_is_the_longest_handoff_deal_its_reference_names() -> None:
    deals = {"006A", "006A-2", "007"}
    assert deal_of_document("HO-I-006A-2-M1#2", INVOICES, deals) == "006A-2"
    assert deal_of_document("HO-I-006A-M1", INVOICES, deals) == "006A"
    assert deal_of_document("HO-CN-007-M1", CREDIT_MEMOS, deals) == "007"
    assert deal_of_document("HO-I-999-M1", INVOICES, deals) is None
    assert deal_of_document("1007", INVOICES, deals) is None


def test_bulk_figures_name_a_status_handoff_does_not_know_rather_than_stop() -> None:
    row = {"CustomerTransactionId": 1, "InvoiceCurrencyCode": "USD", "InvoiceStatus": "Frozen",
           "EnteredAmount": Decimal("5.00"), "InvoiceBalanceAmount": Decimal("0.00"),
           "receivablesInvoiceLines": [{"Quantity": 1, "UnitSellingPrice": Decimal("5.00")}]}
    figures = document_figures_from(row, INVOICES, "006A")
    assert (figures.status, figures.total, figures.untaxed, str(figures.amount_due)) == (
        "unknown Frozen", Decimal("5.00"), Decimal("5.00"), "0.00")


# --- settings -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "options",
    [{"base_url": "pod.example.com", "token": "t"},
     {"base_url": "https://pod.example.com/fscmRestApi", "token": "t"},
     {"base_url": "https://pod.example.com"},
     {"base_url": "https://pod.example.com", "user": "u"},
     {"base_url": "https://pod.example.com", "user": "u", "password": "p", "token": "t"},
     {"base_url": "https://pod.example.com", "token": "t", "framework_version": 2},
     {"base_url": "https://pod.example.com", "token": "t", "page_size": 1000}],
)
def test_settings_that_cannot_work_are_refused_before_any_call(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        OracleSettings(**options)


def test_secrets_stay_out_of_the_settings_repr() -> None:
    shown = repr(OracleSettings("https://pod.example.com", user="u", password="hunter2"))
    assert "hunter2" not in shown
    assert "s3cret" not in repr(OracleSettings("https://pod.example.com", token="s3cret"))


# --- errors ---------------------------------------------------------------------------------

def headers(**values: str) -> Message:
    message = Message()
    for name, value in values.items():
        message[name.replace("_", "-")] = value
    return message


def error_body(detail: str, path: str | None = None) -> bytes:
    entry = {"detail": detail, "o:errorCode": "JBO-27014"} | ({"o:errorPath": path} if path else {})
    return json.dumps({"title": "Bad Request", "status": "400", "o:errorDetails": [entry]}).encode()


@pytest.mark.parametrize(
    ("status", "extra", "body", "kind", "retry_after"),
    [(429, {"Retry_After": "7"}, b"Too Many Requests", ThrottledError, 7.0),
     (429, {}, b"", ThrottledError, None),
     (503, {"Retry_After": "30"}, b"Service Unavailable", TransientError, 30.0),
     (500, {}, b"", TransientError, None),
     (502, {}, b"<html>Bad Gateway</html>", TransientError, None),
     (412, {}, b"", TransientError, None),
     (404, {}, b"", PermanentError, None),
     (415, {}, b"The media type is not supported", PermanentError, None)],
)
def test_statuses_land_in_the_right_class(status: int, extra: dict[str, str], body: bytes,
                                          kind: type[HandoffError], retry_after: float | None) -> None:
    error = from_response(status, headers(**extra), body)
    assert type(error) is kind and error.system == "oracle"
    if isinstance(error, TransientError):
        assert error.retry_after == retry_after


def test_a_refusal_naming_an_attribute_is_a_data_error_on_it() -> None:
    body = error_body("The party CDRM_9 doesn't exist.", "/ProjectCustomers/0/PartyNumber")
    error = from_response(400, headers(), body)
    assert isinstance(error, DataError) and error.field == "ProjectCustomers.0.PartyNumber"
    assert "CDRM_9" in str(error)


def test_a_refusal_naming_no_attribute_is_a_business_rule_in_json_or_plain_text() -> None:
    for body in (error_body("You can't change the date of a complete transaction."),
                 b"You can't change the date of a complete transaction."):
        error = from_response(400, headers(), body)
        assert isinstance(error, BusinessRuleError) and "complete transaction" in str(error)


def test_refused_credentials_are_permanent_and_say_which_to_check() -> None:
    error = from_response(401, headers(WWW_Authenticate='Basic realm="x"'), b"")
    assert isinstance(error, PermanentError)
    assert "refused the credentials" in str(error) and "HANDOFF_ORACLE_PASSWORD" in str(error)
    assert "role or privilege" in str(from_response(403, headers(), b""))


def test_a_call_without_an_answer_is_transient_unless_trying_again_cannot_help() -> None:
    assert type(translate(TransportError("reset", retryable=True))) is TransientError
    assert type(translate(TransportError("untrusted", retryable=False))) is PermanentError
