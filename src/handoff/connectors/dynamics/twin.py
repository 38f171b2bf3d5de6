"""A Dynamics 365 Sales sandbox twin: the Dataverse Web API's paths, OData payloads, error
bodies and service protection limits for accounts, opportunities and transaction currencies,
served locally over plain HTTP (`base_url = "http://127.0.0.1:<port>"`).

    GET    /api/data/v9.2/{set}                 $select, $filter (eq ne gt ge lt le, and or not,
                                                parentheses), $orderby, $top; Prefer:
                                                odata.maxpagesize (≤ 5000) → @odata.nextLink with a
                                                paging-cookie $skiptoken; $skip refused
    POST   /api/data/v9.2/{set}                 create → 204 + OData-EntityId; Prefer:
                                                return=representation → 201 + the row
    GET|PATCH|DELETE /api/data/v9.2/{set}({id}) and /{set}({key}='{value}'): read (If-None-Match
                                                W/"…" → 304), upsert (If-Match: * update only →
                                                404; If-None-Match: * create only → 412; a stale
                                                If-Match → 412), 204 both ways; delete 204
    POST   /api/data/v9.2/$batch                multipart/mixed, change sets (atomic, Content-ID
                                                $n), Prefer: odata.continue-on-error; ≤ 1000
    POST   /api/data/v9.2/WinOpportunity        Status + OpportunityClose → the opportunity won
    POST   /api/data/v9.2/LoseOpportunity       likewise lost
    GET    /api/data/v9.2/WhoAmI                the application user
                                                {set}: accounts | opportunities | transactioncurrencies

Auth: `Authorization: Bearer <SANDBOX_TOKEN>`, else 401 with an empty body and a
`WWW-Authenticate: Bearer …` challenge (unconfirmed shape). Answers carry `OData-Version: 4.0`;
rows `@odata.etag` (W/"<versionnumber>") and, with `Prefer: odata.include-annotations="*"`,
FormattedValue labels and lookup annotations. Errors are the OData body `{"error": {"code":
"0x…", "message": …}}`. Service protection, per token: 6,000 requests per sliding 300 s and 52
concurrent → 429 with `Retry-After` (seconds) and 0x80072322 / 0x80072326 (a $batch counts
once); every answer carries `x-ms-ratelimit-burst-remaining-xrm-requests`. The execution-time
limit (0x80072321) is not played.

Twin-only controls, besides those of `sandbox.build_twin` (whose 429s send Retry-After too):

    GET  /_twin/records/{set}   every row, all columns
    GET|PUT /_twin/settings     request_limit, window_seconds, concurrency_limit,
                                send_retry_after, hold_ms (time each request holds its
                                concurrency slot), max_page_size, frozen_clock (ISO-8601: every
                                write stamped with this second); reset restores them
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from handoff.connectors.dynamics import batch
from handoff.connectors.dynamics.mapping import dumps, loads
from handoff.connectors.dynamics.twin_store import (
    BUSINESS_UNIT_ID,
    ORGANIZATION_ID,
    TABLES,
    USER_ID,
    DataverseError,
    Row,
    Store,
    Table,
    after_cookie,
    bad_request,
    does_not_exist,
    ordering,
    paging_cookie,
    parse_filter,
    render,
    selected,
    table_of,
    unknown_segment,
)
from handoff.connectors.sandbox import TwinControl, build_twin

SANDBOX_TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOiJub25lIn0.c2FuZGJveC1keW5hbWljcw.sandbox"
API = "/api/data/v9.2"
BATCH_LIMIT = 1000
JSON_TYPE = "application/json; odata.metadata=minimal"
_SEGMENT = re.compile(r"^(?P<set>[A-Za-z_][A-Za-z0-9_]*)(?:\((?P<key>.*)\))?$", re.DOTALL)
_ALTERNATE_KEY = re.compile(r"^(?P<column>[a-z_][a-z0-9_]*)=(?P<value>'(?:[^']|'')*'|[^,']+)$")


@dataclass(frozen=True)
class TwinSettings:
    request_limit: int = 6000
    window_seconds: float = 300.0
    concurrency_limit: int = 52
    send_retry_after: bool = True
    hold_ms: float = 0.0
    max_page_size: int = 5000
    frozen_clock: str | None = None

    def __post_init__(self) -> None:
        for name in ("request_limit", "concurrency_limit", "max_page_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a whole number of at least 1")
        if self.window_seconds <= 0 or self.hold_ms < 0:
            raise ValueError("window_seconds must be positive and hold_ms not negative")


@dataclass
class Answer:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


class Limiter:
    """Dataverse's service protection, per user (token): requests in a sliding window and
    requests in flight. Only admitted requests count."""

    def __init__(self) -> None:
        self.calls: dict[str, deque[float]] = {}
        self.in_flight: dict[str, int] = {}

    def enter(self, token: str, settings: TwinSettings) -> dict[str, str]:
        """Count the request in, or raise the 429; returns the debug headers to send."""
        now = time.monotonic()
        calls = self.calls.setdefault(token, deque())
        while calls and calls[0] <= now - settings.window_seconds:
            calls.popleft()
        if self.in_flight.get(token, 0) >= settings.concurrency_limit:
            raise DataverseError(
                429, "0x80072326", f"Number of concurrent requests exceeded the limit of "
                f"{settings.concurrency_limit}.", retry_after=1 if settings.send_retry_after else None)
        if len(calls) >= settings.request_limit:
            wait = max(1, round(calls[0] + settings.window_seconds - now))
            raise DataverseError(
                429, "0x80072322", f"Number of requests exceeded the limit of {settings.request_limit} "
                f"over time window of {settings.window_seconds:g} seconds.",
                retry_after=wait if settings.send_retry_after else None)
        calls.append(now)
        self.in_flight[token] = self.in_flight.get(token, 0) + 1
        return {"x-ms-ratelimit-burst-remaining-xrm-requests": str(settings.request_limit - len(calls))}

    def leave(self, token: str) -> None:
        self.in_flight[token] = max(0, self.in_flight.get(token, 0) - 1)


class DynamicsTwin:
    def __init__(self, token: str = SANDBOX_TOKEN) -> None:
        self.token = token
        self.control = TwinControl()
        self.reset()

    def reset(self) -> None:
        self.settings = TwinSettings()
        self.store = Store()
        self.limiter = Limiter()

    def routes(self) -> list[Route]:
        methods = ["GET", "POST", "PATCH", "PUT", "DELETE"]
        return [
            Route(f"{API}/{{path:path}}", self.endpoint, methods=methods),
            Route("/api/{path:path}", self.unknown_version, methods=methods),
            Route("/_twin/records/{set}", self.all_records, methods=["GET"]),
            Route("/_twin/settings", self.get_settings, methods=["GET"]),
            Route("/_twin/settings", self.put_settings, methods=["PUT"]),
        ]

    # --- the HTTP edge --------------------------------------------------------------------

    async def endpoint(self, request: Request) -> Response:
        extra: dict[str, str] = {}
        try:
            token = self._authenticate(request)
            extra = self.limiter.enter(token, self.settings)
            try:
                if self.settings.hold_ms:
                    await asyncio.sleep(self.settings.hold_ms / 1000)
                body = await request.body()
                self.store.clock.frozen = self.settings.frozen_clock
                raw_path = request.scope.get("raw_path") or request.url.path.encode()
                headers = {k.lower(): v for k, v in request.headers.items()}
                answer = self.handle(request.method, raw_path.decode("latin-1"),
                                     request.url.query, headers, body, _origin(request))
            finally:
                self.limiter.leave(token)
        except DataverseError as exc:
            answer = self.error(exc)
        return Response(answer.body, status_code=answer.status, headers=answer.headers | extra)

    async def unknown_version(self, request: Request) -> Response:
        segment = request.path_params["path"].split("/")[0]
        answer = self.error(unknown_segment(segment))
        return Response(answer.body, status_code=answer.status, headers=answer.headers)

    def _authenticate(self, request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token or token != self.token:
            base = _origin(request)
            challenge = (f"Bearer authorization_uri=https://login.microsoftonline.com/"
                         f"00000000-0000-0000-0000-000000000000/oauth2/authorize, resource_id={base}/")
            raise DataverseError(401, "", "", headers={"WWW-Authenticate": challenge})
        return token

    def error(self, exc: DataverseError) -> Answer:
        headers = {"OData-Version": "4.0"} | exc.headers
        if exc.retry_after:
            headers["Retry-After"] = str(exc.retry_after)
        if exc.status == 401:
            return Answer(401, headers)
        return Answer(exc.status, headers | {"Content-Type": JSON_TYPE}, orjson.dumps(exc.body()))

    def error_response(self, status: int, kind: str, retry_after: float | None) -> Response:
        """An injected fault in Dataverse's words (sandbox.FaultMiddleware adds Retry-After)."""
        if status == 429:
            error = DataverseError(429, "0x80072322", f"Number of requests exceeded the limit of "
                                   f"{self.settings.request_limit} over time window of "
                                   f"{self.settings.window_seconds:g} seconds.")
        else:  # the code Dataverse sends while unavailable is unconfirmed
            error = DataverseError(status, "0x80040216", f"An unexpected error occurred ({kind}).")
        answer = self.error(error)
        return Response(answer.body, status_code=answer.status, headers=answer.headers)

    # --- one request (also each part of a $batch) -------------------------------------------

    def handle(self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
               body: bytes, base: str) -> Answer:
        try:
            return self._dispatch(method, raw_path, raw_query, headers, body, base)
        except DataverseError as exc:
            return self.error(exc)

    def _dispatch(self, method: str, raw_path: str, raw_query: str, headers: Mapping[str, str],
                  body: bytes, base: str) -> Answer:
        path = unquote(raw_path)
        if not path.startswith(API + "/"):
            raise unknown_segment(path.strip("/").split("/")[0] or "api")
        resource = path[len(API) + 1:]
        if resource == "$batch" and method == "POST":
            return self._batch(headers, body, base)
        if resource in ("WinOpportunity", "LoseOpportunity") and method == "POST":
            return self._close_opportunity(resource == "WinOpportunity", _json_body(body))
        if resource == "WhoAmI" and method == "GET":
            context = f"{base}{API}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"
            return _json(200, {"@odata.context": context, "BusinessUnitId": BUSINESS_UNIT_ID,
                               "UserId": USER_ID, "OrganizationId": ORGANIZATION_ID})
        match = _SEGMENT.match(resource)
        if match is None:
            raise unknown_segment(resource.split("/")[0])
        table = table_of(match.group("set"))
        query = parse_qsl(raw_query, keep_blank_values=True)
        prefer = _preferences(headers.get("prefer", ""))
        if match.group("key") is None:
            if method == "GET":
                return self._list(table, raw_path, raw_query, dict(query), prefer, base)
            if method == "POST":
                row = self.store.create(table, _json_body(body))
                return self._written(row, 201, prefer, dict(query), base)
            raise DataverseError(405, "0x80060888", f"The requested resource does not support http "
                                 f"method '{method}'.")
        key = _row_key(table, match.group("key"))
        if method == "GET":
            return self._read(table, key, dict(query), prefer, headers, base)
        if method == "PATCH":
            return self._upsert(table, key, _json_body(body), headers, prefer, dict(query), base)
        if method == "DELETE":
            row = self.store.get(table, key)
            _check_if_match(row, headers.get("if-match"))
            self.store.delete(row)
            return Answer(204, {"OData-Version": "4.0"})
        raise DataverseError(405, "0x80060888", f"The requested resource does not support http method "
                             f"'{method}'.")

    def _list(self, table: Table, raw_path: str, raw_query: str, query: dict[str, str],
              prefer: dict[str, str], base: str) -> Answer:
        _check_options(query, ("$select", "$filter", "$orderby", "$top", "$skiptoken"))
        names = selected(table, query.get("$select"))
        where = parse_filter(table, query.get("$filter"))
        order = ordering(table, query.get("$orderby"))
        rows = self.store.query(table, where, order)
        page_number = 1
        if "$skiptoken" in query:
            page_number, after = after_cookie(table, order, query["$skiptoken"])
            rows = [r for r in rows if after(r)]
        headers = {"OData-Version": "4.0"}
        size = _page_size(prefer, self.settings.max_page_size)
        next_link = None
        if size is not None:
            headers["Preference-Applied"] = f"odata.maxpagesize={size}"
            if len(rows) > size:
                kept = [p for p in raw_query.split("&") if p and unquote(p.split("=")[0]) != "$skiptoken"]
                cookie = paging_cookie(rows[size - 1], order, page_number, rows[0])
                kept.append(f"$skiptoken={quote(cookie, safe='=')}")
                next_link = f"{base}{raw_path}?{'&'.join(kept)}"
                rows = rows[:size]
        elif "$top" in query:
            rows = rows[:_whole(query["$top"], "$top")]
        elif len(rows) > self.settings.max_page_size:  # no preference: pages of the maximum
            rows = rows[:self.settings.max_page_size]
        annotations = "odata.include-annotations" in prefer
        if annotations:
            headers["Preference-Applied"] = ",".join(
                filter(None, [headers.get("Preference-Applied"),
                              f'odata.include-annotations={prefer["odata.include-annotations"]}']))
        body: dict[str, Any] = {"@odata.context": _context(base, table, names),
                                "value": [render(self.store, r, names, annotations) for r in rows]}
        if next_link:
            body["@odata.nextLink"] = next_link
        return _json(200, body, headers)

    def _read(self, table: Table, key: tuple[str, str], query: dict[str, str], prefer: dict[str, str],
              headers: Mapping[str, str], base: str) -> Answer:
        _check_options(query, ("$select",))
        names = selected(table, query.get("$select"))
        row = self.store.get(table, key)
        if headers.get("if-none-match") == row.etag:
            return Answer(304, {"OData-Version": "4.0"})
        annotations = "odata.include-annotations" in prefer
        body = {"@odata.context": _context(base, table, names, entity=True)}
        return _json(200, body | render(self.store, row, names, annotations))

    def _upsert(self, table: Table, key: tuple[str, str], body: dict[str, Any],
                headers: Mapping[str, str], prefer: dict[str, str], query: dict[str, str],
                base: str) -> Answer:
        row = self.store.find(table, key)
        if_match, if_none_match = headers.get("if-match"), headers.get("if-none-match")
        if row is None:
            if if_match:
                shown = key[1] if key[0] == "id" else f"{key[0]}={key[1]}"
                raise does_not_exist(table.logical, shown, code="")
            row = self.store.create(table, body, row_id=key[1] if key[0] == "id" else None, key=key)
            return self._written(row, 201, prefer, query, base)
        if if_none_match == "*":
            raise DataverseError(412, "0x80040237", "A record with matching key values already exists.")
        _check_if_match(row, if_match)
        if key[0] != "id":
            body = {k: v for k, v in body.items() if k != key[0]}  # the key in the URL wins
        self.store.update(row, body)
        return self._written(row, 200, prefer, query, base)

    def _written(self, row: Row, status: int, prefer: dict[str, str], query: dict[str, str],
                 base: str) -> Answer:
        """204 + OData-EntityId; with return=representation, the row (201 created, 200 updated)."""
        location = f"{base}{API}/{row.table.entity_set}({row.id})"
        if prefer.get("return") == "representation":
            names = selected(row.table, query.get("$select"))
            body = {"@odata.context": _context(base, row.table, names, entity=True)}
            return _json(status, body | render(self.store, row, names, "odata.include-annotations" in prefer),
                         {"Preference-Applied": "return=representation"})
        return Answer(204, {"OData-Version": "4.0", "OData-EntityId": location})

    def _close_opportunity(self, won: bool, body: dict[str, Any]) -> Answer:
        status = body.get("Status")
        close = body.get("OpportunityClose")
        allowed = (3,) if won else (4, 5)
        if not isinstance(close, Mapping) or "opportunityid@odata.bind" not in close:
            raise bad_request("OpportunityClose with opportunityid@odata.bind is required.", "0x80040203")
        if status not in allowed:
            raise bad_request(f"{status} is not a valid status code for state code "
                              f"OpportunityState.{'Won' if won else 'Lost'}.", "0x80040203")
        match = re.search(r"opportunities\(([0-9A-Fa-f-]{36})\)", str(close["opportunityid@odata.bind"]))
        if match is None:
            raise bad_request("opportunityid@odata.bind must name /opportunities(<id>).", "0x80040203")
        table = TABLES["opportunities"]
        row = self.store.get(table, ("id", match.group(1).lower()))
        if row.values["statecode"] != 0:
            raise bad_request("The opportunity is already closed.", "0x80040203")
        today = self.store.clock.now().date().isoformat()
        self.store.update(row, {"statecode": 1 if won else 2, "statuscode": status, "actualclosedate": today,
                                "actualvalue": row.values.get("estimatedvalue") if won else None})
        return Answer(204, {"OData-Version": "4.0"})

    # --- $batch ---------------------------------------------------------------------------

    def _batch(self, headers: Mapping[str, str], body: bytes, base: str) -> Answer:
        content_type = headers.get("content-type")
        if not batch.is_multipart(content_type):
            raise bad_request("The content type of a $batch request must be multipart/mixed.")
        try:
            items = batch.decode_requests(content_type, body)
        except ValueError as exc:
            raise bad_request(f"The batch request is malformed: {exc}") from None
        count = sum(len(i) if isinstance(i, list) else 1 for i in items)
        if count > BATCH_LIMIT:
            raise bad_request(f"Number of requests in a batch exceeded the limit of {BATCH_LIMIT}.",
                              "0x8005f103")
        go_on = "odata.continue-on-error" in _preferences(headers.get("prefer", ""))
        answers: list[batch.Answer] = []
        failed: Answer | None = None
        for item in items:
            if isinstance(item, list):
                result = self._changeset(item, base)
                answers.append(result)
                failure = result if isinstance(result, batch.Response) else None
            else:
                result = self._part(item, base, {})
                answers.append(result)
                failure = result if result.status >= 400 else None
            if failure is not None and not go_on:
                failed = Answer(failure.status)
                break
        boundary = f"batchresponse_{uuid.uuid4()}"
        return Answer(failed.status if failed else 200,
                      {"OData-Version": "4.0", "Content-Type": f"multipart/mixed; boundary={boundary}"},
                      batch.encode_responses(answers, boundary))

    def _changeset(self, requests: list[batch.Request], base: str) -> batch.Answer:
        """All or nothing: the first failure rolls the change set back and is its only answer."""
        saved = self.store.snapshot()
        created: dict[str, str] = {}
        answers = []
        for request in requests:
            if request.method == "GET":
                return batch.Response(400, {"Content-Type": JSON_TYPE}, orjson.dumps(
                    bad_request("GET requests are not allowed in a change set.").body()))
            answer = self._part(request, base, created)
            if answer.status >= 400:
                self.store.restore(saved)
                return answer
            if request.content_id and answer.headers.get("OData-EntityId"):
                created[request.content_id] = answer.headers["OData-EntityId"]
            answers.append(answer)
        return answers

    def _part(self, request: batch.Request, base: str, created: Mapping[str, str]) -> batch.Response:
        url, body = request.url, request.body
        for content_id, location in created.items():  # $1 → the row created by Content-ID 1
            if url.startswith(f"${content_id}"):
                url = location + url[len(content_id) + 1:]
            body = body.replace(f'"${content_id}"'.encode(), orjson.dumps(location))
        parts = urlsplit(url)
        answer = self.handle(request.method, parts.path, parts.query, request.headers, body, base)
        return batch.Response(answer.status, answer.headers, answer.body, request.content_id)

    # --- twin-only controls ---------------------------------------------------------------

    async def all_records(self, request: Request) -> Response:
        try:
            table = table_of(request.path_params["set"])
        except DataverseError as exc:
            answer = self.error(exc)
            return Response(answer.body, status_code=answer.status, headers=answer.headers)
        rows = sorted(self.store.rows[table.entity_set].values(), key=lambda r: r.values["createdon"])
        return Response(dumps([render(self.store, r, None, False) for r in rows]),
                        media_type="application/json")

    async def get_settings(self, request: Request) -> Response:
        return Response(orjson.dumps(dataclasses.asdict(self.settings)), media_type="application/json")

    async def put_settings(self, request: Request) -> Response:
        try:
            changes = orjson.loads(await request.body())
            self.settings = dataclasses.replace(self.settings, **changes)
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            return Response(orjson.dumps({"error": str(exc)}), status_code=400, media_type="application/json")
        return Response(orjson.dumps(dataclasses.asdict(self.settings)), media_type="application/json")


