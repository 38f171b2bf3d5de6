"""Tryton's JSON-RPC on handoff's keep-alive transport: values, sessions, calls.

Tryton extends JSON with tagged objects for what JSON lacks — `{"__class__": "Decimal",
"decimal": "12.50"}`, dates, datetimes, timedeltas, bytes — and answers `{"id", "result"}` or
`{"id", "error": [name, args]}`. A session comes from `common.db.login` and travels as
`Authorization: Session base64(login:user_id:key)`; when it expires (401) the client logs in
again once.
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import threading
from decimal import Decimal
from typing import Any

import orjson

from handoff.connectors.keepalive import KeepAliveClient, TransportError
from handoff.connectors.pacing_adaptive import AdaptiveLimiter
from handoff.connectors.ports import RateBudget
from handoff.connectors.tryton.errors import TrytonRpcError, from_http_status, translate
from handoff.connectors.tryton.settings import TrytonSettings


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=encode, option=orjson.OPT_PASSTHROUGH_DATETIME)


def encode(value: Any) -> Any:
    """Python values as Tryton's JSON expects them: orjson's `default` hook, with
    OPT_PASSTHROUGH_DATETIME so dates come here rather than out as ISO text."""
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dt.datetime):  # Tryton keeps naive UTC
        value = value.astimezone(dt.UTC) if value.tzinfo else value
        return {"__class__": "datetime", "year": value.year, "month": value.month,
                "day": value.day, "hour": value.hour, "minute": value.minute,
                "second": value.second, "microsecond": value.microsecond}
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, dt.timedelta):
        return {"__class__": "timedelta", "seconds": value.total_seconds()}
    if isinstance(value, bytes):
        return {"__class__": "bytes", "base64": base64.b64encode(value).decode()}
    raise TypeError(f"cannot send {type(value).__name__} to Tryton")


def decode(value: Any) -> Any:
    """Tryton's tagged objects back into Python values, recursively."""
    if isinstance(value, list):
        return [decode(v) for v in value]
    if not isinstance(value, dict):
        return value
    kind = value.get("__class__")
    if kind is None:
        return {k: decode(v) for k, v in value.items()}
    return _DECODERS[kind](value) if kind in _DECODERS else value


_DECODERS = {
    "Decimal": lambda v: Decimal(v["decimal"]),
    "date": lambda v: dt.date(v["year"], v["month"], v["day"]),
    "datetime": lambda v: dt.datetime(v["year"], v["month"], v["day"], v.get("hour", 0),
                                      v.get("minute", 0), v.get("second", 0),
                                      v.get("microsecond", 0), tzinfo=dt.UTC),
    "timedelta": lambda v: dt.timedelta(seconds=v["seconds"]),
    "bytes": lambda v: base64.b64decode(v["base64"]),
}


def vendor_budget(max_concurrency: int) -> RateBudget:
    """Tryton sets no rate limit; the server's own capacity does (`max_concurrency`)."""
    return RateBudget(requests=None, window_seconds=None, concurrency=max_concurrency,
                      source="Tryton: no published limit; [systems.tryton] max_concurrency")


class TrytonRpc:
    """Calls on one database as one user; safe to share between threads."""

    def __init__(self, settings: TrytonSettings, limiter: AdaptiveLimiter | None = None) -> None:
        self.settings = settings
        self.context: dict[str, Any] = dict(settings.context)  # the company joins it once known
        self._http = KeepAliveClient(settings.url, timeout=settings.timeout,
                                     max_idle=settings.max_connections)
        self._ids = itertools.count(1)
        self._session: str | None = None
        self._login_lock = threading.Lock()
        self._limiter = limiter or AdaptiveLimiter(vendor_budget(settings.max_concurrency))

    def call(self, method: str, *params: Any) -> Any:
        """`model.party.party.search`, … with positional params; the context is added."""
        with self._limiter.slot():  # a 429 from a proxy in front slows the connector down
            session = self._session or self._login(None)
            try:
                return self._post(method, [*params, self.context], session)
            except _SessionExpired:
                return self._post(method, [*params, self.context], self._login(session))

    def close(self) -> None:
        self._http.close()

    def _login(self, expired: str | None) -> str:
        """One login at a time; a thread that waited reuses the session another just made."""
        with self._login_lock:
            if self._session is None or self._session == expired:
                user_id, key, *_ = self._post("common.db.login", [
                    self.settings.user, {"password": self.settings.password}, "en"], None)
                token = f"{self.settings.user}:{user_id}:{key}".encode()
                self._session = "Session " + base64.b64encode(token).decode()
            return self._session

    def _post(self, method: str, params: list[Any], session: str | None) -> Any:
        body = dumps({"id": next(self._ids), "method": method, "params": params})
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "Accept-Encoding": "gzip"} | ({"Authorization": session} if session else {})
        try:
            reply = self._http.request("POST", f"{self.settings.database}/rpc/", body=body,
                                       headers=headers)
        except TransportError as exc:
            raise translate(exc) from exc
        if reply.status == 401 and session is not None:
            raise _SessionExpired
        if reply.status != 200:
            raise from_http_status(reply.status, reply.headers, reply.data, method)
        answer = orjson.loads(reply.data)
        if answer.get("error") is not None:
            raise TrytonRpcError(method, answer["error"]).translated()
        return decode(answer.get("result"))


class _SessionExpired(Exception):
    """Tryton refused the session (it times out when unused): log in again, once."""
