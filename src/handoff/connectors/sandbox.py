"""What every sandbox twin shares: fault injection, the control endpoint, serving.

A twin is a Starlette app that speaks one vendor's wire format. `with_faults(app)` wraps it
in an ASGI middleware that, per request and from a seeded RNG, may answer 429 with
Retry-After, answer 503 (also for every request during a maintenance window), add latency,
or let the request commit and then drop the connection before the response arrives ("lost
response"). Control, not part of the vendor API:

    GET  /_twin/faults        the fault plan in force
    PUT  /_twin/faults        replace it (JSON body: FaultPlan fields)
    GET  /_twin/stats         requests seen and faults injected, by kind
    GET  /_twin/requests      the last 1000 requests received, oldest first: method, path,
                              query, the `traceparent` and X-Correlation-Id headers, fault
    DELETE /_twin/requests    forget them (reset does too)
    POST /_twin/reset         empty the twin's records, counters and request log
    GET  /_twin/health        200 when serving
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTROL_PREFIX = "/_twin/"
RECEIVED_KEPT = 1000  # requests a twin remembers for GET /_twin/requests


@dataclass
class FaultPlan:
    throttle_rate: float = 0.0        # share of requests answered 429
    retry_after_seconds: float = 1.0  # Retry-After sent with a 429 (0: header left out)
    unavailable_rate: float = 0.0     # share answered 503
    lose_response_rate: float = 0.0   # share committed, then the connection dropped
    latency_ms: float = 0.0           # added to every request
    maintenance_until: float = 0.0    # epoch seconds; 503 for everything before it
    seed: int | None = None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> FaultPlan:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(body) - names - {"maintenance_seconds"}
        if unknown:
            raise ValueError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        values = {k: v for k, v in body.items() if k in names}
        if "maintenance_seconds" in body:
            values["maintenance_until"] = time.time() + float(body["maintenance_seconds"])
        return cls(**values)


@dataclass
class TwinControl:
    """Shared by a twin's routes and its fault middleware."""

    plan: FaultPlan = field(default_factory=FaultPlan)
    stats: Counter[str] = field(default_factory=Counter)
    rng: random.Random = field(default_factory=random.Random)
    received: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=RECEIVED_KEPT))
    _seq: int = 0

    def record(self, scope: Scope, fault: str | None) -> None:
        """Remember what arrived (faulted or not): what a trace of a deal shows on this side."""
        headers = dict(scope.get("headers") or ())
        self._seq += 1
        self.received.append({
            "seq": self._seq, "time": time.time(), "method": scope["method"], "path": scope["path"],
            "query": scope.get("query_string", b"").decode("latin-1"),
            "traceparent": _header(headers, b"traceparent"),
            "correlation_id": _header(headers, b"x-correlation-id"), "fault": fault})

    def replace_plan(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.rng = random.Random(plan.seed)

    def draw(self) -> str | None:
        """The fault for the next request, if any."""
        plan = self.plan
        if plan.maintenance_until > time.time():
            return "maintenance"
        roll = self.rng.random()
        for kind, rate in (
            ("throttle", plan.throttle_rate),
            ("unavailable", plan.unavailable_rate),
            ("lose_response", plan.lose_response_rate),
        ):
            if roll < rate:
                return kind
            roll -= rate
        return None


class FaultMiddleware:
    """Pure ASGI so a lost response can be a real dropped connection, not a 500."""

    def __init__(self, app: ASGIApp, control: TwinControl, error_response: Any) -> None:
        self.app = app
        self.control = control
        self.error_response = error_response  # (status, kind, retry_after) -> Response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        control = self.control
        control.stats["requests"] += 1
        if control.plan.latency_ms:
            await asyncio.sleep(control.plan.latency_ms / 1000)
        fault = control.draw()
        control.record(scope, fault)
        if fault:
            control.stats[fault] += 1
        if fault in ("throttle", "unavailable", "maintenance"):
            await self._refuse(fault, scope, receive, send)
        elif fault == "lose_response":
            await self.app(scope, receive, _swallow)
            await _drop_connection(send)
        else:
            await self.app(scope, receive, send)

    async def _refuse(self, fault: str, scope: Scope, receive: Receive, send: Send) -> None:
        retry_after = self.control.plan.retry_after_seconds if fault == "throttle" else None
        if fault == "maintenance":
            retry_after = max(0.0, self.control.plan.maintenance_until - time.time())
        status = 429 if fault == "throttle" else 503
        response = self.error_response(status, fault, retry_after)
        if retry_after:
            response.headers["Retry-After"] = str(max(1, round(retry_after)))
        await response(scope, receive, send)


def _header(headers: dict[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return value.decode("latin-1") if value is not None else None


async def _swallow(message: Message) -> None:
    return None


async def _drop_connection(send: Send) -> None:
    """Start a response that promises a body, then fail: the server closes the socket."""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"1024")]})
    raise ConnectionAbortedError("sandbox fault: response lost after commit")


def control_routes(control: TwinControl, reset: Any) -> list[Route]:
    async def get_faults(request: Request) -> Response:
        return JSONResponse(dataclasses.asdict(control.plan))

    async def put_faults(request: Request) -> Response:
        try:
            control.replace_plan(FaultPlan.from_json(await request.json()))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(dataclasses.asdict(control.plan))

    async def get_stats(request: Request) -> Response:
        return JSONResponse(dict(control.stats))

    async def post_reset(request: Request) -> Response:
        reset()
        control.stats.clear()
        control.received.clear()
        return Response(status_code=204)

    async def get_requests(request: Request) -> Response:
        return JSONResponse(list(control.received))

    async def forget_requests(request: Request) -> Response:
        control.received.clear()
        return Response(status_code=204)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return [
        Route("/_twin/faults", get_faults, methods=["GET"]),
        Route("/_twin/faults", put_faults, methods=["PUT"]),
        Route("/_twin/stats", get_stats, methods=["GET"]),
        Route("/_twin/requests", get_requests, methods=["GET"]),
        Route("/_twin/requests", forget_requests, methods=["DELETE"]),
        Route("/_twin/reset", post_reset, methods=["POST"]),
        Route("/_twin/health", health, methods=["GET"]),
    ]


def build_twin(routes: list[Route], control: TwinControl, reset: Any, error_response: Any) -> ASGIApp:
    """A twin app: vendor routes + control routes, wrapped in fault injection."""
    app = Starlette(routes=[*control_routes(control, reset), *routes])
    return FaultMiddleware(app, control, error_response)
