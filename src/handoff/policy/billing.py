"""Invoice eligibility: when a milestone of the sold schedule may be invoiced.

`[policy.billing] invoice_when = "achieved"` (the default) bills a milestone once delivery
says it is done; "accepted" waits for the customer's sign-off. A schedule that does not add
up to the contract value is never billed: sold must equal invoiced.
"""

from __future__ import annotations

from dataclasses import dataclass

from handoff.domain import MilestoneStatus, Opportunity
from handoff.domain.billing import schedule_total


@dataclass(frozen=True, slots=True)
class BillingPolicy:
    invoice_when: MilestoneStatus = MilestoneStatus.ACHIEVED


def schedule_problem(opp: Opportunity) -> str | None:
    """Why the deal's billing schedule cannot be billed as sold, or None."""
    schedule = opp.contract.milestones
    if not schedule:
        return None
    total = schedule_total(schedule, opp.amount.currency)
    if total.amount != opp.contract.value.amount:
        return (f"billing schedule adds up to {total.quantized()} {total.currency}, "
                f"not the contract value {opp.contract.value.quantized()} {total.currency}")
    return None
