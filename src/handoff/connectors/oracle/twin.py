"""Oracle Fusion Cloud sandbox twin: the REST resources handoff uses, with Oracle's paths,
headers, payloads, status codes and error bodies.

    accounts    /crmRestApi/resources/11.13.18.05/accounts[/{PartyNumber}]
    projects    /fscmRestApi/resources/11.13.18.05/projects[/{ProjectId}]
                    child ProjectCustomers
    invoices    /fscmRestApi/resources/11.13.18.05/receivablesInvoices[/{CustomerTransactionId}]
                    children receivablesInvoiceLines, receivablesInvoiceInstallments; DELETE
                    (incomplete only)
    credits     /fscmRestApi/resources/11.13.18.05/receivablesCreditMemos[/{CustomerTransactionId}]
                    child receivablesCreditMemoLines
    collection  GET: q, finder, limit (default 25, at most 500 ⚠), offset, totalResults,
                fields, expand, onlyData, orderBy (twin_query.py); POST creates, or upserts
                with `Upsert-Mode: true` (201 created, 200 updated ⚠)
    item        GET (expand, fields, onlyData), PATCH (only what is sent changes; If-Match: a
                stale ETag is 412); children under <item>/child/<Name>
    twin-only   POST /_twin/receipts {"CustomerTransactionId": …, "Amount": "…"} applies a
                receipt; GET /_twin/records/<resource>, GET /_twin/summary; sandbox.py's controls

Headers: `REST-Framework-Version` 1-9 (default 1) is honoured and echoed: `q` is query by
example before 2, children come as arrays before 3 and as collections from 3, errors are
plain text before 4 and JSON (`o:errorDetails`) from 4 when JSON is accepted. POST and PATCH
need `Content-Type: application/vnd.oracle.adf.resourceitem+json` (else 415). An item's ETag
is its changeIndicator. `Accept: application/json;q=0` answers writes 204 without a body.
Auth: HTTP Basic (`handoff.integration` / `sandbox-password`) or `Authorization: Bearer
sandbox-token`; a 401 has no body. A 500 has no body. Injected 429s and 503s are plain text,
as a gateway would send them (⚠ Oracle documents no throttling). Oracle keeps money exact:
amounts are JSON numbers read and written digit for digit.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from handoff.connectors import exact_json
from handoff.connectors.oracle import twin_query
from handoff.connectors.oracle.twin_schema import RESOURCES, VERSION, Resource, TwinFault
from handoff.connectors.oracle.twin_store import Store
from handoff.connectors.sandbox import TwinControl, build_twin

SANDBOX_USER, SANDBOX_PASSWORD, SANDBOX_TOKEN = "handoff.integration", "sandbox-password", "sandbox-token"
ITEM_TYPE = "application/vnd.oracle.adf.resourceitem+json"
COLLECTION_TYPE = "application/vnd.oracle.adf.resourcecollection+json"
ERROR_TYPE = "application/vnd.oracle.adf.error+json"
DEFAULT_LIMIT, MAX_LIMIT = 25, 500
FRAMEWORK_VERSIONS = range(1, 10)

Handler = Callable[..., Awaitable[Response]]
Record = dict[str, Any]


def create_app(token: str = SANDBOX_TOKEN, user: str = SANDBOX_USER,
               password: str = SANDBOX_PASSWORD) -> ASGIApp:
    twin = OracleTwin(token, user, password)
    return build_twin(twin.routes(), TwinControl(), twin.store.reset, fault_response)


@dataclass(frozen=True)
class Call:
    """What a request asks of the answer's form."""

    framework: int
    only_data: bool
    base: str  # scheme://host:port

    def url(self, resource: Resource, *parts: str) -> str:
        return "/".join((self.base, resource.pillar, "resources", VERSION, resource.name, *parts))


