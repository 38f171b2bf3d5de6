"""Business Central's answers translated into handoff's error taxonomy, in one place.

    429 (Application_TooManyRequests)            ThrottledError (Retry-After honoured when sent)
    5xx, 408; timeouts, dropped or cut-off answers TransientError
    409/412 Request_EntityChanged (stale ETag)     TransientError (the connector re-reads first)
    401 / Authentication_*                         PermanentError: the token
    403 / Authorization_*                          PermanentError: the app's permissions in BC
    400 naming a property ("currencyCode"), or a   DataError, field = that property
      field-value code (StringExceededLength, …)
    400 Application_* (a dialog of BC's logic)     BusinessRuleError with BC's message
    409 Internal_EntityWithSameKeyExists           BusinessRuleError (the connector looks again first)
    404, other 400 BadRequest_*, anything else     PermanentError

Error bodies are `{"error": {"code": "…", "message": "… CorrelationId:  <guid>."}}`; the
message (with its correlation id, for Microsoft support) is kept. Business Central's stale
ETag is an ODataConflictException: 409 in the sources found, 412 in others (⚠ unconfirmed),
so it is recognised by its code first and by 412 as well.
"""

from __future__ import annotations

import json
import re
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

__all__ = ["SYSTEM", "BusinessCentralError", "from_response", "is_duplicate_key", "is_stale_etag",
           "read_error", "retry_after_seconds", "translate"]

SYSTEM = "businesscentral"

ENTITY_CHANGED = "Request_EntityChanged"
SAME_KEY_EXISTS = "Internal_EntityWithSameKeyExists"
TOO_MANY_REQUESTS = "Application_TooManyRequests"
# Codes that say a value is wrong: the record can be repaired, the request is right.
_DATA_CODES = frozenset({
    "Application_StringExceededLength", "Application_EvaluateException", "Application_InvalidGUID",
    "Application_FieldValidationException", "Application_FilterErrorException",
    "BadRequest_RequiredParamNotProvided", "Internal_InvalidTableRelation",
})
# BC's own words for values it cannot find, where the message names no property.
_MESSAGE_FIELDS = {
    "The sell-to customer cannot be found.": "customerId",
    "Item does not exist.": "lineObjectNumber",
    "Account does not exist.": "lineObjectNumber",
}
_QUOTED_PROPERTY = re.compile(r"""["']([a-z][A-Za-z0-9]*)["']""")
_CORRELATION = re.compile(r"\s*CorrelationId:\s*[0-9a-fA-F-]+\.?\s*$")


@dataclass(frozen=True, slots=True)
class BusinessCentralError:
    """The `error` object of an answer that is not a success."""

    code: str | None
    message: str

    @property
    def field(self) -> str | None:
        """The API property the message names (`"currencyCode"`), if any."""
        words = _CORRELATION.sub("", self.message)
        if words in _MESSAGE_FIELDS:
            return _MESSAGE_FIELDS[words]
        found = _QUOTED_PROPERTY.search(words)
        return found[1] if found else None


def translate(exc: TransportError) -> HandoffError:
    """The handoff error for a call that got no answer; raise it `from exc`. A write that
    failed this way may still have committed; callers look before they write again."""
    if exc.retryable:
        return TransientError(f"no complete answer: {exc}", system=SYSTEM)
    return PermanentError(f"cannot call as configured: {exc}", system=SYSTEM)


def from_response(status: int, headers: Mapping[str, str], body: bytes) -> HandoffError:
    """The handoff error for an answer that is not a success; `headers` case-insensitive."""
    error = read_error(status, body)
    code = error.code or ""
    retry_after = retry_after_seconds(headers.get("Retry-After"))
    if status == 429 or code == TOO_MANY_REQUESTS:
        return ThrottledError(error.message, system=SYSTEM, retry_after=retry_after)
    if status >= 500 or status == 408:
        return TransientError(f"{status}: {error.message}", system=SYSTEM, retry_after=retry_after)
    if status == 401 or code.startswith("Authentication_"):
        return PermanentError(f"Business Central refused the credentials: {error.message} (check "
                              "HANDOFF_BUSINESSCENTRAL_TOKEN: an unexpired Entra ID token for "
                              "https://api.businesscentral.dynamics.com)", system=SYSTEM)
    if status == 403 or code.startswith("Authorization_"):
        return PermanentError(f"Business Central refused access: {error.message} (grant the app "
                              "registration's permission sets in Business Central)", system=SYSTEM)
    if is_stale_etag(status, error):
        return TransientError(f"the record changed since it was read: {error.message}",
                              system=SYSTEM)
    field = error.field
    if code in _DATA_CODES or (code.startswith("Application_") and field):
        return DataError(error.message, system=SYSTEM, field=field)
    if code.startswith("Application_") or code == SAME_KEY_EXISTS:
        return BusinessRuleError(error.message, system=SYSTEM)
    return PermanentError(f"{status} {code or _reason_phrase(status)}: {error.message}",
                          system=SYSTEM)


def is_stale_etag(status: int, error: BusinessCentralError) -> bool:
    return error.code == ENTITY_CHANGED or status == 412


def is_duplicate_key(status: int, error: BusinessCentralError) -> bool:
    return error.code == SAME_KEY_EXISTS


def read_error(status: int, body: bytes) -> BusinessCentralError:
    try:
        error = json.loads(body)["error"]
        return BusinessCentralError(error.get("code") or None, str(error["message"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        # Not Business Central's error format (a gateway, a maintenance page): keep what there is.
        text = body.decode("utf-8", "replace")[:200]
        return BusinessCentralError(None, text or _reason_phrase(status))


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
