"""Release gates: the named rules a won deal must pass before anything is provisioned.

Each gate is a pure function returning the reason it fails, or None. The configuration
chooses which gates run and what they accept; the reasons are what the CRM shows.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from handoff.domain import ApprovalStatus, Customer, Opportunity, ValidationStatus

# ISO 3166-1 alpha-2, optionally with an ISO 3166-2 subdivision: "US", "US-CA", "DE-BY".
TAX_JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")


@dataclass(frozen=True, slots=True)
class ReleasePolicy:
    gates: tuple[str, ...] = (
        "contract_approved", "sow_approved", "customer_validated",
        "legal_entity_assigned", "tax_jurisdiction_valid",
    )
    legal_entities: frozenset[str] = field(default_factory=frozenset)   # empty: any
    tax_jurisdictions: frozenset[str] = field(default_factory=frozenset)  # empty: any ISO


@dataclass(frozen=True, slots=True)
class GateFailure:
    gate: str
    reason: str

    def __str__(self) -> str:
        return f"{self.gate}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ReleaseDecision:
    failures: tuple[GateFailure, ...]

    @property
    def released(self) -> bool:
        return not self.failures

    def explain(self) -> str:
        return "; ".join(str(f) for f in self.failures)


Gate = Callable[[Opportunity, Customer | None, ReleasePolicy], str | None]


def contract_approved(opp: Opportunity, _c: Customer | None, _p: ReleasePolicy) -> str | None:
    status = opp.contract.contract_status
    return None if status is ApprovalStatus.APPROVED else f"contract is {status}, not approved"


def sow_approved(opp: Opportunity, _c: Customer | None, _p: ReleasePolicy) -> str | None:
    status = opp.contract.sow_status
    return None if status is ApprovalStatus.APPROVED else f"SOW is {status}, not approved"


def customer_validated(opp: Opportunity, customer: Customer | None, _p: ReleasePolicy) -> str | None:
    if customer is None:
        return f"customer {opp.account_id} not yet received from the customer master"
    if customer.validation_status is not ValidationStatus.VALID:
        return f"customer {customer.name} is {customer.validation_status} in the customer master"
    return None


def legal_entity_assigned(opp: Opportunity, _c: Customer | None, policy: ReleasePolicy) -> str | None:
    if not opp.legal_entity:
        return "no legal entity assigned"
    if policy.legal_entities and opp.legal_entity not in policy.legal_entities:
        allowed = ", ".join(sorted(policy.legal_entities))
        return f"legal entity {opp.legal_entity} is not one of {allowed}"
    return None


def tax_jurisdiction_valid(opp: Opportunity, customer: Customer | None, policy: ReleasePolicy) -> str | None:
    if customer is None:
        return "customer unknown, so its tax jurisdiction cannot be checked"
    code = customer.tax_jurisdiction
    if not code:
        return f"customer {customer.name} has no tax jurisdiction"
    if not TAX_JURISDICTION.match(code):
        return f"tax jurisdiction {code!r} is not an ISO 3166 code"
    if policy.tax_jurisdictions and code not in policy.tax_jurisdictions:
        return f"tax jurisdiction {code} is not one handoff may invoice in"
    return None


GATES: dict[str, Gate] = {
    gate.__name__: gate
    for gate in (contract_approved, sow_approved, customer_validated,
                 legal_entity_assigned, tax_jurisdiction_valid)
}


def evaluate_release(opp: Opportunity, customer: Customer | None, policy: ReleasePolicy) -> ReleaseDecision:
    failures = []
    for name in policy.gates:
        reason = GATES[name](opp, customer, policy)
        if reason:
            failures.append(GateFailure(name, reason))
    return ReleaseDecision(tuple(failures))
