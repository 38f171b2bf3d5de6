"""The lifecycle against a real Tryton and the Salesforce twin: a fixed-fee, a milestone and a
time-and-materials deal from closed-won to paid, with a scope change in the middle that the
CRM sends ten times and an approver applies. Tryton ends with the approved values, its
invoices and credit notes add up to the approved terms to the cent, the CRM shows billed,
paid and open, and the audit chain verifies. And milestones delivery sets done in Tryton,
which sends no event, are found by the scheduled poll."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from handoff.bootstrap import build_worker
from handoff.config import PollSettings, Settings
from handoff.connectors.salesforce.mapping import wire_amount
from handoff.connectors.tryton.client import TrytonConnector
from handoff.engine.clock import utcnow
from handoff.engine.inbox import accept
from handoff.engine.retry import RetryPolicy
from handoff.flows import amendments
from handoff.flows.polling import delivery_poll
from handoff.policy.roles import Roles
from handoff.store import audit, open_database
from handoff.store.db import Database
from handoff.store.terms import pending_amendments
from tests.connectors.salesforce_helpers import connector, fresh
from tests.connectors.tryton.rpc_support import TrytonRpc, cash_payment_method, pay_in_full
from tests.e2e.sales_team import Crm, own_tryton
from tests.factories import milestone_data, milestone_event, time_entry_data, time_entry_event

ROLES = Roles(approvers=frozenset({"carol"}))
SETTINGS = Settings(retry=RetryPolicy(base_seconds=0.05, cap_seconds=0.5, max_attempts=6),
                    roles=ROLES, poll=PollSettings(crm_minutes=0))
SCHEDULE = [("M1", "Discovery", "30000.00"), ("M2", "Build", "60000.00"),
            ("M3", "Go-live", "30000.00")]
AMENDED = [("M1", "Discovery", "30000.00"), ("M2", "Build", "70000.00"),
           ("M3", "Go-live", "30000.00"), ("M4", "Data migration", "20000.00")]
LAST_MONTH = dt.date.today().replace(day=1) - dt.timedelta(days=5)


tryton_server = pytest.fixture(scope="module", name="tryton_server")(own_tryton)




def run(db: Database, crm: Crm, tryton: TrytonConnector) -> None:
    build_worker(SETTINGS, db, crm.sf, tryton).run(until_idle=True)


def documents(tryton: TrytonConnector, opp_id: str) -> dict[str, Decimal]:
    """Tryton's posted invoices and credit notes of a deal, by handoff's reference."""
    found = tryton.rpc.call("model.account.invoice.search_read",
                            [("reference", "like", f"HO-%-{opp_id}-%"), ("state", "!=", "draft")],
                            0, None, None, ["reference", "total_amount"])
    return {r["reference"].split(f"-{opp_id}-")[1]: Decimal(r["total_amount"]) for r in found}


def test_three_deals_on_tryton_from_closed_won_to_paid_through_an_amendment(
        tmp_path, salesforce_twin, tryton: TrytonConnector, tryton_admin: TrytonRpc) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'handoff.db'}")
    crm = Crm(connector(fresh(salesforce_twin)), db)
    ff = crm.won("Fixed-fee rollout", "50000.00", "Fixed Fee")
    ms = crm.won("Milestone programme", "120000.00", "Milestone")
    tm = crm.won("Advisory retainer", "40000.00", "Time and Materials")
    crm.send(ff), crm.send(ms, SCHEDULE), crm.send(tm)
    accept(db, milestone_event(milestone_data(ms, "M1")), utcnow())
    for entry, hours in (("T1", "6"), ("T2", "4.5")):
        accept(db, time_entry_event(time_entry_data(tm, entry, LAST_MONTH.isoformat(), hours)),
               utcnow())
    run(db, crm, tryton)
    assert documents(tryton, ff) == {"fee": Decimal("50000.00")}
    assert documents(tryton, ms) == {"M1": Decimal("30000.00")}
    assert list(documents(tryton, tm).values()) == [Decimal("1575.00")]

    for n in range(10):  # the CRM sends the bigger scope ten times: nothing reaches Tryton
        crm.send(ms, AMENDED, Amount=wire_amount(Decimal("150000.00")),
                 Description=f"scope v2, edit {n}")
    crm.send(ff, Amount=wire_amount(Decimal("45000.00")))
    run(db, crm, tryton)
    project = tryton.find("project.work", f"HO-P-{ms}")
    comment = tryton.rpc.call("model.project.work.read", [project], ["comment"])[0]["comment"]
    assert "120000.00 USD" in comment and "150000.00" not in comment
    assert "AM-" in crm.shown(ms)["Handoff_Status_Detail__c"]
    assert "awaits approval" in crm.shown(ms)["Handoff_Status_Detail__c"]
    with db.reading() as conn:
        pending = {a.opportunity_id: a.id for a in pending_amendments(conn)}
    assert set(pending) == {ms, ff}

    for deal_id in (ms, ff):
        amendments.approve(db, pending[deal_id], "carol", ROLES, "change order signed", utcnow())
    for milestone in ("M2", "M3", "M4"):
        accept(db, milestone_event(milestone_data(ms, milestone)), utcnow())
    run(db, crm, tryton)
    comment = tryton.rpc.call("model.project.work.read", [project], ["comment"])[0]["comment"]
    assert "150000.00 USD" in comment
    assert documents(tryton, ms) == {i: Decimal(a) for i, _, a in AMENDED}
    assert documents(tryton, ff) == {"fee": Decimal("50000.00"), "fee#2": Decimal("-5000.00")}

    method = cash_payment_method(tryton_admin)
    for deal_id in (ff, ms, tm):
        for invoice_id in tryton.rpc.call("model.account.invoice.search", [
                ("reference", "like", f"HO-%-{deal_id}-%"), ("state", "=", "posted")], 0, None, None):
            pay_in_full(tryton_admin, invoice_id, method, dt.date.today())
    run(db, crm, tryton)  # the refresh schedule reads the paid invoices back
    expected = {ff: "45000.00", ms: "150000.00", tm: "1575.00"}
    for deal_id, amount in expected.items():
        shown = crm.shown(deal_id)
        assert (Decimal(str(shown["Handoff_Invoiced_Amount__c"])),
                Decimal(str(shown["Handoff_Paid_Amount__c"])),
                Decimal(str(shown["Handoff_Open_Balance__c"]))) == (
            Decimal(amount), Decimal(amount), Decimal(0)), deal_id
        assert shown["Handoff_Invoice_Numbers__c"]
    with db.reading() as conn:
        assert audit.verify(conn).intact
    db.dispose()


def test_milestones_delivery_sets_done_in_tryton_are_found_by_the_poll_and_billed_once(
        tmp_path, salesforce_twin, tryton: TrytonConnector, tryton_admin: TrytonRpc) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'handoff.db'}")
    crm = Crm(connector(salesforce_twin), db)  # not reset: new ids, this module's Tryton
    ms = crm.won("Polled programme", "120000.00", "Milestone")
    crm.send(ms, SCHEDULE)
    run(db, crm, tryton)
    project = tryton.find("project.work", f"HO-P-{ms}")
    planned = tryton.rpc.call("model.project.work.search_read", [("parent", "=", project)], 0,
                              None, [("id", "ASC")], ["name", "list_price", "progress"])
    assert [(t["name"], t["list_price"]) for t in planned] == [
        (f"{name} ({m})", None) for m, name, _ in SCHEDULE]  # priced only when billable
    build = next(t["id"] for t in planned if t["name"].endswith("(M2)"))
    tryton_admin.model("project.work", "write", [build], {"progress": 1.0})  # delivery: done

    poll = delivery_poll(tryton, overlap=dt.timedelta(0))
    counts = poll.run(db, utcnow())
    assert (counts.applied, counts.rejected) == (1, 0)
    run(db, crm, tryton)
    assert documents(tryton, ms) == {"M2": Decimal("60000.00")}
    again = poll.run(db, utcnow())  # handoff priced the task: seen again, billed nothing more
    assert again.rejected == 0
    run(db, crm, tryton)
    assert documents(tryton, ms) == {"M2": Decimal("60000.00")}
    assert Decimal(str(crm.shown(ms)["Handoff_Invoiced_Amount__c"])) == Decimal("60000.00")
    db.dispose()
