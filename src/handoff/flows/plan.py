"""The provisioning plan: a pure function of the deal, its customer, its approved terms and
what handoff already did. `handoff plan <id>` prints it; the controller applies it.

Before the project exists the deal's terms follow the CRM. Once it is active, a CRM change
to the financial terms opens an amendment (flows/amendments.py decides it) and only the
approved terms reach the ERP; the descriptive fields the CRM owns are applied directly.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from datetime import datetime

from handoff.domain import Customer, Opportunity, Project, ProvisioningStatus
from handoff.domain.ids import customer_external_id, project_external_id
from handoff.domain.terms import Amendment, AmendmentStatus, DealTerms, terms_of
from handoff.flows.amendment_plan import (
    OpenAmendment,
    SupersedeAmendment,
    amendment_detail,
    plan_amendment,
)
from handoff.policy.ownership import DEFAULT_OWNERSHIP, OwnershipPolicy
from handoff.policy.release_gates import ReleasePolicy, evaluate_release
from handoff.store.provisioning import ProvisioningState, Snapshot
from handoff.store.terms import PlanVersion


@dataclass(frozen=True, slots=True)
class UpsertCustomer:
    external_id: str
    customer: Customer

    def describe(self) -> str:
        return f"upsert customer {self.external_id} ({self.customer.name}) in the ERP"


@dataclass(frozen=True, slots=True)
class UpsertProject:
    project: Project

    def describe(self) -> str:
        return (f"upsert project {self.project.external_id} ({self.project.name}, "
                f"{self.project.value}, {self.project.billing_method}) in the ERP")


@dataclass(frozen=True, slots=True)
class RecordPlan:
    """The deal's first approved terms: what it was sold as when provisioned."""

    plan: PlanVersion

    def describe(self) -> str:
        terms = self.plan.terms
        return (f"record plan v{self.plan.version}: {terms.value}, {terms.billing_method}, "
                f"{len(terms.milestones)} milestone(s)")


@dataclass(frozen=True, slots=True)
class WriteBack:
    status: ProvisioningStatus
    detail: str

    def describe(self) -> str:
        suffix = f": {self.detail}" if self.detail else ""
        return f"write back '{self.status}' to the CRM opportunity{suffix}"


Step = UpsertCustomer | UpsertProject | RecordPlan | OpenAmendment | SupersedeAmendment | WriteBack


@dataclass(frozen=True, slots=True)
class ProvisioningPlan:
    opportunity_id: str
    status: ProvisioningStatus
    detail: str
    steps: tuple[Step, ...]


def write_back_fingerprint(status: ProvisioningStatus, detail: str, project_id: str | None) -> str:
    """What the CRM was last told, so the same status is never written twice."""
    text = f"{status}|{detail}|{project_id or ''}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def project_for(opp: Opportunity, terms: DealTerms | None = None) -> Project:
    terms = terms or terms_of(opp)
    return Project(
        external_id=project_external_id(opp.id), opportunity_id=opp.id, name=opp.name,
        customer_external_id=customer_external_id(opp.account_id), value=terms.value,
        billing_method=terms.billing_method, start_date=opp.close_date,
        legal_entity=terms.legal_entity, milestones=terms.milestones,
    )


def plan_provisioning(snap: Snapshot, policy: ReleasePolicy,
                      ownership: OwnershipPolicy = DEFAULT_OWNERSHIP,
                      now: datetime | None = None) -> ProvisioningPlan:
    """`now` stamps an amendment the plan opens (the CLI's plan shows it, never saves it)."""
    opp, customer, state = snap.opportunity, snap.customer, snap.state
    if state.project_target_id is None:
        if not opp.is_won:
            return ProvisioningPlan(opp.id, ProvisioningStatus.WAITING, f"stage is {opp.stage}", ())
        decision = evaluate_release(opp, customer, policy)
        if not decision.released:
            status, detail = ProvisioningStatus.BLOCKED, decision.explain()
            return ProvisioningPlan(opp.id, status, detail, _write_back(status, detail, state))
    status = ProvisioningStatus.PROVISIONED
    steps: list[Step] = []
    if customer and (state.customer_target_id is None
                     or state.customer_synced_version != customer.version):
        steps.append(UpsertCustomer(customer_external_id(customer.id), customer))
    if state.project_target_id is None:
        steps += [UpsertProject(project_for(opp)), RecordPlan(PlanVersion(opp.id, 1, terms_of(opp))),
                  WriteBack(status, "")]
        return ProvisioningPlan(opp.id, status, "", tuple(steps))
    steps += _active_steps(snap, ownership, now)
    opened = [s.amendment for s in steps if isinstance(s, OpenAmendment)]
    detail = amendment_detail(opened[-1] if opened else _latest(snap.amendments))
    steps += _write_back(status, detail, state)
    return ProvisioningPlan(opp.id, status, detail, tuple(steps))


def _active_steps(snap: Snapshot, ownership: OwnershipPolicy, now: datetime | None) -> list[Step]:
    """A provisioned deal: adopt its terms if it predates plan versions, turn a CRM change to
    them into an amendment, and send the project again if what the ERP should hold changed."""
    opp, state = snap.opportunity, snap.state
    plan = snap.plan or PlanVersion(opp.id, 1, terms_of(opp))
    steps: list[Step] = [] if snap.plan else [RecordPlan(plan)]
    steps += plan_amendment(snap, plan, now)
    wanted = _wanted_project(opp, plan.terms, state.project_sent, ownership)
    if wanted != state.project_sent:
        steps.append(UpsertProject(wanted))
    return steps


def _wanted_project(opp: Opportunity, terms: DealTerms, sent: Project | None,
                    ownership: OwnershipPolicy) -> Project:
    """The approved terms, with the descriptive fields the CRM owns taken from the CRM (the
    others stay as they were sent)."""
    fresh = project_for(opp, terms)
    if sent is None:
        return fresh
    return dataclasses.replace(
        fresh, name=opp.name if ownership.crm_owns("name") else sent.name,
        start_date=opp.close_date if ownership.crm_owns("close_date") else sent.start_date)


def _latest(amendments: tuple[Amendment, ...]) -> Amendment | None:
    decided = [a for a in amendments if a.status is not AmendmentStatus.SUPERSEDED]
    return decided[-1] if decided else None


def _write_back(status: ProvisioningStatus, detail: str, state: ProvisioningState) -> tuple[Step, ...]:
    fingerprint = write_back_fingerprint(status, detail, state.project_target_id)
    return () if fingerprint == state.written_back else (WriteBack(status, detail),)
