"""NetSuite sandbox twin: the REST record service for customers, projects (jobs), invoices,
credit memos and customer payments, with NetSuite's paths, payloads, status codes and error
bodies.

    records   /services/rest/record/v1/<type>              GET (list), POST
              /services/rest/record/v1/<type>/<id>         GET, PATCH, DELETE (also eid:<ext>)
              /services/rest/record/v1/<type>/eid:<ext>    PUT (upsert)
                  <type>: customer, job, invoice, creditMemo; customerPayment: GET and POST
              /services/rest/record/v1/currency|subsidiary|serviceItem[/<id>]  GET
    query     POST /services/rest/query/v1/suiteql: SELECT col, … FROM customer|job|transaction
              [WHERE …] ORDER BY id (twin_suiteql.py)
    twin-only GET /_twin/records/<type>, GET /_twin/summary, and sandbox.py's controls;
              GET|PUT /_twin/settings: omit_location_on_put, max_concurrency,
              concurrency_status, hold_ms (twin_settings.py; POST /_twin/reset undoes them);
              GET /_twin/concurrency: requests in flight, their peak, refusals

Auth: `Authorization: Bearer sandbox-token` (`create_app(token=…)` to change it).
Write bodies take references as `{"id": …}` or `{"externalId": …}` (⚠ NetSuite documents the
id form) and sublists as `{"items": [line, …]}`, which replace the lines held; money must be a
JSON number and is kept exact. Reads show sublists as a link unless `expandSubResources=true`.
Writes answer 204 with `Location`, PUT included (⚠ unconfirmed for NetSuite;
`omit_location_on_put` plays a NetSuite that leaves it out). Transactions: twin_transactions.py;
reference data: twin_schema.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from handoff.connectors import exact_json
from handoff.connectors.netsuite import twin_suiteql
from handoff.connectors.netsuite.twin_schema import (
    RECORD_TYPES,
    WRITABLE_TYPES,
    RecordType,
    TwinFault,
)
from handoff.connectors.netsuite.twin_settings import (
    CONCURRENCY_REFUSAL,
    ConcurrencyGate,
    TwinSettings,
    settings_changed,
)
from handoff.connectors.netsuite.twin_store import Record, RecordStore
from handoff.connectors.sandbox import TwinControl, build_twin

SANDBOX_TOKEN = "sandbox-token"
RECORD = "/services/rest/record/v1"
SUITEQL_PATH = "/services/rest/query/v1/suiteql"
MEDIA_TYPE = "application/vnd.oracle.resource+json; type={}; charset=UTF-8"
MAX_LIMIT = 1000
RFC2616 = "https://www.w3.org/Protocols/rfc2616/rfc2616-sec10.html#sec10."
ERROR_TYPES = {400: RFC2616 + "4.1", 401: RFC2616 + "4.2", 403: RFC2616 + "4.4",
               404: RFC2616 + "4.5", 429: "https://tools.ietf.org/html/rfc6585#section-4",
               503: RFC2616 + "5.4"}

Handler = Callable[..., Awaitable[Response]]


def create_app(token: str = SANDBOX_TOKEN) -> ASGIApp:
    twin = NetSuiteTwin(token)
    return build_twin(twin.routes(), TwinControl(), twin.reset, fault_response)


class NetSuiteTwin:
    def __init__(self, token: str) -> None:
        self.token = token
        self.store = RecordStore()
        self.settings = TwinSettings()
        self.gate = ConcurrencyGate()

    def reset(self) -> None:
        self.store.reset()
        self.settings = TwinSettings()
        self.gate = ConcurrencyGate()

    def routes(self) -> list[Route]:
        routes = [
            Route(SUITEQL_PATH, self._endpoint(self.suiteql), methods=["POST"]),
            Route("/_twin/summary", self.twin_summary),
            Route("/_twin/records/{record_type}", self.twin_records),
            Route("/_twin/settings", self.twin_settings, methods=["GET", "PUT"]),
            Route("/_twin/concurrency", self.twin_concurrency),
        ]
        for name in RECORD_TYPES:
            collection, instance = f"{RECORD}/{name}", f"{RECORD}/{name}/{{key}}"
            routes += [Route(collection, self._endpoint(self.list_records, name)),
                       Route(instance, self._endpoint(self.read_record, name))]
            writes = WRITABLE_TYPES[name].writes if name in WRITABLE_TYPES else ()
            routes += [Route(collection if method == "POST" else instance,
                             self._endpoint(handler, name), methods=[method])
                       for method, handler in self._writers().items() if method in writes]
        return routes

    def _writers(self) -> dict[str, Handler]:
        return {"POST": self.create_record, "PATCH": self.update_record,
                "PUT": self.upsert_record, "DELETE": self.delete_record}

    def _endpoint(self, handler: Handler, *args: str) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                self._authorize(request)
                async with self.gate.held(self.settings):
                    return await handler(request, *args)
            except TwinFault as fault:
                return error_response(fault)
        return endpoint

    def _authorize(self, request: Request) -> None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            raise TwinFault(401, "INVALID_LOGIN", "Invalid login attempt. For more details, see "
                            "the Login Audit Trail in the NetSuite UI at Setup > Users/Roles > "
                            "User Management > View Login Audit Trail.",
                            headers={"WWW-Authenticate": 'Bearer realm="SANDBOX", '
                                     'error="invalid_token", '
                                     'error_description="Invalid login attempt."'})

    async def read_record(self, request: Request, type_name: str) -> Response:
        record = self.store.read(type_name, request.path_params["key"])
        expand = request.query_params.get("expandSubResources") == "true"
        return _resource(self._render(request, type_name, record, expand), "singular")

    async def list_records(self, request: Request, type_name: str) -> Response:
        records = self.store.records(type_name)
        url = _url(request, f"{RECORD}/{type_name}")
        return _collection(request, url, records,
                           lambda r: {"links": _self_link(f"{url}/{r['id']}"), "id": r["id"]})

    async def create_record(self, request: Request, type_name: str) -> Response:
        internal_id = self.store.create(type_name, await _body(request))
        return _written(request, type_name, internal_id)

    async def update_record(self, request: Request, type_name: str) -> Response:
        internal_id = self.store.update(type_name, request.path_params["key"], await _body(request))
        return _written(request, type_name, internal_id)

    async def upsert_record(self, request: Request, type_name: str) -> Response:
        key = request.path_params["key"]
        if not key.startswith("eid:"):
            raise TwinFault(400, "INVALID_PARAMETER", "Upsert needs an external ID in the URL "
                            "(…/eid:<externalId>).")
        internal_id = self.store.upsert(type_name, key[4:], await _body(request))
        return _written(request, type_name, internal_id,
                        location=not self.settings.omit_location_on_put)

    async def delete_record(self, request: Request, type_name: str) -> Response:
        self.store.delete(type_name, request.path_params["key"])
        return Response(status_code=204)

    async def suiteql(self, request: Request) -> Response:
        query = str((await _body(request)).get("q", ""))
        rows = twin_suiteql.run(query, {name: self.store.records(name) for name in RECORD_TYPES})
        return _collection(request, _url(request, SUITEQL_PATH), rows,
                           lambda row: {"links": [], **_without_nulls(row)})

    async def twin_summary(self, request: Request) -> Response:
        return JSONResponse(self.store.summary())

    async def twin_records(self, request: Request) -> Response:
        type_name = request.path_params["record_type"]
        if type_name not in RECORD_TYPES:
            return JSONResponse({"error": f"no record type {type_name!r}"}, status_code=404)
        items = [self._render(request, type_name, r, expand=True)
                 for r in self.store.records(type_name)]
        return Response(exact_json.dumps({"count": len(items), "items": items}),
                        media_type="application/json")

    async def twin_settings(self, request: Request) -> Response:
        """Twin-only: read the settings, or change some of them (twin_settings.py)."""
        if request.method == "PUT":
            try:
                self.settings = settings_changed(self.settings, await request.json())
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(dataclasses.asdict(self.settings))

    async def twin_concurrency(self, request: Request) -> Response:
        return JSONResponse(self.gate.counts())

    def _render(self, request: Request, type_name: str, record: Record,
                expand: bool = False) -> dict[str, Any]:
        """A record as NetSuite reads it back: `links` first, references expanded, sublists
        as a link to themselves or, with `expand`, with their lines."""
        url = _record_url(request, type_name, record["id"])
        body: dict[str, Any] = {"links": _self_link(url), "id": record["id"]}
        for name, value in record.items():
            if name in RECORD_TYPES[type_name].sublists:
                body[name] = {"links": _self_link(f"{url}/{name}")}
                if expand:
                    body[name]["items"] = self._lines(request, type_name, name, value)
            else:
                body[name] = self._value(request, RECORD_TYPES[type_name], name, value)
        return body

    def _lines(self, request: Request, type_name: str, name: str,
               lines: list[Record]) -> list[dict[str, Any]]:
        line_type = RECORD_TYPES[type_name].sublists[name]
        return [{field: self._value(request, line_type, field, value)
                 for field, value in line.items()} for line in lines]

    def _value(self, request: Request, record_type: RecordType, name: str, value: Any) -> Any:
        target = record_type.references.get(name)
        return self._reference(request, target, value) if target else value

    def _reference(self, request: Request, target: str, internal_id: str) -> dict[str, Any]:
        is_record = target in RECORD_TYPES
        return {"links": _self_link(_record_url(request, target, internal_id)) if is_record else [],
                "id": internal_id, "refName": self.store.ref_name(target, internal_id)}


def fault_response(status: int, kind: str, retry_after: float | None) -> Response:
    """NetSuite's answer to an injected fault (sandbox.py adds Retry-After)."""
    if status == 429:
        return error_response(TwinFault(429, "CONCURRENCY_LIMIT_EXCEEDED", CONCURRENCY_REFUSAL))
    detail = ("NetSuite is unavailable during scheduled maintenance." if kind == "maintenance"
              else "The service is temporarily unavailable. Try again later.")
    return error_response(TwinFault(status, "SERVICE_UNAVAILABLE", detail))


