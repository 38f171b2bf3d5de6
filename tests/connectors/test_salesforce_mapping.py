"""Salesforce records ↔ canonical event data, without a twin."""

from __future__ import annotations

from decimal import Decimal

import pytest

from handoff.connectors.ports import CrmStatusUpdate
from handoff.connectors.salesforce.mapping import (
    customer_event_data,
    opportunity_event_data,
    opportunity_record,
    wire_amount,
    write_back_fields,
)
from handoff.domain import ProvisioningStatus
from handoff.errors import DataError

RECORD = {
    "attributes": {"type": "Opportunity"}, "Id": "006RO0000000001YAA", "Name": "Acme rollout",
    "AccountId": "001RO0000000002YAA", "StageName": "Closed Won", "IsWon": True,
    "Amount": 1234567.89, "CurrencyIsoCode": "EUR", "CloseDate": "2026-11-26",
    "Billing_Method__c": "Fixed Fee", "Contract_Status__c": "Approved", "SOW_Status__c": "Draft",
    "Legal_Entity__c": "Handoff GmbH", "OwnerId": "005RO00000A1b2cYAB", "Description": None,
    "LastModifiedById": "005RO00000Z9y8xYAB", "SystemModstamp": "2026-11-26T10:00:00.123+0000",
}


def test_opportunity_event_data_has_exactly_the_canonical_shape() -> None:
    assert opportunity_event_data(RECORD) == {
        "id": "006RO0000000001YAA", "name": "Acme rollout", "account_id": "001RO0000000002YAA",
        "stage": "Closed Won", "is_won": True, "amount": "1234567.89", "currency": "EUR",
        "close_date": "2026-11-26", "billing_method": "fixed_fee", "contract_status": "approved",
        "sow_status": "draft", "legal_entity": "Handoff GmbH", "owner": "005RO00000A1b2cYAB",
        "description": None, "modified_by": "005RO00000Z9y8xYAB",
        "version": "2026-11-26T10:00:00.123Z",
    }


@pytest.mark.parametrize("amount", [1234567.89, Decimal("1234567.89"), "1234567.89"])
def test_amounts_become_exact_decimal_text(amount: object) -> None:
    assert opportunity_event_data(RECORD | {"Amount": amount})["amount"] == "1234567.89"


def test_unknown_picklist_values_pass_through_for_canonical_validation() -> None:
    data = opportunity_event_data(RECORD | {"Billing_Method__c": "Barter", "Amount": None})
    assert (data["billing_method"], data["amount"]) == ("Barter", None)


def test_opportunity_record_is_the_reverse_of_event_data() -> None:
    data = opportunity_event_data(RECORD)
    record = opportunity_record(data)
    assert record["Billing_Method__c"] == "Fixed Fee"
    assert record["SOW_Status__c"] == "Draft"
    assert record["Amount"] == 1234567.89
    assert opportunity_event_data(RECORD | record) == data


def test_an_amount_a_double_cannot_carry_is_refused() -> None:
    assert wire_amount("100.50") == 100.5
    with pytest.raises(DataError) as exc_info:
        wire_amount("12345678901234567.89")
    assert exc_info.value.field == "amount"


def test_customer_event_data_defaults_to_unvalidated() -> None:
    account = {"Id": "001RO0000000002YAA", "Name": "Acme", "CurrencyIsoCode": "USD",
               "Tax_Jurisdiction__c": "US-CA", "Legal_Entity__c": None,
               "Validation_Status__c": None, "SystemModstamp": "2026-11-26T10:00:00.000+0000"}
    assert customer_event_data(account) == {
        "id": "001RO0000000002YAA", "name": "Acme", "currency": "USD",
        "tax_jurisdiction": "US-CA", "legal_entity": None, "validation_status": "unvalidated",
        "version": "2026-11-26T10:00:00.000Z",
    }


def test_write_back_fields_truncate_the_detail() -> None:
    update = CrmStatusUpdate("006RO0000000001YAA", ProvisioningStatus.PARKED, "é" * 300)
    assert write_back_fields(update) == {
        "Handoff_Project_Id__c": None, "Handoff_Status__c": "parked",
        "Handoff_Status_Detail__c": "é" * 255,
    }
