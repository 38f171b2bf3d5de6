"""A bare Tryton JSON-RPC client, enough to check the sandbox serves what integrations need.

Tryton's JSON-RPC: `{"id", "method", "params"}` POSTed to `/<database>/rpc/`; model calls are
`model.<model>.<method>` with the context as the last parameter; a failure is an answer with
`error` (HTTP 200). Decimal, date and timedelta travel as `{"__class__": ...}` objects."""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
from decimal import Decimal
from typing import Any

import httpx

from handoff.connectors.tryton.sandbox import TrytonSandboxInfo


def encode(value: object) -> dict[str, Any]:
    if isinstance(value, Decimal):
        return {"__class__": "Decimal", "decimal": str(value)}
    if isinstance(value, dt.datetime):
        raise TypeError("send datetimes as Tryton's datetime objects when needed")
    if isinstance(value, dt.date):
        return {"__class__": "date", "year": value.year, "month": value.month, "day": value.day}
    if isinstance(value, dt.timedelta):
        return {"__class__": "timedelta", "seconds": value.total_seconds()}
    raise TypeError(f"cannot send {type(value).__name__} to Tryton")


def decode(obj: dict[str, Any]) -> Any:
    kind = obj.get("__class__")
    if kind == "Decimal":
        return Decimal(obj["decimal"])
    if kind == "date":
        return dt.date(obj["year"], obj["month"], obj["day"])
    if kind == "timedelta":
        return dt.timedelta(seconds=obj["seconds"])
    return obj


class TrytonRpc:
    def __init__(self, info: TrytonSandboxInfo) -> None:
        self.info = info
        self.http = httpx.Client(timeout=30.0)
        self.ids = itertools.count(1)
        self.authorization: str | None = None
        self.context: dict[str, Any] = {}

    def login(self) -> int:
        """common.db.login answers [user id, session, bus url]; later calls send both back."""
        user_id, session, _ = self.call("common.db.login", self.info.user, {"password": self.info.password})
        token = base64.b64encode(f"{self.info.user}:{user_id}:{session}".encode()).decode()
        self.authorization = f"Session {token}"
        # What Tryton clients do: the user's preferences (company, employee, ...) are the context
        self.context = self.call("model.res.user.get_preferences", True, {})
        return user_id

    def call(self, method: str, *params: Any) -> Any:
        headers = {"Content-Type": "application/json"}
        if self.authorization:
            headers["Authorization"] = self.authorization
        body = json.dumps({"id": next(self.ids), "method": method, "params": list(params)}, default=encode)
        response = self.http.post(self.info.rpc_url, content=body, headers=headers)
        response.raise_for_status()
        answer = json.loads(response.text, object_hook=decode)
        if "error" in answer:
            raise AssertionError(f"{method}: {answer['error']}")
        return answer["result"]

    def model(self, model: str, method: str, *args: Any) -> Any:
        return self.call(f"model.{model}.{method}", *args, self.context)

    def read_one(self, model: str, record_id: int, fields: list[str]) -> dict[str, Any]:
        return self.model(model, "read", [record_id], fields)[0]

    def close(self) -> None:
        self.http.close()
