"""The Web API's `$batch` wire format (OData 4.0 multipart/mixed), both ways: the connector
writes requests and reads responses, the twin reads requests and writes responses.

    --batch_<id>                                   --batchresponse_<id>
    Content-Type: application/http                 Content-Type: application/http
    Content-Transfer-Encoding: binary              Content-Transfer-Encoding: binary

    PATCH /api/data/v9.2/opportunities(…) HTTP/1.1 HTTP/1.1 204 No Content
    Content-Type: application/json                 OData-Version: 4.0
    If-Match: *
                                                   --batchresponse_<id>--
    {"handoff_status": "provisioned"}
    --batch_<id>--

A change set (atomic writes) is a nested `multipart/mixed; boundary=changeset_<id>` part; its
responses come back nested as `changesetresponse_<id>`. Lines end in CRLF; LF alone is read too.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus

_BOUNDARY = re.compile(r'boundary="?([^";,\s]+)"?', re.IGNORECASE)
CRLF = b"\r\n"


@dataclass(frozen=True)
class Request:
    method: str
    url: str                                     # absolute path or absolute URL
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    content_id: str | None = None


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case when decoded
    body: bytes = b""
    content_id: str | None = None


Item = Request | list[Request]         # one request, or a change set
Answer = Response | list[Response]     # one response, or a change set's responses


def new_boundary(kind: str = "batch") -> str:
    return f"{kind}_{uuid.uuid4()}"


def boundary_of(content_type: str | None) -> str | None:
    match = _BOUNDARY.search(content_type or "")
    return match.group(1) if match else None


def is_multipart(content_type: str | None) -> bool:
    return (content_type or "").lower().startswith("multipart/mixed")


# --- writing --------------------------------------------------------------------------------

def encode_requests(items: Sequence[Item], boundary: str) -> bytes:
    """A $batch request body; `boundary` goes into `Content-Type: multipart/mixed;
    boundary=<boundary>` of the POST."""
    out: list[bytes] = []
    for item in items:
        out.append(f"--{boundary}".encode())
        if isinstance(item, list):
            changeset = new_boundary("changeset")
            out += [f"Content-Type: multipart/mixed; boundary={changeset}".encode(), b""]
            for request in item:
                out += [f"--{changeset}".encode(), *_request_part(request)]
            out.append(f"--{changeset}--".encode())
        else:
            out += _request_part(item)
    out += [f"--{boundary}--".encode(), b""]
    return CRLF.join(out)


def encode_responses(answers: Sequence[Answer], boundary: str) -> bytes:
    """A $batch response body (the twin's)."""
    out: list[bytes] = []
    for answer in answers:
        out.append(f"--{boundary}".encode())
        if isinstance(answer, list):
            changeset = f"changesetresponse_{uuid.uuid4()}"
            out += [f"Content-Type: multipart/mixed; boundary={changeset}".encode(), b""]
            for response in answer:
                out += [f"--{changeset}".encode(), *_response_part(response)]
            out.append(f"--{changeset}--".encode())
        else:
            out += _response_part(answer)
    out += [f"--{boundary}--".encode(), b""]
    return CRLF.join(out)


def _request_part(request: Request) -> list[bytes]:
    head = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if request.content_id:
        head.append(f"Content-ID: {request.content_id}")
    lines = [*head, "", f"{request.method} {request.url} HTTP/1.1",
             *(f"{k}: {v}" for k, v in request.headers.items()), ""]
    return [line.encode("utf-8") for line in lines] + [request.body]


def _response_part(response: Response) -> list[bytes]:
    head = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if response.content_id:
        head.append(f"Content-ID: {response.content_id}")
    reason = _reason(response.status)
    lines = [*head, "", f"HTTP/1.1 {response.status} {reason}",
             *(f"{k}: {v}" for k, v in response.headers.items()), ""]
    return [line.encode("utf-8") for line in lines] + [response.body]


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


# --- reading --------------------------------------------------------------------------------

def decode_requests(content_type: str | None, body: bytes) -> list[Item]:
    """The requests of a $batch body, change sets as lists. ValueError when malformed."""
    items: list[Item] = []
    for headers, content in _parts(content_type, body):
        inner_type = headers.get("content-type", "")
        if is_multipart(inner_type):
            items.append([_parse_request(h, c) for h, c in _parts(inner_type, content)])
        else:
            items.append(_parse_request(headers, content))
    return items


def decode_responses(content_type: str | None, body: bytes) -> list[Response]:
    """The responses of a $batch answer, in order, change sets' responses flattened into it.
    ValueError when malformed."""
    found: list[Response] = []
    for headers, content in _parts(content_type, body):
        inner_type = headers.get("content-type", "")
        if is_multipart(inner_type):
            found += [_parse_response(h, c) for h, c in _parts(inner_type, content)]
        else:
            found.append(_parse_response(headers, content))
    return found


def _parts(content_type: str | None, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    boundary = boundary_of(content_type)
    if not boundary:
        raise ValueError("multipart/mixed without a boundary")
    delimiter = b"--" + boundary.encode()
    chunks = body.split(delimiter)
    if len(chunks) < 2:
        raise ValueError(f"no part opens with --{boundary}")
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            return parts  # the closing delimiter
        chunk = chunk.split(b"\n", 1)[1] if b"\n" in chunk else b""  # the rest of the delimiter line
        if chunk.endswith(b"\r\n"):
            chunk = chunk[:-2]
        elif chunk.endswith(b"\n"):
            chunk = chunk[:-1]
        headers, content = _head(chunk)
        parts.append((headers, content))
    raise ValueError(f"the multipart body does not close with --{boundary}--")


def _head(data: bytes) -> tuple[dict[str, str], bytes]:
    """MIME-style header lines up to the first blank line, and what follows."""
    lines, rest = _split_head(data)
    headers = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers, rest


def _split_head(data: bytes) -> tuple[list[str], bytes]:
    ends = [(i, len(sep)) for sep in (b"\r\n\r\n", b"\n\n") if (i := data.find(sep)) >= 0]
    if not ends:
        return data.decode("utf-8", "replace").splitlines(), b""
    at, size = min(ends)
    return data[:at].decode("utf-8", "replace").splitlines(), data[at + size:]


def _parse_request(part_headers: dict[str, str], content: bytes) -> Request:
    lines, body = _split_head(content)
    if not lines:
        raise ValueError("a batch part holds no request line")
    words = lines[0].split()
    if len(words) < 2:
        raise ValueError(f"bad request line {lines[0]!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return Request(words[0].upper(), words[1], headers, body.strip(), part_headers.get("content-id"))


def _parse_response(part_headers: dict[str, str], content: bytes) -> Response:
    lines, body = _split_head(content)
    words = lines[0].split() if lines else []
    if len(words) < 2 or not words[1].isdigit():
        raise ValueError(f"bad status line {lines[0] if lines else ''!r}")
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return Response(int(words[1]), headers, body.strip(), part_headers.get("content-id"))
