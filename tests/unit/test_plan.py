import dataclasses
from datetime import UTC, datetime
from decimal import Decimal

from handoff.domain import ProvisioningStatus
from handoff.domain.terms import AmendmentStatus, terms_of
from handoff.engine.payloads import parse_customer, parse_opportunity
from handoff.flows.amendment_plan import OpenAmendment, SupersedeAmendment
from handoff.flows.plan import (
    RecordPlan,
    UpsertCustomer,
    UpsertProject,
    WriteBack,
    plan_provisioning,
    project_for,
    write_back_fingerprint,
)
from handoff.policy.ownership import OwnershipPolicy
from handoff.policy.release_gates import ReleasePolicy
from handoff.store.provisioning import ProvisioningState, Snapshot
from handoff.store.terms import PlanVersion
from tests.factories import customer_data, opportunity_data

OPP = parse_opportunity(opportunity_data())
CUSTOMER = parse_customer(customer_data())
POLICY = ReleasePolicy()
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def plan_of(opp, customer, state, policy=POLICY, plan=None, amendments=(), ownership=None):
    snap = Snapshot(opp, customer, state, "c0", plan, tuple(amendments))
    return plan_provisioning(snap, policy, ownership or OwnershipPolicy(), NOW)


def active(**changes) -> ProvisioningState:
    """A deal provisioned as OPP was sold, the CRM told, nothing left to do."""
    return dataclasses.replace(ProvisioningState(
        status=ProvisioningStatus.PROVISIONED, customer_target_id="7",
        customer_synced_version=CUSTOMER.version, project_target_id="9",
        written_back=write_back_fingerprint(ProvisioningStatus.PROVISIONED, "", "9"),
        project_sent=project_for(OPP), crm_terms=terms_of(OPP)), **changes)


V1 = PlanVersion(OPP.id, 1, terms_of(OPP))


def kinds(plan) -> list[type]:
    return [type(step) for step in plan.steps]


def test_not_won_waits_without_touching_any_system() -> None:
    plan = plan_of(dataclasses.replace(OPP, is_won=False, stage="Negotiation"),
                             CUSTOMER, ProvisioningState(), POLICY)
    assert plan.status is ProvisioningStatus.WAITING and plan.steps == ()


def test_released_deal_plans_customer_project_and_write_back() -> None:
    plan = plan_of(OPP, CUSTOMER, ProvisioningState(), POLICY)
    assert kinds(plan) == [UpsertCustomer, UpsertProject, RecordPlan, WriteBack]
    assert plan.steps[2].plan.terms.value == OPP.amount
    project = plan.steps[1].project
    assert project.external_id == f"HO-P-{OPP.id}" and project.value == OPP.amount
    assert plan.steps[0].external_id == f"HO-C-{CUSTOMER.id}"


def test_blocked_deal_only_tells_the_crm_why_and_only_once() -> None:
    plan = plan_of(OPP, None, ProvisioningState(), POLICY)
    assert plan.status is ProvisioningStatus.BLOCKED and kinds(plan) == [WriteBack]
    assert "customer_validated" in plan.detail
    told = ProvisioningState(status=plan.status, detail=plan.detail,
                             written_back=write_back_fingerprint(plan.status, plan.detail, None))
    assert plan_of(OPP, None, told, POLICY).steps == ()


def test_provisioned_deal_is_a_no_op() -> None:
    assert plan_of(OPP, CUSTOMER, active(), plan=V1).steps == ()


def test_a_deal_provisioned_before_plan_versions_adopts_its_terms() -> None:
    assert kinds(plan_of(OPP, CUSTOMER, active(), plan=None)) == [RecordPlan]


def test_half_done_deal_resumes_where_it_stopped() -> None:
    state = ProvisioningState(customer_target_id="7", customer_synced_version=CUSTOMER.version)
    assert kinds(plan_of(OPP, CUSTOMER, state, POLICY)) == [UpsertProject, RecordPlan, WriteBack]


