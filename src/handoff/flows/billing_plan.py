"""The billing plan: a pure function of the deal's schedule, delivery's progress and the
invoices already made. One step per milestone that is billable and not yet posted; a
billable milestone that would bill more than the contract value is held instead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from handoff.domain import Invoice, InvoiceStatus, MilestoneInvoice
from handoff.domain.ids import invoice_external_id
from handoff.policy.billing import BillingPolicy, over_contract_value
from handoff.store.billing import BillingSnapshot


@dataclass(frozen=True, slots=True)
class InvoiceMilestone:
    request: MilestoneInvoice

    def describe(self) -> str:
        m = self.request.milestone
        return (f"invoice milestone {m.id} ({m.name}, {m.amount.quantized()} {m.amount.currency}) "
                f"as {self.request.external_id} and post it")


@dataclass(frozen=True, slots=True)
class BillingPlan:
    opportunity_id: str
    steps: tuple[InvoiceMilestone, ...]
    waiting: str = ""   # nothing wrong, not yet: the project is not provisioned
    held: tuple[str, ...] = ()     # a person must act: these would bill more than was sold
    ignored: tuple[str, ...] = ()  # progress for milestones the schedule does not have
    refresh: tuple[tuple[str, Invoice], ...] = ()  # (milestone, invoice) awaiting payment


def plan_billing(snap: BillingSnapshot, policy: BillingPolicy, today: date) -> BillingPlan:
    opp = snap.opportunity
    schedule = opp.contract.milestones
    ignored = tuple(sorted(set(snap.progress) - {m.id for m in schedule}))
    if not schedule:
        return BillingPlan(opp.id, (), ignored=ignored)
    if snap.project_target_id is None:
        return BillingPlan(opp.id, (), waiting="the project is not provisioned yet", ignored=ignored)
    billed = sum((i.total.amount for i in snap.invoices.values()
                  if i.status is not InvoiceStatus.CANCELLED), Decimal(0))
    steps, held = [], []
    for milestone in schedule:
        progress = snap.progress.get(milestone.id)
        invoice = snap.invoices.get(milestone.id)
        if progress is None or not progress.status.reached(policy.invoice_when):
            continue
        if invoice is not None and invoice.status is not InvoiceStatus.DRAFT:
            continue
        already = invoice.total.amount if invoice else Decimal(0)  # a draft counts once
        if reason := over_contract_value(opp, billed - already, milestone):
            held.append(reason)
            continue
        billed += milestone.amount.amount - already
        steps.append(InvoiceMilestone(MilestoneInvoice(
            invoice_external_id(opp.id, milestone.id), opp.id, milestone, today)))
    refresh = tuple((m, i) for m, i in snap.invoices.items() if i.status is InvoiceStatus.POSTED)
    return BillingPlan(opp.id, tuple(steps), held=tuple(held), ignored=ignored, refresh=refresh)
