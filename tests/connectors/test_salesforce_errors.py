"""Salesforce error codes and transport failures → handoff's error taxonomy."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
)

from handoff.connectors.retry_after import retry_after_seconds
from handoff.connectors.salesforce.errors import (
    classify,
    record_error,
    translate,
)
from handoff.errors import (
    BusinessRuleError,
    DataError,
    PermanentError,
    ThrottledError,
    TransientError,
)


def rest_error(
    cls: type[SalesforceError], status: int, code: str, fields: list[str] | None = None
) -> SalesforceError:
    body = {"message": "refused", "errorCode": code} | ({"fields": fields} if fields else {})
    return cls("https://x/services/data/v59.0/sobjects/Opportunity", status, "Opportunity", [body])


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("REQUEST_LIMIT_EXCEEDED", ThrottledError),
        ("UNABLE_TO_LOCK_ROW", TransientError),
        ("FIELD_CUSTOM_VALIDATION_EXCEPTION", BusinessRuleError),
        ("DUPLICATE_VALUE", BusinessRuleError),
        ("DUPLICATE_EXTERNAL_ID", BusinessRuleError),
        ("STRING_TOO_LONG", DataError),
        ("NOT_FOUND", PermanentError),
        ("MALFORMED_QUERY", PermanentError),
    ],
)
def test_codes_decide_the_class(code: str, kind: type) -> None:
    assert type(classify(code, "refused")) is kind


@pytest.mark.parametrize(
    ("status", "fields", "kind"),
    [(500, [], TransientError), (503, [], TransientError), (400, ["X__c"], DataError),
     (400, [], PermanentError), (403, [], PermanentError), (300, [], BusinessRuleError)],
)
def test_unknown_codes_fall_back_on_the_status(status: int, fields: list, kind: type) -> None:
    assert type(classify("SOMETHING_NEW", "refused", fields, status)) is kind


def test_throttle_keeps_its_retry_after() -> None:
    error = translate(rest_error(SalesforceRefusedRequest, 403, "REQUEST_LIMIT_EXCEEDED"), 12.0)
    assert isinstance(error, ThrottledError) and error.retry_after == 12.0


def test_field_errors_name_the_field() -> None:
    error = translate(rest_error(SalesforceMalformedRequest, 400, "INVALID_FIELD", ["Foo__c"]))
    assert isinstance(error, DataError) and error.field == "Foo__c"
    assert error.system == "salesforce"


def test_several_matches_need_a_person() -> None:
    several = SalesforceMoreThanOneRecord("https://x", 300, "Opportunity", ["/a", "/b"])
    assert isinstance(translate(several), BusinessRuleError)


def test_an_html_error_page_still_classifies() -> None:
    page = SalesforceGeneralError("https://x", 502, "query", "<html>Bad gateway</html>")
    assert isinstance(translate(page), TransientError)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (requests.exceptions.ConnectionError("refused"), TransientError),
        (requests.exceptions.ChunkedEncodingError("cut off"), TransientError),
        (requests.exceptions.ReadTimeout("slow"), TransientError),
        (requests.exceptions.SSLError("untrusted"), PermanentError),
        (requests.exceptions.MissingSchema("no scheme"), PermanentError),
    ],
)
def test_transport_failures(exc: Exception, kind: type) -> None:
    assert type(translate(exc)) is kind


def test_record_errors_use_status_code() -> None:
    error = record_error([{"statusCode": "REQUIRED_FIELD_MISSING", "message": "missing",
                           "fields": ["StageName"]}])
    assert isinstance(error, DataError) and error.field == "StageName"


@pytest.mark.parametrize(("header", "seconds"), [("5", 5.0), ("0.5", 0.5), (None, None),
                                                 ("soon", None), ("-3", 0.0),
                                                 ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0)])
def test_retry_after_in_seconds(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header) == seconds
