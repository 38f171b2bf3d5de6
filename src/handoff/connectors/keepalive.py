"""A small HTTP/1.1 client on plain sockets, for connectors whose worker threads are bound by
client CPU (NetSuite, SAP, Tryton's JSON-RPC).

A call is one `sendall` of the request (head and body together) and a read of the answer from
the connection's buffered reader, its headers split by hand: about 40 % of the client CPU of
`http.client` (which parses every answer's headers with the `email` package), a fifth of
urllib3's, a tenth of httpx's. No retries, no redirects, no cookie or proxy handling — the
engine owns retries and a redirect is an error. Idle connections are kept in a LIFO stack
shared by all threads; one found closed by the server while idle is replaced before it is
used. Every request carries the current lifecycle's `traceparent` (handoff.observability).

What it reads of an answer: a status line, up to 100 header lines, then a body delimited by
Content-Length, chunked transfer coding, or the server closing the connection (none after HEAD,
1xx, 204 and 304); informational (1xx) answers are skipped. A gzip body is decoded.
"""

from __future__ import annotations

import http.client
import re
import select
import socket
import ssl
import zlib
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO
from urllib.parse import urlsplit

from handoff.observability import outbound, record_status

__all__ = ["Headers", "KeepAliveClient", "Reply", "TransportError"]

MAX_LINE = 65536  # bytes in the status line or one header line, as http.client allows
MAX_HEADERS = 100
_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})  # Content-Length: 0 even without a body
_NOT_IN_TARGET = re.compile("[\x00-\x20\x7f]")     # what http.client refuses in a URL too
_LINE_ENDS = (b"\r\n", b"\n", b"")


