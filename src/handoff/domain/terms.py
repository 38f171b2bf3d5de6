"""The sold terms of a deal and how they change once its project is active.

`DealTerms` are the financial fields: contract value (and so currency), billing method,
billing schedule, billing period, legal entity and tax treatment. Before the project exists
they follow the CRM. After, the ERP/PSA owns them: a change in the CRM opens an `Amendment`,
and only an approved amendment makes a new plan version (store/terms.py).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from handoff.domain.billing import Milestone
from handoff.domain.model import BillingMethod, BillingPeriod, Opportunity
from handoff.domain.money import Money

# The terms' fields, as named in deltas, amendments and the audit log.
FINANCIAL_FIELDS = ("value", "currency", "billing_method", "milestones", "billing_period", "legal_entity",
                    "tax_treatment")
# The deal's descriptive fields; by default the CRM owns them all ([policy.ownership]).
DESCRIPTIVE_FIELDS = ("name", "owner", "close_date", "description")


@dataclass(frozen=True, slots=True)
class DealTerms:
    value: Money
    billing_method: BillingMethod
    milestones: tuple[Milestone, ...] = ()
    billing_period: BillingPeriod = BillingPeriod.MONTHLY
    legal_entity: str | None = None
    tax_treatment: str | None = None

    @property
    def currency(self) -> str:
        return self.value.currency


class AmendmentStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    SUPERSEDED = "superseded"  # a newer change, or the CRM went back, before a decision


@dataclass(frozen=True, slots=True)
class Amendment:
    """A change to a deal's approved terms, waiting for (or past) an approver's decision."""

    id: str
    opportunity_id: str
    correlation_id: str
    status: AmendmentStatus
    base_version: int
    before: DealTerms
    after: DealTerms
    requester: str
    reason: str
    origin: str
    requested_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None

    def delta(self) -> dict[str, tuple[Any, Any]]:
        return financial_delta(self.before, self.after)

    def describe(self) -> str:
        changes = "; ".join(_schedule_change(old, new) if name == "milestones"
                            else f"{name} {_show(old)} → {_show(new)}"
                            for name, (old, new) in self.delta().items())
        return f"amendment {self.id} ({changes})"


def terms_of(opp: Opportunity) -> DealTerms:
    contract = opp.contract
    return DealTerms(contract.value, opp.billing_method, contract.milestones,
                     contract.billing_period, opp.legal_entity, contract.tax_treatment)


def financial_delta(before: DealTerms, after: DealTerms) -> dict[str, tuple[Any, Any]]:
    """The fields whose values differ, in wire form (amounts as decimal text)."""
    old, new = terms_data(before), terms_data(after)
    return {name: (old[name], new[name]) for name in FINANCIAL_FIELDS if old[name] != new[name]}


def with_changes(base: DealTerms, source: DealTerms, names: tuple[str, ...]) -> DealTerms:
    """`base` with the named fields taken from `source` (the currency travels with the value)."""
    fields = {"value" if name == "currency" else name for name in names}
    return replace(base, **{name: getattr(source, name) for name in fields})


def terms_data(terms: DealTerms) -> dict[str, Any]:
    return {
        "value": str(terms.value.quantized()), "currency": terms.currency,
        "billing_method": terms.billing_method.value,
        "milestones": [{"id": m.id, "name": m.name, "amount": str(m.amount.quantized())}
                       for m in terms.milestones],
        "billing_period": terms.billing_period.value, "legal_entity": terms.legal_entity,
        "tax_treatment": terms.tax_treatment,
    }


def parse_terms(data: dict[str, Any]) -> DealTerms:
    """Terms as handoff stored them (terms_data); trusted, so not validated field by field."""
    currency = data["currency"]
    return DealTerms(
        value=Money.parse(data["value"], currency),
        billing_method=BillingMethod(data["billing_method"]),
        milestones=tuple(Milestone(m["id"], m["name"], Money.parse(m["amount"], currency))
                         for m in data.get("milestones", ())),
        billing_period=BillingPeriod(data.get("billing_period", BillingPeriod.MONTHLY.value)),
        legal_entity=data.get("legal_entity"), tax_treatment=data.get("tax_treatment"))


def _show(value: Any) -> str:
    return "none" if value is None else str(value)


def _schedule_change(old: list[dict[str, str]], new: list[dict[str, str]]) -> str:
    """`M2 60000.00 → 70000.00, M4 added 20000.00, M3 removed`: only what changed."""
    before, after = {m["id"]: m for m in old}, {m["id"]: m for m in new}
    parts = [f"{i} added {m['amount']}" if i not in before
             else f"{i} {before[i]['amount']} → {m['amount']}"
             for i, m in after.items() if before.get(i) != m]
    parts += [f"{i} removed" for i in before if i not in after]
    return "milestones " + ", ".join(parts)
