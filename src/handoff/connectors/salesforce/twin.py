"""A Salesforce sandbox twin: Salesforce's REST paths, payloads and error bodies, served locally
over TLS so simple-salesforce can talk to it unchanged.

Credentials (SOAP partner login, `POST /services/Soap/u/{ver}`): username
`handoff@example.com`, password `sandbox`, security token `TOKEN`. Direct mode: session id
`SANDBOX_SESSION` with the twin's base URL as instance URL; it never expires.

The org holds `Account` and `Opportunity` (see twin_schema for the fields, including handoff's
custom ones and the external-ID field `Handoff_Key__c`) and answers:

    POST            /services/data/v{ver}/sobjects/{Obj}[/]          create → 201
    GET|PATCH|DELETE /services/data/v{ver}/sobjects/{Obj}/{id}       200 / 204 / 204
    GET|PATCH       /services/data/v{ver}/sobjects/{Obj}/{ExtField}/{value}   read / upsert
    GET             /services/data/v{ver}/query[All]/?q=SOQL, …/query/{locator}
    POST|PATCH      /services/data/v{ver}/composite/sobjects          collections create/update
    PATCH           /services/data/v{ver}/composite/sobjects/{Obj}/{ExtField}   collections upsert

Twin-only controls, besides those of `sandbox.build_twin`:

    GET  /_twin/records/{Obj}     every live record of the sObject, all fields
    GET|PUT /_twin/settings       query_batch_size (records per query page, default 2000;
                                  may go below Salesforce's minimum of 200 so tests can page),
                                  unable_to_lock_row_rate (share of updates and deletes
                                  refused with UNABLE_TO_LOCK_ROW); reset restores them
    POST /_twin/sessions/expire   end every session handed out by login (not SANDBOX_SESSION)
"""

from __future__ import annotations

import dataclasses
import random
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from handoff.connectors.salesforce import twin_soap
from handoff.connectors.salesforce.twin_schema import SalesforceApiError, not_found, sobject_type
from handoff.connectors.salesforce.twin_soql import Cursors, batch_size, parse
from handoff.connectors.salesforce.twin_store import MultipleMatches, RecordStore, Write, render
from handoff.connectors.sandbox import TwinControl, build_twin

SANDBOX_SESSION = "SANDBOX_SESSION"
API_DAILY_LIMIT = 15000
COLLECTION_LIMIT = 200
DATA = "/services/data/v{ver}"
LATEST_VERSION = "59.0"
_VERSION = re.compile(r"\d{2,3}\.\d\Z")

Handler = Callable[[Request, str], Awaitable[Response]]


class JsonResponse(Response):
    media_type = "application/json;charset=UTF-8"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


@dataclass(frozen=True)
class TwinSettings:
    query_batch_size: int = 2000
    unable_to_lock_row_rate: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.query_batch_size, int) or self.query_batch_size < 1:
            raise ValueError("query_batch_size must be a whole number of at least 1")
        if not 0.0 <= float(self.unable_to_lock_row_rate) <= 1.0:
            raise ValueError("unable_to_lock_row_rate must be between 0 and 1")


