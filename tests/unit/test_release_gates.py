import dataclasses

from handoff.domain import ApprovalStatus, ValidationStatus
from handoff.engine.payloads import parse_customer, parse_opportunity
from handoff.policy.release_gates import ReleasePolicy, evaluate_release
from tests.factories import customer_data, opportunity_data

DEFAULT = ReleasePolicy()
OPP = parse_opportunity(opportunity_data())
CUSTOMER = parse_customer(customer_data())


def gates_failing(opp=OPP, customer=CUSTOMER, policy=DEFAULT) -> dict[str, str]:
    return {f.gate: f.reason for f in evaluate_release(opp, customer, policy).failures}


def test_a_complete_deal_is_released() -> None:
    assert evaluate_release(OPP, CUSTOMER, ReleasePolicy()).released


def test_each_missing_approval_is_named() -> None:
    contract = dataclasses.replace(OPP.contract, contract_status=ApprovalStatus.PENDING,
                                   sow_status=ApprovalStatus.REJECTED)
    failing = gates_failing(dataclasses.replace(OPP, contract=contract))
    assert failing == {"contract_approved": "contract is pending, not approved",
                       "sow_approved": "SOW is rejected, not approved"}


def test_customer_must_be_known_and_validated() -> None:
    assert set(gates_failing(customer=None)) == {"customer_validated", "tax_jurisdiction_valid"}
    invalid = dataclasses.replace(CUSTOMER, validation_status=ValidationStatus.INVALID)
    assert "is invalid in the customer master" in gates_failing(customer=invalid)["customer_validated"]


def test_legal_entity_must_be_assigned_and_allowed() -> None:
    assert gates_failing(dataclasses.replace(OPP, legal_entity=None)) == {
        "legal_entity_assigned": "no legal entity assigned"}
    policy = ReleasePolicy(legal_entities=frozenset({"UK01"}))
    assert "US01 is not one of UK01" in gates_failing(policy=policy)["legal_entity_assigned"]


def test_tax_jurisdiction_must_be_iso_and_allowed() -> None:
    for code, reason in [(None, "has no tax jurisdiction"), ("California", "not an ISO 3166")]:
        customer = dataclasses.replace(CUSTOMER, tax_jurisdiction=code)
        assert reason in gates_failing(customer=customer)["tax_jurisdiction_valid"]
    policy = ReleasePolicy(tax_jurisdictions=frozenset({"GB"}))
    assert "US-CA is not one" in gates_failing(policy=policy)["tax_jurisdiction_valid"]


def test_only_configured_gates_run() -> None:
    policy = ReleasePolicy(gates=("contract_approved",))
    assert gates_failing(customer=None, policy=policy) == {}
