"""The billing controller: every billable line of a provisioned deal (a milestone, a fixed
fee, a period of time and materials) becomes posted invoices in the ERP for exactly what was
sold, with credit notes for what an approved amendment took back; and what the ERP shows of
them — paid, partly paid — comes back into the deal's lineage and, through the write-back
controller, to the CRM.

Keys are `billing:<deal>`: enqueued by delivery's milestone and time events, when the deal's
project is first provisioned, when an amendment is approved, and by the worker's schedule for
deals with invoices awaiting payment (ERPs send no event when a customer pays). The ERP call
is idempotent by the document's external id.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.connectors.ports import BillingConnector
from handoff.domain import Invoice, InvoiceStatus
from handoff.engine import queue
from handoff.engine.changes import Changes
from handoff.engine.clock import utcnow
from handoff.engine.keys import BILLING, billing_key, crm_key
from handoff.engine.retry import Action
from handoff.errors import BusinessRuleError, HandoffError
from handoff.flows.billing_plan import BillingPlan, IssueDocument, plan_billing
from handoff.observability import span
from handoff.policy.billing import BillingPolicy
from handoff.store.audit import AuditEntry
from handoff.store.billing import BilledDocument, BillingSnapshot, InvoiceRecord, load_billing
from handoff.store.db import Database
from handoff.store.provisioning import Hop
from handoff.store.tables import invoices

log = logging.getLogger("handoff.billing")


class BillingController:
    prefix = BILLING

    def __init__(self, db: Database, erp: object, policy: BillingPolicy,
                 clock: Callable[[], datetime] = utcnow) -> None:
        """`erp`: the system that invoices — the billing system when one is configured (Stripe),
        else the ERP; an ERP that invoices by its own run (no BillingConnector) gets nothing."""
        self.db, self.erp, self.policy, self.clock = db, erp, policy, clock

    def reconcile(self, key: str, attempt: int, changes: Changes) -> None:
        with self.db.reading() as conn:
            snap = load_billing(conn, key.removeprefix(self.prefix))
        if snap is None:
            return
        plan = plan_billing(snap, self.policy, self.clock().date())
        if note_of(plan) != snap.note:
            self._note(snap, plan, attempt, changes)
        if not isinstance(self.erp, BillingConnector):
            return  # the ERP invoices by its own run (SAP's billing): handoff sends no invoice
        for step in plan.steps:
            self._issue(step, snap, attempt, changes)
        for document in plan.refresh:
            self._refresh(document, snap, attempt, changes)
        if plan.steps or plan.refresh:  # month-end checks how fresh what the CRM shows is
            changes.set_state(snap.opportunity.id, billing_checked_at=self.clock())
        if plan.held:  # billed what may be; the rest waits for a person (amend, then replay)
            raise BusinessRuleError("; ".join(plan.held))

    def gave_up(self, key: str, action: Action, error: BaseException, attempt: int,
                changes: Changes) -> None:
        """The exception (parked, quarantined, dead letter) and its hop say why; the CRM is
        told through the deal's billing status."""
        changes.enqueue.append(crm_key(key.removeprefix(self.prefix)))

    def _issue(self, step: IssueDocument, snap: BillingSnapshot, attempt: int,
               changes: Changes) -> None:
        assert snap.project_target_id is not None and isinstance(self.erp, BillingConnector)
        started = self.clock()
        name = "issue_credit_note" if step.request.is_credit else "issue_invoice"
        hop = Hop(snap.opportunity.id, snap.correlation_id, name, self.erp.system,
                  "ok", attempt, started, started)
        fields = {"step": name, "system": self.erp.system, "document": step.request.external_id}
        try:
            with span(name, {f"handoff.{k}": v for k, v in fields.items()}):
                invoice = self.erp.issue_invoice(step.request, snap.project_target_id)
        except HandoffError as exc:
            changes.hops.append(dataclasses.replace(hop, outcome=type(exc).__name__, finished_at=self.clock(),
                                         detail=f"{step.describe()}: {exc}"))
            log.info("%s %s in %s failed: %s", name, step.request.external_id, self.erp.system, exc,
                     extra=fields | {"error": type(exc).__name__})
            raise
        log.info("%s %s in %s: %s", name, step.request.external_id, self.erp.system,
                 describe_invoice(invoice), extra=fields | {"target_id": invoice.target_id})
        changes.hops.append(dataclasses.replace(hop, finished_at=self.clock(), target_id=invoice.target_id,
                                     detail=describe_invoice(invoice)))
        self._record(BilledDocument(step.request.line.id, step.line_id, invoice), snap, changes)

    def _refresh(self, document: BilledDocument, snap: BillingSnapshot, attempt: int,
                 changes: Changes) -> None:
        """Read a posted invoice again: a payment (or a cancellation) made in the ERP."""
        assert isinstance(self.erp, BillingConnector)
        started, held = self.clock(), document.invoice
        with span("read_invoice", {"handoff.system": self.erp.system,
                                   "handoff.target_id": held.target_id}):
            invoice = self.erp.read_invoice(held.target_id)
        if (invoice.status, invoice.amount_due) == (held.status, held.amount_due):
            return
        invoice = dataclasses.replace(invoice, external_id=held.external_id)
        log.info("invoice %s in %s now %s", held.target_id, self.erp.system, describe_invoice(invoice),
                 extra={"step": "invoice_status", "system": self.erp.system, "target_id": held.target_id})
        changes.hops.append(Hop(snap.opportunity.id, snap.correlation_id, "invoice_status",
                                self.erp.system, "ok", attempt, started, self.clock(),
                                target_id=invoice.target_id, detail=describe_invoice(invoice)))
        self._record(dataclasses.replace(document, invoice=invoice), snap, changes)

    def _record(self, document: BilledDocument, snap: BillingSnapshot, changes: Changes) -> None:
        """Keep the document as the ERP showed it, log the change, and tell the CRM."""
        system, invoice = getattr(self.erp, "system", "erp"), document.invoice
        changes.invoices.append(InvoiceRecord(snap.opportunity.id, document.document_id,
                                              document.line_id, system, invoice))
        before = snap.documents.get(document.document_id)
        kind = "credit_note" if invoice.total.is_negative else "invoice"
        changes.audit.append(AuditEntry(
            "handoff", f"{kind}.{invoice.status}", snap.opportunity.id, snap.correlation_id,
            audit_view(before.invoice, system) if before else None,
            audit_view(invoice, system) | {"line": document.line_id,
                                           "document": document.document_id}))
        changes.enqueue.append(crm_key(snap.opportunity.id))

    def _note(self, snap: BillingSnapshot, plan: BillingPlan, attempt: int,
              changes: Changes) -> None:
        """Milestones held back, or progress on milestones the schedule lacks, are shown in
        the lineage once (and again when it changes); nothing is invoiced for them."""
        now, note = self.clock(), note_of(plan)
        changes.set_state(snap.opportunity.id, billing_note=note)
        changes.hops.append(Hop(snap.opportunity.id, snap.correlation_id, "billing", "handoff",
                                "blocked" if plan.held else "ok", attempt, now, now,
                                detail=note or "every billable milestone can be billed as sold"))


