"""SAP's OData v2 wire format, shared by the connector and its twin: JSON values
(`Edm.DateTime` as `/Date(<ms>)/`, `Edm.DateTimeOffset` as `/Date(<ms>+0000)/`, `Edm.Decimal` as
a JSON string), `$filter` literals, query strings, and `$batch` multipart bodies (CRLF line ends,
GETs directly in the batch, writes inside one change set).

Pure functions: no I/O. Money never passes through a float: a decimal is read from its text.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from email.message import Message
from http import HTTPStatus
from urllib.parse import quote

CRLF = b"\r\n"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE = re.compile(r"/Date\((-?\d+)(?:([+-])(\d{4}))?\)/")
# What stays unescaped in a query value: OData's own punctuation reads better in logs.
_QUERY_SAFE = "$(),'=:*/"


# --- JSON values -------------------------------------------------------------------------

def date_value(day: date) -> str:
    """A calendar day as `Edm.DateTime`: midnight UTC in epoch milliseconds."""
    midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
    return f"/Date({(midnight - EPOCH) // timedelta(milliseconds=1)})/"


def datetime_offset_value(moment: datetime) -> str:
    """A moment as `Edm.DateTimeOffset` (always rendered in UTC, offset +0000)."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return f"/Date({(moment - EPOCH) // timedelta(milliseconds=1)}+0000)/"


def parse_moment(value: object) -> datetime | None:
    """`/Date(ms)/` or `/Date(ms±hhmm)/` (the offset only says where the value was local; the
    milliseconds are UTC) to an aware datetime; None for null or an empty string."""
    if value is None or value == "":
        return None
    match = _DATE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"not an OData v2 date: {value!r}")
    return EPOCH + timedelta(milliseconds=int(match[1]))


def parse_date(value: object) -> date | None:
    moment = parse_moment(value)
    return moment.date() if moment else None


def decimal_value(amount: Decimal) -> str:
    """`Edm.Decimal` travels as a JSON string, in fixed-point digits (never `1E+2`)."""
    if not amount.is_finite():
        raise ValueError(f"{amount} is not a finite number")
    return format(amount, "f")


def parse_decimal(value: object) -> Decimal:
    """A decimal as SAP sends it (a string); an int is taken too, a float never."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"not an OData decimal: {value!r}")
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"not an OData decimal: {value!r}") from None
    if not amount.is_finite():
        raise ValueError(f"not an OData decimal: {value!r}")
    return amount


# --- URIs ----------------------------------------------------------------------------------

def literal(text: str) -> str:
    """A string literal for `$filter` or a key: `'O''Brien'`."""
    return "'" + text.replace("'", "''") + "'"


def guid_literal(value: str) -> str:
    return f"guid'{value}'"


def query(params: Mapping[str, object]) -> str:
    """`$filter=Project%20eq%20'HO-P-1'&$top=2`: spaces and the like escaped, OData's own
    punctuation left readable; a None value is left out."""
    return "&".join(f"{name}={quote(str(value), safe=_QUERY_SAFE)}"
                    for name, value in params.items() if value is not None)


def any_of(name: str, values: Sequence[str]) -> str:
    """`(Name eq 'a' or Name eq 'b')`: OData v2 has no `in`."""
    return "(" + " or ".join(f"{name} eq {literal(v)}" for v in values) + ")"


# --- $batch --------------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchRequest:
    """One request inside a `$batch`; `path` is relative to the service root."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass(frozen=True)
class BatchResponse:
    """One response inside a `$batch` answer; header names in lower case."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    @property
    def reason(self) -> str:
        return self.headers.get("x-reason", "")


def new_boundary(kind: str) -> str:
    return f"{kind}_{uuid.uuid4()}"


def batch_body(reads: Sequence[BatchRequest], changeset: Sequence[BatchRequest],
               boundary: str | None = None) -> tuple[str, bytes]:
    """The `Content-Type` and body of a `$batch`: the reads, then one change set holding the
    writes (applied all or none)."""
    boundary = boundary or new_boundary("batch")
    parts = [_http_part(request) for request in reads]
    if changeset:
        inner = new_boundary("changeset")
        parts.append(_part(f"multipart/mixed; boundary={inner}",
                           _multipart([_http_part(request) for request in changeset], inner)))
    return f"multipart/mixed; boundary={boundary}", _multipart(parts, boundary)


def batch_answer(parts: Sequence[BatchResponse | Sequence[BatchResponse]],
                 boundary: str | None = None) -> tuple[str, bytes]:
    """A `$batch` answer: one part per read, a nested multipart per change set (or, for a change
    set that failed, its one error response in place of it)."""
    boundary = boundary or new_boundary("batch")
    rendered = []
    for part in parts:
        if isinstance(part, BatchResponse):
            rendered.append(_http_part(part))
        else:
            inner = new_boundary("changeset")
            rendered.append(_part(f"multipart/mixed; boundary={inner}",
                                  _multipart([_http_part(r) for r in part], inner)))
    return f"multipart/mixed; boundary={boundary}", _multipart(rendered, boundary)


def parse_batch_request(content_type: str, body: bytes) -> list[BatchRequest | list[BatchRequest]]:
    """A `$batch` request as the twin reads it: reads, and change sets as lists."""
    parsed: list[BatchRequest | list[BatchRequest]] = []
    for headers, content in split_multipart(content_type, body):
        if headers.get("content-type", "").startswith("multipart/mixed"):
            parsed.append([_request(inner) for _, inner in
                           split_multipart(headers["content-type"], content)])
        else:
            parsed.append(_request(content))
    return parsed


def parse_batch_answer(content_type: str, body: bytes) -> list[BatchResponse]:
    """Every response of a `$batch` answer, change sets flattened, in order."""
    answers: list[BatchResponse] = []
    for headers, content in split_multipart(content_type, body):
        if headers.get("content-type", "").startswith("multipart/mixed"):
            answers += [_response(inner) for _, inner in
                        split_multipart(headers["content-type"], content)]
        else:
            answers.append(_response(content))
    return answers


def split_multipart(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart body: (headers in lower case, content). The CRLF before each
    delimiter belongs to the delimiter (RFC 2046), so a part's content keeps its own last
    line end only when it had an empty line there."""
    boundary = boundary_of(content_type)
    delimiter = CRLF + b"--" + boundary.encode("latin-1")
    pieces = (CRLF + body).split(delimiter)
    if len(pieces) < 2:
        raise ValueError(f"no part delimited by --{boundary}")
    parts = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            return parts
        _, _, piece = piece.partition(CRLF)  # the rest of the delimiter line
        head, _, content = piece.partition(CRLF + CRLF)
        parts.append((_headers(head), content))
    raise ValueError(f"multipart body without its closing --{boundary}--")


def boundary_of(content_type: str) -> str:
    message = Message()
    message["content-type"] = content_type
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise ValueError(f"no boundary in {content_type!r}")
    return boundary


def _multipart(parts: Sequence[bytes], boundary: str) -> bytes:
    delimiter = b"--" + boundary.encode("latin-1")
    return b"".join(delimiter + CRLF + part + CRLF for part in parts) + delimiter + b"--" + CRLF


def _part(content_type: str, content: bytes) -> bytes:
    return f"Content-Type: {content_type}".encode("latin-1") + CRLF + CRLF + content


def _http_part(message: BatchRequest | BatchResponse) -> bytes:
    if isinstance(message, BatchRequest):
        start = f"{message.method} {message.path} HTTP/1.1"
    else:
        start = f"HTTP/1.1 {message.status} {message.reason or _phrase(message.status)}"
    lines = [start, *(f"{name}: {value}" for name, value in message.headers.items()
                      if name.lower() != "x-reason")]
    if message.body:
        lines.append(f"Content-Length: {len(message.body)}")
    http = "\r\n".join(lines).encode("latin-1") + CRLF + CRLF + message.body
    head = b"Content-Type: application/http" + CRLF + b"Content-Transfer-Encoding: binary"
    return head + CRLF + CRLF + http


def _request(content: bytes) -> BatchRequest:
    start, headers, body = _http_message(content)
    method, _, rest = start.partition(" ")
    path = rest.rsplit(" HTTP/", 1)[0]
    return BatchRequest(method.upper(), path, headers, body)


def _response(content: bytes) -> BatchResponse:
    start, headers, body = _http_message(content)
    parts = start.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError(f"not an HTTP status line: {start!r}")
    reason = parts[2] if len(parts) > 2 else ""
    return BatchResponse(int(parts[1]), {**headers, "x-reason": reason}, body)


def _http_message(content: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = content.partition(CRLF + CRLF)
    start, _, header_lines = head.partition(CRLF)
    headers = _headers(header_lines)
    length = headers.get("content-length")
    if length is not None and length.isdigit():
        body = body[:int(length)]
    return start.decode("latin-1").strip(), headers, body


def _headers(block: bytes) -> dict[str, str]:
    headers = {}
    for line in block.split(CRLF):
        name, sep, value = line.decode("latin-1").partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
