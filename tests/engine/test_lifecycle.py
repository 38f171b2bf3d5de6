"""The lifecycle from closed-won to paid: a fixed-fee, a milestone and a time-and-materials
deal, with a scope change in the middle that goes through an amendment. Worker and
controllers on a real database; the in-memory CRM and ERP keep the real connectors' promises
(tests/e2e/test_tryton_amendments.py plays the same against a real Tryton)."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from handoff.bootstrap import build_worker
from handoff.config import Settings
from handoff.connectors.memory import MemoryCrm, MemoryErp
from handoff.engine.clock import utcnow
from handoff.engine.exceptions import open_exceptions
from handoff.engine.inbox import accept
from handoff.engine.retry import RetryPolicy
from handoff.errors import IntakeError
from handoff.flows import amendments
from handoff.policy.roles import Roles
from handoff.store import audit
from handoff.store.tables import audit_log
from handoff.store.terms import amendments_by_deal, latest_plans
from tests.factories import (
    SCHEDULE,
    customer_data,
    customer_event,
    event,
    milestone_data,
    milestone_event,
    opportunity_data,
    time_entry_data,
    time_entry_event,
)

ROLES = Roles(approvers=frozenset({"alice", "carol"}))
SETTINGS = Settings(retry=RetryPolicy(base_seconds=0.01, cap_seconds=0.05, max_attempts=5),
                    roles=ROLES)
LAST_MONTH = date.today().replace(day=1) - timedelta(days=5)
PERIOD = f"tm-{LAST_MONTH:%Y-%m}"
NEW_SCHEDULE = [{"id": "M1", "name": "Discovery", "amount": "30000.00"},
                {"id": "M2", "name": "Build", "amount": "70000.00"},
                {"id": "M3", "name": "Go-live", "amount": "30000.00"},
                {"id": "M4", "name": "Data migration", "amount": "20000.00"}]


def run(db, crm, erp) -> None:
    build_worker(SETTINGS, db, crm, erp).run(until_idle=True)


def deal(db, opp_id: str, minutes: int = 0, **fields) -> None:
    accept(db, event(opportunity_data(opp_id, "001L", minutes=minutes, **fields)), utcnow())


def progress(db, opp_id: str, milestone_id: str) -> None:
    accept(db, milestone_event(milestone_data(opp_id, milestone_id)), utcnow())


def time(db, entry_id: str, work_date: date, hours: str, status: str = "approved",
         minutes: int = 0) -> None:
    accept(db, time_entry_event(time_entry_data("006TM", entry_id, work_date.isoformat(), hours,
                                                status, minutes)), utcnow())


def billed(erp: MemoryErp, opp_id: str) -> dict[str, Decimal]:
    return {k.removeprefix("HO-I-").removeprefix("HO-CN-").removeprefix(f"{opp_id}-"): i.total.amount
            for k, i in erp.invoices.items() if f"-{opp_id}-" in k}


def pay_everything(erp: MemoryErp) -> None:
    for external_id, invoice in list(erp.invoices.items()):
        erp.pay(external_id, str(invoice.amount_due.amount))


def start(db) -> tuple[MemoryCrm, MemoryErp]:
    crm, erp = MemoryCrm(), MemoryErp()
    accept(db, customer_event(customer_data("001L")), utcnow())
    deal(db, "006FF", amount="50000.00")
    deal(db, "006MS", billing_method="milestone", milestones=SCHEDULE)
    deal(db, "006TM", amount="40000.00", billing_method="time_and_materials")
    run(db, crm, erp)
    return crm, erp


def test_three_deals_from_closed_won_to_paid_with_a_scope_change_in_the_middle(db) -> None:
    crm, erp = start(db)
    assert billed(erp, "006FF") == {"fee": Decimal("50000.00")}  # a fixed fee bills at once
    progress(db, "006MS", "M1")
    time(db, "T1", LAST_MONTH, "6")
    time(db, "T2", LAST_MONTH - timedelta(days=1), "4.5")
    time(db, "T3", LAST_MONTH, "2", status="submitted")  # not approved: not billed
    time(db, "T4", date.today(), "8")                    # this month's period is not over
    run(db, crm, erp)
    assert billed(erp, "006MS") == {"M1": Decimal("30000.00")}
    assert billed(erp, "006TM") == {PERIOD: Decimal("1575.00")}  # 10.5 h × 150.00

    # the scope change: the milestone deal grows (sent 10 times), the fixed fee shrinks
    for n in range(10):
        deal(db, "006MS", minutes=10 + n, billing_method="milestone", milestones=NEW_SCHEDULE,
             amount="150000.00", modified_by="alice", change_reason="data migration added")
    deal(db, "006FF", minutes=10, amount="45000.00", modified_by="bob",
         change_reason="training dropped")
    run(db, crm, erp)
    assert erp.projects["HO-P-006MS"]["value"].amount == Decimal("120000.00")
    assert "AM-006MS-1 (value 120000.00 → 150000.00" in crm.records["006MS"].detail
    with db.reading() as conn:
        pending = amendments_by_deal(conn, ["006MS", "006FF"])
    assert [a.id for a in pending["006MS"]] == ["AM-006MS-1"]  # ten sends, one amendment

    with pytest.raises(IntakeError, match="segregation of duties"):
        amendments.approve(db, "AM-006MS-1", "alice", ROLES, "", utcnow())
    with pytest.raises(IntakeError, match="does not have the approver role"):
        amendments.approve(db, "AM-006FF-1", "bob", ROLES, "", utcnow())
    amendments.approve(db, "AM-006MS-1", "carol", ROLES, "signed change order CO-7", utcnow())
    amendments.approve(db, "AM-006FF-1", "carol", ROLES, "", utcnow())
    time(db, "T3", LAST_MONTH, "2", minutes=1)  # approved late: its period is trued up
    for milestone in ("M2", "M3", "M4"):
        progress(db, "006MS", milestone)
    run(db, crm, erp)

    assert erp.projects["HO-P-006MS"]["value"].amount == Decimal("150000.00")
    assert erp.projects["HO-P-006FF"]["value"].amount == Decimal("45000.00")
    assert billed(erp, "006MS") == {m["id"]: Decimal(m["amount"]) for m in NEW_SCHEDULE}
    assert billed(erp, "006FF") == {"fee": Decimal("50000.00"), "fee#2": Decimal("-5000.00")}
    assert billed(erp, "006TM") == {PERIOD: Decimal("1575.00"), f"{PERIOD}#2": Decimal("300.00")}
    with db.reading() as conn:
        plans = latest_plans(conn, ["006MS", "006FF"])
    assert (plans["006MS"].version, plans["006MS"].amendment_id) == (2, "AM-006MS-1")
    assert sum(billed(erp, "006MS").values()) == plans["006MS"].terms.value.amount
    assert sum(billed(erp, "006FF").values()) == plans["006FF"].terms.value.amount

    pay_everything(erp)
    run(db, crm, erp)
    shown = {deal_id: crm.records[deal_id].billing for deal_id in ("006FF", "006MS", "006TM")}
    assert {d: (s.invoiced.amount, s.paid.amount, s.open_balance.amount)
            for d, s in shown.items()} == {
        "006FF": (Decimal("45000.00"), Decimal("45000.00"), Decimal("0.00")),
        "006MS": (Decimal("150000.00"), Decimal("150000.00"), Decimal("0.00")),
        "006TM": (Decimal("1875.00"), Decimal("1875.00"), Decimal("0.00"))}
    assert "approved by carol; plan v2" in crm.records["006MS"].detail
    with db.reading() as conn:
        assert audit.verify(conn).intact
        actions = [r.action for r in conn.execute(sa.select(audit_log.c.action))]
    assert actions.count("amendment.approved") == 2
    assert actions.count("amendment.approved.refused") == 2
    assert "credit_note.posted" in actions and "credit_note.paid" in actions


def test_a_rejected_change_leaves_the_erp_and_billing_on_the_approved_terms(db) -> None:
    crm, erp = start(db)
    deal(db, "006FF", minutes=10, amount="60000.00", modified_by="bob")
    run(db, crm, erp)
    amendments.reject(db, "AM-006FF-1", "carol", ROLES, "no change order signed", utcnow())
    deal(db, "006FF", minutes=11, amount="60000.00", modified_by="bob")  # the CRM insists
    run(db, crm, erp)
    assert erp.projects["HO-P-006FF"]["value"].amount == Decimal("50000.00")
    assert billed(erp, "006FF") == {"fee": Decimal("50000.00")}
    assert crm.records["006FF"].detail == ("amendment AM-006FF-1 rejected by carol: no change "
                                           "order signed")
    with pytest.raises(IntakeError, match="is rejected already"):
        amendments.approve(db, "AM-006FF-1", "alice", ROLES, "", utcnow())


def test_a_cancelled_milestone_already_invoiced_is_credited_through_an_amendment(db) -> None:
    crm, erp = start(db)
    for milestone in ("M1", "M3"):
        progress(db, "006MS", milestone)
    run(db, crm, erp)
    amendments.request(db, "006MS", "dave", "go-live cancelled by the customer",
                       amendments.TermsChange(value=Decimal("90000.00"), cancel=("M3",)), utcnow())
    run(db, crm, erp)
    assert "HO-CN-006MS-M3#2" not in erp.invoices  # nothing before the approval
    amendments.approve(db, "AM-006MS-1", "carol", ROLES, "", utcnow())
    run(db, crm, erp)
    assert billed(erp, "006MS") == {"M1": Decimal("30000.00"), "M3": Decimal("30000.00"),
                                    "M3#2": Decimal("-30000.00")}
    assert crm.records["006MS"].billing.invoiced.amount == Decimal("30000.00")


def test_a_customer_on_credit_hold_is_not_invoiced_until_the_hold_is_lifted(db) -> None:
    crm, erp = MemoryCrm(), MemoryErp()
    accept(db, customer_event(customer_data("001L", credit_hold=True)), utcnow())
    deal(db, "006FF", amount="50000.00")
    run(db, crm, erp)
    assert erp.invoices == {}
    with db.reading() as conn:
        [held] = open_exceptions(conn)
    assert held.kind == "parked" and "customer 001L is on credit hold" in held.message
    assert "credit hold" in crm.records["006FF"].billing.held
    accept(db, customer_event(customer_data("001L", minutes=5, credit_hold=False)), utcnow())
    run(db, crm, erp)
    assert billed(erp, "006FF") == {"fee": Decimal("50000.00")}


def test_days_overdue_and_invoice_numbers_reach_the_crm(db) -> None:
    import dataclasses

    crm, erp = start(db)
    fee = erp.invoices["HO-I-006FF-fee"]
    erp.invoices["HO-I-006FF-fee"] = dataclasses.replace(fee, due_date=date.today() - timedelta(12))
    erp.pay("HO-I-006FF-fee", "20000.00")
    run(db, crm, erp)
    shown = crm.records["006FF"].billing
    assert (shown.days_overdue, shown.open_balance.amount, shown.invoice_numbers) == (
        12, Decimal("30000.00"), (fee.number,))
    assert "12 days overdue" in shown.describe()


def test_with_posting_off_invoices_wait_as_drafts_until_finance_posts_them(db) -> None:
    import dataclasses

    from handoff.policy.billing import BillingPolicy

    drafts = dataclasses.replace(SETTINGS, billing=BillingPolicy(post=False))
    crm, erp = MemoryCrm(), MemoryErp()
    accept(db, customer_event(customer_data("001L")), utcnow())
    deal(db, "006FF", amount="50000.00")
    build_worker(drafts, db, crm, erp).run(until_idle=True)
    build_worker(drafts, db, crm, erp).run(until_idle=True)  # the draft is not made again
    [draft] = erp.invoices.values()
    assert draft.status.value == "draft" and erp.calls == 3  # customer, project, one invoice
    assert crm.records["006FF"].billing.invoiced.amount == 0
    erp.post(draft.external_id)  # finance reviews and posts it in the ERP
    build_worker(drafts, db, crm, erp).run(until_idle=True)  # the schedule reads it again
    assert crm.records["006FF"].billing.invoiced.amount == Decimal("50000.00")
