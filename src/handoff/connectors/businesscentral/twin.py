"""Business Central sandbox twin: the standard API v2.0 for one company's customers, projects,
sales invoices and sales credit memos with their lines, with BC's paths, OData payloads,
status codes, error bodies and rate limit.

    /v2.0/<tenant>/<environment>/api/v2.0/
        companies                                          GET
        companies(<id>)                                    GET
        companies(<id>)/customers|projects                 GET (list), POST
        companies(<id>)/customers|projects(<id>)           GET, PATCH (If-Match), DELETE
        companies(<id>)/salesInvoices|salesCreditMemos     GET (list, $expand=…Lines), POST (a draft)
        companies(<id>)/salesInvoices(<id>)                GET, PATCH (drafts, If-Match), DELETE (drafts)
        companies(<id>)/salesInvoices(<id>)/salesInvoiceLines[(<id>)]    GET, POST, PATCH, DELETE
        companies(<id>)/salesInvoiceLines[(<id>)]          the same lines (GET needs documentId eq …)
        companies(<id>)/salesInvoices(<id>)/Microsoft.NAV.post           POST → 204, Draft → Open
            (salesCreditMemos, salesCreditMemoLines alike)
        companies(<id>)/items|accounts|currencies[(<id>)]  GET: the twin's reference data
    twin-only
        POST /_twin/payments {"invoiceId": …, "amount": …}  a posted customer payment applied to
                                                          an Open invoice: remainingAmount falls, 0 → Paid
        GET  /_twin/records/<entity set>, GET /_twin/summary
        GET|PUT /_twin/settings   requests_per_window, window_seconds, send_retry_after,
                                  stale_etag_status (409|412), max_page_size, manual_numbers
        and sandbox.py's /_twin/faults, /_twin/stats, /_twin/requests, /_twin/reset

Auth: `Authorization: Bearer sandbox-token` (`create_app(token=…)` to change it); any tenant and
environment name. Entities carry `@odata.etag`; PATCH needs `If-Match` (that ETag or `*`):
none → 400 BadRequest_InvalidToken, a stale one → 409 Request_EntityChanged (⚠ 412 in some
reports: `stale_etag_status`). Lists take $filter, $select, $expand, $top, $skip and
`Prefer: odata.maxpagesize=N` (→ `@odata.nextLink` with `$skiptoken`). Errors are
`{"error": {"code", "message … CorrelationId:  <guid>."}}`. More requests per token than
`requests_per_window` in `window_seconds` (6000 in 300 s, as Microsoft documents today) → 429
Application_TooManyRequests, with Retry-After only when `send_retry_after` (⚠ undocumented).
Values, numbering and documents: twin_store.py, twin_documents.py; query options: twin_odata.py.
"""

from __future__ import annotations

import dataclasses
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from handoff.connectors import exact_json
from handoff.connectors.businesscentral.twin_odata import (
    expansion,
    max_page_size,
    page_of,
    parse_filter,
    selected,
    skiptoken,
)
from handoff.connectors.businesscentral.twin_schema import (
    DOCUMENT_SETS,
    ENTITY_SETS,
    GUID,
    LINE_SETS,
    EntitySet,
    Record,
    TwinFault,
    bad_request,
    dialog,
    resource_not_found,
)
from handoff.connectors.businesscentral.twin_store import RecordStore
from handoff.connectors.sandbox import TwinControl, build_twin

SANDBOX_TOKEN = "sandbox-token"
API = "/v2.0/{tenant}/{environment}/api/v2.0"
ODATA_JSON = ("application/json; odata.metadata=minimal; odata.streaming=true; IEEE754Compatible=false; "
              "charset=utf-8")
ERROR_JSON = "application/json; charset=utf-8"
POST_ACTION = "Microsoft.NAV.post"
_SEGMENT = re.compile(r"(?P<name>[A-Za-z][A-Za-z.]*)(?:\((?P<key>[^()]*)\))?")
_QUERY_SAFE = "$,'()"  # kept as they are in query strings, as BC writes its links
_DOCUMENT_ID = re.compile(r"documentId\s+eq\s+(?P<id>[0-9a-fA-F-]{36})")


def create_app(token: str = SANDBOX_TOKEN) -> ASGIApp:
    twin = BusinessCentralTwin(token)
    return build_twin(twin.routes(), TwinControl(), twin.reset, fault_response)


