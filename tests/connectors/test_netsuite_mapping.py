"""Pure parts of the NetSuite connector: mapping to request bodies, settings, exact JSON and
the translation of NetSuite's answers into handoff's error taxonomy."""

from __future__ import annotations

import json
from decimal import Decimal
from email.message import Message
from typing import Any

import pytest

from handoff.connectors import exact_json
from handoff.connectors.keepalive import TransportError
from handoff.connectors.netsuite.errors import from_response, retry_after_seconds, translate
from handoff.connectors.netsuite.mapping import (
    customer_body,
    document_external_id,
    invoice_body,
    invoice_from,
    project_body,
)
from handoff.connectors.netsuite.settings import NetSuiteSettings, account_base_url
from handoff.domain import BillingMethod, InvoiceStatus, Money
from handoff.errors import (
    BusinessRuleError,
    ConfigError,
    DataError,
    HandoffError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from tests.connectors.netsuite_support import a_customer, a_project, an_invoice_request

SETTINGS = NetSuiteSettings("http://netsuite.test/services/rest", "t",
                            subsidiary_ids={"UK01": "3"})


def test_customer_body_names_references_by_internal_id() -> None:
    body = customer_body("HO-CUST-1", a_customer(currency="GBP", legal_entity="UK01"), SETTINGS)
    assert body == {"externalId": "HO-CUST-1", "companyName": "Acme Consulting",
                    "currency": {"id": "2"}, "subsidiary": {"id": "3"}}


def test_project_body_carries_the_price_as_an_exact_json_number() -> None:
    project = a_project(billing_method=BillingMethod.TIME_AND_MATERIALS)
    body = project_body(project, "101", SETTINGS)
    assert body["parent"] == {"id": "101"} and body["subsidiary"] == {"id": "1"}
    assert (body["jobBillingType"], body["startDate"]) == ({"id": "4"}, "2025-03-01")
    assert b'"jobPrice":1234567.89' in exact_json.dumps(body)


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"value": Money(Decimal("10"), "JPY")}, "currency"),
     ({"legal_entity": "FR01"}, "legal_entity"),
     ({"external_id": "HO OPP/1"}, "external_id")],
)
def test_values_without_a_netsuite_id_are_data_errors(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(DataError) as caught:
        project_body(a_project(**changes), "101", SETTINGS)
    assert caught.value.field == field


def test_a_credit_note_becomes_a_credit_memo_with_positive_amounts() -> None:
    settings = NetSuiteSettings("http://netsuite.test/services/rest", "t", service_item_id="7")
    body = invoice_body(an_invoice_request("-400.10", "HO-CN-006A-M1"), "101", "102", settings)
    assert body == {
        "externalId": "HO-CN-006A-M1", "entity": {"id": "101"}, "job": {"id": "102"},
        "tranDate": "2025-03-10", "currency": {"id": "1"},
        "item": {"items": [{"item": {"id": "7"}, "quantity": 1, "rate": Decimal("400.10"),
                            "amount": Decimal("400.10"), "description": "Kick-off workshop"}]}}


def test_document_ids_keep_only_netsuites_characters_and_stay_distinct() -> None:
    ids = ["HO-I-006A-M1#2", "HO-I-006A-M1-2", "HO-I-006A-M1_2", "HO-I-006A-M1_23_2"]
    escaped = [document_external_id(external_id) for external_id in ids]
    assert escaped[0] == "HO-I-006A-M1_23_2" and len(set(escaped)) == len(ids)
    assert all(exact_id.replace("_", "").replace("-", "").isalnum() for exact_id in escaped)


def a_record(status: str = "A", **changes: Any) -> dict[str, Any]:
    """An invoice as NetSuite reads it back (trimmed)."""
    return {"id": "120", "externalId": "HO-I-006A-M1_23_2", "tranId": "INV10001",
            "tranDate": "2025-03-10", "dueDate": "2025-04-09", "currency": {"id": "1"},
            "status": {"id": status, "refName": "?"}, "total": Decimal("110.00"),
            "taxTotal": Decimal("10.00"), "amountRemaining": Decimal("0.00")} | changes


@pytest.mark.parametrize(
    ("record_type", "status", "expected"),
    [("invoice", "A", InvoiceStatus.POSTED), ("invoice", "B", InvoiceStatus.PAID),
     ("invoice", "D", InvoiceStatus.DRAFT), ("invoice", "V", InvoiceStatus.CANCELLED),
     ("creditMemo", "A", InvoiceStatus.POSTED), ("creditMemo", "B", InvoiceStatus.PAID)],
)
def test_netsuite_statuses_map_to_handoffs(record_type: str, status: str,
                                           expected: InvoiceStatus) -> None:
    assert invoice_from(a_record(status), record_type, SETTINGS).status is expected


def test_a_credit_memo_reads_back_negative_and_a_settled_one_owes_plain_zero() -> None:
    memo = invoice_from(a_record("B"), "creditMemo", SETTINGS)
    assert (memo.untaxed, memo.tax, memo.total) == (
        Money(Decimal("-100.00"), "USD"), Money(Decimal("-10.00"), "USD"),
        Money(Decimal("-110.00"), "USD"))
    assert str(memo.amount_due) == "0.00 USD"
    assert (memo.external_id, memo.number, str(memo.due_date)) == (
        "HO-I-006A-M1#2", "INV10001", "2025-04-09")


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"status": {"id": "Z", "refName": "Strange"}}, "status"),
     ({"currency": {"id": "99"}}, "currency")],
)
def test_what_handoff_cannot_read_is_a_data_error(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(DataError) as caught:
        invoice_from(a_record() | changes, "invoice", SETTINGS)
    assert caught.value.field == field


def test_exact_json_round_trips_decimals_without_floats() -> None:
    data = exact_json.loads(exact_json.dumps({"a": Decimal("0.10"), "b": Decimal("1E+3")}))
    assert data == {"a": Decimal("0.10"), "b": Decimal("1000")}
    assert isinstance(data["a"], Decimal)


def test_account_id_becomes_the_suitetalk_host() -> None:
    assert account_base_url("1234567_SB1") == (
        "https://1234567-sb1.suitetalk.api.netsuite.com/services/rest")
    settings = NetSuiteSettings.from_account("1234567_SB1", "secret")
    assert settings.account_id == "1234567_SB1" and "secret" not in repr(settings)


def test_a_base_url_without_a_scheme_is_refused_before_the_token_goes_anywhere() -> None:
    with pytest.raises(ConfigError):
        NetSuiteSettings("netsuite.example.com/services/rest", "secret")


@pytest.mark.parametrize("item_id", ["Services", "", 7])
def test_a_service_item_that_is_not_an_internal_id_is_refused(item_id: Any) -> None:
    with pytest.raises(ConfigError, match="service_item_id"):
        NetSuiteSettings("https://netsuite.test/services/rest", "t", service_item_id=item_id)


def answer(status: int, code: str | None = None, path: str | None = None,
           headers: dict[str, str] | None = None) -> HandoffError:
    """NetSuite's error body for `status` and `code`, as the connector translates it."""
    detail = {"detail": f"detail of {code}", "o:errorCode": code} | (
        {"o:errorPath": path} if path else {})
    body = json.dumps({"type": "t", "title": "x", "status": status, "o:errorDetails": [detail]})
    return from_response(status, headers_of(headers or {}), body.encode())


def headers_of(values: dict[str, str]) -> Message:
    """Headers as http.client gives them: case-insensitive."""
    message = Message()
    for name, value in values.items():
        message[name] = value
    return message


@pytest.mark.parametrize(
    ("status", "code", "path", "kind"),
    [(429, "CONCURRENCY_LIMIT_EXCEEDED", None, ThrottledError),
     (400, "CONCURRENCY_LIMIT_EXCEEDED", None, ThrottledError),
     (502, None, None, TransientError),
     (400, "USER_ERROR", None, BusinessRuleError),
     (400, "INVALID_CONTENT", "parent", DataError),
     (400, "NONEXISTENT_FIELD", "colour", DataError),
     (403, "INSUFFICIENT_PERMISSION", None, PermanentError),
     (404, "NONEXISTENT_ID", None, PermanentError)],
)
def test_each_answer_lands_in_its_class(status: int, code: str | None, path: str | None,
                                        kind: type) -> None:
    error = answer(status, code, path)
    assert type(error) is kind and error.system == "netsuite"


@pytest.mark.parametrize(("retryable", "kind"), [(True, TransientError), (False, PermanentError)])
def test_each_failed_call_lands_in_its_class(retryable: bool, kind: type) -> None:
    error = translate(TransportError("ConnectionResetError: reset by peer", retryable=retryable))
    assert type(error) is kind and error.system == "netsuite" and "reset by peer" in error.message


def test_data_errors_name_the_error_path_and_keep_netsuites_detail() -> None:
    error = answer(400, "INVALID_CONTENT", "parent")
    assert isinstance(error, DataError)
    assert (error.field, error.message) == ("parent", "detail of INVALID_CONTENT")


def test_retry_after_is_read_as_seconds_or_http_date() -> None:
    throttled = answer(429, headers={"retry-after": "7"})
    assert isinstance(throttled, ThrottledError) and throttled.retry_after == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after_seconds("soon") is None


def test_a_body_not_in_netsuites_format_still_translates() -> None:
    error = from_response(503, headers_of({}), b"<html>Maintenance</html>")
    assert isinstance(error, TransientError) and "Maintenance" in error.message
    assert "Service Unavailable" in from_response(503, headers_of({}), b"").message
