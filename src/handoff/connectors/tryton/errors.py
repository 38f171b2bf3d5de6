"""Tryton's answers translated into handoff's error taxonomy, in one place.

    JSON-RPC error UserError (validation, a missing account, a   BusinessRuleError with
      rule of the ERP's, a field locked by the record's state),  Tryton's message
      UserWarning
    UserError "You are not allowed to <read|create|…> records"  PermanentError
      (access rights: AccessError)
    ConcurrencyException, HTTP 5xx/503, timeouts, dropped links  TransientError
    HTTP 429 (login rate limit)                                  ThrottledError
    HTTP 401/403 at login, 404 (no such database)                PermanentError
    any other server exception (a bug in a module)               TransientError: retried a
                                                                 few times, then dead letter

Tryton sends every UserError subclass (access, validation, domain) under the one name
"UserError", so access is told apart by the wording of its message catalogue.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handoff.connectors.keepalive import TransportError
from handoff.connectors.retry_after import retry_after_seconds
from handoff.errors import (
    BusinessRuleError,
    HandoffError,
    PermanentError,
    ThrottledError,
    TransientError,
)

SYSTEM = "tryton"
_ACCESS_WORDING = ("You are not allowed to", "You do not have access")
_LOCKED_FIELD_WORDING = "You are not allowed to modify the field"  # a rule, not a right


class TrytonRpcError(Exception):
    """The `error` member of a JSON-RPC answer: [name, args] for Tryton's own exceptions,
    [text, traceback] for anything else the server raised."""

    def __init__(self, method: str, error: Any) -> None:
        self.method = method
        self.name, self.detail = (error[0], error[1]) if _is_pair(error) else (str(error), None)
        super().__init__(f"{method}: {self.name}")

    @property
    def message(self) -> str:
        """Tryton's message and description, as its client shows them."""
        if self.name in ("UserError", "UserWarning") and isinstance(self.detail, list | tuple):
            texts = self.detail[1:3] if self.name == "UserWarning" else self.detail[:2]
            return " — ".join(str(t) for t in texts if t)
        if self.name == "ConcurrencyException":
            return str(self.detail)
        return self.name

    def translated(self) -> HandoffError:
        message = self.message
        if (self.name == "UserError" and message.startswith(_ACCESS_WORDING)
                and not message.startswith(_LOCKED_FIELD_WORDING)):
            return PermanentError(f"Tryton refused access: {message}", system=SYSTEM)
        if self.name in ("UserError", "UserWarning"):
            return BusinessRuleError(message, system=SYSTEM)
        if self.name == "ConcurrencyException":
            return TransientError(f"record changed meanwhile: {message}", system=SYSTEM)
        return TransientError(f"{self.method} failed in the server: {message}", system=SYSTEM)


def translate(exc: TransportError) -> HandoffError:
    """No complete answer; a write may still have committed (callers look before creating)."""
    if exc.retryable:
        return TransientError(f"no complete answer: {exc}", system=SYSTEM)
    return PermanentError(f"cannot call as configured: {exc}", system=SYSTEM)


def from_http_status(status: int, headers: Mapping[str, str], body: bytes, method: str) -> HandoffError:
    text = body.decode("utf-8", "replace")[:200].strip()
    if status == 429:
        return ThrottledError(f"{method}: too many requests", system=SYSTEM,
                              retry_after=retry_after_seconds(headers.get("Retry-After")))
    if status >= 500:
        return TransientError(f"{method}: {status} {text}", system=SYSTEM,
                              retry_after=retry_after_seconds(headers.get("Retry-After")))
    if status in (401, 403):
        return PermanentError(f"Tryton refused the login or the call ({status}); check the user, "
                              "its password and its access rights", system=SYSTEM)
    if status == 404:
        return PermanentError(f"{method}: 404: no such database on this server", system=SYSTEM)
    return PermanentError(f"{method}: {status} {text}", system=SYSTEM)


def _is_pair(error: Any) -> bool:
    return isinstance(error, list | tuple) and len(error) == 2 and isinstance(error[0], str)
