"""Operating over HTTP with roles: a viewer reads and is refused every action (nothing
changes); an integrator replays a dead letter and resolves a parked deal; an admin makes and
revokes tokens, kept only as hashes; a deal is provisioned again as a 202 command; every
action is in the audit log. Over a real ASGI stack, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

import httpx
import pytest
import sqlalchemy as sa

from handoff.api import create_app
from handoff.bootstrap import build_worker
from handoff.config import PollSettings, Settings
from handoff.connectors.memory import MemoryCrm, MemoryErp
from handoff.engine.clock import utcnow
from handoff.engine.inbox import accept
from handoff.errors import PermanentError
from handoff.policy.roles import Roles
from handoff.store.db import Database
from handoff.store.tables import api_tokens, audit_log, exceptions
from tests.factories import customer_data, customer_event, event, opportunity_data

ROLES = Roles(integrators=frozenset({"ivy"}), admins=frozenset({"ada"}))
TOKENS = {"viewer-token-0123456789": "vera", "integrator-token-0123456789": "ivy",
          "admin-token-0123456789": "ada"}
SETTINGS = Settings(poll=PollSettings(0, 0))


def as_(user: str) -> dict[str, str]:
    token = next(t for t, u in TOKENS.items() if u == user)
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def dead_letter(db: Database) -> MemoryErp:
    """Deal 006D dead-lettered: the ERP refused the integration user."""
    erp = MemoryErp()
    accept(db, customer_event(customer_data("001D")), utcnow())
    accept(db, event(opportunity_data("006D", "001D", billing_method="milestone")), utcnow())
    erp.faults.fail_next([PermanentError("the integration role lost its licence")])
    build_worker(SETTINGS, db, MemoryCrm(), erp).run(until_idle=True)
    return erp


@pytest.fixture
def client(db: Database) -> httpx.AsyncClient:
    app = create_app(db, ROLES, TOKENS)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://handoff")


def audit_actions(db: Database) -> list[tuple[str, str]]:
    with db.reading() as conn:
        return [(r.actor, r.action) for r in conn.execute(sa.select(audit_log).order_by(audit_log.c.seq))]


@pytest.mark.anyio
async def test_a_viewer_reads_but_every_action_is_refused_and_changes_nothing(
        db: Database, dead_letter: MemoryErp, client: httpx.AsyncClient) -> None:
    [letter] = (await client.get("/dead-letters", headers=as_("vera"))).json()
    assert letter["business_key"] == "opportunity:006D" and "licence" in letter["message"]
    before = audit_actions(db)
    for method, url, body in [("POST", f"/dead-letters/{letter['id']}/replay", None),
                              ("POST", "/dead-letters/replay", {}),
                              ("POST", f"/exceptions/{letter['id']}/resolve", {"reason": "x"}),
                              ("POST", "/deals/006D/provision", None),
                              ("POST", "/tokens", {"user": "mallory", "roles": ["admin"]}),
                              ("GET", "/tokens", None)]:
        refused = await client.request(method, url, json=body, headers=as_("vera"))
        assert refused.status_code == 403, (url, refused.text)
        assert "vera may not" in refused.json()["error"]["message"]
    still = (await client.get("/dead-letters", headers=as_("vera"))).json()
    assert [x["id"] for x in still] == [letter["id"]]
    assert audit_actions(db) == before
    with db.reading() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(api_tokens)).scalar() == 0


@pytest.mark.anyio
async def test_an_integrator_replays_a_dead_letter_and_the_deal_is_provisioned(
        db: Database, dead_letter: MemoryErp, client: httpx.AsyncClient) -> None:
    [letter] = (await client.get("/exceptions?kind=dead_letter", headers=as_("ivy"))).json()
    replayed = await client.post(f"/dead-letters/{letter['id']}/replay", headers=as_("ivy"))
    assert replayed.status_code == 200 and replayed.json() == {"requeued": ["opportunity:006D"]}
    again = await client.post(f"/dead-letters/{letter['id']}/replay", headers=as_("ivy"))
    assert again.status_code == 404
    build_worker(SETTINGS, db, MemoryCrm(), dead_letter).run(until_idle=True)
    status = (await client.get("/deals/006D/status", headers=as_("vera"))).json()
    assert status["status"] == "provisioned" and status["project_id"]
    assert ("ivy", "exception.replayed") in audit_actions(db)

    command = await client.post("/deals/006D/provision", headers=as_("ivy"))
    assert command.status_code == 202 and command.headers["location"] == "/deals/006D/status"
    assert (await client.get(command.headers["location"], headers=as_("vera"))).json()["queued"] is True
    assert (await client.post("/deals/nope/provision", headers=as_("ivy"))).status_code == 404
    assert ("ivy", "provisioning.requested") in audit_actions(db)


@pytest.mark.anyio
async def test_resolving_needs_a_reason_and_closes_without_requeueing(
        db: Database, dead_letter: MemoryErp, client: httpx.AsyncClient) -> None:
    [letter] = (await client.get("/exceptions", headers=as_("ivy"))).json()
    url = f"/exceptions/{letter['id']}/resolve"
    blank = await client.post(url, json={"reason": " "}, headers=as_("ivy"))
    assert blank.status_code == 422 and blank.json()["error"]["field"] == "reason"
    done = await client.post(url, json={"reason": "deal withdrawn"}, headers=as_("ivy"))
    assert done.status_code == 200
    assert (await client.get("/exceptions", headers=as_("ivy"))).json() == []
    with db.reading() as conn:
        resolution = conn.execute(sa.select(exceptions.c.resolution)).scalar_one()
    assert resolution == "resolved"
    wrong = await client.get("/exceptions?kind=lost", headers=as_("ivy"))
    assert wrong.status_code == 422 and wrong.json()["error"]["field"] == "kind"


@pytest.mark.anyio
async def test_an_admin_makes_a_token_kept_as_a_hash_that_works_until_revoked(
        db: Database, client: httpx.AsyncClient) -> None:
    made = await client.post("/tokens", json={"user": "paul", "roles": ["approver", "viewer"]},
                             headers=as_("ada"))
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    with db.reading() as conn:
        row = conn.execute(sa.select(api_tokens)).one()
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() and token not in str(row._mapping)
    paul = {"authorization": f"Bearer {token}"}
    assert (await client.get("/amendments", headers=paul)).status_code == 200
    listed = (await client.get("/tokens", headers=as_("ada"))).json()
    assert listed[0]["roles"] == ["approver", "viewer"] and "token" not in listed[0]
    bad = await client.post("/tokens", json={"user": "x", "roles": ["root"]}, headers=as_("ada"))
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "roles.0"
    assert "'viewer', 'integrator', 'approver' or 'admin'" in bad.json()["error"]["message"]
    revoked = await client.post(f"/tokens/{made.json()['id']}/revoke", headers=as_("ada"))
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert (await client.get("/amendments", headers=paul)).status_code == 401
    assert [a for a in audit_actions(db) if a[1].startswith("token.")] == [
        ("ada", "token.created"), ("ada", "token.revoked")]


@pytest.mark.anyio
async def test_ready_when_the_schema_is_current_and_a_deal_is_found_by_invoice_number(
        db: Database, client: httpx.AsyncClient) -> None:
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    accept(db, customer_event(customer_data("001F")), utcnow())
    accept(db, event(opportunity_data("006F", "001F")), utcnow())  # a fixed fee: invoiced
    erp = MemoryErp()
    build_worker(SETTINGS, db, MemoryCrm(), erp).run(until_idle=True)
    number = next(iter(erp.invoices.values())).number
    assert "/" in number  # INV/0001: a business id may hold a slash
    lineage = (await client.get(f"/trace/{number}", headers=as_("vera"))).json()
    assert lineage["opportunity_id"] == "006F"
