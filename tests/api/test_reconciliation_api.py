"""`/reconciliation`, `/metrics` and the dashboard's reconciliation page over a real ASGI
stack, reading the Salesforce and NetSuite twins: a run started over HTTP answers 202 with
its URL, finds a payment the CRM was not told of, and the finding is repaired or
acknowledged only by a known user."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from handoff.api import create_app
from handoff.policy.roles import Roles
from handoff.store.db import Database
from tests.connectors.netsuite_support import pay
from tests.reconcile.twin_lifecycle import Lifecycle, invoice_id, netsuite, provisioned

TOKENS = {"fin-ops-token-0123456789": "fin.ops"}
AUTH = {"authorization": "Bearer fin-ops-token-0123456789"}
ANONYMOUS = {"authorization": ""}


@pytest.fixture
def lifecycle(db: Database, salesforce_twin: Any, netsuite_twin: Any, tmp_path: Path) -> Any:
    lifecycle = provisioned(db, salesforce_twin, netsuite_twin, tmp_path, 3)
    yield lifecycle
    lifecycle.close()


@pytest.fixture
def client(lifecycle: Lifecycle) -> httpx.AsyncClient:
    app = create_app(lifecycle.db, Roles(integrators=frozenset({"fin.ops"})), tokens=TOKENS,
                     systems=lifecycle.systems,
                     reconcile=lifecycle.config.reconcile)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://handoff",
                             headers=AUTH)


async def finished(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = (await client.get(url)).json()
        if body.get("run", {}).get("status") != "running":
            return body
        time.sleep(0.1)
    raise AssertionError(f"{url} still running after 30 s")


@pytest.mark.anyio
async def test_a_run_over_http_finds_a_stale_status_that_a_user_repairs(
        lifecycle: Lifecycle, client: httpx.AsyncClient, netsuite_twin: Any) -> None:
    deal = lifecycle.deals[1]
    with netsuite(netsuite_twin) as ns:
        pay(netsuite_twin, invoice_id(ns, deal), "1.00")
    assert (await client.post("/reconciliation/runs", headers=ANONYMOUS)).status_code == 401
    started = await client.post("/reconciliation/runs", headers=AUTH)
    assert started.status_code == 202 and started.headers["location"] == started.json()["status_url"]
    body = await finished(client, started.headers["location"])
    assert body["run"]["status"] == "done" and body["run"]["counts"]["stale_invoice_status"] == 1
    [finding] = body["findings"]
    assert (finding["deal_id"], finding["kind"], finding["acknowledged"]) == (
        deal, "stale_invoice_status", None)
    assert finding["amounts"]["paid"] == "1.00" and finding["amounts"]["crm_paid"] == "0.00"

    metrics = (await client.get("/metrics")).text
    assert 'handoff_reconciliation_discrepancies{kind="stale_invoice_status"} 1' in metrics
    assert 'handoff_reconciliation_discrepancies{kind="orphan_project"} 0' in metrics
    assert "handoff_reconciliation_unacknowledged 1" in metrics

    url = f"/reconciliation/findings/{deal}/stale_invoice_status"
    assert (await client.post(f"{url}/repair", headers=ANONYMOUS)).status_code == 401
    unknown = await client.post(f"/reconciliation/findings/{deal}/over_billed/repair", headers=AUTH)
    assert unknown.status_code == 404 and "found no over_billed" in unknown.json()["error"]["message"]
    repaired = await client.post(f"{url}/repair", headers=AUTH)
    assert repaired.status_code == 200 and "read from the ERP again" in repaired.json()["done"]
    lifecycle.work()
    again = await finished(client, (await client.post("/reconciliation/runs", headers=AUTH))
                           .headers["location"])
    assert again["run"]["total"] == 0 and again["findings"] == []
    trend = (await client.get("/reconciliation/runs")).json()
    assert [r["total"] for r in trend] == [0, 1]


@pytest.mark.anyio
async def test_an_acknowledged_finding_shows_who_and_why_on_the_dashboard(
        lifecycle: Lifecycle, client: httpx.AsyncClient) -> None:
    client.cookies.set("handoff_token", "fin-ops-token-0123456789")
    empty = (await client.get("/dashboard/reconciliation")).text
    assert "No reconciliation has run yet" in empty and "handoff reconcile" in empty
    lifecycle.crm.update_opportunity(lifecycle.deals[2], {"CurrencyIsoCode": "EUR"})
    assert lifecycle.reconciled() == {
        (lifecycle.deals[2], "currency_mismatch"): "the CRM deal is in EUR but the ERP project is in "
        "USD and its billing is in USD, so their amounts cannot be compared"}
    url = f"/reconciliation/findings/{lifecycle.deals[2]}/currency_mismatch/acknowledge"
    refused = await client.post(url, headers=AUTH, json={"reason": "  "})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "reason"
    done = await client.post(url, headers=AUTH, json={"reason": "rebooked in EUR next week"})
    assert done.status_code == 200 and done.json()["by"] == "fin.ops"
    page = (await client.get("/dashboard/reconciliation")).text
    assert "currency mismatch" in page and "fin.ops: rebooked in EUR next week" in page
    assert "<svg" in page and "1 discrepancies, 1 acknowledged" in page
    latest = (await client.get("/reconciliation/runs/latest")).json()
    assert latest["findings"][0]["acknowledged"]["reason"] == "rebooked in EUR next week"
    assert "handoff_reconciliation_unacknowledged 0" in (await client.get("/metrics")).text
