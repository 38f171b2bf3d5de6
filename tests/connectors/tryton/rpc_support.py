"""The connector's own JSON-RPC client, signed in as the sandbox's integration user, with the
small conveniences the sandbox tests use. Errors stay raw here (`call` raises handoff's
translation), so a test sees exactly what Tryton refused."""

from __future__ import annotations

from typing import Any

from handoff.connectors.tryton import jsonrpc
from handoff.connectors.tryton.sandbox import TrytonSandboxInfo
from handoff.connectors.tryton.settings import TrytonSettings


class TrytonRpc:
    def __init__(self, info: TrytonSandboxInfo) -> None:
        self.info = info
        self.client = jsonrpc.TrytonRpc(TrytonSettings(info.url, info.database, info.user,
                                                       info.password, max_concurrency=16))

    @property
    def context(self) -> dict[str, Any]:
        return self.client.context

    def login(self) -> int:
        """What Tryton's clients do: the user's preferences (company, employee, …) become the
        context of every later call. Returns the user's id."""
        preferences = self.client.call("model.res.user.get_preferences", True)
        self.client.context = preferences
        return self.client.call("model.res.user.search", [("login", "=", self.info.user)],
                                0, 1, None)[0]

    def model(self, model: str, method: str, *args: Any) -> Any:
        return self.client.call(f"model.{model}.{method}", *args)

    def read_one(self, model: str, record_id: int, fields: list[str]) -> dict[str, Any]:
        return self.model(model, "read", [record_id], fields)[0]

    def close(self) -> None:
        self.client.close()