@dataclass(frozen=True)
class TwinSettings:
    requests_per_window: int = 6000
    window_seconds: float = 300.0
    send_retry_after: bool = False
    stale_etag_status: int = 409
    max_page_size: int = 20_000
    manual_numbers: bool = True

    def __post_init__(self) -> None:
        for name in ("requests_per_window", "max_page_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number of at least 1")
        if not isinstance(self.window_seconds, int | float) or self.window_seconds <= 0:
            raise ValueError("window_seconds must be positive")
        if self.stale_etag_status not in (409, 412):
            raise ValueError("stale_etag_status must be 409 or 412")
        if not isinstance(self.send_retry_after, bool) or not isinstance(self.manual_numbers, bool):
            raise ValueError("send_retry_after and manual_numbers are true or false")


class Limiter:
    """Requests per user (token) in a sliding window; only admitted requests count."""

    def __init__(self) -> None:
        self.calls: dict[str, deque[float]] = {}

    def admit(self, token: str, settings: TwinSettings) -> None:
        now = time.monotonic()
        calls = self.calls.setdefault(token, deque())
        while calls and calls[0] <= now - settings.window_seconds:
            calls.popleft()
        if len(calls) >= settings.requests_per_window:
            wait = calls[0] + settings.window_seconds - now
            headers = {"Retry-After": str(max(1, round(wait)))} if settings.send_retry_after else None
            raise TwinFault(429, "Application_TooManyRequests", f"Too many requests reached. Actual "
                            f"({len(calls) + 1}). Maximum ({settings.requests_per_window}).", headers)
        calls.append(now)


