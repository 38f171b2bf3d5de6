"""SAP S/4HANA sandbox twin: the OData v2 services handoff uses, with SAP's paths, JSON (`{"d":
…}`, `/Date(ms)/`, decimals as strings), CSRF protection, ETags, `$batch` and error bodies.

    /sap/opu/odata/sap/API_BUSINESS_PARTNER/                 A_BusinessPartner (deep insert with
        to_BusinessPartnerRole and to_Customer/to_CustomerCompany|to_CustomerSalesArea; PATCH,
        MERGE, PUT), A_BusinessPartnerRole, A_Customer, A_CustomerCompany, A_CustomerSalesArea
    /sap/opu/odata/sap/API_ENTERPRISE_PROJECT_SRV;v=0002/    A_EnterpriseProject (deep insert with
        to_EnterpriseProjectElement; PATCH, MERGE, PUT, DELETE while Created),
        A_EnterpriseProjectElement (also POST …(guid'…')/to_EnterpriseProjectElement),
        POST ChangeEntProjProcgStatus?ProjectUUID=guid'…'&ProcessingStatus='10',
        POST ChangeEntProjElmntProcgStatus?ProjectElementUUID=…&ProcessingStatus=…
    /sap/opu/odata/sap/API_BILLING_DOCUMENT_SRV/             A_BillingDocument, A_BillingDocumentItem
    /sap/opu/odata/sap/API_OPLACCTGDOCITEMCUBE_SRV/          A_OperationalAcctgDocItemCube
                                                             (the last two read-only)
  each with: the service document (GET <root>/), `$metadata` (generated from twin_schema.py, not
  SAP's EDMX), `Set`, `Set(key)`, `Set(key)/nav`, `Set/$count`, `$filter $select $expand $orderby
  $top $skip $inlinecount=allpages`, server-side paging (`__next` with `$skiptoken`) when
  `server_page_size` is set, `$batch` (reads, and change sets applied all or nothing: a failing
  one answers with its one error), `X-HTTP-Method` tunnelling.

Auth: HTTP Basic, `HANDOFF_COMM` / `sandbox-password` (`create_app(user=…, password=…)`);
`?sap-client=` other than 100 is refused like a bad password. CSRF: a GET or HEAD with
`x-csrf-token: Fetch` answers the token and sets the session cookie `SAP_SESSIONID_SBX_100`
(and `sap-usercontext`); every write needs both, else 403 `x-csrf-token: Required`, "CSRF token
validation failed". Tokens live `csrf_lifetime_seconds`. Writes need `If-Match` where the entity
has an ETag (428 without, 412 when stale, `*` always matches).

Twin-only (besides sandbox.py's faults, stats, requests, reset):

    GET  /_twin/records/<entity set>      every record, as SAP renders it
    GET  /_twin/summary                   counts, duplicate partner keys, projects per customer
    GET|PUT /_twin/settings               csrf_lifetime_seconds, server_page_size,
                                          edit_before_next_write (the next write with an ETag
                                          finds the record changed by someone else: 412)
    POST /_twin/sessions/expire           every CSRF token and session ends now
    POST /_twin/billing-documents         {"project", "net_amount", "tax_amount", "kind":
                                          invoice|credit_memo, "billing_date", "wbs_element",
                                          "currency", "posted", "terms_days", "text"}: a billing
                                          document as SAP's billing run makes it, posted with an
                                          open customer item unless "posted" is false
    POST /_twin/billing-documents/<n>/payments      {"amount", "date"}: cleared, or a residual
    POST /_twin/billing-documents/<n>/cancellation  {"date"}: an S1/S2 document clears it
    POST /_twin/billing-documents/<n>/posting       released to accounting
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import quoteattr

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from handoff.connectors.sandbox import TwinControl, build_twin
from handoff.connectors.sap.odata import (
    BatchRequest,
    BatchResponse,
    batch_answer,
    parse_batch_request,
    parse_decimal,
    query,
)
from handoff.connectors.sap.twin_query import (
    Options,
    compile_filter,
    key_text,
    malformed,
    ordered,
    parse_key,
    parse_literal,
    parse_resource,
)
from handoff.connectors.sap.twin_schema import (
    DECIMAL,
    ENTITY_TYPES,
    MALFORMED,
    NOT_ALLOWED,
    SERVICES,
    STRING,
    EntityType,
    Service,
    TwinFault,
    not_found,
)
from handoff.connectors.sap.twin_store import ControlError, SapStore

SANDBOX_USER = "HANDOFF_COMM"
SANDBOX_PASSWORD = "sandbox-password"
SANDBOX_CLIENT = "100"
SYSTEM_ID = "SBX"
SESSION_COOKIE = f"SAP_SESSIONID_{SYSTEM_ID}_{SANDBOX_CLIENT}"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "MERGE", "DELETE"]
SAFE = frozenset({"GET", "HEAD"})
JSON_TYPE = "application/json; charset=utf-8"
DEFAULT_SETTINGS: dict[str, Any] = {"csrf_lifetime_seconds": 1800.0, "server_page_size": None,
                                    "edit_before_next_write": False}

Answer = tuple[int, dict[str, str], bytes]


@dataclass
class _Session:
    token: str
    expires: float


def create_app(user: str = SANDBOX_USER, password: str = SANDBOX_PASSWORD) -> ASGIApp:
    twin = SapTwin(user, password)
    return build_twin(twin.routes(), TwinControl(), twin.reset, fault_response)


class SapTwin:
    def __init__(self, user: str, password: str) -> None:
        self.user, self.password = user, password
        self.store = SapStore(user)
        self.sessions: dict[str, _Session] = {}
        self.settings = dict(DEFAULT_SETTINGS)

    def reset(self) -> None:
        self.store.reset()
        self.sessions.clear()
        self.settings = dict(DEFAULT_SETTINGS)

    def routes(self) -> list[Route]:
        routes = [
            Route("/_twin/records/{entity_set}", self.twin_records, methods=["GET"]),
            Route("/_twin/summary", self.twin_summary, methods=["GET"]),
            Route("/_twin/settings", self.get_settings, methods=["GET"]),
            Route("/_twin/settings", self.put_settings, methods=["PUT"]),
            Route("/_twin/sessions/expire", self.expire_sessions, methods=["POST"]),
            Route("/_twin/billing-documents", self.bill, methods=["POST"]),
            Route("/_twin/billing-documents/{number}/{action}", self.billing_action, methods=["POST"]),
        ]
        for service in SERVICES:
            endpoint = self._endpoint(service)
            routes += [Route(service.root, endpoint, methods=METHODS),
                       Route(service.root + "/{rest:path}", endpoint, methods=METHODS)]
        return routes

    # --- the OData services ----------------------------------------------------------------------

    def _endpoint(self, service: Service) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            fetch = request.method in SAFE and request.headers.get("x-csrf-token", "").lower() == "fetch"
            try:
                self._authorize(request)
                method = "GET" if request.method == "HEAD" else request.method
                if method == "POST" and request.headers.get("x-http-method"):
                    method = request.headers["x-http-method"].upper()
                if request.method not in SAFE:
                    self._check_csrf(request)
                path = request.path_params.get("rest", "")
                body = await request.body()
                if path == "$batch":
                    if request.method != "POST":
                        raise TwinFault(405, NOT_ALLOWED, "$batch takes POST only")
                    response = self._batch(service, request.headers.get("content-type", ""), body,
                                           _base(request))
                else:
                    params = dict(request.query_params)
                    status, headers, content = self._dispatch(service, method, path, params,
                                                              dict(request.headers), body, _base(request))
                    response = Response(content, status, headers)
            except TwinFault as fault:
                response = error_response(fault, service)
            if fetch and response.status_code != 401:
                self._hand_out_token(request, response)
            if request.method == "HEAD":
                response.body = b""
                response.headers["content-length"] = "0"
            return response
        return endpoint

    def _authorize(self, request: Request) -> None:
        expected = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        client = request.query_params.get("sap-client", SANDBOX_CLIENT)
        if request.headers.get("authorization") != f"Basic {expected}" or client != SANDBOX_CLIENT:
            raise TwinFault(401, "", "Logon failed", headers={
                "WWW-Authenticate": f'Basic realm="SAP NetWeaver Application Server '
                                    f'[{SYSTEM_ID}/{SANDBOX_CLIENT}]"',
                "content-type": "text/html"})

    def _session(self, request: Request) -> tuple[str, _Session] | None:
        session_id = request.cookies.get(SESSION_COOKIE, "")
        session = self.sessions.get(session_id)
        if session is None or session.expires <= time.time():
            self.sessions.pop(session_id, None)
            return None
        return session_id, session

    def _check_csrf(self, request: Request) -> None:
        found = self._session(request)
        token = request.headers.get("x-csrf-token", "")
        if found is None or not token or token != found[1].token:
            raise TwinFault(403, "", "CSRF token validation failed",
                            headers={"x-csrf-token": "Required", "content-type": "text/plain"})

    def _hand_out_token(self, request: Request, response: Response) -> None:
        found = self._session(request)
        if found is None:
            session_id = secrets.token_hex(16)
            session = _Session(base64.b64encode(secrets.token_bytes(16)).decode(),
                               time.time() + float(self.settings["csrf_lifetime_seconds"]))
            self.sessions[session_id] = session
            response.set_cookie(SESSION_COOKIE, session_id, path="/", httponly=True)
            response.set_cookie("sap-usercontext", f"sap-client={SANDBOX_CLIENT}", path="/")
        else:
            session = found[1]
        response.headers["x-csrf-token"] = session.token

    def _dispatch(self, service: Service, method: str, path: str, params: Mapping[str, str],
                  headers: Mapping[str, str], body: bytes, base: str) -> Answer:
        """One request to the service (also each request of a `$batch`)."""
        root = base + service.root
        if path in ("", "/"):
            _only(method, "GET")
            return _json(200, {"d": {"EntitySets": list(service.sets)}})
        if path == "$metadata":
            _only(method, "GET")
            return 200, {"content-type": "application/xml"}, metadata(service).encode()
        resource = parse_resource(path)
        if resource.name in service.functions:
            _only(method, "POST")
            values = {k: parse_literal(v) for k, v in params.items() if not k.startswith(("$", "sap-"))}
            entity, record = self.store.call(resource.name, values)
            return _json(200, {"d": self.store.render(entity, record, root)})
        if resource.name not in service.sets:
            raise not_found(resource.name)
        entity = ENTITY_TYPES[resource.name]
        options = Options.of(params)
        if resource.key is None:
            rows = self.store.rows(entity.entity_set)
            if resource.navigation == "$count":
                _only(method, "GET")
                count = len(_filtered(entity, rows, options))
                return 200, {"content-type": "text/plain"}, str(count).encode()
            if resource.navigation is not None:
                raise not_found(resource.navigation)
            if method == "POST":
                return self._created(entity, self.store.create(entity, _body(body)), root, _body(body))
            _only(method, "GET")
            return self._collection(entity, rows, options, root, path, params)
        record = self.store.get(entity, parse_key(entity, resource.key))
        if resource.navigation is None:
            if method == "GET":
                etag = self.store.etag(entity, record)
                shown = self.store.render(entity, record, root, options.select, options.expand)
                return _json(200, {"d": shown}, {"ETag": etag} if etag else {})
            if method in ("PATCH", "MERGE", "PUT"):
                updated = self.store.update(entity, parse_key(entity, resource.key), _body(body),
                                            headers.get("if-match"), replace=method == "PUT")
                etag = self.store.etag(entity, updated)
                return 204, {"ETag": etag} if etag else {}, b""
            _only(method, "DELETE")
            self.store.delete(entity, parse_key(entity, resource.key), headers.get("if-match"))
            return 204, {}, b""
        if resource.navigation not in entity.navs:
            raise not_found(resource.navigation)
        target = ENTITY_TYPES[entity.navs[resource.navigation].target]
        if method == "POST":
            created = self.store.create(target, _body(body), (entity, record, resource.navigation))
            return self._created(target, created, root, _body(body))
        _only(method, "GET")
        related = self.store.related(entity, record, resource.navigation)
        if isinstance(related, list):
            return self._collection(target, related, options, root, path, params)
        if related is None:
            return _json(200, {"d": None})
        return _json(200, {"d": self.store.render(target, related, root, options.select, options.expand)})

    def _created(self, entity: EntityType, record: dict[str, Any], root: str,
                 body: Mapping[str, Any]) -> Answer:
        """201 with the entity (deep-inserted navigations included), Location and ETag."""
        expand = [name for name in entity.navs if name in body]
        if "to_Customer" in expand:
            expand += ["to_Customer/to_CustomerCompany", "to_Customer/to_CustomerSalesArea"]
        location = f"{root}/{entity.entity_set}{key_text(entity, record)}"
        headers = {"Location": location}
        etag = self.store.etag(entity, record)
        if etag:
            headers["ETag"] = etag
        return _json(201, {"d": self.store.render(entity, record, root, expand=expand)}, headers)

    def _collection(self, entity: EntityType, rows: list[dict[str, Any]], options: Options, root: str,
                    path: str, params: Mapping[str, str]) -> Answer:
        """One page: $filter, $orderby, then $skip and $top; within that window, server-side
        pages of `server_page_size` linked by `__next` ($skiptoken)."""
        rows = ordered(entity, _filtered(entity, rows, options), options.orderby)
        window = rows[options.skip:]
        if options.top is not None:
            window = window[:options.top]
        size = self.settings["server_page_size"]
        start = options.skiptoken
        page = window[start:start + size] if size else window[start:]
        d: dict[str, Any] = {"results": [self.store.render(entity, r, root, options.select, options.expand)
                                         for r in page]}
        if options.inlinecount:
            d["__count"] = str(len(rows))
        if size and start + size < len(window):
            following = {k: v for k, v in params.items() if k != "$skiptoken"} | {"$skiptoken": start + size}
            d["__next"] = f"{root}/{path}?{query(following)}"
        return _json(200, {"d": d})

    def _batch(self, service: Service, content_type: str, body: bytes, base: str) -> Response:
        try:
            parts = parse_batch_request(content_type, body)
        except ValueError as exc:
            raise TwinFault(400, MALFORMED, f"Invalid $batch request: {exc}") from None
        answers: list[BatchResponse | list[BatchResponse]] = []
        for part in parts:
            if isinstance(part, BatchRequest):
                answers.append(self._batch_read(service, part, base))
                continue
            try:
                with self.store.transaction():
                    answers.append([self._batch_write(service, request, base) for request in part])
            except TwinFault as fault:
                error = error_response(fault, service)
                answers.append(BatchResponse(fault.status, {"Content-Type": JSON_TYPE}, error.body))
        content_type, payload = batch_answer(answers)
        return Response(payload, 202, media_type=content_type)

    def _batch_read(self, service: Service, request: BatchRequest, base: str) -> BatchResponse:
        try:
            if request.method != "GET":
                raise malformed(f"{request.method} outside a change set: writes belong in one")
            return self._batch_call(service, request, base)
        except TwinFault as fault:
            error = error_response(fault, service)
            return BatchResponse(fault.status, {"Content-Type": JSON_TYPE}, error.body)

    def _batch_write(self, service: Service, request: BatchRequest, base: str) -> BatchResponse:
        if request.method == "GET":
            raise malformed("GET inside a change set: reads belong outside")
        return self._batch_call(service, request, base)

    def _batch_call(self, service: Service, request: BatchRequest, base: str) -> BatchResponse:
        parts = urlsplit(request.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        status, headers, content = self._dispatch(service, request.method, unquote(parts.path), params,
                                                  {k.lower(): v for k, v in request.headers.items()},
                                                  request.body, base)
        return BatchResponse(status, headers, content)

    # --- twin-only controls ----------------------------------------------------------------------

    async def twin_records(self, request: Request) -> Response:
        name = request.path_params["entity_set"]
        if name not in ENTITY_TYPES:
            return JSONResponse({"error": f"no entity set {name!r}"}, status_code=404)
        entity = ENTITY_TYPES[name]
        root = _base(request) + next(s.root for s in SERVICES if s.name == entity.service)
        items = [self.store.render(entity, r, root) for r in self.store.rows(name)]
        return JSONResponse({"count": len(items), "items": items})

    async def twin_summary(self, request: Request) -> Response:
        return JSONResponse(self.store.summary())

    async def get_settings(self, request: Request) -> Response:
        return JSONResponse(self.settings | {"edit_before_next_write": self.store.edit_before_next_write})

    async def put_settings(self, request: Request) -> Response:
        body = await _control_body(request)
        if isinstance(body, Response):
            return body
        unknown = set(body) - set(DEFAULT_SETTINGS)
        if unknown:
            return JSONResponse({"error": f"unknown settings: {', '.join(sorted(unknown))}"}, status_code=400)
        size = body.get("server_page_size", self.settings["server_page_size"])
        if size is not None and (not isinstance(size, int) or size < 1):
            return JSONResponse({"error": "server_page_size must be a positive integer or null"},
                                status_code=400)
        if "edit_before_next_write" in body:
            self.store.edit_before_next_write = bool(body.pop("edit_before_next_write"))
        self.settings.update(body)
        return await self.get_settings(request)

    async def expire_sessions(self, request: Request) -> Response:
        self.sessions.clear()
        return Response(status_code=204)

    async def bill(self, request: Request) -> Response:
        body = await _control_body(request)
        if isinstance(body, Response):
            return body
        try:
            document = self.store.bill(
                str(body["project"]), _decimal(body["net_amount"]), _decimal(body.get("tax_amount", "0")),
                kind=body.get("kind", "invoice"), billing_date=_date(body.get("billing_date")),
                wbs_element=body.get("wbs_element"), currency=body.get("currency"),
                posted=bool(body.get("posted", True)), terms_days=int(body.get("terms_days", 30)),
                text=str(body.get("text", "")))
        except (KeyError, ControlError, ValueError) as exc:
            return JSONResponse({"error": f"cannot bill: {exc}"}, status_code=400)
        return self._document(request, document, 201)

    async def billing_action(self, request: Request) -> Response:
        number, action = request.path_params["number"], request.path_params["action"]
        body = await _control_body(request, empty_ok=True)
        if isinstance(body, Response):
            return body
        try:
            if action == "payments":
                document = self.store.pay(number, _decimal(body["amount"]), _date(body.get("date")))
            elif action == "cancellation":
                document = self.store.cancel(number, _date(body.get("date")))
            elif action == "posting":
                document = self.store.post(number)
            else:
                return JSONResponse({"error": f"no action {action!r}"}, status_code=404)
        except (KeyError, ControlError, ValueError) as exc:
            return JSONResponse({"error": f"cannot {action}: {exc}"}, status_code=400)
        return self._document(request, document, 200)

    def _document(self, request: Request, document: dict[str, Any], status: int) -> Response:
        entity = ENTITY_TYPES["A_BillingDocument"]
        root = _base(request) + next(s.root for s in SERVICES if s.name == entity.service)
        return JSONResponse({"d": self.store.render(entity, document, root)}, status_code=status)


def fault_response(status: int, kind: str, retry_after: float | None) -> Response:
    """What an injected fault answers (sandbox.py adds Retry-After). A 429 comes from SAP API
    Management's quota policy (⚠ its fault body as Apigee writes it); a 503 from the web
    dispatcher, as a page."""
    if status == 429:
        return JSONResponse({"fault": {"faultstring": "Rate limit quota violation. Quota limit exceeded. "
                                                      "Identifier : handoff",
                                       "detail": {"errorcode": "policies.ratelimit.QuotaViolation"}}},
                            status_code=429)
    reason = ("The system is down for scheduled maintenance." if kind == "maintenance"
              else "No server is available to handle this request.")
    page = (f"<html><head><title>Service Unavailable</title></head><body><h1>503 Service Unavailable</h1>"
            f"<p>{reason}</p><p>SAP Web Dispatcher</p></body></html>")
    return Response(page, 503, media_type="text/html")


def error_response(fault: TwinFault, service: Service | None = None) -> Response:
    """SAP's OData v2 error body; a 401 or a CSRF refusal as SAP's plain text or page."""
    headers = {k: v for k, v in fault.headers.items() if k != "content-type"}
    if fault.headers.get("content-type"):
        return Response(fault.message, fault.status, headers, media_type=fault.headers["content-type"])
    now = datetime.now(UTC)
    detail = {"code": fault.code, "message": fault.message, "propertyref": "", "severity": "error",
              "target": fault.target or "", "transition": False}
    application = ({"component_id": service.component, "service_namespace": "/SAP/",
                    "service_id": service.name, "service_version": service.version} if service else {})
    body = {"error": {"code": fault.code, "message": {"lang": "en", "value": fault.message}, "innererror": {
        "application": application, "transactionid": uuid.uuid4().hex.upper(),
        "timestamp": now.strftime("%Y%m%d%H%M%S.") + f"{now.microsecond:06d}0",
        "Error_Resolution": {"SAP_Transaction": "For backend administrators: use ADT feed reader \"SAP "
                             "Gateway Error Log\" or run transaction /IWFND/ERROR_LOG on SAP Gateway hub "
                             "system and search for entries with the timestamp above for more details",
                             "SAP_Note": "See SAP Note 1797736 for error analysis "
                                         "(https://service.sap.com/sap/support/notes/1797736)"},
        "errordetails": [detail]}}}
    return Response(json.dumps(body), fault.status, headers, media_type=JSON_TYPE)


def metadata(service: Service) -> str:
    """A `$metadata` document of what the twin implements (entity types, keys, properties)."""
    types, sets = [], []
    for name in service.sets:
        entity = ENTITY_TYPES[name]
        keys = "".join(f'<PropertyRef Name="{k}"/>' for k in entity.keys)
        props = []
        for prop_name, prop in entity.props.items():
            extra = f' MaxLength="{prop.length}"' if prop.edm == STRING and prop.length else ""
            extra += f' Precision="24" Scale="{prop.scale}"' if prop.edm == DECIMAL else ""
            extra += ' sap:display-format="UpperCase"' if prop.upper else ""
            extra += ' sap:creatable="false"' if not prop.creatable else ""
            extra += ' sap:updatable="false"' if not prop.updatable else ""
            nullable = ' Nullable="false"' if prop_name in entity.keys else ""
            props.append(f'<Property Name="{prop_name}" Type="{prop.edm}"{nullable}{extra}/>')
        types.append(f'<EntityType Name="{entity.type_name}" sap:content-version="1"><Key>{keys}</Key>'
                     + "".join(props) + "</EntityType>")
        flags = "".join(f' sap:{flag}="false"' for flag, on in (("creatable", entity.creatable),
                        ("updatable", entity.updatable), ("deletable", entity.deletable)) if not on)
        sets.append(f'<EntitySet Name="{name}" EntityType="{service.name}.{entity.type_name}"{flags}/>')
    return ('<?xml version="1.0" encoding="utf-8"?><edmx:Edmx Version="1.0" '
            'xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx" '
            'xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata" '
            'xmlns:sap="http://www.sap.com/Protocols/SAPData"><edmx:DataServices m:DataServiceVersion="2.0">'
            f'<Schema Namespace={quoteattr(service.name)} xml:lang="en" '
            'xmlns="http://schemas.microsoft.com/ado/2008/09/edm">' + "".join(types)
            + f'<EntityContainer Name="{service.name}_Entities" m:IsDefaultEntityContainer="true">'
            + "".join(sets) + "</EntityContainer></Schema></edmx:DataServices></edmx:Edmx>")


def _filtered(entity: EntityType, rows: list[dict[str, Any]], options: Options) -> list[dict[str, Any]]:
    if not options.filter:
        return rows
    predicate = compile_filter(entity, options.filter)
    return [row for row in rows if predicate(row)]


def _only(method: str, allowed: str) -> None:
    if method != allowed:
        raise TwinFault(405, NOT_ALLOWED, f"Method {method} is not allowed here")


def _body(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        raise TwinFault(400, MALFORMED, "The request body is not a JSON object (a float for an Edm.Decimal "
                        "is refused too: send it as a string)")
    return parsed


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Answer:
    return status, {"content-type": JSON_TYPE, **(headers or {})}, json.dumps(body).encode()


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


async def _control_body(request: Request, empty_ok: bool = False) -> dict[str, Any] | Response:
    raw = await request.body()
    if not raw and empty_ok:
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return JSONResponse({"error": "expected a JSON object"}, status_code=400)
    return body


def _decimal(value: Any) -> Decimal:
    return parse_decimal(value)


def _date(value: Any) -> date | None:
    return date.fromisoformat(value) if value else None

