"""Against a real Tryton: deals become exactly one project each and their billable
milestones posted invoices to the cent, through redelivery and a worker killed mid-run.

Tryton posts an invoice in about a second (its own work: moves, sequences, checks), so a
quarter of the deals reach a billable milestone; the rest prove provisioning. handoff's own
database is SQLite here: PostgreSQL's part in the crash tests is proven with the twins."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from handoff.connectors.salesforce import SalesforceConnector, SalesforceSettings
from handoff.connectors.tryton.client import TrytonConnector
from handoff.demo import scenario
from handoff.demo.processes import HandoffProcess
from handoff.demo.run import secrets_for, write_config
from handoff.engine.clock import utcnow
from handoff.engine.exceptions import open_exceptions
from handoff.engine.inbox import accept
from handoff.store import open_database
from handoff.store.db import Database
from handoff.store.tables import hops, invoices
from tests.conftest import reset_twin
from tests.e2e.harness import provisioned, wait_until

DEALS = 200
BILLABLE_EVERY = 4  # every fourth deal has its first milestone achieved
USD_ONLY = [("US01", "US-CA", "USD"), ("US01", "US-NY", "USD")]


def seeded(sf, count: int, rng: random.Random,
           ) -> tuple[list[dict[str, Any]], list[str], list[dict[str, Any]]]:
    """`count` won USD deals in the CRM twin, billed by milestone: their events (each change
    twice, stale versions mixed in), their ids, and the data of those with a billable
    milestone."""
    reset_twin(sf)
    crm = SalesforceConnector(SalesforceSettings(sf.base_url, session_id="SANDBOX_SESSION",
                                                 ca_file=sf.ca_file))
    since = datetime.now(UTC) - timedelta(hours=1)
    scenario.seed_crm(crm, [scenario.Deal(n, scenario.Fate.CLEAN) for n in range(count)], rng,
                      entities=USD_ONLY)
    customers = list(crm.changed_accounts(since))
    opportunities = [scenario.with_schedule(o) for o in crm.changed_opportunities(since)]
    crm.close()
    events = scenario.deliveries(customers, opportunities, rng, copies=2, stale_share=0.5)
    billable = opportunities[::BILLABLE_EVERY]
    events += [scenario.milestone_event(o["id"], "M1") for o in billable] * 2
    rng.shuffle(events)
    return events, [o["id"] for o in opportunities], billable


def take_in(database_url: str, events: list[dict[str, Any]]) -> None:
    db = open_database(database_url)
    for body in events:
        accept(db, body, utcnow())
    db.dispose()


def invoiced(db: Database) -> int:
    with db.reading() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(invoices)).scalar_one()


def works_by_external_id(tryton: TrytonConnector, prefix: str) -> Counter[str]:
    """How many works carry each of handoff's external ids starting with `prefix`."""
    records = tryton.rpc.call("model.project.work.search_read",
                              [("comment", "like", f"[handoff {prefix}%")], 0, None, None,
                              ["comment"])
    return Counter(r["comment"].removeprefix("[handoff ").split("]", 1)[0] for r in records)


def posted_invoices(tryton: TrytonConnector, deals: list[str]) -> dict[str, Decimal]:
    """The customer invoices of these deals by reference; each must be posted, and once."""
    records = tryton.rpc.call("model.account.invoice.search_read",
                              [("type", "=", "out"), ("reference", "like", "HO-I-%")], 0, None,
                              None, ["reference", "state", "total_amount"])
    ours = [r for r in records if r["reference"].rsplit("-", 1)[0].removeprefix("HO-I-") in deals]
    assert {r["state"] for r in ours} == {"posted"}
    references = Counter(r["reference"] for r in ours)
    assert max(references.values()) == 1, "a milestone was invoiced twice"
    return {r["reference"]: r["total_amount"] for r in ours}


