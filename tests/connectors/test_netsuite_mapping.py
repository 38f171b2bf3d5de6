"""Pure parts of the NetSuite connector: mapping to request bodies, settings, exact JSON and
the translation of NetSuite's answers into handoff's error taxonomy."""

from __future__ import annotations

import json
from decimal import Decimal
from email.message import Message
from typing import Any

import pytest

from handoff.connectors.keepalive import TransportError
from handoff.connectors.netsuite import exact_json
from handoff.connectors.netsuite.errors import from_response, retry_after_seconds, translate
from handoff.connectors.netsuite.mapping import customer_body, project_body
from handoff.connectors.netsuite.settings import NetSuiteSettings, account_base_url
from handoff.domain import BillingMethod, Money
from handoff.errors import (
    BusinessRuleError,
    ConfigError,
    DataError,
    HandoffError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from tests.connectors.netsuite_support import a_customer, a_project

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
