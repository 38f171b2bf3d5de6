"""Billing by milestone: worker + billing controller on a real database, in-memory systems."""

import json
from decimal import Decimal

import sqlalchemy as sa

from handoff.bootstrap import build_worker
from handoff.config import Settings
from handoff.connectors.memory import MemoryCrm, MemoryErp
from handoff.domain import InvoiceStatus, MilestoneStatus
from handoff.engine.clock import utcnow
from handoff.engine.exceptions import open_exceptions
from handoff.engine.inbox import Outcome, accept
from handoff.engine.retry import RetryPolicy
from handoff.errors import TransientError
from handoff.policy.billing import BillingPolicy
from handoff.store import audit
from handoff.store.tables import audit_log, hops, invoices
from tests.factories import (
    SCHEDULE,
    customer_data,
    customer_event,
    event,
    milestone_data,
    milestone_event,
    opportunity_data,
)

SETTINGS = Settings(retry=RetryPolicy(base_seconds=0.01, cap_seconds=0.05, max_attempts=5))


def run(db, crm, erp, settings: Settings = SETTINGS) -> None:
    build_worker(settings, db, crm, erp).run(until_idle=True)


def deliver_deal(db, opp_id: str = "006A", schedule=SCHEDULE, **opp) -> None:
    accept(db, customer_event(customer_data("001A")), utcnow())
    accept(db, event(opportunity_data(opp_id, "001A", billing_method="milestone",
                                      milestones=schedule, **opp)), utcnow())


def progress(db, milestone_id: str, status: str = "achieved", minutes: int = 0, opp_id="006A"):
    return accept(db, milestone_event(milestone_data(opp_id, milestone_id, status, minutes)),
                  utcnow())


def invoice_rows(db) -> list[sa.Row]:
    with db.reading() as conn:
        return list(conn.execute(sa.select(invoices).order_by(invoices.c.document_id)))


def billing_hops(db) -> list[sa.Row]:
    with db.reading() as conn:
        return list(conn.execute(sa.select(hops).where(hops.c.step.in_(["billing",
                                                                          "issue_invoice"]))))


def test_an_achieved_milestone_becomes_one_posted_invoice_and_the_crm_sees_it(db) -> None:
    crm, erp = MemoryCrm(), MemoryErp()
    deliver_deal(db)
    progress(db, "M1")
    run(db, crm, erp)
    [row] = invoice_rows(db)
    assert (row.document_id, row.status, row.total, row.currency) == (
        "M1", "posted", Decimal("30000.00"), "USD")
    assert list(erp.invoices) == ["HO-I-006A-M1"]
    billing = crm.records["006A"].billing
    assert billing is not None and billing.invoiced.amount == Decimal("30000.00")
    assert billing.describe() == "billed 30000.00 USD, paid 0.00, open 30000.00; last INV/0001 posted"
    assert billing.invoice_numbers == ("INV/0001",) and billing.days_overdue == 0
    progress(db, "M1", minutes=1)  # newer news of the same milestone: nothing more to bill
    progress(db, "M2")
    run(db, crm, erp)
    assert sorted(erp.invoices) == ["HO-I-006A-M1", "HO-I-006A-M2"]
    assert crm.records["006A"].billing.invoiced.amount == Decimal("90000.00")


def test_progress_before_the_project_exists_is_billed_once_it_does(db) -> None:
    crm, erp = MemoryCrm(), MemoryErp()
    assert progress(db, "M1").outcome is Outcome.APPLIED  # the deal is not even known yet
    run(db, crm, erp)
    assert not erp.invoices
    deliver_deal(db)
    run(db, crm, erp)
    assert list(erp.invoices) == ["HO-I-006A-M1"]


def test_a_lost_response_does_not_invoice_twice(db) -> None:
    crm, erp = MemoryCrm(), MemoryErp()
    deliver_deal(db)
    run(db, crm, erp)
    erp.faults.fail_next([TransientError("response lost")], after_commit=True)
    progress(db, "M3")
    run(db, crm, erp)
    assert list(erp.invoices) == ["HO-I-006A-M3"] and len(invoice_rows(db)) == 1
    outcomes = [h.outcome for h in billing_hops(db)]
    assert outcomes == ["TransientError", "ok"]


def test_acceptance_policy_waits_for_the_customers_sign_off(db) -> None:
    crm, erp = MemoryCrm(), MemoryErp()
    settings = Settings(retry=SETTINGS.retry,
                        billing=BillingPolicy(invoice_when=MilestoneStatus.ACCEPTED))
    deliver_deal(db)
    progress(db, "M1", "achieved")
    run(db, crm, erp, settings)
    assert not erp.invoices
    progress(db, "M1", "accepted", minutes=1)
    run(db, crm, erp, settings)
    assert list(erp.invoices) == ["HO-I-006A-M1"]


