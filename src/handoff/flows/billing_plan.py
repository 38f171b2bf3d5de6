"""The billing plan: a pure function of the deal's approved terms, delivery's progress and
time, and the billing documents already made.

Each line is brought to what may be billed of it now: a line billable and not yet billed in
full gets an invoice for the difference; a line billed above what was sold (an approved
amendment lowered or cancelled it) gets a credit note for the excess. So a scope change
is settled to the cent by documents, never by editing a posted invoice. An invoice is held
instead — with its reason, for a person — when the contract is not active, the customer is
on credit hold, or it would take the invoiced total above the approved contract value.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from handoff.domain import ApprovalStatus, InvoiceRequest, InvoiceStatus, Milestone, Money
from handoff.domain.ids import credit_note_external_id, invoice_external_id
from handoff.flows.billing_lines import TIME_LINE_PREFIX, BillingLine, billing_lines
from handoff.policy.billing import BillingPolicy, over_contract_value
from handoff.store.billing import BilledDocument, BillingSnapshot


@dataclass(frozen=True, slots=True)
class IssueDocument:
    request: InvoiceRequest
    line_id: str

    def describe(self) -> str:
        line, kind = self.request.line, "credit note" if self.request.is_credit else "invoice"
        then = "post it" if self.request.post else "leave it a draft for finance to post"
        return (f"{kind} {line.id} ({line.name}, {line.amount.quantized()} {line.amount.currency}) "
                f"as {self.request.external_id} and {then}")


@dataclass(frozen=True, slots=True)
class BillingPlan:
    opportunity_id: str
    steps: tuple[IssueDocument, ...]
    waiting: str = ""   # nothing wrong, not yet: the project is not provisioned
    held: tuple[str, ...] = ()     # a person must act: why these lines are not invoiced
    ignored: tuple[str, ...] = ()  # progress for milestones the schedule does not have
    refresh: tuple[BilledDocument, ...] = ()  # posted, awaiting payment


def plan_billing(snap: BillingSnapshot, policy: BillingPolicy, today: date) -> BillingPlan:
    opp, terms = snap.opportunity, snap.terms
    schedule = terms.milestones if terms else opp.contract.milestones
    ignored = tuple(sorted(set(snap.progress) - {m.id for m in schedule}))
    if terms is None or snap.project_target_id is None:
        return BillingPlan(opp.id, (), waiting="the project is not provisioned yet", ignored=ignored)
    lines = billing_lines(terms, snap.progress, snap.time, policy, today)
    billed = _billed_by_line(snap.documents.values())
    total = sum(billed.values(), Decimal(0))
    blockers = _blockers(snap)
    steps, held = [], []
    for line in lines + _withdrawn(lines, billed, terms.currency):
        already = billed.get(line.id, Decimal(0))
        due = (line.sold.amount if line.billable else min(already, line.sold.amount)) - already
        if due == 0:
            continue
        amount = Money(due, terms.currency)
        if due > 0 and (reason := _hold(blockers, terms.value, total, line.id, amount)):
            held.append(reason)
            continue
        total += due
        steps.append(_document(snap, line, amount, _count(snap, line.id), today, policy.post))
    drafts = [doc for doc in snap.documents.values() if doc.invoice.status is InvoiceStatus.DRAFT]
    if policy.post:  # a draft left by an interrupted post is asked for again, to be posted
        steps += [_again(snap, doc, today) for doc in drafts]
    awaited = (InvoiceStatus.POSTED,) if policy.post else (InvoiceStatus.POSTED, InvoiceStatus.DRAFT)
    refresh = tuple(d for d in snap.documents.values() if d.invoice.status in awaited)
    return BillingPlan(opp.id, tuple(steps), held=tuple(held), ignored=ignored, refresh=refresh)


def _hold(blockers: str, value: Money, total: Decimal, line_id: str, amount: Money) -> str | None:
    if blockers:
        return f"line {line_id} is not invoiced: {blockers}"
    return over_contract_value(value, total, line_id, amount)


def _billed_by_line(documents: Iterable[BilledDocument]) -> dict[str, Decimal]:
    billed: dict[str, Decimal] = {}
    for doc in documents:
        if doc.invoice.status is not InvoiceStatus.CANCELLED:
            billed[doc.line_id] = billed.get(doc.line_id, Decimal(0)) + doc.invoice.untaxed.amount
    return billed


def _withdrawn(lines: list[BillingLine], billed: dict[str, Decimal],
               currency: str) -> list[BillingLine]:
    """Lines billed before and no longer sold (a milestone cancelled by amendment): sold
    nothing now, so what was billed is credited. Time delivered stays billed."""
    current = {line.id for line in lines}
    return [BillingLine(line_id, f"{line_id} (withdrawn)", Money(Decimal(0), currency), False)
            for line_id in sorted(billed) if line_id not in current
            and not line_id.startswith(TIME_LINE_PREFIX)]


def _blockers(snap: BillingSnapshot) -> str:
    """Why nothing may be invoiced for the deal now (credit notes still may)."""
    reasons = []
    status = snap.opportunity.contract.contract_status
    if status is not ApprovalStatus.APPROVED:
        reasons.append(f"the contract is {status}, not active")
    if snap.customer is not None and snap.customer.credit_hold:
        reasons.append(f"customer {snap.customer.id} is on credit hold")
    return "; ".join(reasons)


def _count(snap: BillingSnapshot, line_id: str) -> int:
    return sum(1 for doc in snap.documents.values() if doc.line_id == line_id)


def _document(snap: BillingSnapshot, line: BillingLine, amount: Money, billed_docs: int,
              today: date, post: bool) -> IssueDocument:
    """The line's next document: `<line>` first, then `<line>#2`, … — the same id however
    often it is asked for until it is recorded, so a lost response finds what was made."""
    document_id = line.id if billed_docs == 0 else f"{line.id}#{billed_docs + 1}"
    name = line.name if billed_docs == 0 else f"{line.name}, adjustment {billed_docs + 1}"
    return _issue(snap, document_id, line.id, Milestone(document_id, name, amount), today, post)


def _again(snap: BillingSnapshot, doc: BilledDocument, today: date) -> IssueDocument:
    """A document the ERP holds as a draft: asked for again, so it is posted."""
    line = Milestone(doc.document_id, doc.document_id, doc.invoice.untaxed)
    return _issue(snap, doc.document_id, doc.line_id, line, today, post=True)


def _issue(snap: BillingSnapshot, document_id: str, line_id: str, line: Milestone,
           today: date, post: bool) -> IssueDocument:
    opp_id = snap.opportunity.id
    external = (credit_note_external_id if line.amount.is_negative else invoice_external_id)(
        opp_id, document_id)
    return IssueDocument(InvoiceRequest(external, opp_id, line, today, snap.customer_target_id,
                                        post), line_id)