# --- helpers ----------------------------------------------------------------------------------

def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Answer:
    return Answer(status, {"OData-Version": "4.0", "Content-Type": JSON_TYPE} | dict(headers or {}),
                  dumps(body))


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        value = loads(body) if body.strip() else None
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise bad_request("The request body must be a JSON object.")
    return value


def _context(base: str, table: Table, names: list[str] | None, entity: bool = False) -> str:
    columns = f"({','.join(names)})" if names else ""
    return f"{base}{API}/$metadata#{table.entity_set}{columns}" + ("/$entity" if entity else "")


def _preferences(header: str) -> dict[str, str]:
    """`Prefer: odata.include-annotations="*",odata.maxpagesize=50` (several headers joined by
    commas too) as {name: value}."""
    found = {}
    for name, value in re.findall(r'\s*([A-Za-z][\w.-]*)\s*(?:=\s*("[^"]*"|[^,]*))?\s*(?:,|$)', header):
        if name:
            found[name.lower()] = value.strip()
    return found


def _page_size(prefer: Mapping[str, str], maximum: int) -> int | None:
    value = prefer.get("odata.maxpagesize")
    if value is None:
        return None
    size = _whole(value.strip('"'), "odata.maxpagesize")
    return max(1, min(size, maximum))


def _whole(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise bad_request(f"The value '{value}' of {name} is not a valid whole number.") from None
    if number < 0:
        raise bad_request(f"The value '{value}' of {name} must not be negative.")
    return number


def _check_options(query: Mapping[str, str], allowed: tuple[str, ...]) -> None:
    for name in query:
        if name == "$skip":
            raise bad_request("The query parameter $skip is not supported.")
        if name.startswith("$") and name not in allowed:
            raise bad_request(f"The query parameter {name} is not supported here.")


def _row_key(table: Table, key: str) -> tuple[str, str]:
    """`<guid>` or `column='value'` (a single-column alternate key) as a Store key."""
    text = key.strip()
    if re.fullmatch(r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}", text):
        return ("id", text.lower())
    match = _ALTERNATE_KEY.match(text)
    if match is None:
        raise bad_request(f"Bad Request - Error in query syntax: '{table.entity_set}({key})'.")
    column, value = match.group("column"), match.group("value")
    if column not in table.keys:
        raise bad_request(f"The key attribute(s) '{column}' is not defined as an alternate key for the "
                          f"table '{table.logical}'.", "0x80060891")
    if value.startswith("'"):
        value = value[1:-1].replace("''", "'")
    return (column, value)


def _check_if_match(row: Row, if_match: str | None) -> None:
    if if_match and if_match != "*" and if_match != row.etag:
        raise DataverseError(412, "0x80060882", "The version of the existing record doesn't match the "
                             "RowVersion property provided.")


def create_app(token: str = SANDBOX_TOKEN) -> ASGIApp:
    twin = DynamicsTwin(token)
    return build_twin(twin.routes(), twin.control, twin.reset, twin.error_response)
