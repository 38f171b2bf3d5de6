"""Reconciliation against a real Tryton and the Salesforce twin: deals handoff provisioned and
billed reconcile with nothing to report, and what people then do in Tryton behind handoff's
back (a project made by hand, a task invoiced by hand, an invoice paid, a project's value
edited) is found as exactly the discrepancies it is, on the right deal, in plain words."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from handoff.bootstrap import build_worker
from handoff.config import PollSettings, Settings
from handoff.connectors.ports import ErpSnapshotSource
from handoff.connectors.salesforce import SalesforceConnector
from handoff.connectors.tryton.client import TrytonConnector
from handoff.engine.clock import utcnow
from handoff.engine.inbox import accept
from handoff.engine.retry import RetryPolicy
from handoff.policy.release_gates import ReleasePolicy
from handoff.reconcile.build import build_snapshot, crm_row
from handoff.reconcile.classes import Kind
from handoff.reconcile.engine import Result, reconcile
from handoff.reconcile.plans import plan_figures
from handoff.store import open_database
from handoff.store.db import Database
from tests.connectors.salesforce_helpers import connector
from tests.connectors.tryton.rpc_support import TrytonRpc, cash_payment_method, pay_in_full
from tests.e2e.sales_team import Crm, own_tryton
from tests.factories import milestone_data, milestone_event

pytestmark = pytest.mark.slow

SETTINGS = Settings(retry=RetryPolicy(base_seconds=0.05, cap_seconds=0.5, max_attempts=6),
                    poll=PollSettings(crm_minutes=0))
SCHEDULE = [("M1", "Discovery", "30000.00"), ("M2", "Build", "60000.00"), ("M3", "Go-live", "30000.00")]


tryton_server = pytest.fixture(scope="module", name="tryton_server")(own_tryton)




def reconciled(crm: SalesforceConnector, erp: ErpSnapshotSource, db: Database) -> Result:
    """A snapshot of the three sides as the reconciliation run takes it, reconciled."""
    with db.reading() as conn:
        snapshot = build_snapshot([crm_row(f, ReleasePolicy().gates) for f in crm.deal_figures()],
                                  erp.project_figures(), plan_figures(conn), erp.document_figures())
    return reconcile(snapshot)


def found(result: Result) -> dict[tuple[str, Kind], str]:
    return {(d.deal_id, d.kind): d.explanation for d in result.discrepancies}


def invoice_of_task(admin: TrytonRpc, task: int) -> int:
    return admin.read_one("project.work", task, ["invoice_line.invoice"])["invoice_line."]["invoice"]


def task_invoiced_by_hand(admin: TrytonRpc, project: int, price: str, company: dict[str, Any]) -> int:
    """What finance does in Tryton: a done task with a price under the project, the project's
    Invoice button, the invoice posted. Returns the invoice."""
    [task] = admin.model("project.work", "create", [{
        "name": "Extra workshop", "type": "task", "parent": project, "company": company["id"],
        "product": company["product_id"], "effort_duration": dt.timedelta(hours=1),
        "list_price": Decimal(price), "progress": 1.0}])
    admin.model("project.work", "invoice", [project])
    invoice = invoice_of_task(admin, task)
    admin.model("account.invoice", "post", [invoice])
    return invoice


def test_a_clean_tryton_reconciles_to_nothing_and_planted_discrepancies_are_found_exactly(
        tmp_path, twin, tryton: TrytonConnector, tryton_admin: TrytonRpc,
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert isinstance(tryton, ErpSnapshotSource)
    monkeypatch.setattr("handoff.connectors.tryton.client.PAGE", 2)  # the listings span pages
    db = open_database(f"sqlite:///{tmp_path / 'handoff.db'}")
    sf = connector(twin)
    crm = Crm(sf, db, "Reconciled Client Ltd")
    billed = crm.won("Billed programme", "120000.00", "Milestone")
    extra = crm.won("Programme billed by hand", "120000.00", "Milestone")
    edited = crm.won("Advisory retainer", "40000.00", "Time and Materials")
    untouched = crm.won("Quiet programme", "120000.00", "Milestone")
    for deal in (billed, extra, untouched):
        crm.send(deal, SCHEDULE)
    crm.send(edited)
    accept(db, milestone_event(milestone_data(billed, "M1")), utcnow())
    build_worker(SETTINGS, db, sf, tryton).run(until_idle=True)

    projects = {f.deal_id: f for f in tryton.project_figures()}
    assert {deal: (f.currency, f.value) for deal, f in projects.items()} == {
        billed: ("USD", Decimal("120000.00")), extra: ("USD", Decimal("120000.00")),
        edited: ("USD", Decimal("40000.00")), untouched: ("USD", Decimal("120000.00"))}
    [document] = tryton.document_figures()
    assert (document.deal_id, document.status, document.untaxed, document.amount_due) == (
        billed, "posted", Decimal("30000.00"), document.total)
    clean = reconciled(sf, tryton, db)
    assert clean.discrepancies == [] and clean.total == 0, found(clean)

    # --- behind handoff's back ---------------------------------------------------------------
    company = {"id": tryton.company().id, "product_id": tryton.company().product_id}
    tryton_admin.model("project.work", "create", [{  # a project copied by hand, for no deal
        "name": "Shadow rollout", "type": "project", "company": company["id"],
        "comment": "[handoff HO-P-NODEAL1]\nProvisioned by handoff from opportunity NODEAL1 "
                   "(7500.00 USD, fixed_fee)."}])
    by_hand = task_invoiced_by_hand(tryton_admin, tryton.find("project.work", f"HO-P-{extra}"),
                                    "5000.00", company)
    total = Decimal(tryton_admin.read_one("account.invoice", by_hand, ["total_amount"])["total_amount"])
    # the CRM hears of that invoice (a refresh would write it back): the deal is only over-billed
    sf.update_opportunity(extra, {"Handoff_Invoiced_Amount__c": float(total),
                                  "Handoff_Paid_Amount__c": 0})
    [posted] = [d.document_id for d in tryton.document_figures() if d.deal_id == billed]
    pay_in_full(tryton_admin, int(posted), cash_payment_method(tryton_admin), dt.date.today())
    project = tryton.find("project.work", f"HO-P-{edited}")
    comment = tryton_admin.read_one("project.work", project, ["comment"])["comment"]
    tryton_admin.model("project.work", "write", [project],
                       {"comment": comment.replace("40000.00 USD", "45000.00 USD")})
    never_sent = crm.won("Deal handoff never heard of", "25000.00", "Fixed Fee")

    result = reconciled(sf, tryton, db)
    assert found(result) == {
        ("NODEAL1", Kind.ORPHAN_PROJECT):
            "the ERP project HO-P-NODEAL1 is worth 7500.00 USD but no CRM deal NODEAL1 exists",
        (extra, Kind.OVER_BILLED):
            "invoiced 5000.00 USD before tax (net of 0.00 USD credited) plus 120000.00 USD still on "
            "the invoice plan is 5000.00 USD more than the project's value of 120000.00 USD",
        (billed, Kind.STALE_INVOICE_STATUS):
            "the CRM still shows invoice status 'posted', 30000.00 USD invoiced and 0.00 USD paid, "
            "but the ERP has 'paid', 30000.00 USD invoiced and 30000.00 USD paid",
        (edited, Kind.VALUE_MISMATCH):
            "the CRM sold 40000.00 USD but the ERP project is worth 45000.00 USD",
        (edited, Kind.UNDER_SCHEDULED):  # the plan still adds up to the value sold
            "invoiced 0.00 USD before tax plus 40000.00 USD still on the invoice plan leaves "
            "5000.00 USD of the project's value of 45000.00 USD never invoiced",
        (never_sent, Kind.MISSING_PROJECT):
            f"the CRM approved a deal of 25000.00 USD but the ERP has no project HO-P-{never_sent} "
            "for it",
    }
    assert untouched not in {d.deal_id for d in result.discrepancies}
    assert result.total == 6
    db.dispose()
