"""What a person does with a finding of the latest run: acknowledge it (it is known and
accepted, with a reason), or repair it when handoff can do so itself. Repairs go through the
normal policy: a re-queue runs the controllers as any change does, and a value the CRM sold
that the approved plan does not have becomes an amendment someone else must approve. Both
are written to the audit log.

    missing_project        provision again (a parked or dead-lettered deal is replayed)
    value_mismatch         the ERP drifted from the approved plan: send the project again;
                           the CRM differs from the plan: open an amendment to the CRM's value
    stale_invoice_status   read the deal's invoices from the ERP again and tell the CRM
    status_mismatch        the same
    the others             a person decides (the finding's repair says what to do)
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.domain.terms import AmendmentStatus
from handoff.engine import queue
from handoff.engine.exceptions import replay
from handoff.engine.keys import billing_key, crm_key, opportunity_key
from handoff.errors import IntakeError
from handoff.flows import amendments
from handoff.reconcile.classes import Kind
from handoff.store import audit
from handoff.store import reconciliation as store
from handoff.store.audit import AuditEntry
from handoff.store.db import Database
from handoff.store.tables import exceptions, opportunities, provisioning
from handoff.store.terms import amendments_by_deal, latest_plans

REPAIRABLE = (Kind.MISSING_PROJECT, Kind.VALUE_MISMATCH, Kind.STALE_INVOICE_STATUS,
              Kind.STATUS_MISMATCH)


def acknowledge(db: Database, deal_id: str, kind: str, user: str, reason: str,
                now: datetime) -> store.Acknowledgement:
    if not reason.strip():
        raise IntakeError("an acknowledgement needs a reason", status=422, field="reason")
    with db.transaction() as conn:
        finding = latest_finding(conn, deal_id, kind)
        done = store.acknowledge(conn, deal_id, kind, user, reason, now)
        _audit(conn, user, "reconcile.acknowledged", finding, {"reason": reason}, now)
    return done


def repair(db: Database, deal_id: str, kind: str, user: str, now: datetime) -> str:
    """Run the repair of a finding of the latest run; what was done, in words."""
    with db.reading() as conn:
        finding = latest_finding(conn, deal_id, kind)
    if Kind(kind) not in REPAIRABLE:
        raise IntakeError(f"handoff cannot repair {kind} itself: {finding.repair}", status=409)
    done = REPAIRS[Kind(kind)](db, finding, user, now)
    with db.transaction() as conn:
        _audit(conn, user, "reconcile.repaired", finding, {"done": done}, now)
    return done


def latest_finding(conn: Connection, deal_id: str, kind: str) -> store.Finding:
    if kind not in {k.value for k in Kind}:
        raise IntakeError(f"{kind!r} is not a discrepancy class; one of: "
                          f"{', '.join(k.value for k in Kind)}", status=422, field="kind")
    run = store.latest_run(conn)
    if run is None:
        raise IntakeError("no reconciliation has run yet: run `handoff reconcile`", status=404)
    for finding in store.findings(conn, run.id):
        if (finding.deal_id, finding.kind) == (deal_id, kind):
            return finding
    raise IntakeError(f"the latest reconciliation (run {run.id}) found no {kind} for deal "
                      f"{deal_id}", status=404)


def _provision_again(db: Database, finding: store.Finding, _user: str, now: datetime) -> str:
    """Send the deal's project to the ERP again (an upsert by external id: it is made again
    if it was deleted, and brought back to the approved terms if it was changed)."""
    deal = finding.deal_id
    with db.reading() as conn:
        known = conn.execute(sa.select(opportunities.c.id).where(opportunities.c.id == deal)).first()
        held = conn.execute(sa.select(exceptions.c.id).where(
            exceptions.c.business_key == opportunity_key(deal), exceptions.c.resolved_at.is_(None))).first()
    if known is None:
        raise IntakeError(f"handoff has no record of deal {deal}: its CRM change never arrived; "
                          "run `handoff poll` to read it from the CRM", status=409)
    with db.transaction() as conn:
        conn.execute(provisioning.update().where(provisioning.c.opportunity_id == deal)
                     .values(project_sent=None))
        queue.enqueue(conn, opportunity_key(deal), now)
    if held is not None:
        replay(db, now, keys=[opportunity_key(deal)])
        return f"deal {deal} was held; it is provisioned again (see `handoff trace {deal}`)"
    return f"deal {deal}'s project is sent to the ERP again (see `handoff trace {deal}`)"


def _align_value(db: Database, finding: store.Finding, user: str, now: datetime) -> str:
    deal, sold = finding.deal_id, finding.amounts["sold_value"]
    with db.reading() as conn:
        plan = latest_plans(conn, [deal]).get(deal)
        pending = [a for a in amendments_by_deal(conn, [deal]).get(deal, ())
                   if a.status is AmendmentStatus.PENDING]
    if pending:
        raise IntakeError(f"amendment {pending[-1].id} of deal {deal} awaits a decision: approve or "
                          f"reject it (`handoff amend show {pending[-1].id}`)", status=409)
    if plan is None or plan.terms.value.amount == sold:  # the ERP drifted from what was approved
        return _provision_again(db, finding, user, now)
    opened = amendments.request(
        db, deal, user, f"reconciliation: the CRM sold {sold} {finding.currency}, the approved plan "
        f"is {plan.terms.value}", amendments.TermsChange(value=sold), now, origin="reconcile")
    return f"amendment {opened.id} opened to bring deal {deal} to {sold} {finding.currency}; " \
           "it needs an approver's decision"


def _refresh_billing(db: Database, finding: store.Finding, _user: str, now: datetime) -> str:
    deal = finding.deal_id
    with db.transaction() as conn:
        queue.enqueue_many(conn, [billing_key(deal), crm_key(deal)], now)
    return f"deal {deal}'s invoices are read from the ERP again and written to the CRM"


REPAIRS = {Kind.MISSING_PROJECT: _provision_again, Kind.VALUE_MISMATCH: _align_value,
           Kind.STALE_INVOICE_STATUS: _refresh_billing, Kind.STATUS_MISMATCH: _refresh_billing}


def _audit(conn: Connection, user: str, action: str, finding: store.Finding, after: dict[str, str],
           now: datetime) -> None:
    audit.append(conn, [AuditEntry(user, action, finding.deal_id, None,
                                   {"run": str(finding.run_id), "kind": finding.kind,
                                    "explanation": finding.explanation}, after)], now)