class OracleTwin:
    def __init__(self, token: str, user: str, password: str) -> None:
        self.bearer = f"Bearer {token}"
        self.basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
        self.store = Store()

    def routes(self) -> list[Route]:
        routes = [Route("/_twin/records/{resource}", self.twin_records),
                  Route("/_twin/summary", self.twin_summary),
                  Route("/_twin/receipts", self.twin_receipt, methods=["POST"])]
        for name, resource in RESOURCES.items():
            base = f"/{resource.pillar}/resources/{{version}}/{name}"
            item_methods = ["GET", "PATCH"] + (["DELETE"] if name == "receivablesInvoices" else [])
            routes += [
                Route(base, self._endpoint(self.collection, resource), methods=["GET", "POST"]),
                Route(base + "/{key}", self._endpoint(self.item, resource), methods=item_methods),
                Route(base + "/{key}/child/{child}", self._endpoint(self.child, resource)),
            ]
        return routes

    def _endpoint(self, handler: Handler, resource: Resource) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            framework = 1
            try:
                framework = _framework_version(request)
                if request.path_params["version"] != VERSION:
                    raise TwinFault(404, f"The version {request.path_params['version']} of the "
                                    f"resource {resource.name} doesn't exist.")
                self._authorize(request)
                call = Call(framework, request.query_params.get("onlyData") == "true",
                            str(request.base_url).rstrip("/"))
                response = await handler(request, resource, call)
            except TwinFault as fault:
                response = error_response(fault, framework, request.headers.get("accept", ""))
            response.headers["REST-Framework-Version"] = str(framework)
            return response
        return endpoint

    def _authorize(self, request: Request) -> None:
        given = request.headers.get("authorization", "")
        if given.startswith("Basic "):
            try:  # compare what the header means, not how it was padded
                given = "Basic " + base64.b64encode(base64.b64decode(given[6:], validate=True)).decode()
            except (binascii.Error, ValueError):
                given = ""
        if given not in (self.bearer, self.basic):
            raise TwinFault(401, "", headers={"WWW-Authenticate": 'Basic realm="sandbox"'})

    # --- resources --------------------------------------------------------------------------

    async def collection(self, request: Request, resource: Resource, call: Call) -> Response:
        if request.method == "POST":
            return await self.create(request, resource, call)
        params = request.query_params
        rows = twin_query.select(resource, self.store.items(resource.name), params, call.framework)
        shape = twin_query.shape(resource, params)
        return _collection(params, call.url(resource), rows, resource.name,
                           lambda row: self._render(resource, row, call, shape))

    async def create(self, request: Request, resource: Resource, call: Call) -> Response:
        body = await _body(request)
        mode = request.headers.get("upsert-mode", "false").lower()
        if mode not in ("true", "false"):
            raise TwinFault(400, f"The header Upsert-Mode has the value {mode}; use true or false.")
        if mode == "true":
            record, created = self.store.upsert(resource.name, body)
        else:
            record, created = self.store.create(resource.name, body), True
        every_child = twin_query.Shape(children={name: None for name in resource.children})
        return self._written(request, resource, record, call, 201 if created else 200, every_child)

    async def item(self, request: Request, resource: Resource, call: Call) -> Response:
        key = request.path_params["key"]
        if request.method == "DELETE":
            self.store.delete(resource.name, key)
            return Response(status_code=204)
        if request.method == "PATCH":
            body = await _body(request)
            record = self.store.update(resource.name, key, body, request.headers.get("if-match"))
            return self._written(request, resource, record, call, 200, twin_query.Shape())
        record = self.store.get(resource.name, key)
        shape = twin_query.shape(resource, request.query_params)
        return _resource(self._render(resource, record, call, shape), ITEM_TYPE,
                         headers={"ETag": self.store.etag(record)})

    async def child(self, request: Request, resource: Resource, call: Call) -> Response:
        name = request.path_params["child"]
        record = self.store.get(resource.name, request.path_params["key"])
        if name not in resource.children:
            raise TwinFault(404, f"The child {name} of {resource.name} doesn't exist.")
        child = resource.children[name]
        url = call.url(resource, request.path_params["key"], "child", name)
        rows = twin_query.select(child, record.get(name) or [], request.query_params, call.framework)
        return _collection(request.query_params, url, rows, name,
                           lambda row: _row(child, row, None, call, f"{url}/{row[child.key]}"))

    def _written(self, request: Request, resource: Resource, record: Record, call: Call,
                 status: int, shape: twin_query.Shape) -> Response:
        headers = {"Location": call.url(resource, str(record[resource.key])),
                   "ETag": self.store.etag(record)}
        if _no_body_wanted(request.headers.get("accept", "")):
            return Response(status_code=204, headers=headers)
        return _resource(self._render(resource, record, call, shape), ITEM_TYPE, status, headers)

    def _render(self, resource: Resource, record: Record, call: Call, shape: twin_query.Shape) -> Record:
        """An item as Oracle shows it: its attributes (nulls too), the children asked for, and
        links last (self with the changeIndicator, canonical, one per child)."""
        url = call.url(resource, str(record[resource.key]))
        names = resource.fields if shape.fields is None else shape.fields
        body = {name: record.get(name) for name in names}
        for name, fields in shape.children.items():
            child, child_url = resource.children[name], f"{url}/child/{name}"
            rows = [_row(child, row, fields, call, f"{child_url}/{row[child.key]}")
                    for row in record.get(name) or []]
            body[name] = rows if call.framework < 3 else _envelope(rows, child_url, name, len(rows),
                                                                   0, False)
        if not call.only_data:
            self_link = _link("self", url, resource.name, "item")
            self_link["properties"] = {"changeIndicator": self.store.etag(record)}
            body["links"] = [self_link, _link("canonical", url, resource.name, "item"),
                             *(_link("child", f"{url}/child/{name}", name, "collection")
                               for name in resource.children)]
        return body

    # --- twin-only --------------------------------------------------------------------------

    async def twin_receipt(self, request: Request) -> Response:
        """A customer's receipt applied to an invoice, as finance would post it."""
        try:
            body = exact_json.loads(await request.body())
            record = self.store.receipt(int(body["CustomerTransactionId"]), Decimal(str(body["Amount"])))
        except (ValueError, KeyError, TypeError, InvalidOperation):
            return JSONResponse({"error": 'expected {"CustomerTransactionId": <id>, "Amount": '
                                          '"<decimal>"}'}, status_code=400)
        except TwinFault as fault:
            return JSONResponse({"error": fault.detail}, status_code=fault.status)
        return Response(exact_json.dumps(record), media_type="application/json")

    async def twin_records(self, request: Request) -> Response:
        name = request.path_params["resource"]
        if name not in RESOURCES:
            return JSONResponse({"error": f"no resource {name!r}"}, status_code=404)
        items = self.store.items(name)
        return Response(exact_json.dumps({"count": len(items), "items": items}),
                        media_type="application/json")

    async def twin_summary(self, request: Request) -> Response:
        return JSONResponse(self.store.summary())


