"""HubSpot's refusals, in handoff's taxonomy (see handoff.errors).

HubSpot answers errors with `{"status": "error", "message": …, "correlationId": …, "category":
…}` (fields optional), sometimes with `errors[]` naming the input at fault (`in`), and for
rate limits `errorType: "RATE_LIMIT"` and `policyName`. `classify` reads such a body with its
HTTP status; `translate` does the same for whatever the SDK (or urllib3 under it) raised, so
every call of the connector goes through one place.
"""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterable, Mapping
from typing import Any

import urllib3.exceptions
from hubspot.crm.associations.v4.exceptions import ApiException as AssociationsApiException
from hubspot.crm.companies.exceptions import ApiException as CompaniesApiException
from hubspot.crm.deals.exceptions import ApiException as DealsApiException
from hubspot.crm.pipelines.exceptions import ApiException as PipelinesApiException

from handoff.connectors.retry_after import retry_after_seconds
from handoff.errors import (
    BusinessRuleError,
    DataError,
    HandoffError,
    PermanentError,
    ThrottledError,
    TransientError,
)

SYSTEM = "hubspot"

# Each package of hubspot-api-client has its own ApiException (same shape: status, body, headers).
API_EXCEPTIONS: tuple[type[Exception], ...] = (
    DealsApiException, CompaniesApiException, AssociationsApiException, PipelinesApiException,
)

# How long to wait when a 429 names its policy but sends no Retry-After (unconfirmed for API
# calls): the rolling window, a second, or — for the daily quota, which resets at midnight in
# the account's time zone — an hour at a time.
POLICY_WAIT = {"TEN_SECONDLY_ROLLING": 10.0, "SECONDLY": 1.0, "DAILY": 3600.0}

_PROPERTY_QUOTED = re.compile(r"""[Pp]roperty\s+\\?["']([A-Za-z0-9_]+)\\?["']""")


class ObjectNotFound(PermanentError):
    """An object a request named does not exist (404, OBJECT_NOT_FOUND): a record's own fault,
    so a batch refused for it is worth retrying one record at a time."""


def classify(status: int | None, body: Mapping[str, Any] | None,
             headers: Mapping[str, str] | None = None) -> HandoffError:
    """One HubSpot error as a handoff error: by the HTTP status and the body's category."""
    body = body or {}
    category = str(body.get("category") or "")
    message = str(body.get("message") or "").strip() or (f"HTTP {status}" if status else "error")
    text = f"{category}: {message}" if category else message
    if body.get("correlationId"):
        text += f" (correlationId {body['correlationId']})"
    if status == 401 or category in ("INVALID_AUTHENTICATION", "EXPIRED_AUTHENTICATION"):
        return PermanentError(
            f"access token refused — check HANDOFF_HUBSPOT_ACCESS_TOKEN: the private app's token "
            f"for this account, not revoked or rotated ({text})", system=SYSTEM)
    if status == 429 or category == "RATE_LIMITS" or body.get("errorType") == "RATE_LIMIT":
        policy = body.get("policyName")
        return ThrottledError(text + (f" [policy {policy}]" if policy else ""), system=SYSTEM,
                              retry_after=throttle_delay(headers, body))
    if status == 403 or category == "MISSING_SCOPES":
        return PermanentError(f"the private app lacks a scope this call needs "
                              f"(crm.objects.deals.read/write, crm.objects.companies.read) ({text})",
                              system=SYSTEM)
    if status is not None and (status >= 500 or status in (408, 423)):
        return TransientError(text, system=SYSTEM)
    if status == 409 or category == "CONFLICT":
        return BusinessRuleError(text, system=SYSTEM)
    if status == 404 or category == "OBJECT_NOT_FOUND":
        return ObjectNotFound(text, system=SYSTEM)
    if status == 400 or category == "VALIDATION_ERROR":
        prop = property_named(body)
        if prop:
            return DataError(text, system=SYSTEM, field=prop)
        return PermanentError(f"request refused: {text}", system=SYSTEM)
    return PermanentError(text, system=SYSTEM)


