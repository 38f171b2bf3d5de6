"""A HubSpot sandbox twin: HubSpot's CRM paths, payloads, limits and error bodies for deals
and companies, served locally over plain HTTP so hubspot-api-client talks to it unchanged
(`HubSpot(access_token=SANDBOX_TOKEN, host=<twin base URL>)`).

    POST   /crm/v3/objects/{t}                     create → 201 (`associations` too)
    GET    /crm/v3/objects/{t}                     list: limit ≤100, after, properties, associations
    GET|PATCH|DELETE /crm/v3/objects/{t}/{id}      read (properties, associations, archived,
                                                   idProperty) / update 200 / archive 204
    POST   /crm/v3/objects/{t}/batch/{op}          read | create | update | upsert | archive:
                                                   ≤100 inputs, 200/201, 207 + errors[]
    POST   /crm/v3/objects/{t}/search              filterGroups, sorts, properties, limit ≤200,
                                                   after; 10,000 results deep at most
    GET    /crm/v3/pipelines/deals                 the default pipeline and its stages
    PUT    /crm/v4/objects/{t}/{id}/associations/default/{toT}/{toId}
    PUT|DELETE /crm/v4/objects/{t}/{id}/associations/{toT}/{toId}
    GET    /crm/v4/objects/{t}/{id}/associations/{toT}
    POST   /crm/v4/associations/{fromT}/{toT}/batch/read
                                                   {t}: deals | companies (also 0-3, 0-2)

Auth: `Authorization: Bearer <SANDBOX_TOKEN>`, else 401 INVALID_AUTHENTICATION. Limits, per
token: 190 requests per rolling 10 s and 650,000 a day (a Professional private app), search
4 per second; over them, 429 with `errorType: RATE_LIMIT`, `policyName` and `category:
RATE_LIMITS`, no Retry-After unless `send_retry_after` is set; every answer carries
`X-HubSpot-RateLimit-*` headers. Errors are HubSpot's body `{"status": "error", "message",
"correlationId", "category", …}`.

Twin-only controls, besides those of `sandbox.build_twin` (whose 429s do send Retry-After):

    GET  /_twin/records/{t}     every object (archived too), all properties and associations
    GET|PUT /_twin/settings     burst_limit, burst_window_seconds, daily_limit,
                                search_per_second, search_result_cap, send_retry_after,
                                batch_errors ("per_input": 207; "whole_batch": the first bad
                                input refuses the batch, nothing saved), frozen_clock_ms (every
                                write stamped with this ms); reset restores them
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from handoff.connectors.hubspot.mapping import iso_millis
from handoff.connectors.hubspot.twin_store import (
    ALWAYS_IN_SEARCH,
    UNLABELLED,
    CrmObject,
    HubSpotApiError,
    ObjectType,
    Store,
    check_search,
    object_type,
    pipelines,
    validation_error,
)
from handoff.connectors.sandbox import TwinControl, build_twin

SANDBOX_TOKEN = "pat-na1-sandbox-0000-0000-000000000000"
V3, V4 = "/crm/v3/objects", "/crm/v4"
BATCH_LIMIT = 100
LIST_LIMIT = 100
SEARCH_LIMIT = 200

Handler = Callable[[Request], Awaitable[Response]]


class JsonResponse(Response):
    media_type = "application/json;charset=utf-8"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


@dataclass(frozen=True)
class TwinSettings:
    burst_limit: int = 190
    burst_window_seconds: float = 10.0
    daily_limit: int = 650_000
    search_per_second: int = 4
    search_result_cap: int = 10_000
    send_retry_after: bool = False
    batch_errors: str = "per_input"
    frozen_clock_ms: int | None = None

    def __post_init__(self) -> None:
        if self.batch_errors not in ("per_input", "whole_batch"):
            raise ValueError("batch_errors must be per_input or whole_batch")
        for name in ("burst_limit", "daily_limit", "search_per_second", "search_result_cap"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a whole number of at least 1")
        if self.burst_window_seconds <= 0:
            raise ValueError("burst_window_seconds must be positive")


class Limiter:
    """HubSpot's per-token limits: a rolling burst window, a daily count, and search's own
    per-second rate. Only admitted requests count."""

    def __init__(self) -> None:
        self.burst: dict[str, deque[float]] = {}
        self.search: dict[str, deque[float]] = {}
        self.daily: dict[str, int] = {}

    def admit(self, token: str, settings: TwinSettings, search: bool) -> dict[str, str]:
        """Count the request, or raise the 429; returns the rate-limit headers to send (a 429
        carries them too)."""
        now = time.monotonic()
        window = settings.burst_window_seconds
        burst = _recent(self.burst.setdefault(token, deque()), now - window)
        used_today = self.daily.get(token, 0)
        refusal = None
        if used_today >= settings.daily_limit:
            refusal = ("DAILY", "daily", until_midnight_utc())
        elif len(burst) >= settings.burst_limit:
            refusal = ("TEN_SECONDLY_ROLLING", "ten_secondly_rolling", burst[0] + window - now)
        elif search:
            recent = _recent(self.search.setdefault(token, deque()), now - 1.0)
            if len(recent) >= settings.search_per_second:
                refusal = ("SECONDLY", "secondly", recent[0] + 1.0 - now)
            else:
                recent.append(now)
        if refusal is None:
            burst.append(now)
            used_today += 1
            self.daily[token] = used_today
        headers = {
            "X-HubSpot-RateLimit-Daily": str(settings.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, settings.daily_limit - used_today)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(round(window * 1000)),
            "X-HubSpot-RateLimit-Max": str(settings.burst_limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, settings.burst_limit - len(burst))),
        }
        if refusal is not None:
            policy, words, wait = refusal
            raise HubSpotApiError(
                429, "RATE_LIMITS", f"You have reached your {words} limit.", headers=headers,
                retry_after=max(1, round(wait)) if settings.send_retry_after else None,
                errorType="RATE_LIMIT", policyName=policy)
        return headers


def _recent(calls: deque[float], cutoff: float) -> deque[float]:
    while calls and calls[0] <= cutoff:
        calls.popleft()
    return calls


def until_midnight_utc() -> float:
    now = datetime.now(UTC)
    return 86_400 - (now.hour * 3600 + now.minute * 60 + now.second)


class HubSpotTwin:
    def __init__(self, token: str = SANDBOX_TOKEN) -> None:
        self.token = token
        self.control = TwinControl()
        self.started = iso_millis(datetime.now(UTC))
        self.reset()

    def reset(self) -> None:
        self.settings = TwinSettings()
        self.store = Store()
        self.limiter = Limiter()

    def routes(self) -> list[Route]:
        api = self._api
        objects, one = f"{V3}/{{t}}", f"{V3}/{{t}}/{{id}}"
        v4_one = f"{V4}/objects/{{t}}/{{id}}/associations"
        return [
            Route(objects, api(self.list_objects), methods=["GET"]),
            Route(objects, api(self.create), methods=["POST"]),
            Route(f"{objects}/search", api(self.search, search=True), methods=["POST"]),
            Route(f"{objects}/batch/{{op}}", api(self.batch), methods=["POST"]),
            Route(one, api(self.read), methods=["GET"]),
            Route(one, api(self.update), methods=["PATCH"]),
            Route(one, api(self.archive), methods=["DELETE"]),
            Route("/crm/v3/pipelines/{t}", api(self.get_pipelines), methods=["GET"]),
            Route(f"{v4_one}/default/{{to}}/{{to_id}}", api(self.associate_default), methods=["PUT"]),
            Route(f"{v4_one}/{{to}}/{{to_id}}", api(self.associate_labelled), methods=["PUT"]),
            Route(f"{v4_one}/{{to}}/{{to_id}}", api(self.dissociate), methods=["DELETE"]),
            Route(f"{v4_one}/{{to}}", api(self.list_associations), methods=["GET"]),
            Route(f"{V4}/associations/{{t}}/{{to}}/batch/read", api(self.batch_read_associations),
                  methods=["POST"]),
            Route("/crm/{rest:path}", api(self.unknown), methods=["GET", "POST", "PATCH", "PUT", "DELETE"]),
            Route("/_twin/records/{t}", self.all_records, methods=["GET"]),
            Route("/_twin/settings", self.get_settings, methods=["GET"]),
            Route("/_twin/settings", self.put_settings, methods=["PUT"]),
        ]

    # --- plumbing shared by every API resource --------------------------------------------

    def _api(self, handler: Handler, search: bool = False) -> Handler:
        async def endpoint(request: Request) -> Response:
            headers: dict[str, str] = {}
            try:
                token = self._authenticate(request)
                headers = self.limiter.admit(token, self.settings, search)
                self.store.clock.frozen_ms = self.settings.frozen_clock_ms
                response = await handler(request)
            except HubSpotApiError as exc:
                response = self.error(exc)
            response.headers.update(headers)
            return response

        return endpoint

    def _authenticate(self, request: Request) -> str:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise HubSpotApiError(
                401, "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication "
                "and you can find more details at https://developers.hubspot.com/docs/methods/auth/"
                "oauth-overview")
        if token != self.token:
            raise HubSpotApiError(
                401, "INVALID_AUTHENTICATION",
                "The OAuth token used to make this call expired or is invalid. Check the private "
                "app's access token.")
        return token

    def error(self, exc: HubSpotApiError) -> Response:
        response = JsonResponse(exc.body(str(uuid.uuid4())), status_code=exc.status)
        response.headers.update(exc.headers)
        if exc.retry_after:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response

    def error_response(self, status: int, kind: str, retry_after: float | None) -> Response:
        """An injected fault in HubSpot's words (sandbox.FaultMiddleware adds Retry-After)."""
        if status == 429:
            error = HubSpotApiError(429, "RATE_LIMITS", "You have reached your ten_secondly_rolling "
                                    "limit.", errorType="RATE_LIMIT", policyName="TEN_SECONDLY_ROLLING")
        else:
            error = HubSpotApiError(status, "SERVICE_UNAVAILABLE",
                                    f"The service is temporarily unavailable ({kind}).")
        return self.error(error)

    # --- single objects -------------------------------------------------------------------

    async def create(self, request: Request) -> Response:
        kind = object_type(request.path_params["t"])
        body = await _json_object(request)
        record = self.store.create(kind, body.get("properties") or {}, _list(body, "associations"))
        return JsonResponse(record.render(_set_properties(record)), status_code=201)

    async def read(self, request: Request) -> Response:
        kind = object_type(request.path_params["t"])
        query = request.query_params
        record = self.store.get(kind, request.path_params["id"], query.get("idProperty"),
                                archived=query.get("archived") == "true")
        return JsonResponse(self._render(record, request))

    async def update(self, request: Request) -> Response:
        kind = object_type(request.path_params["t"])
        body = await _json_object(request)
        record = self.store.update(kind, request.path_params["id"], body.get("properties") or {},
                                   request.query_params.get("idProperty"))
        return JsonResponse(record.render(_set_properties(record)))

    async def archive(self, request: Request) -> Response:
        self.store.archive(object_type(request.path_params["t"]), request.path_params["id"])
        return Response(status_code=204)

    async def list_objects(self, request: Request) -> Response:
        kind = object_type(request.path_params["t"])
        query = request.query_params
        limit = _int(query.get("limit"), 10, "limit")
        if not 1 <= limit <= LIST_LIMIT:
            raise validation_error(f"limit must be between 1 and {LIST_LIMIT}", limit=[str(limit)])
        records, next_after = self.store.page(kind, query.get("after"), limit,
                                              archived=query.get("archived") == "true")
        body: dict[str, Any] = {"results": [self._render(r, request) for r in records]}
        if next_after:
            link = f"{request.base_url}{V3.lstrip('/')}/{kind.name}?after={next_after}"
            body["paging"] = {"next": {"after": next_after, "link": link}}
        return JsonResponse(body)

    def _render(self, record: CrmObject, request: Request) -> dict[str, Any]:
        body = record.render(_properties_param(request))
        wanted = _repeated(request, "associations")
        if wanted:
            found = {}
            for name in wanted:
                try:
                    to = object_type(name)
                except HubSpotApiError:
                    continue  # unknown association types are ignored
                results = [{"id": str(a["toObjectId"]), "type": _v3_type(record.type, to, t)}
                           for a in self.store.associations(record.type.name, record.id, to.name)
                           for t in a["associationTypes"]]
                if results:
                    found[to.name] = {"results": results}
            if found:
                body["associations"] = found
        return body

    # --- batch ----------------------------------------------------------------------------

    async def batch(self, request: Request) -> Response:
        kind = object_type(request.path_params["t"])
        op = request.path_params["op"]
        operations = {"read": self._batch_read, "create": self._batch_create,
                      "update": self._batch_update, "upsert": self._batch_upsert,
                      "archive": self._batch_archive}
        if op not in operations:
            raise HubSpotApiError(404, "OBJECT_NOT_FOUND", f"Unknown batch operation {op}")
        body = await _json_object(request)
        inputs = _list(body, "inputs")
        if len(inputs) > BATCH_LIMIT:
            raise validation_error(f"Batch input limit exceeded: {len(inputs)} inputs; the "
                                   f"maximum is {BATCH_LIMIT}")
        if not all(isinstance(i, Mapping) for i in inputs):
            raise validation_error("inputs must be objects")
        return await operations[op](kind, body, inputs, request)

    async def _batch_read(self, kind: ObjectType, body: Mapping[str, Any], inputs: list[Any],
                          request: Request) -> Response:
        id_property = body.get("idProperty") or request.query_params.get("idProperty")
        names = body.get("properties") or None
        results, errors = [], []
        for item in inputs:
            try:
                results.append(self.store.get(kind, str(item.get("id")), id_property).render(names))
            except HubSpotApiError as exc:
                errors.append(exc)
        return _batch_response(results, errors, 200)

    async def _batch_create(self, kind: ObjectType, body: Mapping[str, Any], inputs: list[Any],
                            request: Request) -> Response:
        steps = [lambda i=i: self.store.create(kind, i.get("properties") or {}, _list(i, "associations"))
                 for i in inputs]
        return self._run_batch(kind, inputs, steps, 201,
                               check=lambda i: self.store.checked(kind, i.get("properties") or {}))

    async def _batch_update(self, kind: ObjectType, body: Mapping[str, Any], inputs: list[Any],
                            request: Request) -> Response:
        ids = [str(i.get("id") or "") for i in inputs]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise validation_error(f"Duplicate IDs found in batch input: {duplicates}. IDs must be "
                                   "unique", ids=duplicates)
        default_property = request.query_params.get("idProperty")

        def update(item: Mapping[str, Any]) -> CrmObject:
            return self.store.update(kind, str(item.get("id") or ""), item.get("properties") or {},
                                     item.get("idProperty") or default_property)

        def check(item: Mapping[str, Any]) -> None:
            self.store.get(kind, str(item.get("id") or ""), item.get("idProperty") or default_property)
            self.store.checked(kind, item.get("properties") or {})

        steps = [lambda i=i: update(i) for i in inputs]
        return self._run_batch(kind, inputs, steps, 200, check=check)

    async def _batch_upsert(self, kind: ObjectType, body: Mapping[str, Any], inputs: list[Any],
                            request: Request) -> Response:
        default_property = request.query_params.get("idProperty")
        results, errors = [], []
        for item in inputs:
            id_property = item.get("idProperty") or default_property
            try:
                if not id_property:
                    raise validation_error("idProperty is required for upsert")
                record, new = self.store.upsert(kind, str(id_property), str(item.get("id") or ""),
                                                item.get("properties") or {})
                results.append(record.render(_set_properties(record)) | {"new": new})
            except HubSpotApiError as exc:
                exc.context.setdefault("ids", [str(item.get("id"))])
                errors.append(exc)
        return _batch_response(results, errors, 200)

    async def _batch_archive(self, kind: ObjectType, body: Mapping[str, Any], inputs: list[Any],
                             request: Request) -> Response:
        for item in inputs:
            self.store.archive(kind, str(item.get("id") or ""))
        return Response(status_code=204)

    def _run_batch(self, kind: ObjectType, inputs: list[Any], steps: list[Callable[[], CrmObject]],
                   status: int, check: Callable[[Mapping[str, Any]], Any]) -> Response:
        if self.settings.batch_errors == "whole_batch":
            for item in inputs:  # the first bad input refuses the batch; nothing is saved
                check(item)
        results, errors = [], []
        for item, step in zip(inputs, steps, strict=True):
            try:
                record = step()
                results.append(record.render(_set_properties(record)))
            except HubSpotApiError as exc:
                if item.get("id"):
                    exc.context.setdefault("ids", [str(item["id"])])
                errors.append(exc)
        return _batch_response(results, errors, status)

    # --- search ---------------------------------------------------------------------------

    async def search(self, request: Request) -> Response:
        kind = object_type(request.path_params["t"])
        body = await _json_object(request)
        check_search(body)
        limit = _int(body.get("limit"), 10, "limit")
        if not 1 <= limit <= SEARCH_LIMIT:
            raise validation_error(f"limit must be between 1 and {SEARCH_LIMIT}")
        offset = _int(body.get("after"), 0, "after")
        cap = self.settings.search_result_cap
        if offset + limit > cap:
            raise validation_error(f"The search cannot page beyond {cap} results (after {offset} "
                                   f"+ limit {limit}); narrow the filters instead")
        page = self.store.search(kind, body, offset, limit)
        asked = body.get("properties") or None
        names = None if asked is None else [*asked, *ALWAYS_IN_SEARCH]
        result: dict[str, Any] = {"total": page.total, "results": [r.render(names) for r in page.results]}
        if page.next_after:
            result["paging"] = {"next": {"after": page.next_after, "link": f"?after={page.next_after}"}}
        return JsonResponse(result)

    # --- pipelines and associations -------------------------------------------------------

    async def get_pipelines(self, request: Request) -> Response:
        if object_type(request.path_params["t"]).name != "deals":
            return JsonResponse({"results": []})
        return JsonResponse({"results": pipelines(self.started)})

    async def associate_default(self, request: Request) -> Response:
        p = request.path_params
        kind, to = object_type(p["t"]), object_type(p["to"])
        self.store.associate(kind.name, p["id"], to.name, p["to_id"])
        now = iso_millis(datetime.now(UTC))
        spec = {"associationCategory": "HUBSPOT_DEFINED",
                "associationTypeId": UNLABELLED[(kind.name, to.name)]}
        return JsonResponse({"status": "COMPLETE", "results": [
            {"from": {"id": p["id"]}, "to": {"id": p["to_id"]}, "associationSpec": spec}],
            "requestedAt": now, "startedAt": now, "completedAt": now})

    async def associate_labelled(self, request: Request) -> Response:
        p = request.path_params
        kind, to = object_type(p["t"]), object_type(p["to"])
        try:
            specs = orjson.loads(await request.body())
            type_ids = [int(s["associationTypeId"]) for s in specs]
        except (orjson.JSONDecodeError, TypeError, KeyError, ValueError):
            raise validation_error("the body must be [{associationCategory, associationTypeId}]") from None
        self.store.associate(kind.name, p["id"], to.name, p["to_id"], type_ids)
        [found] = [a for a in self.store.associations(kind.name, p["id"], to.name)
                   if str(a["toObjectId"]) == p["to_id"]]
        return JsonResponse({"fromObjectTypeId": kind.type_id, "fromObjectId": int(p["id"]),
                             "toObjectTypeId": to.type_id, "toObjectId": int(p["to_id"]),
                             "labels": [t["label"] for t in found["associationTypes"] if t["label"]]},
                            status_code=201)

    async def dissociate(self, request: Request) -> Response:
        p = request.path_params
        self.store.dissociate(object_type(p["t"]).name, p["id"], object_type(p["to"]).name, p["to_id"])
        return Response(status_code=204)

    async def list_associations(self, request: Request) -> Response:
        p = request.path_params
        kind, to = object_type(p["t"]), object_type(p["to"])
        self.store.get(kind, p["id"])
        return JsonResponse({"results": self.store.associations(kind.name, p["id"], to.name)})

    async def batch_read_associations(self, request: Request) -> Response:
        """Objects without associations of that type come back as errors (207), the rest as
        results (`from`, `to[]`)."""
        p = request.path_params
        kind, to = object_type(p["t"]), object_type(p["to"])
        inputs = _list(await _json_object(request), "inputs")
        if len(inputs) > 1000:
            raise validation_error("Batch input limit exceeded: the maximum is 1000")
        results, errors = [], []
        for item in inputs:
            object_id = str(item.get("id") if isinstance(item, Mapping) else "")
            linked = self.store.associations(kind.name, object_id, to.name)
            if linked:
                results.append({"from": {"id": object_id}, "to": linked})
            else:
                errors.append(HubSpotApiError(
                    404, "OBJECT_NOT_FOUND", f"No {to.name} is associated with {kind.singular} "
                    f"{object_id}.", context={"fromObjectId": [object_id]},
                    subCategory="crm.associations.NO_ASSOCIATIONS_FOUND"))
        return _batch_response(results, errors, 200)

    async def unknown(self, request: Request) -> Response:
        raise HubSpotApiError(404, "OBJECT_NOT_FOUND", f"No such resource: {request.url.path}")

    # --- twin-only controls ---------------------------------------------------------------

    async def all_records(self, request: Request) -> Response:
        try:
            kind = object_type(request.path_params["t"])
        except HubSpotApiError as exc:
            return self.error(exc)
        records = []
        for archived in (False, True):
            for record in self.store.records(kind, archived):
                body = record.render(list(kind.properties))
                body["associations"] = {
                    other: self.store.associations(kind.name, record.id, other)
                    for other in ("deals", "companies") if other != kind.name}
                records.append(body)
        return JsonResponse(records)

    async def get_settings(self, request: Request) -> Response:
        return JsonResponse(dataclasses.asdict(self.settings))

    async def put_settings(self, request: Request) -> Response:
        try:
            changes = orjson.loads(await request.body())
            self.settings = dataclasses.replace(self.settings, **changes)
        except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
            return JsonResponse({"error": str(exc)}, status_code=400)
        return JsonResponse(dataclasses.asdict(self.settings))