@pytest.mark.slow
def test_deals_become_one_project_and_posted_invoices_to_the_cent(
        salesforce_twin, tryton_server, tryton, tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'handoff.db'}"
    events, deals, billable = seeded(salesforce_twin, DEALS, random.Random(4))
    take_in(database_url, events)
    info = tryton_server.info
    env = {**secrets_for(info), "HANDOFF_DATABASE_URL": database_url,
           "HANDOFF_CONFIG": str(write_config(tmp_path, database_url, salesforce_twin, info,
                                              lease_seconds=2))}
    db = open_database(database_url)
    with HandoffProcess(["worker"], env) as first:
        wait_until(lambda: len(provisioned(db)) >= DEALS // 4, 240, "a quarter provisioned")
        first.kill()
    assert invoiced(db) < len(billable), "the kill came too late to prove anything"
    with HandoffProcess(["worker", "--until-idle"], env) as second:
        assert second.process is not None and second.process.wait(timeout=600) == 0

    projects = works_by_external_id(tryton, "HO-P-")
    assert {deal: projects[f"HO-P-{deal}"] for deal in deals} == dict.fromkeys(deals, 1)
    tasks = works_by_external_id(tryton, "HO-M-")
    assert {o["id"]: tasks[f"HO-M-{o['id']}-M1"] for o in billable} == {
        o["id"]: 1 for o in billable}
    planned = {f"HO-I-{o['id']}-M1": Decimal(o["milestones"][0]["amount"]) for o in billable}
    assert posted_invoices(tryton, deals) == planned
    with db.reading() as conn:
        assert open_exceptions(conn) == []
        held = {r.external_id: r.total for r in conn.execute(sa.select(invoices))}
    assert held == planned
    with salesforce_twin.control() as control:
        crm = control.get("/_twin/records/Opportunity").json()
    assert all(r["Handoff_Project_Id__c"] for r in crm)
    assert {r["Id"]: Decimal(str(r["Handoff_Invoiced_Amount__c"])) for r in crm
            if r.get("Handoff_Invoiced_Amount__c") is not None} == {
        o["id"]: Decimal(o["milestones"][0]["amount"]) for o in billable}
    db.dispose()


@pytest.mark.slow
def test_a_tryton_validation_error_parks_the_deal_with_trytons_message(
        db, tryton, salesforce_twin) -> None:
    """A deal whose customer cannot be invoiced (Tryton demands an invoice address, and the
    customer's was archived in Tryton) is parked once, with Tryton's own words in its
    lineage; nothing is retried forever."""
    from handoff.bootstrap import build_worker
    from handoff.config import Settings
    from handoff.connectors.memory import MemoryCrm
    from tests.factories import SCHEDULE, customer_data, customer_event, event, opportunity_data

    deal, account = f"006T{uuid.uuid4().hex[:8]}", f"001T{uuid.uuid4().hex[:8]}"
    accept(db, customer_event(customer_data(account)), utcnow())
    accept(db, event(opportunity_data(deal, account, billing_method="milestone",
                                      milestones=SCHEDULE)), utcnow())
    accept(db, scenario.milestone_event(deal, "M1"), utcnow())
    worker = build_worker(Settings(), db, MemoryCrm(), tryton)
    worker.run(until_idle=True)  # provisioned: the party now exists in Tryton …
    party = tryton.find("party.party", f"HO-C-{account}")
    addresses = tryton.rpc.call("model.party.address.search", [("party", "=", party)], 0, None, None)
    tryton.rpc.call("model.party.address.write", addresses, {"active": False})  # … and its address
    accept(db, scenario.milestone_event(deal, "M2"), utcnow())
    worker.run(until_idle=True)
    with db.reading() as conn:
        [parked] = [x for x in open_exceptions(conn) if x.business_key == f"billing:{deal}"]
        failed = conn.execute(sa.select(hops.c.detail).where(
            hops.c.step == "issue_invoice", hops.c.outcome == "BusinessRuleError")).scalars()
        details = list(failed)
    assert parked.kind == "parked" and parked.attempts == 1
    assert 'A value is required for field "Invoice Address"' in parked.message
    assert len(details) == 1 and "Invoice Address" in details[0]
