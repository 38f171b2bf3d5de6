import dataclasses

from handoff.domain import ProvisioningStatus
from handoff.engine.payloads import parse_customer, parse_opportunity
from handoff.flows.plan import (
    UpsertCustomer,
    UpsertProject,
    WriteBack,
    plan_provisioning,
    write_back_fingerprint,
)
from handoff.policy.release_gates import ReleasePolicy
from handoff.store.provisioning import ProvisioningState
from tests.factories import customer_data, opportunity_data

OPP = parse_opportunity(opportunity_data())
CUSTOMER = parse_customer(customer_data())
POLICY = ReleasePolicy()


def kinds(plan) -> list[type]:
    return [type(step) for step in plan.steps]


def test_not_won_waits_without_touching_any_system() -> None:
    plan = plan_provisioning(dataclasses.replace(OPP, is_won=False, stage="Negotiation"),
                             CUSTOMER, ProvisioningState(), POLICY)
    assert plan.status is ProvisioningStatus.WAITING and plan.steps == ()


def test_released_deal_plans_customer_project_and_write_back() -> None:
    plan = plan_provisioning(OPP, CUSTOMER, ProvisioningState(), POLICY)
    assert kinds(plan) == [UpsertCustomer, UpsertProject, WriteBack]
    project = plan.steps[1].project
    assert project.external_id == f"HO-P-{OPP.id}" and project.value == OPP.amount
    assert plan.steps[0].external_id == f"HO-C-{CUSTOMER.id}"


def test_blocked_deal_only_tells_the_crm_why_and_only_once() -> None:
    plan = plan_provisioning(OPP, None, ProvisioningState(), POLICY)
    assert plan.status is ProvisioningStatus.BLOCKED and kinds(plan) == [WriteBack]
    assert "customer_validated" in plan.detail
    told = ProvisioningState(status=plan.status, detail=plan.detail,
                             written_back=write_back_fingerprint(plan.status, plan.detail, None))
    assert plan_provisioning(OPP, None, told, POLICY).steps == ()


def test_provisioned_deal_is_a_no_op() -> None:
    state = ProvisioningState(
        status=ProvisioningStatus.PROVISIONED, customer_target_id="7",
        customer_synced_version=CUSTOMER.version, project_target_id="9",
        written_back=write_back_fingerprint(ProvisioningStatus.PROVISIONED, "", "9"))
    assert plan_provisioning(OPP, CUSTOMER, state, POLICY).steps == ()


def test_half_done_deal_resumes_where_it_stopped() -> None:
    state = ProvisioningState(customer_target_id="7", customer_synced_version=CUSTOMER.version)
    assert kinds(plan_provisioning(OPP, CUSTOMER, state, POLICY)) == [UpsertProject, WriteBack]


def test_a_provisioned_deal_is_not_blocked_again_by_later_data() -> None:
    state = ProvisioningState(status=ProvisioningStatus.PROVISIONED, customer_target_id="7",
                              customer_synced_version=CUSTOMER.version, project_target_id="9")
    plan = plan_provisioning(OPP, None, state, POLICY)
    assert plan.status is ProvisioningStatus.PROVISIONED and kinds(plan) == [WriteBack]