def error_response(fault: TwinFault) -> Response:
    detail = {"detail": fault.detail, "o:errorCode": fault.code}
    if fault.path:
        detail["o:errorPath"] = fault.path
    body = {"type": ERROR_TYPES.get(fault.status, ERROR_TYPES[400]),
            "title": HTTPStatus(fault.status).phrase, "status": fault.status,
            "o:errorDetails": [detail]}
    return _resource(body, "error", fault.status, fault.headers)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = exact_json.loads(await request.body())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TwinFault(400, "INVALID_CONTENT", "Invalid content in the request body.")
    return body


def _collection(request: Request, url: str, rows: list[Record],
                item: Callable[[Record], dict[str, Any]]) -> Response:
    """One page of `rows` as NetSuite's collection body; next offset = offset + count."""
    limit = _query_int(request, "limit", MAX_LIMIT, 1, MAX_LIMIT)
    offset = _query_int(request, "offset", 0, 0, len(rows))
    page = rows[offset:offset + limit]
    has_more = offset + len(page) < len(rows)
    links = [{"rel": "self", "href": f"{url}?limit={limit}&offset={offset}"}]
    if has_more:
        links.insert(0, {"rel": "next", "href": f"{url}?limit={limit}&offset={offset + limit}"})
    return _resource({"links": links, "count": len(page), "hasMore": has_more, "offset": offset,
                      "totalResults": len(rows), "items": [item(row) for row in page]},
                     "collection")


def _query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise TwinFault(400, "INVALID_PARAMETER", f"Invalid value for the query parameter "
                        f"{name}: {raw}. Provide a value between {low} and {high}.")
    return value


def _written(request: Request, type_name: str, internal_id: str, location: bool = True) -> Response:
    headers = {"Location": _record_url(request, type_name, internal_id)} if location else None
    return Response(status_code=204, headers=headers)


def _resource(body: dict[str, Any], kind: str, status: int = 200,
              headers: dict[str, str] | None = None) -> Response:
    return Response(exact_json.dumps(body), status_code=status, headers=headers,
                    media_type=MEDIA_TYPE.format(kind))


def _record_url(request: Request, type_name: str, internal_id: str) -> str:
    return _url(request, f"{RECORD}/{type_name}/{internal_id}")


def _url(request: Request, path: str) -> str:
    return str(request.base_url).rstrip("/") + path


def _without_nulls(row: Record) -> Record:
    return {name: value for name, value in row.items() if value is not None}


def _self_link(href: str) -> list[dict[str, str]]:
    return [{"rel": "self", "href": href}]