class BusinessCentralTwin:
    def __init__(self, token: str) -> None:
        self.token = token
        self.store = RecordStore()
        self.limiter = Limiter()
        self.settings = TwinSettings()

    def reset(self) -> None:
        self.store.reset()
        self.limiter = Limiter()
        self._apply(TwinSettings())

    def routes(self) -> list[Route]:
        return [
            Route(f"{API}/{{rest:path}}", self.api, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
            Route("/_twin/payments", self.twin_payment, methods=["POST"]),
            Route("/_twin/records/{entity_set}", self.twin_records),
            Route("/_twin/summary", self.twin_summary),
            Route("/_twin/settings", self.get_settings, methods=["GET"]),
            Route("/_twin/settings", self.put_settings, methods=["PUT"]),
        ]

    async def api(self, request: Request) -> Response:
        try:
            self._authorize(request)
            self.limiter.admit(self.token, self.settings)
            return await self._dispatch(request)
        except TwinFault as fault:
            return error_response(fault)

    def _authorize(self, request: Request) -> None:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            raise TwinFault(401, "Authentication_InvalidCredentials", "The server has rejected the "
                            "client credentials.", headers={"WWW-Authenticate": (
                                'Bearer authorization_uri="https://login.microsoftonline.com/common/'
                                'oauth2/authorize", resource_id="https://api.businesscentral.dynamics.com"')})

    # --- routing ----------------------------------------------------------------------------

    async def _dispatch(self, request: Request) -> Response:
        raw = request.path_params["rest"].rstrip("/").split("/")
        segments = [_segment(text) for text in raw]
        (first, company_key), rest = segments[0], segments[1:]
        if first != "companies":
            raise resource_not_found(first)
        if company_key is None:
            if rest:
                raise resource_not_found(raw[1])
            self._allow(request, "GET", "companies", collection=True)
            return self._odata({"@odata.context": self._context(request, "companies"),
                                "value": [self.store.company.as_record()]})
        if company_key.lower() != self.store.company.id:
            # ⚠ Status and code for an unknown company are not documented.
            raise TwinFault(404, "Internal_CompanyNotFound", f"Cannot process the request because "
                            f"the company '{company_key}' cannot be found.")
        if not rest:
            self._allow(request, "GET", "companies", collection=False)
            return self._odata({"@odata.context": self._context(request, "companies/$entity")}
                               | self.store.company.as_record())
        (set_name, key), rest = rest[0], rest[1:]
        entity = ENTITY_SETS.get(set_name)
        if entity is None:
            raise resource_not_found(set_name)
        if not rest:
            return await (self._collection(request, entity) if key is None
                          else self._entity(request, entity, key))
        if len(rest) == 1 and key is not None and entity in DOCUMENT_SETS:
            name, line_key = rest[0]
            if name == entity.lines:
                lines = LINE_SETS[entity.name]
                return await (self._collection(request, lines, document_id=key.lower()) if line_key is None
                              else self._entity(request, lines, line_key, document_id=key.lower()))
            if name.startswith("Microsoft.NAV.") and line_key is None:
                return await self._action(request, entity, key, name)
        raise resource_not_found(raw[-1])

    async def _collection(self, request: Request, entity: EntitySet,
                          document_id: str | None = None) -> Response:
        writable = entity.stored
        if request.method == "POST" and writable:
            record = self.store.create(entity, await _body(request), document_id)
            return self._created(request, entity, record)
        self._allow(request, "GET", entity.name, collection=True)
        if entity.document is not None and document_id is None:
            found = _DOCUMENT_ID.search(request.query_params.get("$filter", ""))
            if found is None:
                raise dialog("You must specify an Id or a Document Id to get the lines.")
            document_id = found["id"].lower()
        if document_id is not None:
            document_set = next(s for s in DOCUMENT_SETS if s.name == entity.document)
            self.store.read(document_set, document_id)
            rows = self.store.records(entity, document_id)
        else:
            rows = self.store.records(entity)
        return self._page(request, entity, rows)

    async def _entity(self, request: Request, entity: EntitySet, key: str,
                      document_id: str | None = None) -> Response:
        if document_id is not None and GUID.fullmatch(key) \
                and self.store.document_of_line(entity, key.lower()) != document_id:
            raise resource_not_found(f"{entity.name}({key})")
        stale = self.settings.stale_etag_status
        if_match = request.headers.get("if-match")
        if request.method == "PATCH" and entity.stored:
            record = self.store.update(entity, key.lower(), await _body(request), if_match, stale)
        elif request.method == "DELETE" and entity.stored:
            self.store.delete(entity, key.lower(), if_match, stale)
            return Response(status_code=204)
        else:
            self._allow(request, "GET", entity.name, collection=False)
            record = self.store.read(entity, key.lower())
            expand = expansion(request.query_params.get("$expand"), entity)
            record = selected(self._expanded(entity, record, expand),
                              request.query_params.get("$select"), entity, expand)
        return self._odata({"@odata.context": self._context(request, f"{entity.name}/$entity")} | record,
                           headers=_etag_header(record))

    async def _action(self, request: Request, entity: EntitySet, key: str, action: str) -> Response:
        if action != POST_ACTION:
            raise TwinFault(400, "BadRequest_MethodNotImplemented", f"The sandbox twin does not "
                            f"implement the bound action {action}; it implements {POST_ACTION}.")
        self._allow(request, "POST", action, collection=False)
        self.store.post(entity, key.lower(), request.headers.get("if-match"),
                        self.settings.stale_etag_status)
        return Response(status_code=204)

    def _page(self, request: Request, entity: EntitySet, rows: list[Record]) -> Response:
        query = request.query_params
        keep = parse_filter(query.get("$filter"), entity)
        expand = expansion(query.get("$expand"), entity)
        rows = [row for row in rows if keep(row)]
        preferred = max_page_size(request.headers.get("prefer"))
        size = min(preferred or self.settings.max_page_size, self.settings.max_page_size)
        page = page_of(rows, query, size)
        body: dict[str, Any] = {
            "@odata.context": self._context(request, entity.name),
            "value": [selected(self._expanded(entity, row, expand), query.get("$select"), entity, expand)
                      for row in page.rows]}
        if page.next_skip is not None:
            params = [(k, v) for k, v in query.multi_items() if k != "$skiptoken"]
            params.append(("$skiptoken", skiptoken(page.next_skip)))
            body["@odata.nextLink"] = (f"{_url(request, request.url.path)}?"
                                       f"{urlencode(params, quote_via=quote, safe=_QUERY_SAFE)}")
        headers = {"Preference-Applied": f"odata.maxpagesize={preferred}"} if preferred else None
        return self._odata(body, headers=headers)

    def _expanded(self, entity: EntitySet, record: Record, expand: str | None) -> Record:
        if expand is None:
            return record
        return record | {expand: self.store.lines_of(entity, record["id"])}

    def _created(self, request: Request, entity: EntitySet, record: Record) -> Response:
        context = self._context(request, f"{entity.name}/$entity")
        location = f"{_url(request, request.url.path)}({record['id']})"
        return self._odata({"@odata.context": context} | record, status=201,
                           headers={"Location": location} | _etag_header(record))

    def _allow(self, request: Request, method: str, name: str, *, collection: bool) -> None:
        if request.method != method:
            kind = "Collection" if collection else "Entity"
            raise TwinFault(405, "BadRequest_MethodNotAllowed", f"'{request.method}' requests for "
                            f"'{name}' of EdmType '{kind}' are not allowed within Dynamics 365 "
                            "Business Central OData web services.")

    def _context(self, request: Request, what: str) -> str:
        tenant, environment = request.path_params["tenant"], request.path_params["environment"]
        base = _url(request, f"/v2.0/{tenant}/{environment}/api/v2.0")
        scope = "" if what.startswith("companies") else f"companies({self.store.company.id})/"
        return f"{base}/$metadata#{scope}{what}"

    @staticmethod
    def _odata(body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(exact_json.dumps(body), status_code=status, headers=headers, media_type=ODATA_JSON)

    # --- twin-only --------------------------------------------------------------------------

    async def twin_payment(self, request: Request) -> Response:
        """A customer payment, posted and applied to one Open invoice."""
        try:
            body = await _body(request)
            invoice = self.store.pay(body.get("invoiceId"), body.get("amount"))
        except TwinFault as fault:
            return error_response(fault)
        return self._odata(invoice)

    async def twin_records(self, request: Request) -> Response:
        entity = ENTITY_SETS.get(request.path_params["entity_set"])
        if entity is None or not entity.stored:
            return JSONResponse({"error": f"no entity set {request.path_params['entity_set']!r}"},
                                status_code=404)
        rows = self.store.records(entity) if entity.document is None else [
            line for document in DOCUMENT_SETS if document.name == entity.document
            for d in self.store.records(document) for line in self.store.lines_of(document, d["id"])]
        rows = [self._expanded(entity, row, entity.lines) for row in rows]
        return self._odata({"count": len(rows), "value": rows})

    async def twin_summary(self, request: Request) -> Response:
        return JSONResponse(self.store.summary())

    async def get_settings(self, request: Request) -> Response:
        return JSONResponse(dataclasses.asdict(self.settings))

    async def put_settings(self, request: Request) -> Response:
        try:
            changes = exact_json.loads(await request.body())
            if not isinstance(changes, dict):
                raise TypeError("expected a JSON object of settings")
            self._apply(dataclasses.replace(self.settings, **changes))
        except (TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(dataclasses.asdict(self.settings))

    def _apply(self, settings: TwinSettings) -> None:
        self.settings = settings
        self.store.manual_numbers = settings.manual_numbers


def fault_response(status: int, kind: str, retry_after: float | None) -> Response:
    """Business Central's answer to an injected fault (sandbox.py adds Retry-After). ⚠ The 503
    bodies are modelled on BC's documented codes; no captured maintenance answer was found."""
    if status == 429:
        return error_response(TwinFault(429, "Application_TooManyRequests",
                                        "Too many requests reached. Actual (101). Maximum (100)."))
    if kind == "maintenance":
        return error_response(TwinFault(503, "Internal_TenantUnavailable",
                                        "The tenant 'sandbox' is not accessible"))
    return error_response(TwinFault(status, "Internal_ServerError",
                                    "The service is temporarily unavailable. Please try again later."))


def error_response(fault: TwinFault) -> Response:
    message = f"{fault.message}  CorrelationId:  {uuid.uuid4()}."
    return JSONResponse({"error": {"code": fault.code, "message": message}}, status_code=fault.status,
                        headers=fault.headers or None, media_type=ERROR_JSON)


async def _body(request: Request) -> dict[str, Any]:
    try:
        body = exact_json.loads(await request.body())
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise bad_request("Invalid Request Body")
    return body


def _segment(text: str) -> tuple[str, str | None]:
    match = _SEGMENT.fullmatch(text)
    if match is None:
        raise resource_not_found(text)
    key = match["key"]
    if key is not None and not GUID.fullmatch(key):
        raise bad_request("Bad Request - Error in query syntax.", "BadRequest_NotFound")
    return match["name"], key


def _etag_header(record: Record) -> dict[str, str]:
    return {"ETag": record["@odata.etag"]} if "@odata.etag" in record else {}


def _url(request: Request, path: str) -> str:
    return str(request.base_url).rstrip("/") + path
