"""Salesforce's refusals, in handoff's taxonomy (see handoff.errors).

Salesforce names what went wrong with an `errorCode` (REST error arrays) or a `statusCode`
(per-record results of sObject Collections); both are classified by `classify`. `translate`
does the same for an exception simple-salesforce or requests raised, so every call of the
connector goes through one place.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import requests
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceError

from handoff.errors import (
    BusinessRuleError,
    DataError,
    HandoffError,
    PermanentError,
    ThrottledError,
    TransientError,
)

SYSTEM = "salesforce"

# What each Salesforce error code means for the engine. Codes not listed fall back on the
# HTTP status (see `_by_status`).
_CODES: dict[type[HandoffError], frozenset[str]] = {
    ThrottledError: frozenset({"REQUEST_LIMIT_EXCEEDED"}),
    TransientError: frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "QUERY_TIMEOUT"}),
    BusinessRuleError: frozenset({
        "FIELD_CUSTOM_VALIDATION_EXCEPTION", "DUPLICATE_VALUE", "DUPLICATES_DETECTED",
        "DUPLICATE_EXTERNAL_ID", "FIELD_INTEGRITY_EXCEPTION", "ENTITY_IS_LOCKED",
        "CANNOT_EXECUTE_FLOW_TRIGGER", "INSUFFICIENT_ACCESS_ON_CROSS_REFERENCE_ENTITY",
    }),
    DataError: frozenset({
        "INVALID_FIELD", "REQUIRED_FIELD_MISSING", "STRING_TOO_LONG",
        "INVALID_FIELD_FOR_INSERT_UPDATE", "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "INVALID_TYPE_ON_FIELD_IN_RECORD", "NUMBER_OUTSIDE_VALID_RANGE", "MALFORMED_ID",
        "INVALID_CROSS_REFERENCE_KEY", "JSON_PARSER_ERROR", "INVALID_EMAIL_ADDRESS",
        "MISSING_ARGUMENT",
    }),
    PermanentError: frozenset({
        "INVALID_SESSION_ID", "NOT_FOUND", "ENTITY_IS_DELETED", "INSUFFICIENT_ACCESS",
        "API_DISABLED_FOR_ORG", "MALFORMED_QUERY", "INVALID_TYPE", "INVALID_QUERY_LOCATOR",
    }),
}
_KIND_OF_CODE = {code: kind for kind, codes in _CODES.items() for code in codes}


def classify(
    code: str | None,
    message: str,
    fields: Sequence[str] = (),
    status: int | None = None,
    retry_after: float | None = None,
) -> HandoffError:
    """One Salesforce error as a handoff error: by its code, else by the HTTP status."""
    text = f"{code}: {message}" if code else message
    if status == 401 or code == "INVALID_SESSION_ID":
        return PermanentError(f"session invalid or expired: {text}", system=SYSTEM)
    kind = _KIND_OF_CODE.get(code or "") or _by_status(status, fields)
    if issubclass(kind, TransientError):
        return kind(text, system=SYSTEM, retry_after=retry_after)
    if kind is DataError:
        return DataError(text, system=SYSTEM, field=fields[0] if fields else None)
    return kind(text, system=SYSTEM)


def _by_status(status: int | None, fields: Sequence[str]) -> type[HandoffError]:
    if status == 429:
        return ThrottledError
    if status is not None and status >= 500:
        return TransientError
    if status == 300:  # several records carry one external id: a person must pick
        return BusinessRuleError
    if status == 400 and fields:
        return DataError
    return PermanentError


def record_error(errors: Sequence[Mapping[str, Any]]) -> HandoffError:
    """The first error of a failed record in an sObject Collections result."""
    code, message, fields = _first_error(errors, code_key="statusCode")
    return classify(code, message, fields)


_BAD_URL = (
    requests.exceptions.InvalidURL, requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
)


def translate(
    exc: SalesforceError | requests.RequestException, retry_after: float | None = None
) -> HandoffError:
    """An exception from simple-salesforce or requests as a handoff error.

    `retry_after` is the Retry-After of the response that failed, if it had one
    (simple-salesforce keeps only the body)."""
    if isinstance(exc, SalesforceAuthenticationFailed):
        return PermanentError(f"login refused: {exc}", system=SYSTEM)
    if isinstance(exc, SalesforceError):
        code, message, fields = _first_error(exc.content)
        return classify(code, message, fields, exc.status, retry_after)
    if isinstance(exc, requests.exceptions.SSLError):
        return PermanentError(f"TLS verification failed: {exc}", system=SYSTEM)
    if isinstance(exc, _BAD_URL):
        return PermanentError(f"bad instance URL: {exc}", system=SYSTEM)
    # Timeouts, refused or dropped connections, a body cut off mid-way (ChunkedEncodingError)
    # or unreadable as JSON: the call may or may not have committed; retrying is safe.
    return TransientError(f"no usable response: {exc!r}", system=SYSTEM)


def _first_error(content: Any, code_key: str = "errorCode") -> tuple[str | None, str, list[str]]:
    """Salesforce answers a list of errors; the first one names the cause."""
    if isinstance(content, Sequence) and content and isinstance(content[0], Mapping):
        first = content[0]
        fields = list(first.get("fields") or [])
        return first.get(code_key), str(first.get("message", "")), fields
    return None, str(content)[:500], []