def throttle_delay(headers: Mapping[str, str] | None, body: Mapping[str, Any]) -> float | None:
    """Retry-After when sent; else the wait the body's policy implies (its window's length,
    from X-HubSpot-RateLimit-Interval-Milliseconds when given)."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    delay = retry_after_seconds(headers.get("retry-after"))
    if delay is not None:
        return delay
    policy = str(body.get("policyName") or "")
    if policy == "TEN_SECONDLY_ROLLING":
        interval = headers.get("x-hubspot-ratelimit-interval-milliseconds", "")
        if interval.isdigit():
            return int(interval) / 1000
    return POLICY_WAIT.get(policy)


def property_named(body: Mapping[str, Any]) -> str | None:
    """The property a validation error is about: `errors[].in`, a `propertyName` context, the
    JSON list in "Property values were not valid: [...]", or a quoted "Property "x" …"."""
    for detail in _list(body.get("errors")):
        if isinstance(detail, Mapping) and detail.get("in"):
            return str(detail["in"])
        context = detail.get("context") if isinstance(detail, Mapping) else None
        if found := _context_property(context):
            return found
    if found := _context_property(body.get("context")):
        return found
    for result in _list(body.get("validationResults")):  # the v1-era body
        if isinstance(result, Mapping) and result.get("name"):
            return str(result["name"])
    message = str(body.get("message") or "")
    start = message.find("[")
    if start >= 0:
        try:
            results = json.loads(message[start:])
        except ValueError:
            results = None
        for result in _list(results):
            if isinstance(result, Mapping) and result.get("name"):
                return str(result["name"])
    if match := _PROPERTY_QUOTED.search(message):
        return match.group(1)
    return None


def batch_errors(errors: Iterable[Any]) -> list[tuple[list[str], HandoffError]]:
    """The per-input errors of a 207 batch response: which ids each one names (`id`, or the
    `ids`/`id` of its context) and what it means."""
    found = []
    for error in errors or ():
        body = _as_mapping(error)
        context = body.get("context") or {}
        ids = [str(body["id"])] if body.get("id") else []
        for key in ("ids", "id", "objectIds", "objectId"):
            ids += [str(v) for v in _list(context.get(key))]
        found.append((list(dict.fromkeys(ids)), classify(None, body)))
    return found


def translate(exc: BaseException) -> HandoffError:
    """An exception from hubspot-api-client or urllib3 as a handoff error."""
    if isinstance(exc, API_EXCEPTIONS):
        status = getattr(exc, "status", None)
        if not status:  # the SDK's wrapper of an SSLError (status 0, no response)
            reason = str(getattr(exc, "reason", "") or exc)
            if "SSL" in reason:
                return PermanentError(f"TLS verification failed: {reason}", system=SYSTEM)
            return TransientError(f"no usable response: {reason}", system=SYSTEM)
        return classify(status, read_body(getattr(exc, "body", None)),
                        dict(getattr(exc, "headers", None) or {}))
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, (urllib3.exceptions.SSLError, ssl.SSLError)):
        return PermanentError(f"TLS verification failed: {exc}", system=SYSTEM)
    if isinstance(exc, (urllib3.exceptions.LocationValueError, urllib3.exceptions.URLSchemeUnknown)):
        return PermanentError(f"bad base URL: {exc}", system=SYSTEM)
    # Timeouts, refused or dropped connections, a body cut off mid-way: the call may or may not
    # have committed; every write handoff makes is idempotent, so retrying is safe.
    return TransientError(f"no usable response: {exc!r}", system=SYSTEM)


def read_body(raw: Any) -> dict[str, Any]:
    """An error body as a dict; text that is no JSON object becomes the message."""
    if isinstance(raw, Mapping):
        return dict(raw)
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        return {"message": str(raw)[:500]}
    return body if isinstance(body, dict) else {"message": str(raw)[:500]}


def _context_property(context: Any) -> str | None:
    if isinstance(context, Mapping):
        for key in ("propertyName", "properties", "property"):
            values = _list(context.get(key))
            if values:
                return str(values[0])
    return None


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def _as_mapping(error: Any) -> dict[str, Any]:
    """An SDK StandardError model (or a dict) as the wire body it came from."""
    if isinstance(error, Mapping):
        return dict(error)
    details = [{"message": getattr(d, "message", None), "in": getattr(d, "_in", None),
                "code": getattr(d, "code", None), "context": getattr(d, "context", None)}
               for d in getattr(error, "errors", None) or ()]
    return {"status": getattr(error, "status", None), "category": getattr(error, "category", None),
            "message": getattr(error, "message", None), "id": getattr(error, "id", None),
            "context": getattr(error, "context", None) or {}, "errors": details}
