"""KeepAliveClient against a real local HTTP server that misbehaves on request."""

from __future__ import annotations

import gzip
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from handoff.connectors.keepalive import KeepAliveClient, TransportError
from handoff.connectors.twin_process import TlsFiles, free_port

HEADERS = {"Accept": "application/json"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive unless told otherwise
    connections: set[int] = set()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        Handler.connections.add(id(self.connection))
        behaviour = self.path.rsplit("/", 1)[-1]
        if behaviour == "cut":  # promise 100 bytes, send 5, hang up
            self._head(200, {"Content-Length": "100"})
            self.wfile.write(b"short")
            self.close_connection = True
        elif behaviour == "slow":
            time.sleep(1.0)
            self._answer(200, b"late")
        elif behaviour == "gzip":
            self._answer(200, gzip.compress(b'{"zipped": true}'), {"Content-Encoding": "gzip"})
        elif behaviour == "drop-after":  # answer, then close without saying so
            self._answer(200, b"ok")
            self.close_connection = True
        elif behaviour == "chunked":
            self._head(200, {"Transfer-Encoding": "chunked"})
            self.wfile.write(b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n")
        elif behaviour == "continue":  # an informational answer first
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self._answer(200, b"after 100")
        elif behaviour == "split":  # the head arrives in pieces
            self.wfile.write(b"HTTP/1.1 201 Created\r\nLocation: /x/1")
            self.wfile.flush()
            time.sleep(0.05)
            self.wfile.write(b"\r\nContent-Length: 2\r\n\r\nok")
        elif behaviour == "cookies":
            self._answer(200, b"", {"Set-Cookie": "a=1", "set-cookie": "b=2"})
        elif behaviour == "until-close":  # no length: the body ends with the connection
            self.wfile.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it")
            self.close_connection = True
        elif behaviour == "many-headers":
            self._head(200, {f"X-{n}": str(n) for n in range(101)} | {"Content-Length": "0"})
        else:
            self._answer(int(behaviour) if len(behaviour) == 3 and behaviour.isdigit() else 200,
                         self.path.encode())

    def _answer(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        self._head(status, {"Content-Length": str(len(body))} | (extra or {}))
        self.wfile.write(body)

    def do_HEAD(self) -> None:  # noqa: N802
        self._head(200, {"Content-Length": "1000"})  # a length, but no body after HEAD

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def client_of(server: ThreadingHTTPServer, prefix: str = "/base", **options: float) -> KeepAliveClient:
    host, port = server.server_address[:2]
    return KeepAliveClient(f"http://{host}:{port}{prefix}", **options)  # type: ignore[arg-type]


def test_paths_are_relative_to_the_base_url_and_connections_are_reused(
        server: ThreadingHTTPServer) -> None:
    client = client_of(server)
    Handler.connections.clear()
    replies = [client.request("GET", f"record/{n}", headers=HEADERS) for n in range(5)]
    assert [r.data for r in replies] == [f"/base/record/{n}".encode() for n in range(5)]
    assert len(Handler.connections) == 1
    client.close()


def test_any_http_status_is_an_answer_with_case_insensitive_headers(
        server: ThreadingHTTPServer) -> None:
    reply = client_of(server).request("GET", "x/503", headers=HEADERS)
    assert reply.status == 503 and reply.headers.get("content-length") == str(len(reply.data))


def test_a_gzip_body_is_decoded(server: ThreadingHTTPServer) -> None:
    assert client_of(server).request("GET", "gzip", headers=HEADERS).data == b'{"zipped": true}'


def test_a_connection_the_server_closed_while_idle_is_replaced_not_used(
        server: ThreadingHTTPServer) -> None:
    client = client_of(server)
    client.request("GET", "drop-after", headers=HEADERS)
    time.sleep(0.05)  # the server's FIN arrives on the idle connection
    assert client.request("GET", "200", headers=HEADERS).status == 200


def test_bodies_delimited_by_chunks_or_by_the_connection_closing_are_read_whole(
        server: ThreadingHTTPServer) -> None:
    client = client_of(server)
    assert client.request("GET", "chunked", headers=HEADERS).data == b"hello world"
    assert client.request("GET", "until-close", headers=HEADERS).data == b"all of it"
    assert client.request("GET", "200", headers=HEADERS).status == 200  # on a new connection


def test_an_informational_answer_is_skipped_and_a_head_split_over_packets_is_read(
        server: ThreadingHTTPServer) -> None:
    client = client_of(server)
    assert client.request("GET", "continue", headers=HEADERS).data == b"after 100"
    reply = client.request("GET", "split", headers=HEADERS)
    assert (reply.status, reply.headers.get("LOCATION"), reply.data) == (201, "/x/1", b"ok")


def test_a_head_request_reads_no_body_and_the_connection_stays_usable(
        server: ThreadingHTTPServer) -> None:
    client = client_of(server)
    Handler.connections.clear()
    assert client.request("HEAD", "x", headers=HEADERS).data == b""
    assert client.request("GET", "200", headers=HEADERS).data == b"/base/200"
    assert len(Handler.connections) == 1


def test_repeated_headers_are_all_kept_and_the_first_is_the_value(
        server: ThreadingHTTPServer) -> None:
    headers = client_of(server).request("GET", "cookies", headers=HEADERS).headers
    assert headers.get_all("Set-Cookie") == ["a=1", "b=2"] and headers["set-cookie"] == "a=1"
    assert headers.get_all("X-Absent") is None and headers.get("X-Absent", "-") == "-"


def test_too_many_headers_or_a_header_with_a_line_break_is_a_transport_error(
        server: ThreadingHTTPServer) -> None:
    with pytest.raises(TransportError, match="more than 100 headers"):
        client_of(server).request("GET", "many-headers", headers=HEADERS)
    with pytest.raises(TransportError, match="line break"):
        client_of(server).request("GET", "200", headers={"X-Bad": "a\r\nX-Injected: 1"})
    with pytest.raises(TransportError, match="control characters"):
        client_of(server).request("GET", "a b", headers=HEADERS)


def test_a_cut_off_answer_is_a_retryable_transport_error(server: ThreadingHTTPServer) -> None:
    with pytest.raises(TransportError) as caught:
        client_of(server).request("GET", "cut", headers=HEADERS)
    assert caught.value.retryable and "IncompleteRead" in str(caught.value)


def test_a_timeout_is_a_retryable_transport_error(server: ThreadingHTTPServer) -> None:
    with pytest.raises(TransportError) as caught:
        client_of(server, timeout=0.2).request("GET", "slow", headers=HEADERS)
    assert caught.value.retryable


def test_a_refused_connection_is_a_retryable_transport_error() -> None:
    client = KeepAliveClient(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransportError) as caught:
        client.request("GET", "x", headers=HEADERS)
    assert caught.value.retryable and "Refused" in str(caught.value)


def test_an_untrusted_certificate_is_not_retryable(tmp_path: Path) -> None:
    tls = TlsFiles.in_dir(tmp_path)
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert_pem, tls.key_pem)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        url = f"https://127.0.0.1:{httpd.server_address[1]}"
        with pytest.raises(TransportError) as caught:
            KeepAliveClient(url).request("GET", "x", headers=HEADERS)  # system CAs only
        assert not caught.value.retryable
        trusted = ssl.create_default_context(cafile=str(tls.ca_pem))
        assert KeepAliveClient(url, ssl_context=trusted).request("GET", "x", headers=HEADERS).status == 200
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_url_that_is_not_http_is_refused() -> None:
    with pytest.raises(ValueError, match="not an http"):
        KeepAliveClient("ftp://example.com")