def fault_response(status: int, kind: str, retry_after: float | None) -> Response:
    """An injected fault as the pod's gateway answers it (sandbox.py adds Retry-After)."""
    if status == 429:
        return Response("Too Many Requests", 429, media_type="text/plain")
    detail = ("The service is in a scheduled maintenance window." if kind == "maintenance"
              else "Service Unavailable")
    return Response(detail, status, media_type="text/plain")


def error_response(fault: TwinFault, framework: int, accept: str) -> Response:
    """Plain text before framework version 4 or without JSON accepted; no body for a 401 or
    a 500 (ADF 12.2.1.4 sends no detail with a 500)."""
    if fault.status in (401, 500):
        return Response(status_code=fault.status, headers=fault.headers)
    if framework < 4 or "json" not in accept:
        return Response(fault.detail, fault.status, fault.headers, media_type="text/plain")
    detail: Record = {"detail": fault.detail, "o:errorCode": fault.code or str(fault.status)}
    if fault.path:
        detail["o:errorPath"] = fault.path
    body = {"title": HTTPStatus(fault.status).phrase, "status": str(fault.status),
            "o:errorDetails": [detail]}
    return _resource(body, ERROR_TYPE, fault.status, fault.headers)


def _framework_version(request: Request) -> int:
    raw = request.headers.get("rest-framework-version", "1")
    if not raw.isdigit() or int(raw) not in FRAMEWORK_VERSIONS:
        raise TwinFault(400, f"The REST-Framework-Version {raw} is not supported; use "
                        f"{FRAMEWORK_VERSIONS[0]} to {FRAMEWORK_VERSIONS[-1]}.")
    return int(raw)


async def _body(request: Request) -> Record:
    content_type = request.headers.get("content-type", "").split(";")[0].strip()
    if content_type != ITEM_TYPE:
        raise TwinFault(415, f"The media type {content_type or '(none)'} is not supported; send "
                        f"{ITEM_TYPE}.")
    try:
        body = exact_json.loads(await request.body())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise TwinFault(400, "The request body is not a valid JSON object.")
    return body


def _no_body_wanted(accept: str) -> bool:
    """`Accept: application/json;q=0`: the client wants no representation back."""
    ranges = [part.replace(" ", "") for part in accept.split(",") if part.strip()]
    return bool(ranges) and all(part.endswith(";q=0") for part in ranges)


def _collection(params: Mapping[str, str], url: str, rows: list[Record], name: str,
                render: Callable[[Record], Record]) -> Response:
    limit = _query_int(params, "limit", DEFAULT_LIMIT, 1)
    limit = min(limit, MAX_LIMIT)  # ⚠ a real pod's cap and whether it refuses instead
    offset = _query_int(params, "offset", 0, 0)
    page = rows[offset:offset + limit]
    body = _envelope([render(row) for row in page], url, name, limit, offset,
                     offset + len(page) < len(rows))
    if params.get("totalResults") == "true":
        body["totalResults"] = len(rows)
    return _resource(body, COLLECTION_TYPE)


def _envelope(items: list[Record], url: str, name: str, limit: int, offset: int,
              has_more: bool) -> Record:
    return {"items": items, "count": len(items), "hasMore": has_more, "limit": limit,
            "offset": offset, "links": [_link("self", url, name, "collection")]}


def _row(resource: Resource, row: Record, fields: list[str] | None, call: Call, url: str) -> Record:
    body = {name: row.get(name) for name in (resource.fields if fields is None else fields)}
    if not call.only_data:
        body["links"] = [_link("self", url, resource.name, "item")]
    return body


def _query_int(params: Mapping[str, str], name: str, default: int, low: int) -> int:
    raw = params.get(name)
    try:
        value = default if raw is None else int(raw)
    except ValueError:
        value = low - 1
    if value < low:
        raise twin_query.refused(name, raw or "", f"Use a whole number from {low}.")
    return value


def _link(rel: str, href: str, name: str, kind: str) -> Record:
    return {"rel": rel, "href": href, "name": name, "kind": kind}


def _resource(body: Record, media_type: str, status: int = 200,
              headers: Mapping[str, str] | None = None) -> Response:
    return Response(exact_json.dumps(body), status_code=status, headers=dict(headers or {}),
                    media_type=media_type)
