"""Invoice eligibility: when a milestone of the sold schedule may be invoiced.

`[policy.billing] invoice_when = "achieved"` (the default) bills a milestone once delivery
says it is done; "accepted" waits for the customer's sign-off. A line that would take the
invoiced total above the approved contract value is held for a person, never invoiced:
nothing is billed that was not sold.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from handoff.domain import MilestoneStatus, Money


@dataclass(frozen=True, slots=True)
class BillingPolicy:
    invoice_when: MilestoneStatus = MilestoneStatus.ACHIEVED
    refresh_minutes: float = 15.0  # how often posted, unpaid invoices are read again
    post: bool = True  # False: invoices stay drafts for finance to review and post in the ERP


def over_contract_value(value: Money, invoiced: Decimal, line_id: str, amount: Money) -> str | None:
    """Why invoicing `amount` for `line_id` now would bill more than was sold, or None.
    `invoiced`: what is already invoiced (or about to be) for the deal, net of credits."""
    after = invoiced + amount.amount
    if after <= value.amount:
        return None
    return (f"line {line_id} ({amount.quantized()} {value.currency}) would bring the invoiced total "
            f"to {Money(after, value.currency).quantized()} {value.currency}, above the contract "
            f"value {value.quantized()} {value.currency}")
