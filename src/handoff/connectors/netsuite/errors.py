"""NetSuite's answers translated into handoff's error taxonomy, in one place.

    429, or 400 CONCURRENCY_LIMIT_EXCEEDED      ThrottledError (Retry-After honoured when sent)
    5xx, timeouts, dropped or cut-off responses TransientError
    400 INVALID_CONTENT / NONEXISTENT_FIELD     DataError, field = o:errorPath
    400 USER_ERROR                              BusinessRuleError with NetSuite's detail
    401 / 403                                   PermanentError (credentials, role)
    404 NONEXISTENT_ID, anything else           PermanentError

NetSuite documents no status for REST concurrency rejections (429 and 400 are both seen in
the wild), hence the check on the error code as well as the status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from handoff.errors import (
    BusinessRuleError,
    DataError,
    HandoffError,
    PermanentError,
    ThrottledError,
    TransientError,
)

SYSTEM = "netsuite"

# A write that failed this way may still have committed; callers rely on idempotent upserts.
_RETRYABLE_TRANSPORT = (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)
_DATA_CODES = frozenset({"INVALID_CONTENT", "NONEXISTENT_FIELD"})


@dataclass(frozen=True, slots=True)
class NetSuiteErrorDetail:
    """The first entry of a NetSuite error body's `o:errorDetails`."""

    code: str | None
    detail: str
    path: str | None = None


def translate(exc: httpx.HTTPError) -> HandoffError:
    """The handoff error for an httpx failure; raise it `from exc`."""
    if isinstance(exc, httpx.HTTPStatusError):
        return from_response(exc.response)
    if isinstance(exc, _RETRYABLE_TRANSPORT):
        return TransientError(f"no complete answer: {type(exc).__name__}: {exc}", system=SYSTEM)
    return PermanentError(f"cannot call as configured: {type(exc).__name__}: {exc}", system=SYSTEM)


def from_response(response: httpx.Response) -> HandoffError:
    error = read_error(response)
    status = response.status_code
    retry_after = retry_after_seconds(response.headers.get("Retry-After"))
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


def is_missing_record(response: httpx.Response) -> bool:
    return response.status_code == 404 and read_error(response).code == "NONEXISTENT_ID"


def read_error(response: httpx.Response) -> NetSuiteErrorDetail:
    try:
        first = response.json()["o:errorDetails"][0]
        return NetSuiteErrorDetail(first.get("o:errorCode"), first["detail"],
                                   first.get("o:errorPath"))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        # Not NetSuite's error format (a proxy, a maintenance page): keep what there is.
        return NetSuiteErrorDetail(None, response.text[:200] or response.reason_phrase)


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
