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


def cash_payment_method(admin: TrytonRpc) -> int:
    """A payment method paying into the chart's "Cash and Cash Equivalents" (1.1.1), made
    once (as the admin)."""
    found = admin.model("account.invoice.payment.method", "search", [("name", "=", "Cash")],
                        0, 1, None)
    if found:
        return found[0]
    journal = admin.model("account.journal", "search", [("type", "=", "cash")], 0, 1, None)[0]
    cash = admin.model("account.account", "search", [("code", "=", "1.1.1")], 0, 1, None)[0]
    method, = admin.model("account.invoice.payment.method", "create", [{
        "name": "Cash", "company": admin.info.company_id, "journal": journal,
        "credit_account": cash, "debit_account": cash}])
    return method


def pay_in_full(rpc: TrytonRpc, invoice_id: int, method: int, on: Any) -> None:
    """The customer pays: Tryton's own Pay wizard, driven over JSON-RPC as its client does."""
    plain = rpc.client.context
    rpc.client.context = {**plain, "active_model": "account.invoice", "active_id": invoice_id,
                          "active_ids": [invoice_id]}  # a wizard works on the active record
    try:
        session, _, _ = rpc.client.call("wizard.account.invoice.pay.create")
        view = rpc.client.call("wizard.account.invoice.pay.execute", session, {}, "start")["view"]
        defaults = {k: v for k, v in view["defaults"].items() if not k.endswith(".")}  # not rec names
        start = {**defaults, "payment_method": method, "date": on}
        rpc.client.call("wizard.account.invoice.pay.execute", session, {"start": start}, "choice")
        rpc.client.call("wizard.account.invoice.pay.delete", session)
    finally:
        rpc.client.context = plain
