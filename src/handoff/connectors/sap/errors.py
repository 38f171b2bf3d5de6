"""SAP's answers translated into handoff's error taxonomy, in one place.

    429 (API Management quota, where configured)     ThrottledError (Retry-After honoured)
    5xx, timeouts, dropped or cut-off responses      TransientError
    403 "CSRF token required/validation failed"      fetched again and retried once by the client;
                                                     TransientError when refused again
    412 (stale ETag)                                 read again and retried by the client;
                                                     TransientError when it keeps changing
    400 naming a property (errordetails target)      DataError, field = the property
    400 from the Gateway framework (/IWBEP/, /IWFND/) PermanentError (the request is malformed)
    400 other application messages                   BusinessRuleError with SAP's message
    401                                              PermanentError (the communication user)
    403 otherwise                                    PermanentError (the communication arrangement)
    404, 428, anything else                          PermanentError
    untrusted certificate, unusable base URL         PermanentError (configuration)

The error body is OData v2's `{"error": {"code", "message": {"value"}, "innererror":
{"transactionid", "errordetails": [...]}}}`; the transaction id goes into every message for
SAP's Gateway error log. A body that is not SAP's (an API Management fault, a web dispatcher's
HTML page) is kept as text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from handoff.connectors.keepalive import TransportError
from handoff.connectors.retry_after import retry_after_seconds
from handoff.connectors.sap.settings import SYSTEM
from handoff.errors import (
    BusinessRuleError,
    DataError,
    HandoffError,
    PermanentError,
    ThrottledError,
    TransientError,
)

_FRAMEWORK = ("/IWBEP/", "/IWFND/")


@dataclass(frozen=True, slots=True)
class SapErrorDetail:
    """What an error body says: SAP's message code, its text, the property it names (if any)
    and the Gateway transaction id."""

    code: str | None
    message: str
    field: str | None = None
    transaction_id: str | None = None

    def describe(self) -> str:
        code = f"[{self.code}] " if self.code else ""
        transaction = f" (SAP transaction {self.transaction_id})" if self.transaction_id else ""
        return f"{code}{self.message}{transaction}"


def translate(exc: TransportError) -> HandoffError:
    """The handoff error for a call that got no answer; raise it `from exc`. A write that
    failed this way may still have committed; callers look again before writing again."""
    if exc.retryable:
        return TransientError(f"no complete answer: {exc}", system=SYSTEM)
    return PermanentError(f"cannot call as configured: {exc}", system=SYSTEM)


def from_response(status: int, headers: Mapping[str, str], body: bytes, *, user: str = "") -> HandoffError:
    """The handoff error for an answer that is not a success; `headers` case-insensitive."""
    error = read_error(status, body)
    retry_after = retry_after_seconds(headers.get("Retry-After"))
    text = error.describe()
    if status == 429:
        return ThrottledError(text, system=SYSTEM, retry_after=retry_after)
    if status >= 500:
        return TransientError(f"{status}: {text}", system=SYSTEM, retry_after=retry_after)
    if status == 401:
        return PermanentError(f"SAP refused the credentials of communication user {user!r}: check "
                              f"HANDOFF_SAP_USER and HANDOFF_SAP_PASSWORD, and that the user is "
                              f"active (HTTP 401: {text})", system=SYSTEM)
    if status == 403 and is_csrf_refusal(status, headers, body):
        return TransientError(f"SAP refused the CSRF token again after a fresh one: {text}",
                              system=SYSTEM)
    if status == 403:
        return PermanentError(f"SAP refused access for user {user!r}: check the communication "
                              f"arrangement of the service's scenario (HTTP 403: {text})",
                              system=SYSTEM)
    if status == 412:
        return TransientError(f"changed by someone else meanwhile (stale ETag): {text}", system=SYSTEM)
    if status == 400 and error.field:
        return DataError(text, system=SYSTEM, field=error.field)
    if status == 400 and error.code and not error.code.startswith(_FRAMEWORK):
        return BusinessRuleError(text, system=SYSTEM)
    return PermanentError(f"{status}: {text}", system=SYSTEM)


def is_csrf_refusal(status: int, headers: Mapping[str, str], body: bytes) -> bool:
    """A 403 for a missing, expired or mismatched CSRF token (header `X-CSRF-Token: Required`;
    the body says "CSRF Token required" or "CSRF token validation failed")."""
    if status != 403:
        return False
    marked = (headers.get("x-csrf-token") or "").lower() == "required"
    return marked or b"csrf token" in body[:300].lower()


def read_error(status: int, body: bytes) -> SapErrorDetail:
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        return _odata_error(document["error"])
    if isinstance(document, dict) and isinstance(document.get("fault"), dict):  # API Management
        fault = document["fault"]
        detail = fault.get("detail") if isinstance(fault.get("detail"), dict) else {}
        return SapErrorDetail(detail.get("errorcode"), str(fault.get("faultstring", "")))
    text = " ".join(body.decode("utf-8", "replace").split())[:200]
    return SapErrorDetail(None, text or _reason_phrase(status))


def _odata_error(error: Mapping[str, Any]) -> SapErrorDetail:
    message = error.get("message")
    text = str(message.get("value", "")) if isinstance(message, dict) else str(message or "")
    inner = error.get("innererror") if isinstance(error.get("innererror"), dict) else {}
    details = [d for d in inner.get("errordetails") or () if isinstance(d, dict)]
    errors = [d for d in details if d.get("severity", "error") == "error"] or details
    field = next((f for d in errors if (f := _property(d))), None)
    extra = [str(d["message"]) for d in errors if d.get("message") and d["message"] != text]
    return SapErrorDetail(error.get("code") or None, "; ".join([text, *extra]) if extra else text,
                          field, inner.get("transactionid") or None)


def _property(detail: Mapping[str, Any]) -> str | None:
    """The property a detail names: `propertyref`, else `target` (a path: its last segment)."""
    for key in ("propertyref", "target"):
        value = str(detail.get(key) or "").strip()
        name = value.rstrip("/").rsplit("/", 1)[-1]
        if name and name.replace("_", "").isalnum():
            return name
    return None


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
