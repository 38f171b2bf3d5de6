"""The HTTP client stripe-python calls through: httpx's pooled sync client, every call an
`outbound` one (the deal's `traceparent` and X-Correlation-Id added, a CLIENT span when tracing
is on), and every failure to get a complete answer an APIConnectionError that says whether the
request may have reached Stripe."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from typing import Any, NoReturn

import httpx
import stripe

from handoff.observability.tracing import outbound, record_status

# Failures before anything was sent: retrying cannot make a second object.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


class TracedHttpClient(stripe.HTTPClient):
    name = "handoff-httpx"

    def __init__(self, timeout: float = 30.0, max_connections: int = 16,
                 verify: Any = True) -> None:
        super().__init__()
        limits = httpx.Limits(max_connections=max_connections,
                              max_keepalive_connections=max_connections)
        self._client = httpx.Client(timeout=timeout, limits=limits, verify=verify,
                                    follow_redirects=False)

    def request(self, method: str, url: str, headers: Mapping[str, str] | None,
                post_data: Any = None) -> tuple[bytes, int, Mapping[str, str]]:
        with outbound(method.upper(), url) as extra:
            try:
                response = self._client.request(method, url, headers={**(headers or {}), **extra},
                                                content=post_data or None)
            except httpx.HTTPError as exc:
                self._failed(exc)
            record_status(response.status_code)
            return response.content, response.status_code, response.headers

    def request_stream(self, method: str, url: str, headers: Mapping[str, str] | None,
                       post_data: Any = None) -> NoReturn:
        raise NotImplementedError("handoff reads no streamed Stripe responses")

    def close(self) -> None:
        self._client.close()

    @staticmethod
    def _failed(exc: httpx.HTTPError) -> NoReturn:
        sent = not isinstance(exc, _NOT_SENT)
        where = "the request may have reached Stripe" if sent else "nothing reached Stripe"
        message = textwrap.shorten(f"{type(exc).__name__}: {exc}", 300) + f" ({where})"
        raise stripe.APIConnectionError(message, should_retry=True) from exc
