"""A small HTTP/1.1 client on the standard library's `http.client`, for connectors whose
worker threads are bound by client CPU (NetSuite, Tryton's JSON-RPC).

Per call it costs about 60 % of urllib3's client CPU and 30 % of httpx's (`make bench`, "HTTP
clients compared"): no retries, no redirects, no cookie or proxy handling — the engine owns retries
and a redirect is an error. Idle connections are kept in a LIFO stack shared by all threads;
one found closed by the server while idle is replaced before it is used. Every request
carries the current lifecycle's `traceparent` (handoff.observability).
"""

from __future__ import annotations

import http.client
import select
import ssl
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from handoff.observability import outbound, record_status

__all__ = ["KeepAliveClient", "Reply", "TransportError"]


class TransportError(Exception):
    """No complete answer. `retryable` is False when trying again cannot help (the server's
    certificate is not trusted); a write that failed this way may still have committed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: http.client.HTTPMessage  # .get() is case-insensitive
    data: bytes


class KeepAliveClient:
    """Calls one origin (`base_url`, path prefix included); safe to share between threads."""

    def __init__(self, base_url: str, *, timeout: float = 30.0, max_idle: int = 16,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._https = parts.scheme == "https"
        self._origin = f"{parts.scheme}://{parts.netloc}"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/") + "/"
        self._timeout = timeout
        self._max_idle = max_idle
        self._ssl_context = ssl_context or (ssl.create_default_context() if self._https else None)
        self._idle: deque[http.client.HTTPConnection] = deque()  # append/pop are atomic

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: Mapping[str, str]) -> Reply:
        """`path` is relative to the base URL. Raises TransportError when no complete answer
        came back; any HTTP status is an answer."""
        target = self._prefix + path
        with outbound(method, self._origin + target) as tracing:
            connection = self._checkout()
            try:
                connection.request(method, target, body=body, headers={**headers, **tracing})
                response = connection.getresponse()
                data = _decoded(response.read(), response.headers.get("Content-Encoding"))
            except (OSError, http.client.HTTPException, zlib.error) as exc:
                connection.close()
                raise _transport_error(exc) from exc
            record_status(response.status)
        self._checkin(connection, response)
        return Reply(response.status, response.headers, data)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    def _checkout(self) -> http.client.HTTPConnection:
        while self._idle:
            connection = self._idle.pop()
            if not _dropped(connection):
                return connection
            connection.close()
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self._timeout,
                                               context=self._ssl_context)
        return http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)

    def _checkin(self, connection: http.client.HTTPConnection,
                 response: http.client.HTTPResponse) -> None:
        if response.will_close or len(self._idle) >= self._max_idle:
            connection.close()
        else:
            self._idle.append(connection)


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """An idle keep-alive socket that is readable has been closed by the server (or holds
    garbage); either way it must not carry the next request."""
    if connection.sock is None:
        return True
    poller = select.poll()
    poller.register(connection.sock, select.POLLIN)
    return bool(poller.poll(0))


def _decoded(data: bytes, encoding: str | None) -> bytes:
    return zlib.decompress(data, 16 + zlib.MAX_WBITS) if encoding == "gzip" and data else data


def _transport_error(exc: BaseException) -> TransportError:
    untrusted = isinstance(exc, ssl.SSLCertVerificationError)
    return TransportError(f"{type(exc).__name__}: {exc}", retryable=not untrusted)
