"""A CRM change to the financial terms of an active deal becomes an amendment; a pure
function of the deal as the CRM shows it, the CRM terms last compared and the approved plan.

Only what changed in the CRM since the last comparison is proposed, on top of the approved
terms (or of the amendment still pending, which the new one then supersedes). So the same
change sent ten times opens one amendment, and a change finance made by amendment is not
undone by the next unrelated CRM edit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from handoff.domain.terms import (
    Amendment,
    AmendmentStatus,
    financial_delta,
    terms_of,
    with_changes,
)
from handoff.engine.clock import utcnow
from handoff.store.provisioning import Snapshot
from handoff.store.terms import PlanVersion


@dataclass(frozen=True, slots=True)
class OpenAmendment:
    amendment: Amendment

    def describe(self) -> str:
        a = self.amendment
        return (f"open {a.describe()} for approval, requested by {a.requester}: {a.reason}; "
                "the ERP keeps the approved terms until an approver decides")


@dataclass(frozen=True, slots=True)
class SupersedeAmendment:
    amendment: Amendment
    why: str

    def describe(self) -> str:
        return f"mark amendment {self.amendment.id} superseded: {self.why}"


AmendmentStep = OpenAmendment | SupersedeAmendment


def plan_amendment(snap: Snapshot, plan: PlanVersion, now: datetime | None) -> list[AmendmentStep]:
    opp = snap.opportunity
    crm_now = terms_of(opp)
    changed = tuple(financial_delta(snap.state.crm_terms or plan.terms, crm_now))
    if not changed:
        return []
    pending = snap.open_amendment
    proposed = with_changes(pending.after if pending else plan.terms, crm_now, changed)
    if pending and pending.after == proposed:
        return []
    steps: list[AmendmentStep] = []
    if pending:
        why = ("the CRM went back to the approved terms" if proposed == plan.terms
               else "a newer CRM change replaces it")
        steps.append(SupersedeAmendment(pending, why))
    if proposed != plan.terms:
        steps.append(OpenAmendment(Amendment(
            id=f"AM-{opp.id}-{len(snap.amendments) + 1}", opportunity_id=opp.id,
            correlation_id=snap.correlation_id, status=AmendmentStatus.PENDING,
            base_version=plan.version, before=plan.terms, after=proposed,
            requester=opp.modified_by or opp.owner or "crm",
            reason=opp.change_reason or "changed in the CRM", origin="crm",
            requested_at=now or utcnow())))
    return steps


def amendment_detail(amendment: Amendment | None) -> str:
    """What the CRM shows of the deal's latest amendment."""
    if amendment is None:
        return ""
    if amendment.status is AmendmentStatus.PENDING:
        return f"{amendment.describe()} awaits approval"
    if amendment.status is AmendmentStatus.REJECTED:
        return (f"amendment {amendment.id} rejected by {amendment.decided_by}: "
                f"{amendment.decision_reason or 'no reason given'}")
    if amendment.status is AmendmentStatus.APPROVED:
        return (f"amendment {amendment.id} approved by {amendment.decided_by}; "
                f"plan v{amendment.base_version + 1}")
    return ""
