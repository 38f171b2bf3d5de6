"""The dashboard's pages, server-side: a reader signs in first; search finds a deal by any of
its ids or says what to try; a viewer's button press is refused on the page and changes
nothing; the SLA page shows provisioning time and invoice status freshness per day."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
import sqlalchemy as sa

from handoff.api import create_app
from handoff.bootstrap import build_worker
from handoff.config import PollSettings, Settings
from handoff.connectors.memory import MemoryCrm, MemoryErp
from handoff.engine.clock import utcnow
from handoff.engine.exceptions import open_exceptions
from handoff.engine.inbox import accept
from handoff.errors import PermanentError
from handoff.flows.slas import invoice_freshness, percentile, provisioning_times
from handoff.policy.roles import Roles
from handoff.store.db import Database
from handoff.store.tables import provisioning
from tests.factories import customer_data, customer_event, event, opportunity_data

TOKENS = {"vera-token-0123456789": "vera", "ivy-token-0123456789": "ivy"}
SETTINGS = Settings(poll=PollSettings(0, 0))


@pytest.fixture
def seeded(db: Database) -> Database:
    """006F fixed fee, provisioned and invoiced; 006D dead-lettered."""
    erp = MemoryErp()
    accept(db, customer_event(customer_data("001F")), utcnow())
    accept(db, event(opportunity_data("006F", "001F")), utcnow())
    build_worker(SETTINGS, db, MemoryCrm(), erp).run(until_idle=True)
    accept(db, event(opportunity_data("006D", "001F", billing_method="milestone")), utcnow())
    erp.faults.fail_next([PermanentError("the integration role lost its licence")])
    build_worker(SETTINGS, db, MemoryCrm(), erp).run(until_idle=True)
    return db


def signed_in(db: Database, user: str) -> httpx.AsyncClient:
    app = create_app(db, Roles(integrators=frozenset({"ivy"})), TOKENS)
    token = next(t for t, u in TOKENS.items() if u == user)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://handoff",
                             cookies={"handoff_token": token})


@pytest.mark.anyio
async def test_pages_need_a_signed_in_reader_and_a_wrong_token_is_told_so(seeded: Database) -> None:
    app = create_app(seeded, Roles(), TOKENS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://h") as anon:
        page = await anon.get("/dashboard/exceptions")
        assert page.status_code == 303
        assert page.headers["location"] == "/dashboard/login?next=/dashboard/exceptions"
        wrong = await anon.post("/dashboard/login", content=b"token=guess&next=/dashboard")
        assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
        right = await anon.post("/dashboard/login", content=b"token=vera-token-0123456789&next=/dashboard")
        assert right.status_code == 303 and "httponly" in right.headers["set-cookie"].lower()
        assert "samesite=strict" in right.headers["set-cookie"].lower()


@pytest.mark.anyio
async def test_search_finds_a_deal_by_invoice_number_or_says_what_to_try(seeded: Database) -> None:
    async with signed_in(seeded, "vera") as client:
        number = (await client.get("/trace/006F", headers={"authorization": "Bearer vera-token-0123456789"})
                  ).json()["documents"][0]["number"]
        found = await client.get("/dashboard/search", params={"q": number})
        assert found.status_code == 303 and found.headers["location"] == "/dashboard/deals/006F"
        page = (await client.get("/dashboard/deals/006F")).text
        assert "upsert_project" in page and number in page and "<time datetime=" in page
        missing = await client.get("/dashboard/search", params={"q": "nothing-here"})
        assert missing.status_code == 404 and "Try the CRM" in missing.text


@pytest.mark.anyio
async def test_a_viewer_pressing_replay_is_refused_on_the_page_and_nothing_changes(
        seeded: Database) -> None:
    with seeded.reading() as conn:
        [held] = open_exceptions(conn, ["dead_letter"])
    async with signed_in(seeded, "vera") as client:
        pressed = await client.post(f"/dashboard/exceptions/{held.id}/replay",
                                    content=b"back=/dashboard/exceptions")
        assert pressed.status_code == 303 and "vera%20may%20not%20operate" in pressed.headers["location"]
    with seeded.reading() as conn:
        assert [x.id for x in open_exceptions(conn, ["dead_letter"])] == [held.id]
    async with signed_in(seeded, "ivy") as client:
        pressed = await client.post(f"/dashboard/exceptions/{held.id}/replay",
                                    content=b"back=/dashboard/exceptions")
        assert "done=re-queued" in pressed.headers["location"]
    with seeded.reading() as conn:
        assert open_exceptions(conn, ["dead_letter"]) == []


@pytest.mark.anyio
async def test_the_sla_page_shows_p50_and_p95_per_day(seeded: Database) -> None:
    since = utcnow() - timedelta(days=1)
    with seeded.reading() as conn:
        [provisioned] = provisioning_times(conn, since)
        [fresh] = invoice_freshness(conn, since)
        state = conn.execute(sa.select(provisioning).where(provisioning.c.opportunity_id == "006F")).one()
    assert provisioned.count == 1 and provisioned.day == state.provisioned_at.date()
    assert provisioned.p50_seconds == (state.provisioned_at - state.released_at).total_seconds()
    assert fresh.count == 1 and fresh.p95_seconds >= 0
    async with signed_in(seeded, "vera") as client:
        page = (await client.get("/dashboard/slas")).text
        assert "Provisioning time (approved → project active)" in page and page.count("<polyline") == 4
        assert (await client.get("/dashboard/slas", params={"days": "0"})).status_code == 422


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile([7.0], 95)) == (50.0, 95.0, 7.0)


@pytest.mark.anyio
async def test_metrics_show_calls_retries_and_the_slas(seeded: Database) -> None:
    async with signed_in(seeded, "vera") as client:
        metrics = (await client.get("/metrics")).text
    assert 'handoff_calls_total{system="memory-erp",outcome="ok"}' in metrics
    assert 'handoff_calls_total{system="memory-erp",outcome="PermanentError"} 1' in metrics
    assert 'handoff_open_exceptions{kind="dead_letter"} 1' in metrics
    assert "handoff_provisioning_seconds_count 1" in metrics
    assert 'handoff_invoice_status_freshness_seconds{quantile="0.95"}' in metrics