class TransportError(Exception):
    """No complete answer. `retryable` is False when trying again cannot help (the server's
    certificate is not trusted); a write that failed this way may still have committed."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class Headers(Mapping[str, str]):
    """An answer's headers, by case-insensitive name: the first value of a repeated header
    (as http.client's message gave it), or all of them with `get_all` (Set-Cookie)."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, list[str]]) -> None:
        self._values = values  # lower-case name -> values in the order received

    def __getitem__(self, name: str) -> str:
        return self._values[name.lower()][0]

    def get(self, name: str, default: str | None = None) -> str | None:  # type: ignore[override]
        values = self._values.get(name.lower())
        return values[0] if values else default

    def get_all(self, name: str, failobj: list[str] | None = None) -> list[str] | None:
        values = self._values.get(name.lower())
        return list(values) if values else failobj

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Headers({self._values!r})"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: Headers  # .get() is case-insensitive
    data: bytes


class _Connection:
    """A socket and the buffered reader its answers are read through (kept across calls)."""

    __slots__ = ("sock", "answers")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.answers: BinaryIO = sock.makefile("rb")

    def close(self) -> None:
        self.answers.close()
        self.sock.close()


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
        self._idle: deque[_Connection] = deque()  # append/pop are atomic
        host = f"[{self._host}]" if ":" in self._host else self._host
        default_port = self._port == (443 if self._https else 80)
        self._host_header = f"Host: {host}" if default_port else f"Host: {host}:{self._port}"

    def request(self, method: str, path: str, *, body: bytes | None = None,
                headers: Mapping[str, str]) -> Reply:
        """`path` is relative to the base URL. Raises TransportError when no complete answer
        came back; any HTTP status is an answer."""
        target = self._prefix + path
        with outbound(method, self._origin + target) as tracing:
            try:
                message = self._message(method, target, body, headers, tracing)
                connection = self._checkout()
            except (OSError, http.client.HTTPException) as exc:
                raise _transport_error(exc) from exc
            try:
                connection.sock.sendall(message)
                status, answer_headers, data, will_close = _read_answer(connection.answers, method)
                data = _decoded(data, answer_headers.get("Content-Encoding"))
            except (OSError, http.client.HTTPException, ValueError, zlib.error) as exc:
                connection.close()
                raise _transport_error(exc) from exc
            record_status(status)
        self._checkin(connection, will_close)
        return Reply(status, answer_headers, data)

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    def _message(self, method: str, target: str, body: bytes | None, headers: Mapping[str, str],
                 tracing: Mapping[str, str]) -> bytes:
        """The request's head and body as one buffer: one send, no Nagle delay between them."""
        if _NOT_IN_TARGET.search(target) or not target.isascii():
            raise http.client.InvalidURL(f"URL can't contain control characters: {target!r}")
        lines = [f"{method} {target} HTTP/1.1", self._host_header]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += [f"{name}: {value}" for name, value in tracing.items()]
        if body is not None or method in _WITH_BODY:
            lines.append(f"Content-Length: {len(body) if body else 0}")
        head = "\r\n".join(lines) + "\r\n\r\n"
        if head.count("\n") != len(lines) + 1 or head.count("\r") != len(lines) + 1:
            raise http.client.HTTPException("a header name or value contains a line break")
        return head.encode("latin-1") + body if body else head.encode("latin-1")

    def _checkout(self) -> _Connection:
        while self._idle:
            connection = self._idle.pop()
            if not _dropped(connection.sock):
                return connection
            connection.close()
        sock = socket.create_connection((self._host, self._port), self._timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._ssl_context is not None:
                sock = self._ssl_context.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            sock.close()
            raise
        return _Connection(sock)

    def _checkin(self, connection: _Connection, will_close: bool) -> None:
        if will_close or len(self._idle) >= self._max_idle:
            connection.close()
        else:
            self._idle.append(connection)


def _read_answer(answers: BinaryIO, method: str) -> tuple[int, Headers, bytes, bool]:
    """Status, headers, body, and whether the server closes the connection after it."""
    version, status, headers = _read_head(answers)
    while 100 <= status < 200:  # informational: the real answer follows
        version, status, headers = _read_head(answers)
    connection = (headers.get("Connection") or "").lower()
    will_close = "close" in connection if version == b"HTTP/1.1" else "keep-alive" not in connection
    if method == "HEAD" or status in (204, 304):
        return status, headers, b"", will_close
    if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
        return status, headers, _read_chunked(answers), will_close
    length = headers.get("Content-Length")
    if length is None:  # the body ends when the server closes the connection
        return status, headers, answers.read(), True
    return status, headers, _read_exactly(answers, int(length)), will_close


def _read_head(answers: BinaryIO) -> tuple[bytes, int, Headers]:
    """The status line and the header fields: split from the reader's buffer at once when
    the whole head has arrived (the usual case), else read line by line."""
    buffered = answers.peek(MAX_LINE)  # type: ignore[attr-defined]  # a BufferedReader
    end = buffered.find(b"\r\n\r\n", 0, MAX_LINE)
    lines = _read_lines(answers) if end < 0 else answers.read(end + 4)[:end].split(b"\r\n")
    if not lines or not lines[0]:
        raise http.client.RemoteDisconnected("Remote end closed connection without response")
    parts = lines[0].split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit() \
            or len(parts[1]) != 3:
        raise http.client.BadStatusLine(repr(lines[0]))
    if len(lines) > MAX_HEADERS + 1:
        raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
    values: dict[str, list[str]] = {}
    for field in lines[1:]:
        name, _, value = field.decode("iso-8859-1").partition(":")
        values.setdefault(name.strip().lower(), []).append(value.strip())
    return parts[0], int(parts[1]), Headers(values)


def _read_lines(answers: BinaryIO) -> list[bytes]:
    """The head's lines up to the empty one (or the end of the stream)."""
    lines: list[bytes] = []
    while (line := _read_line(answers)) not in _LINE_ENDS:
        lines.append(line)
        if len(lines) > MAX_HEADERS + 1:
            raise http.client.HTTPException(f"got more than {MAX_HEADERS} headers")
    return lines


def _read_line(answers: BinaryIO) -> bytes:
    line = answers.readline(MAX_LINE + 1)
    if len(line) > MAX_LINE:
        raise http.client.LineTooLong("header line")
    return line


def _read_exactly(answers: BinaryIO, length: int) -> bytes:
    if length < 0:
        raise ValueError(f"negative Content-Length {length}")
    data = answers.read(length)
    if len(data) < length:
        raise http.client.IncompleteRead(data, length - len(data))
    return data


def _read_chunked(answers: BinaryIO) -> bytes:
    chunks = []
    while True:
        size = int(_read_line(answers).split(b";", 1)[0], 16)
        if size == 0:
            while _read_line(answers) not in _LINE_ENDS:  # trailer fields, ignored
                pass
            return b"".join(chunks)
        chunks.append(_read_exactly(answers, size))
        _read_line(answers)  # the CRLF after the chunk


def _dropped(sock: socket.socket) -> bool:
    """An idle keep-alive socket that is readable has been closed by the server (or holds
    garbage); either way it must not carry the next request."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    return bool(poller.poll(0))


def _decoded(data: bytes, encoding: str | None) -> bytes:
    return zlib.decompress(data, 16 + zlib.MAX_WBITS) if encoding == "gzip" and data else data


def _transport_error(exc: BaseException) -> TransportError:
    untrusted = isinstance(exc, ssl.SSLCertVerificationError)
    return TransportError(f"{type(exc).__name__}: {exc}", retryable=not untrusted)
