"""Reconciliation against the Salesforce and NetSuite twins: deals provisioned and invoiced by
handoff reconcile clean; then each discrepancy class is planted in the twins, the way people
and outages cause them, and exactly those are found with their explanation. Repairs and
acknowledgements then bring the run back to clean, and month-end follows."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from handoff.connectors import exact_json
from handoff.connectors.salesforce.mapping import wire_amount
from handoff.engine.clock import utcnow
from handoff.flows.month_end import month_end
from handoff.reconcile import actions
from handoff.store.db import Database
from tests.connectors.netsuite_support import RECORD_PATH, pay
from tests.reconcile.twin_lifecycle import Lifecycle, invoice_id, job, netsuite, provisioned, set_job_price

PLANTED = ("value_mismatch", "missing_project", "over_billed", "under_scheduled",
           "stale_invoice_status", "status_mismatch", "currency_mismatch")


@pytest.fixture
def lifecycle(db: Database, salesforce_twin: Any, netsuite_twin: Any, tmp_path: Path) -> Any:
    lifecycle = provisioned(db, salesforce_twin, netsuite_twin, tmp_path, 10)
    yield lifecycle
    lifecycle.close()


def plant_every_class(crm: Any, client: Any, twin: Any, deals: list[str]) -> dict[str, str]:
    """One class per deal, as it happens: which deal got which."""
    planted = dict(zip(PLANTED, [deals[2], deals[0], *deals[3:8]], strict=True))
    amount = {d: Decimal(str(crm.get_opportunity(d)["Amount"])) for d in planted.values()}
    # someone edits the deal's amount in the CRM and the change never reaches handoff
    crm.update_opportunity(planted["value_mismatch"],
                           {"Amount": wire_amount(amount[planted["value_mismatch"]] + 1000)})
    # the project is deleted in the ERP (the milestone deal: nothing invoiced on it yet)
    client.delete(f"{RECORD_PATH}/job/{job(client, planted['missing_project'])['id']}").raise_for_status()
    # the deal is cut by 500 in both systems, but the approved plan still bills all of it
    for deal, change in ((planted["over_billed"], -500), (planted["under_scheduled"], 700)):
        crm.update_opportunity(deal, {"Amount": wire_amount(amount[deal] + change)})
        set_job_price(client, deal, amount[deal] + change)
    # the customer pays in NetSuite; handoff has not read it again yet
    stale = planted["stale_invoice_status"]
    pay(twin, invoice_id(client, stale), str(amount[stale]))
    # someone marks the deal paid in the CRM though NetSuite has no payment
    mismatch = planted["status_mismatch"]
    crm.update_opportunity(mismatch, {"Handoff_Paid_Amount__c": wire_amount(amount[mismatch])})
    # the deal's currency is changed in the CRM alone
    crm.update_opportunity(planted["currency_mismatch"], {"CurrencyIsoCode": "EUR"})
    # and a project appears in the ERP that no CRM deal knows
    customer = job(client, deals[1])["parent"]["id"]
    client.put(f"{RECORD_PATH}/job/eid:HO-P-NO-SUCH-DEAL", content=exact_json.dumps({
        "companyName": "Side project", "parent": {"id": customer}, "jobPrice": Decimal("5000.00"),
        "currency": {"id": "1"}})).raise_for_status()
    return planted | {"orphan_project": "NO-SUCH-DEAL"}


@pytest.mark.slow
def test_every_planted_class_is_found_exactly_then_repaired_or_acknowledged(
        lifecycle: Lifecycle, salesforce_twin: Any, netsuite_twin: Any) -> None:
    db = lifecycle.db
    assert lifecycle.reconciled() == {}, "a clean lifecycle reconciles to nothing"

    with netsuite(netsuite_twin) as client:
        planted = plant_every_class(lifecycle.crm, client, netsuite_twin, lifecycle.deals)
    found = lifecycle.reconciled()
    assert set(found) == {(deal, kind) for kind, deal in planted.items()}
    words = {kind: found[(deal, kind)] for kind, deal in planted.items()}
    assert words["orphan_project"].startswith("the ERP project HO-P-NO-SUCH-DEAL is worth 5000.00 USD")
    assert words["missing_project"].endswith(
        "for it; handoff provisioned it, so the project was removed in the ERP")
    assert words["over_billed"].endswith("is 500.00 USD more than the project's value of "
                                         f"{job_price(netsuite_twin, planted['over_billed'])} USD")
    assert "leaves 700.00 USD of the project's value" in words["under_scheduled"]
    assert "the ERP has 'paid'" in words["stale_invoice_status"]
    assert words["status_mismatch"] == ("the CRM shows invoice status 'paid' but the ERP's "
                                        "invoices are 'posted'")
    assert words["currency_mismatch"].startswith("the CRM deal is in EUR but the ERP project is in USD")

    now = utcnow()
    for kind in ("missing_project", "stale_invoice_status"):
        assert "again" in actions.repair(db, planted[kind], kind, "fin.ops", now)
    opened = actions.repair(db, planted["value_mismatch"], "value_mismatch", "fin.ops", now)
    assert opened.startswith(f"amendment AM-{planted['value_mismatch']}-1 opened")
    for kind in ("orphan_project", "over_billed", "under_scheduled", "status_mismatch",
                 "currency_mismatch"):
        actions.acknowledge(db, planted[kind], kind, "controller", "known; fixed by hand", now)
    lifecycle.work()

    after = lifecycle.reconciled()
    repaired = {(planted[k], k) for k in ("missing_project", "stale_invoice_status")}
    assert repaired.isdisjoint(after), "a repaired finding is gone from the next run"
    assert (planted["value_mismatch"], "value_mismatch") in after, "an amendment awaits approval"
    actions.acknowledge(db, planted["value_mismatch"], "value_mismatch", "controller",
                        "amendment pending", now)
    check = month_end_reconciliation(db)
    assert check.ok, check.detail


def job_price(twin: Any, deal: str) -> str:
    with netsuite(twin) as client:
        return f"{Decimal(str(job(client, deal)['jobPrice'])):.2f}"


def month_end_reconciliation(db: Database) -> Any:
    result = month_end(db, f"{utcnow():%Y-%m}", utcnow(), timedelta(days=3), timedelta(hours=1))
    return next(c for c in result.checks if c.name.startswith("reconciliation"))
