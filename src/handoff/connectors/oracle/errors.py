"""Oracle Fusion's answers translated into handoff's error taxonomy, in one place.

    429                                         ThrottledError (Retry-After honoured when sent)
    5xx, timeouts, dropped or cut-off responses TransientError (a 500 carries no detail)
    412 (the record changed since it was read) TransientError: the retry reads it again
    400 naming an attribute (o:errorPath)       DataError, field = that attribute
    400 naming none                             BusinessRuleError with Oracle's detail
    401 / 403                                   PermanentError (credentials, roles)
    untrusted certificate, unusable base URL    PermanentError (configuration)
    404, anything else                          PermanentError

Error bodies are JSON (`{"title", "status", "o:errorDetails": [{"detail", "o:errorCode",
"o:errorPath"}]}`) from REST framework version 4 when JSON is accepted, plain text before;
both are read. ⚠ Oracle publishes no rate limits or 429 behaviour for Fusion REST, and
`o:errorPath`'s exact form is unconfirmed (the twin sends a JSON pointer, `/ProjectName`).
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

SYSTEM = "oracle"
CREDENTIALS = "HANDOFF_ORACLE_USER and HANDOFF_ORACLE_PASSWORD, or HANDOFF_ORACLE_TOKEN"


@dataclass(frozen=True, slots=True)
class OracleErrorDetail:
    """The first entry of an error body's `o:errorDetails`, or the plain-text body."""

    code: str | None
    detail: str
    path: str | None = None

    @property
    def field(self) -> str | None:
        """The attribute at fault in handoff's spelling: `/ProjectCustomers/0/PartyNumber` ->
        `ProjectCustomers.0.PartyNumber`."""
        return (self.path.strip("/").replace("/", ".") or None) if self.path else None


def translate(exc: TransportError) -> HandoffError:
    """The handoff error for a call that got no answer; raise it `from exc`. A write that
    failed this way may still have committed; callers look the record up before writing."""
    if exc.retryable:
        return TransientError(f"no complete answer: {exc}", system=SYSTEM)
    return PermanentError(f"cannot call as configured: {exc}", system=SYSTEM)


def from_response(status: int, headers: Mapping[str, str], body: bytes) -> HandoffError:
    """The handoff error for an answer that is not a success; `headers` case-insensitive."""
    error = read_error(status, body)
    retry_after = retry_after_seconds(headers.get("Retry-After"))
    if status == 429:
        return ThrottledError(f"429: {error.detail}", system=SYSTEM, retry_after=retry_after)
    if status >= 500:
        return TransientError(f"{status}: {error.detail}", system=SYSTEM, retry_after=retry_after)
    if status == 412:
        return TransientError(f"the record changed while handoff updated it: {error.detail}",
                              system=SYSTEM)
    if status == 401:
        return PermanentError(f"Oracle refused the credentials (401 {error.detail}): check "
                              f"{CREDENTIALS}", system=SYSTEM)
    if status == 403:
        return PermanentError(f"Oracle refused access (403 {error.detail}): the user lacks a "
                              "role or privilege for this resource", system=SYSTEM)
    if status == 400 and error.field:
        return DataError(error.detail, system=SYSTEM, field=error.field)
    if status == 400:
        return BusinessRuleError(error.detail, system=SYSTEM)
    return PermanentError(f"{status} {error.code or ''}: {error.detail}", system=SYSTEM)


def read_error(status: int, body: bytes) -> OracleErrorDetail:
    try:
        first = json.loads(body)["o:errorDetails"][0]
        return OracleErrorDetail(first.get("o:errorCode"), str(first["detail"]),
                                 first.get("o:errorPath") or None)
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        # Framework versions before 4, a 500 (no body), a proxy's page: keep what there is.
        text = body.decode("utf-8", "replace").strip()[:300]
        return OracleErrorDetail(None, text or _reason_phrase(status))


def _reason_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
