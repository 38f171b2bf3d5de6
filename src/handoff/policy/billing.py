"""Invoice eligibility: when a milestone of the sold schedule may be invoiced.

`[policy.billing] invoice_when = "achieved"` (the default) bills a milestone once delivery
says it is done; "accepted" waits for the customer's sign-off. A milestone that would take
the invoiced total above the contract value is held for a person, never invoiced: nothing
is billed that was not sold.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from handoff.domain import Milestone, MilestoneStatus, Money, Opportunity


@dataclass(frozen=True, slots=True)
class BillingPolicy:
    invoice_when: MilestoneStatus = MilestoneStatus.ACHIEVED
    refresh_minutes: float = 15.0  # how often posted, unpaid invoices are read again


def over_contract_value(opp: Opportunity, invoiced: Decimal, milestone: Milestone) -> str | None:
    """Why invoicing `milestone` now would bill more than was sold, or None. `invoiced`: what
    is already invoiced (or about to be) for the deal."""
    value = opp.contract.value
    after = invoiced + milestone.amount.amount
    if after <= value.amount:
        return None
    return (f"milestone {milestone.id} ({milestone.amount.quantized()} {value.currency}) would "
            f"bring the invoiced total to {Money(after, value.currency).quantized()} "
            f"{value.currency}, above the contract value {value.quantized()} {value.currency}")