def test_a_provisioned_deal_is_not_blocked_again_by_later_data() -> None:
    state = ProvisioningState(status=ProvisioningStatus.PROVISIONED, customer_target_id="7",
                              customer_synced_version=CUSTOMER.version, project_target_id="9")
    plan = plan_of(OPP, None, state, POLICY, plan=V1)
    assert plan.status is ProvisioningStatus.PROVISIONED
    assert kinds(plan) == [UpsertProject, WriteBack]  # the project as sent is not known


def changed(**fields) -> object:
    return dataclasses.replace(OPP, **fields)


def raised(amount: str, **fields) -> object:
    money = dataclasses.replace(OPP.amount, amount=Decimal(amount))
    return changed(amount=money, contract=dataclasses.replace(OPP.contract, value=money), **fields)


def test_a_crm_value_change_on_an_active_deal_opens_an_amendment_and_leaves_the_erp_alone() -> None:
    plan = plan_of(raised("150000.00", modified_by="alice", change_reason="scope grew"),
                   CUSTOMER, active(), plan=V1)
    assert kinds(plan) == [OpenAmendment, WriteBack]
    amendment = plan.steps[0].amendment
    assert amendment.id == f"AM-{OPP.id}-1" and amendment.requester == "alice"
    assert amendment.delta() == {"value": (str(OPP.amount.quantized()), "150000.00")}
    assert amendment.before == V1.terms and "awaits approval" in plan.detail


def test_the_same_change_seen_again_opens_nothing_more() -> None:
    opp = raised("150000.00")
    first = plan_of(opp, CUSTOMER, active(), plan=V1).steps[0].amendment
    told = active(crm_terms=terms_of(opp))
    again = plan_of(changed(amount=opp.amount, contract=opp.contract, name=OPP.name), CUSTOMER,
                    told, plan=V1, amendments=[first])
    assert [k for k in kinds(again) if k is not WriteBack] == []


def test_a_newer_change_supersedes_the_pending_amendment_and_going_back_closes_it() -> None:
    first = plan_of(raised("150000.00"), CUSTOMER, active(), plan=V1).steps[0].amendment
    state = active(crm_terms=terms_of(raised("150000.00")))
    newer = plan_of(raised("160000.00"), CUSTOMER, state, plan=V1, amendments=[first])
    assert kinds(newer)[:2] == [SupersedeAmendment, OpenAmendment]
    assert newer.steps[1].amendment.id.endswith("-2")
    back = plan_of(OPP, CUSTOMER, state, plan=V1, amendments=[first])
    assert kinds(back)[0] is SupersedeAmendment and OpenAmendment not in kinds(back)


def test_a_rejected_change_is_not_reopened_when_the_crm_repeats_it() -> None:
    opp = raised("150000.00")
    first = plan_of(opp, CUSTOMER, active(), plan=V1).steps[0].amendment
    rejected = dataclasses.replace(first, status=AmendmentStatus.REJECTED, decided_by="carol",
                                   decision_reason="not signed")
    plan = plan_of(opp, CUSTOMER, active(crm_terms=terms_of(opp)), plan=V1, amendments=[rejected])
    assert OpenAmendment not in kinds(plan)
    assert plan.detail == f"amendment {first.id} rejected by carol: not signed"


def test_a_name_change_the_crm_owns_reaches_the_project_but_not_one_it_does_not() -> None:
    renamed = changed(name="Renamed deal")
    plan = plan_of(renamed, CUSTOMER, active(), plan=V1)
    assert kinds(plan) == [UpsertProject] and plan.steps[0].project.name == "Renamed deal"
    erp_owns = OwnershipPolicy(frozenset({"owner", "description"}))
    assert plan_of(renamed, CUSTOMER, active(), plan=V1, ownership=erp_owns).steps == ()


def test_an_approved_plan_version_sends_the_new_value_to_the_erp() -> None:
    v2 = PlanVersion(OPP.id, 2, terms_of(raised("150000.00")), f"AM-{OPP.id}-1")
    plan = plan_of(OPP, CUSTOMER, active(), plan=v2)
    assert kinds(plan) == [UpsertProject]
    assert plan.steps[0].project.value.amount == Decimal("150000.00")