def note_of(plan: BillingPlan) -> str:
    reasons = list(plan.held)
    reasons += [f"progress for milestone {m!r}, which the schedule does not have, ignored"
                for m in plan.ignored]
    return "; ".join(reasons)


def audit_view(invoice: Invoice, system: str) -> dict[str, object]:
    """What the audit log keeps of an invoice: amounts as exact decimal text."""
    return {"system": system, "external_id": invoice.external_id, "target_id": invoice.target_id,
            "number": invoice.number, "status": invoice.status.value,
            "currency": invoice.total.currency, "untaxed": str(invoice.untaxed.amount),
            "tax": str(invoice.tax.amount), "total": str(invoice.total.amount),
            "amount_due": str(invoice.amount_due.amount)}


def describe_invoice(invoice: Invoice) -> str:
    return (f"invoice {invoice.number or invoice.target_id} {invoice.status}: "
            f"{invoice.total.quantized()} {invoice.total.currency} "
            f"(untaxed {invoice.untaxed.quantized()}, tax {invoice.tax.quantized()}, "
            f"due {invoice.amount_due.quantized()})")


AWAITING_PAYMENT = (sa.select(invoices.c.opportunity_id).distinct()
                    .where(invoices.c.status.in_([InvoiceStatus.POSTED.value,
                                                  InvoiceStatus.DRAFT.value])))


def enqueue_unpaid(conn: Connection, now: datetime) -> int:
    """The schedule's job: every deal with an invoice not yet paid (or a draft finance has yet
    to post), to be read again, and its CRM record told again (days overdue grow without any
    event). The worker runs it every `[policy.billing] refresh_minutes`; a write-back that
    changes nothing is skipped by its fingerprint."""
    deals = list(conn.execute(AWAITING_PAYMENT).scalars())
    queue.enqueue_many(conn, [key for deal in deals for key in (billing_key(deal), crm_key(deal))],
                       now)
    return len(deals)
