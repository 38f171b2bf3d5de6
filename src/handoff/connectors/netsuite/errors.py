"""NetSuite's answers translated into handoff's error taxonomy, in one place.

    429, or 400 CONCURRENCY_LIMIT_EXCEEDED      ThrottledError (Retry-After honoured when sent)
    5xx, timeouts, dropped or cut-off responses TransientError
    400 INVALID_CONTENT / NONEXISTENT_FIELD     DataError, field = o:errorPath
    400 USER_ERROR                              BusinessRuleError with NetSuite's detail
    401 / 403                                   PermanentError (credentials, role)
    untrusted certificate, unusable base URL    PermanentError (configuration)
    404 NONEXISTENT_ID, anything else           PermanentError

NetSuite documents no status for REST concurrency rejections (429 and 400 are both seen in
the wild), hence the check on the error code as well as the status.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus

from handoff.connectors.keepalive import TransportError
from handoff.connectors.retry_after import retry_after_seconds
from handoff.errors import (
    BusinessRuleError,
    DataError,
    HandoffError,
    PermanentError,
    ThrottledError,
    TransientError,
)

SYSTEM = "netsuite"

_DATA_CODES = frozenset({"INVALID_CONTENT", "NONEXISTENT_FIELD"})


@dataclass(frozen=True, slots=True)
class NetSuiteErrorDetail:
    """The first entry of a NetSuite error body's `o:errorDetails`."""

    code: str | None
    detail: str
    path: str | None = None


def translate(exc: TransportError) -> HandoffError:
    """The handoff error for a call that got no answer; raise it `from exc`. A write that
    failed this way may still have committed; callers rely on idempotent upserts."""
    if exc.retryable:
        return TransientError(f"no complete answer: {exc}", system=SYSTEM)
    return PermanentError(f"cannot call as configured: {exc}", system=SYSTEM)


def from_response(status: int, headers: Mapping[str, str], body: bytes) -> HandoffError:
    """The handoff error for an answer that is not a success; `headers` case-insensitive."""
    error = read_error(status, body)
    retry_after = retry_after_seconds(headers.get("Retry-After"))
    if status == 429 or error.code == "CONCURRENCY_LIMIT_EXCEEDED":
        return ThrottledError(error.detail, system=SYSTEM, retry_after=retry_after)
    if status >= 500:
        return TransientError(f"{status}: {error.detail}", system=SYSTEM, retry_after=retry_after)
    if status == 401:
        return PermanentError(f"NetSuite refused the credentials: {error.detail}", system=SYSTEM)
    if status == 403:
        return PermanentError(f"NetSuite refused access: {error.detail}", system=SYSTEM)
    if status == 400 and error.code in _DATA_CODES:
        return DataError(error.detail, system=SYSTEM, field=error.path)
    if status == 400 and error.code == "USER_ERROR":
        return BusinessRuleError(error.detail, system=SYSTEM)
    return PermanentError(f"{status} {error.code or ''}: {error.detail}", system=SYSTEM)


def is_missing_record(status: int, body: bytes) -> bool:
    return status == 404 and read_error(status, body).code == "NONEXISTENT_ID"


def read_error(status: int, body: bytes) -> NetSuiteErrorDetail:
    try:
        first = json.loads(body)["o:errorDetails"][0]
        return NetSuiteErrorDetail(first.get("o:errorCode"), first["detail"],
                                   first.get("o:errorPath"))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        # Not NetSuite's error format (a proxy, a maintenance page): keep what there is.
        text = body.decode("utf-8", "replace")[:200]
        return NetSuiteErrorDetail(None, text or _reason_phrase(status))


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
