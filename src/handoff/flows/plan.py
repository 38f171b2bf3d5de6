"""The provisioning plan: a pure function of the deal, its customer and what handoff
already did. `handoff plan <id>` prints it; the controller applies it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from handoff.domain import Customer, Opportunity, Project, ProvisioningStatus
from handoff.domain.ids import customer_external_id, project_external_id
from handoff.policy.release_gates import ReleasePolicy, evaluate_release
from handoff.store.provisioning import ProvisioningState


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
class WriteBack:
    status: ProvisioningStatus
    detail: str

    def describe(self) -> str:
        suffix = f": {self.detail}" if self.detail else ""
        return f"write back '{self.status}' to the CRM opportunity{suffix}"


Step = UpsertCustomer | UpsertProject | WriteBack


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


def project_for(opp: Opportunity) -> Project:
    return Project(
        external_id=project_external_id(opp.id), opportunity_id=opp.id, name=opp.name,
        customer_external_id=customer_external_id(opp.account_id), value=opp.amount,
        billing_method=opp.billing_method, start_date=opp.close_date,
        legal_entity=opp.legal_entity,
    )


def plan_provisioning(
    opp: Opportunity, customer: Customer | None, state: ProvisioningState, policy: ReleasePolicy
) -> ProvisioningPlan:
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
        steps += [UpsertProject(project_for(opp)), WriteBack(status, "")]
    else:
        steps += _write_back(status, "", state)
    return ProvisioningPlan(opp.id, status, "", tuple(steps))


def _write_back(status: ProvisioningStatus, detail: str, state: ProvisioningState) -> tuple[Step, ...]:
    fingerprint = write_back_fingerprint(status, detail, state.project_target_id)
    return () if fingerprint == state.written_back else (WriteBack(status, detail),)