def test_a_milestone_that_would_bill_more_than_was_sold_is_held_and_parked(db) -> None:
    """120,000 sold, a schedule of 30,000 + 60,000 + 60,000: the first two are invoiced, the
    third would over-bill — it is held, parked for a person, and the CRM is told why."""
    crm, erp = MemoryCrm(), MemoryErp()
    over = [dict(SCHEDULE[0]), dict(SCHEDULE[1]), {"id": "M3", "name": "Extra", "amount": "60000.00"}]
    deliver_deal(db, schedule=over)
    for milestone in ("M1", "M2", "M3"):
        progress(db, milestone)
    progress(db, "M9")
    run(db, crm, erp)
    assert sorted(erp.invoices) == ["HO-I-006A-M1", "HO-I-006A-M2"]
    with db.reading() as conn:
        [parked] = open_exceptions(conn)
    assert parked.business_key == "billing:006A" and parked.kind == "parked"
    assert "line M3 (60000.00 USD) would bring the invoiced total to 150000.00 USD, above " \
           "the contract value 120000.00 USD" in parked.message
    note = [h for h in billing_hops(db) if h.step == "billing"][-1]  # once per change of it
    assert note.outcome == "blocked" and "'M9'" in note.detail and "line M3" in note.detail
    billing = crm.records["006A"].billing
    assert billing.invoiced.amount == Decimal("90000.00")
    assert "; held: line M3 (60000.00 USD) would bring" in billing.describe()


def test_stale_progress_never_takes_a_milestone_back(db) -> None:
    deliver_deal(db)
    assert progress(db, "M1", "accepted", minutes=5).outcome is Outcome.APPLIED
    assert progress(db, "M1", "achieved", minutes=1).outcome is Outcome.STALE


def test_invoices_are_kept_with_their_status(db) -> None:
    crm, erp = MemoryCrm(), MemoryErp()
    deliver_deal(db)
    for milestone in ("M1", "M2", "M3"):
        progress(db, milestone)
    run(db, crm, erp)
    rows = invoice_rows(db)
    assert [r.number for r in rows] == sorted(r.number for r in rows)
    assert sum(r.total for r in rows) == Decimal("120000.00")
    assert {InvoiceStatus(r.status) for r in rows} == {InvoiceStatus.POSTED}
    assert crm.records["006A"].billing.describe().startswith(
        "billed 120000.00 USD, paid 0.00, open 120000.00")
    with db.reading() as conn:
        logged = list(conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)))
        assert audit.verify(conn) == audit.Verdict(3)
    assert [(e.actor, e.action, e.business_key) for e in logged] == [
        ("handoff", "invoice.posted", "006A")] * 3
    assert sorted(json.loads(e.after)["total"] for e in logged) == ["30000.00", "30000.00",
                                                                    "60000.00"]


def test_payments_made_in_the_erp_come_back_to_the_crm_and_the_audit_log(db) -> None:
    """ERPs send no event when a customer pays: the worker's schedule reads posted invoices
    again, and a partial then a full payment reach the CRM, each logged once."""
    crm, erp = MemoryCrm(), MemoryErp()
    deliver_deal(db)
    progress(db, "M1")
    run(db, crm, erp)
    erp.pay("HO-I-006A-M1", "10000.00")
    run(db, crm, erp)  # the schedule runs as the worker starts
    billing = crm.records["006A"].billing
    assert billing.paid.amount == Decimal("10000.00") and billing.invoiced.amount == Decimal("30000.00")
    erp.pay("HO-I-006A-M1", "20000.00")
    run(db, crm, erp)
    run(db, crm, erp)  # nothing new: nothing logged, nothing written
    [row] = invoice_rows(db)
    assert (row.status, row.amount_due) == ("paid", Decimal("0.00"))
    assert crm.records["006A"].billing.paid.amount == Decimal("30000.00")
    with db.reading() as conn:
        actions = [r.action for r in conn.execute(sa.select(audit_log).order_by(audit_log.c.seq))]
        assert audit.verify(conn).intact
    assert actions == ["invoice.posted", "invoice.posted", "invoice.paid"]


def test_the_analytics_feed_has_a_row_per_invoice_with_exact_amounts(db, tmp_path) -> None:
    import subprocess
    import sys

    crm, erp = MemoryCrm(), MemoryErp()
    deliver_deal(db)
    progress(db, "M1")
    progress(db, "M2")
    run(db, crm, erp)
    erp.pay("HO-I-006A-M2", "60000.00")
    run(db, crm, erp)
    out = tmp_path / "billing.jsonl"
    result = subprocess.run([sys.executable, "-m", "handoff.cli", "export", "--out", str(out),
                             "--database", str(db.url)],
                            capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().endswith(f"2 invoice row(s) written to {out}")
    rows = {r["document_id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert {r["kind"] for r in rows.values()} == {"invoice"}
    assert (rows["M1"]["status"], rows["M1"]["total"], rows["M1"]["paid"]) == (
        "posted", "30000.00", "0.00")
    assert (rows["M2"]["status"], rows["M2"]["paid"], rows["M2"]["amount_due"]) == (
        "paid", "60000.00", "0.00")
    assert all(r["correlation_id"] and r["observed_at"].endswith("+00:00") for r in rows.values())