def _batch_response(results: list[dict[str, Any]], errors: list[HubSpotApiError],
                    status: int) -> Response:
    now = iso_millis(datetime.now(UTC))
    body: dict[str, Any] = {"status": "COMPLETE", "results": results, "requestedAt": now,
                            "startedAt": now, "completedAt": now}
    if errors:
        body |= {"numErrors": len(errors), "errors": [e.batch_entry() | e.extra for e in errors]}
        status = 207
    return JsonResponse(body, status_code=status)


def _v3_type(kind: ObjectType, to: ObjectType, type_id: dict[str, Any]) -> str:
    base = f"{kind.singular}_to_{to.singular}"
    return base if type_id.get("label") else f"{base}_unlabeled"


def _set_properties(record: CrmObject) -> list[str]:
    """What create and update answer with: every property that has a value."""
    return [name for name, value in record.properties.items() if value is not None]


def _properties_param(request: Request) -> list[str] | None:
    names = _repeated(request, "properties")
    return names or None


def _repeated(request: Request, name: str) -> list[str]:
    """A list query parameter, repeated (`?p=a&p=b`, as the client sends it) or comma-separated."""
    return [part.strip() for value in request.query_params.getlist(name)
            for part in value.split(",") if part.strip()]


def _int(value: Any, default: int, name: str) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise validation_error(f"{name} must be a whole number, not {value!r}") from None


def _list(body: Mapping[str, Any], key: str) -> list[Any]:
    value = body.get(key) or []
    if not isinstance(value, list):
        raise validation_error(f"{key} must be a list")
    return value


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise validation_error("Invalid input JSON: the request body must be a JSON object")
    return body


def create_app(token: str = SANDBOX_TOKEN) -> ASGIApp:
    twin = HubSpotTwin(token)
    return build_twin(twin.routes(), twin.control, twin.reset, twin.error_response)
