"""Stripe's refusals, in handoff's taxonomy (see handoff.errors), in one place.

    RateLimitError (429, or 400 code rate_limit)  ThrottledError; Retry-After when sent, else
                                                   the configured wait
    APIConnectionError (no complete answer)        TransientError (the call may have committed:
                                                   the Idempotency-Key makes the retry safe)
    APIError 5xx, 409 (lock_timeout, key in use)   TransientError
    AuthenticationError (401)                      PermanentError: the key
    PermissionError (403)                          PermanentError: the restricted key's permissions
    CardError (402)                                DataError, field = Stripe's `param` (or `code`)
    InvalidRequestError 400 with a `param`         DataError, field = `param`
    InvalidRequestError 400 without one            BusinessRuleError (a state rule: "invoice is
                                                   not editable", "already finalized")
    InvalidRequestError 404                        ObjectMissing (PermanentError)
    IdempotencyError                               PermanentError (callers look the object up first)
    anything else                                  PermanentError
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import stripe

from handoff.connectors.retry_after import retry_after_seconds
from handoff.errors import (
    BusinessRuleError,
    DataError,
    HandoffError,
    PermanentError,
    ThrottledError,
    TransientError,
)

SYSTEM = "stripe"


class ObjectMissing(PermanentError):
    """The object a request named does not exist in this account (and mode)."""


class KeyConflict(PermanentError):
    """An Idempotency-Key reused with other parameters (Stripe's idempotency_error)."""


def translate(exc: stripe.StripeError, throttle_wait: float = 1.0) -> HandoffError:
    """The handoff error for what stripe-python raised; raise it `from exc`."""
    text = _text(exc)
    status = exc.http_status
    headers: Mapping[str, str] = exc.headers or {}
    if isinstance(exc, stripe.RateLimitError) or status == 429:
        wait = retry_after_seconds(_header(headers, "Retry-After"))
        return ThrottledError(f"Stripe's rate limit: {text}", system=SYSTEM,
                              retry_after=throttle_wait if wait is None else wait)
    if isinstance(exc, stripe.APIConnectionError):
        return TransientError(f"no complete answer from Stripe: {text}", system=SYSTEM)
    if isinstance(exc, stripe.AuthenticationError):
        return PermanentError(
            f"Stripe refused the API key — check HANDOFF_STRIPE_API_KEY: a restricted (rk_…) or "
            f"secret (sk_…) key of this account, in the mode (test or live) meant, not rolled or "
            f"expired ({text})", system=SYSTEM)
    if isinstance(exc, stripe.PermissionError):
        return PermanentError(
            f"the Stripe key lacks a permission this call needs (Customers, Invoices, Invoice items "
            f"and Credit notes: write) ({text})", system=SYSTEM)
    if isinstance(exc, stripe.IdempotencyError):
        return KeyConflict(f"Stripe refused a reused Idempotency-Key: {text}", system=SYSTEM)
    if isinstance(exc, stripe.CardError):
        return DataError(f"Stripe declined the payment: {text}", system=SYSTEM,
                         field=_param(exc) or exc.code or "payment_method")
    if _should_retry(headers) or (status is not None and (status >= 500 or status == 409)):
        return TransientError(f"{status}: {text}", system=SYSTEM,
                              retry_after=retry_after_seconds(_header(headers, "Retry-After")))
    if isinstance(exc, stripe.InvalidRequestError):
        if status == 404:
            return ObjectMissing(text, system=SYSTEM)
        param = _param(exc)
        if param:
            return DataError(text, system=SYSTEM, field=param)
        return BusinessRuleError(text, system=SYSTEM)
    return PermanentError(f"{status or 'no status'}: {text}", system=SYSTEM)


def _text(exc: stripe.StripeError) -> str:
    message = (exc.user_message or "").strip() or type(exc).__name__
    parts = [message]
    if exc.code:
        parts.append(f"code {exc.code}")
    if exc.request_id:
        parts.append(f"request {exc.request_id}")
    return parts[0] if len(parts) == 1 else f"{parts[0]} ({', '.join(parts[1:])})"


def _param(exc: Any) -> str | None:
    param = getattr(exc, "param", None)
    return str(param) if param else None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    """Case-insensitive, whatever mapping the HTTP client gave."""
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def _should_retry(headers: Mapping[str, str]) -> bool:
    return (_header(headers, "Stripe-Should-Retry") or "").lower() == "true"