class SalesforceTwin:
    def __init__(self) -> None:
        self.control = TwinControl()
        self.sessions: set[str] = set()
        self._rng = random.Random()
        self.reset()

    def reset(self) -> None:
        self.settings = TwinSettings()
        self.store = RecordStore(contention=self._contended)
        self.cursors = Cursors()
        self.api_usage = 0

    def _contended(self) -> bool:
        return self._rng.random() < self.settings.unable_to_lock_row_rate

    def routes(self) -> list[Route]:
        rest = self._rest
        sobject, collections = f"{DATA}/sobjects/{{obj}}", f"{DATA}/composite/sobjects"
        return [
            Route("/services/Soap/u/{ver}", self.login, methods=["POST"]),
            Route(sobject, rest(self.create), methods=["POST"]),
            Route(sobject + "/", rest(self.create), methods=["POST"]),
            Route(sobject + "/{id}", rest(self.get), methods=["GET"]),
            Route(sobject + "/{id}", rest(self.update), methods=["PATCH"]),
            Route(sobject + "/{id}", rest(self.delete), methods=["DELETE"]),
            Route(sobject + "/{field}/{value}", rest(self.get_by_external_id), methods=["GET"]),
            Route(sobject + "/{field}/{value}", rest(self.upsert), methods=["PATCH"]),
            *[Route(f"{DATA}/{kind}{slash}", rest(self.query), methods=["GET"])
              for kind in ("query", "queryAll") for slash in ("", "/")],
            Route(f"{DATA}/query/{{locator}}", rest(self.query_more), methods=["GET"]),
            Route(collections, rest(self.collection_create), methods=["POST"]),
            Route(collections, rest(self.collection_update), methods=["PATCH"]),
            Route(collections + "/{obj}/{field}", rest(self.collection_upsert), methods=["PATCH"]),
            Route("/services/data/{rest:path}", rest(self.unknown_resource),
                  methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
            Route("/_twin/records/{obj}", self.all_records, methods=["GET"]),
            Route("/_twin/settings", self.get_settings, methods=["GET"]),
            Route("/_twin/settings", self.put_settings, methods=["PUT"]),
            Route("/_twin/sessions/expire", self.expire_sessions, methods=["POST"]),
        ]

    # --- plumbing shared by every REST resource -------------------------------------------

    def _rest(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            self.api_usage += 1
            ver = request.path_params.get("ver", LATEST_VERSION)
            try:
                self._authenticate(request)
                if not _VERSION.match(ver):
                    raise not_found()
                response = await handler(request, ver)
            except SalesforceApiError as exc:
                response = self._error(exc, ver)
            return self._with_limit_info(response)

        return endpoint

    def _authenticate(self, request: Request) -> None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        valid = token == SANDBOX_SESSION or token in self.sessions
        if scheme not in ("Bearer", "OAuth") or not valid:
            raise SalesforceApiError(
                "INVALID_SESSION_ID", "Session expired or invalid", status=401
            )

    def _with_limit_info(self, response: Response) -> Response:
        response.headers["Sforce-Limit-Info"] = f"api-usage={self.api_usage}/{API_DAILY_LIMIT}"
        return response

    def _error(self, exc: SalesforceApiError, api_version: str) -> Response:
        if isinstance(exc, MultipleMatches):
            base = f"/services/data/v{api_version}/sobjects/{exc.sobject_name}"
            return JsonResponse([f"{base}/{i}" for i in exc.record_ids], status_code=300)
        return JsonResponse([exc.as_rest_error()], status_code=exc.status)

    def error_response(self, status: int, kind: str, retry_after: float | None) -> Response:
        """An injected fault in Salesforce's words: its throttle is a 403, not a 429."""
        if status == 429:
            error = SalesforceApiError(
                "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", status=403
            )
        else:
            error = SalesforceApiError(
                "SERVER_UNAVAILABLE", f"The server is temporarily unavailable ({kind}).",
                status=status,
            )
        return self._with_limit_info(self._error(error, LATEST_VERSION))

    # --- login ----------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        found = twin_soap.credentials(await request.body())
        if not found or not twin_soap.accepts(*found):
            return Response(twin_soap.login_fault(), status_code=500, media_type="text/xml")
        session_id = secrets.token_urlsafe(24)
        self.sessions.add(session_id)
        base_url = f"{request.url.scheme}://{request.headers.get('host', request.url.netloc)}"
        body = twin_soap.login_response(base_url, request.path_params["ver"], session_id)
        return Response(body, media_type="text/xml")

    # --- single records -------------------------------------------------------------------

    async def create(self, request: Request, ver: str) -> Response:
        write = self.store.table(request.path_params["obj"]).create(await _json_object(request))
        return JsonResponse(_save_result(write), status_code=201)

    async def get(self, request: Request, ver: str) -> Response:
        table = self.store.table(request.path_params["obj"])
        record = table.get(request.path_params["id"])
        return JsonResponse(render(table.sobject, record, _fields_param(request, table), ver))

    async def update(self, request: Request, ver: str) -> Response:
        table = self.store.table(request.path_params["obj"])
        table.update(request.path_params["id"], await _json_object(request))
        return Response(status_code=204)

    async def delete(self, request: Request, ver: str) -> Response:
        self.store.table(request.path_params["obj"]).delete(request.path_params["id"])
        return Response(status_code=204)

    async def get_by_external_id(self, request: Request, ver: str) -> Response:
        table = self.store.table(request.path_params["obj"])
        field = table.external_field(request.path_params["field"])
        ids = table.matching(field, request.path_params["value"])
        if len(ids) > 1:
            raise MultipleMatches(table.sobject.name, field, ids)
        if not ids:
            raise not_found()
        return JsonResponse(render(table.sobject, table.live[ids[0]], table.sobject.fields, ver))

    async def upsert(self, request: Request, ver: str) -> Response:
        table = self.store.table(request.path_params["obj"])
        field = table.external_field(request.path_params["field"])
        value = request.path_params["value"]
        body = _with_external_value(await _json_object(request), field, value)
        write = table.upsert(field, body,
                             update_only=request.query_params.get("updateOnly") == "true")
        reports_created = float(ver) >= 46.0
        if not write.created and not reports_created:
            return Response(status_code=204)
        result = _save_result(write) | ({"created": write.created} if reports_created else {})
        return JsonResponse(result, status_code=201 if write.created else 200)

    async def unknown_resource(self, request: Request, ver: str) -> Response:
        raise not_found()

    # --- queries --------------------------------------------------------------------------

    async def query(self, request: Request, ver: str) -> Response:
        soql = request.query_params.get("q")
        if not soql:
            raise SalesforceApiError("MALFORMED_QUERY", "A query string has to be specified")
        query = parse(soql)
        table = self.store.tables[query.sobject.name]
        include_deleted = request.url.path.rstrip("/").endswith("queryAll")
        found = query.run(table.records(include_deleted))
        rendered = [render(query.sobject, r, query.fields, ver) for r in found]
        options = request.headers.get("sforce-query-options", "")
        batch = min(batch_size(options), self.settings.query_batch_size)
        return JsonResponse(self.cursors.first_page(rendered, batch, ver))

    async def query_more(self, request: Request, ver: str) -> Response:
        return JsonResponse(self.cursors.next_page(request.path_params["locator"], ver))

    # --- sObject Collections --------------------------------------------------------------

    async def collection_create(self, request: Request, ver: str) -> Response:
        records, all_or_none = await _collection(request)
        steps = [lambda r=r: self.store.table(_record_type(r)).create(r) for r in records]
        return self._collection_results(steps, all_or_none, reports_created=False)

    async def collection_update(self, request: Request, ver: str) -> Response:
        records, all_or_none = await _collection(request)
        steps = [lambda r=r: self._update_from_collection(r) for r in records]
        return self._collection_results(steps, all_or_none, reports_created=False)

    async def collection_upsert(self, request: Request, ver: str) -> Response:
        records, all_or_none = await _collection(request)
        table = self.store.table(request.path_params["obj"])
        field = table.external_field(request.path_params["field"])
        steps = [lambda r=r: table.upsert(field, _checked_type(r, table.sobject.name))
                 for r in records]
        return self._collection_results(steps, all_or_none, reports_created=True)

    def _update_from_collection(self, record: dict[str, Any]) -> Write:
        fields = {k: v for k, v in record.items() if k.lower() != "id"}
        record_id = record.get("id") or record.get("Id")
        if not record_id:
            raise SalesforceApiError("MISSING_ARGUMENT", "Id not specified in an update call")
        return self.store.table(_record_type(record)).update(record_id, fields)

    def _collection_results(self, steps: list[Callable[[], Write]], all_or_none: bool,
                            reports_created: bool) -> Response:
        results = []
        for outcome in self.store.run_batch(steps, all_or_none):
            if isinstance(outcome, SalesforceApiError):
                results.append({"success": False, "errors": [outcome.as_record_error()]})
            else:
                extra = {"created": outcome.created} if reports_created else {}
                results.append(_save_result(outcome) | extra)
        return JsonResponse(results)

    # --- twin-only controls ---------------------------------------------------------------

    async def all_records(self, request: Request) -> Response:
        try:
            table = self.store.table(request.path_params["obj"])
        except SalesforceApiError as exc:
            return self._error(exc, LATEST_VERSION)
        return JsonResponse([render(table.sobject, r, table.sobject.fields, LATEST_VERSION)
                             for r in table.records()])

    async def get_settings(self, request: Request) -> Response:
        return JsonResponse(dataclasses.asdict(self.settings))

    async def put_settings(self, request: Request) -> Response:
        try:
            changes = orjson.loads(await request.body())
            self.settings = dataclasses.replace(self.settings, **changes)
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            return JsonResponse({"error": str(exc)}, status_code=400)
        return JsonResponse(dataclasses.asdict(self.settings))

    async def expire_sessions(self, request: Request) -> Response:
        self.sessions.clear()
        return Response(status_code=204)


def _save_result(write: Write) -> dict[str, Any]:
    return {"id": write.record_id, "success": True, "errors": []}


def _with_external_value(body: dict[str, Any], field: str, value: str) -> dict[str, Any]:
    """The upsert body with the URL's external-ID value; the body may only repeat it."""
    rest = {k: v for k, v in body.items() if k.lower() != field.lower()}
    if any(v != value for k, v in body.items() if k.lower() == field.lower()):
        raise SalesforceApiError(
            "INVALID_FIELD", f"{field} is given in the URL; leave it out of the body", [field]
        )
    return rest | {field: value}


def _fields_param(request: Request, table: Any) -> list[str]:
    asked = request.query_params.get("fields")
    if not asked:
        return list(table.sobject.fields)
    fields = [table.sobject.field(name.strip()) for name in asked.split(",")]
    unknown = [name for name, f in zip(asked.split(","), fields, strict=True) if f is None]
    if unknown:
        raise SalesforceApiError("INVALID_FIELD", f"No such column '{unknown[0]}'", unknown)
    return [f.name for f in fields if f]


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise SalesforceApiError("JSON_PARSER_ERROR", "The request body is not a JSON object")
    return body


async def _collection(request: Request) -> tuple[list[dict[str, Any]], bool]:
    body = await _json_object(request)
    records = body.get("records")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise SalesforceApiError("JSON_PARSER_ERROR", "records must be a list of objects")
    if len(records) > COLLECTION_LIMIT:
        raise SalesforceApiError(
            "EXCEEDED_ID_LIMIT",
            f"record limit reached. cannot submit more than {COLLECTION_LIMIT} records into "
            "this call",
        )
    return records, bool(body.get("allOrNone", False))


def _record_type(record: dict[str, Any]) -> str:
    attributes = record.get("attributes")
    sobject = attributes.get("type") if isinstance(attributes, dict) else None
    if not sobject:
        raise SalesforceApiError("INVALID_TYPE", "Must send a concrete entity type.")
    return sobject_type(sobject).name


def _checked_type(record: dict[str, Any], expected: str) -> dict[str, Any]:
    if _record_type(record) != expected:
        raise SalesforceApiError(
            "INVALID_TYPE", f"This operation is only allowed on {expected} records"
        )
    return record


def create_app() -> ASGIApp:
    twin = SalesforceTwin()
    return build_twin(twin.routes(), twin.control, twin.reset, twin.error_response)
