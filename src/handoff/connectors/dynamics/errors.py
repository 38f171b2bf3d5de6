"""Dataverse's refusals, in handoff's taxonomy (see handoff.errors).

The Web API answers errors with the OData body `{"error": {"code": "0x80044331", "message":
…}}`: `code` is a hex string (sometimes "" or "0x0"), never the HTTP status. Service
protection refusals are 429 with `Retry-After` (seconds) and one of three codes. `classify`
reads such a body with its HTTP status; `translate` does the same for whatever httpx raised,
so every call of the connector goes through one place.
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Mapping
from typing import Any

import httpx

from handoff.connectors.dynamics.mapping import loads
from handoff.connectors.retry_after import retry_after_seconds
from handoff.errors import (
    BusinessRuleError,
    DataError,
    HandoffError,
    PermanentError,
    ThrottledError,
    TransientError,
)

SYSTEM = "dynamics"

# Service protection: code -> (limit, wait when no Retry-After came). Dataverse documents that
# a 429 carries Retry-After; the fallbacks (unconfirmed) wait long enough for a sliding 300 s
# window to move, and a moment for the concurrency limit, which frees up as calls finish.
SERVICE_PROTECTION = {
    "0x80072322": ("number of requests", 60.0),
    "0x80072321": ("execution time", 60.0),
    "0x80072326": ("concurrent requests", 1.0),
}
VALIDATION = frozenset({"0x80044331", "0x8004431a"})        # "A validation error occurred."
NOT_FOUND = frozenset({"0x80040217", "0x8006088a"})          # ObjectDoesNotExist, unknown segment
DUPLICATE = frozenset({"0x80060892", "0x80040237"})          # duplicate alternate key / record
PRIVILEGE = frozenset({"0x80040220", "0x80042f09"})          # missing privilege, no roles

_COLUMN = [re.compile(p) for p in (
    r"[Pp]roperty named '([A-Za-z0-9_]+)'",                # $select/$filter: Could not find a …
    r"[Tt]he property '([A-Za-z0-9_]+)' does not exist",   # a body naming an unknown column
    r"undeclared property '([A-Za-z0-9_]+)'",              # a bind to a navigation property that is not one
    r"'([A-Za-z0-9_]+)' attribute",                        # The length of the 'x' attribute … exceeded
    r"of '([A-Za-z0-9_]+)' on record",                     # The value 7 of 'x' on record … out of range
    r"[Ii]nvalid property '([A-Za-z0-9_]+)'",
)]


class RecordNotFound(PermanentError):
    """The row a request named does not exist (404): a record's own fault."""


class PreconditionFailed(BusinessRuleError):
    """412: a conditional write's condition did not hold — `If-None-Match: *` found the row
    (or alternate key) already there, or `If-Match` found another version."""


def classify(status: int | None, body: Mapping[str, Any] | None,
             headers: Mapping[str, str] | None = None) -> HandoffError:
    """One Dataverse error as a handoff error: by the HTTP status and the body's code."""
    error = body or {}
    code = str(error.get("code") or "").lower()
    message = str(error.get("message") or "").strip() or (f"HTTP {status}" if status else "error")
    text = f"{code}: {message}" if code and code != "0x0" else message
    if status == 401:
        return PermanentError(
            f"access token refused — check HANDOFF_DYNAMICS_ACCESS_TOKEN: an Entra ID access token "
            f"for this environment (scope https://<org>.crm.dynamics.com/.default), not expired "
            f"(they last about an hour), of an application user that exists in the environment "
            f"({text}{_challenge(headers)})", system=SYSTEM)
    if status == 429 or code in SERVICE_PROTECTION:
        limit = SERVICE_PROTECTION.get(code, ("service protection", None))[0]
        return ThrottledError(f"{text} [{limit} limit]", system=SYSTEM,
                              retry_after=throttle_delay(headers, code))
    if status == 403 or code in PRIVILEGE:
        return PermanentError(f"the application user lacks a privilege this call needs (a security "
                              f"role with read/write on opportunities and accounts, read on "
                              f"currencies) ({text})", system=SYSTEM)
    if status is not None and (status >= 500 or status == 408):
        return TransientError(text, system=SYSTEM)
    if status == 412 or code in DUPLICATE:
        return PreconditionFailed(text, system=SYSTEM)
    if status == 404 or code in NOT_FOUND:
        return RecordNotFound(text, system=SYSTEM)
    if status == 409:
        return BusinessRuleError(text, system=SYSTEM)
    if status == 400 or code in VALIDATION:
        column = column_named(message)
        if column or code in VALIDATION:
            return DataError(text, system=SYSTEM, field=column)
        return PermanentError(f"request refused: {text}", system=SYSTEM)
    return PermanentError(text, system=SYSTEM)


def throttle_delay(headers: Mapping[str, str] | None, code: str = "") -> float | None:
    """Retry-After (seconds) when sent; else the wait the service protection code implies."""
    headers = {k.lower(): v for k, v in (headers or {}).items()}
    delay = retry_after_seconds(headers.get("retry-after"))
    if delay is not None:
        return delay
    found = SERVICE_PROTECTION.get(code.lower())
    return found[1] if found else None


def column_named(message: str) -> str | None:
    """The column an error message is about, as Dataverse and OData word them."""
    for pattern in _COLUMN:
        if match := pattern.search(message):
            return match.group(1)
    return None


def from_response(status: int, content: bytes, headers: Mapping[str, str]) -> HandoffError:
    """A whole HTTP answer (or one part of a $batch answer) as a handoff error."""
    return classify(status, read_body(content), headers)


def read_body(raw: bytes | str | None) -> dict[str, Any]:
    """The `error` object of an OData error body; text that is no such JSON becomes the message."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    if not raw or not raw.strip():
        return {}
    try:
        body = loads(raw)
    except ValueError:
        return {"message": raw.strip()[:500]}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return dict(body["error"])
    if isinstance(body, dict) and ("code" in body or "message" in body):
        return body
    return {"message": raw.strip()[:500]}


def translate(exc: BaseException) -> HandoffError:
    """An exception from httpx (no usable answer) as a handoff error."""
    if _tls_failure(exc):
        return PermanentError(f"TLS verification failed: {exc}", system=SYSTEM)
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return PermanentError(f"bad base URL: {exc}", system=SYSTEM)
    # Timeouts, refused or dropped connections, a body cut off mid-way: the call may or may not
    # have committed; every write handoff makes is idempotent, so retrying is safe.
    return TransientError(f"no usable response: {type(exc).__name__}: {exc}", system=SYSTEM)


def _tls_failure(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


def _challenge(headers: Mapping[str, str] | None) -> str:
    """What the `WWW-Authenticate` challenge of a 401 adds (its error description, if any)."""
    for name, value in (headers or {}).items():
        if name.lower() == "www-authenticate":
            match = re.search(r'error_description="([^"]*)"', value)
            return f"; {match.group(1)}" if match else ""
    return ""
