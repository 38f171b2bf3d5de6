"""Declarative field mapping: each transform reads what the firm's CRM holds into canonical
data, a value a table does not know is refused naming the field, and a mistake in the
configuration is found when it loads, naming its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from handoff.config import load_settings
from handoff.connectors.fieldmap import parse_field_map
from handoff.connectors.registry import connect_erp
from handoff.errors import ConfigError, DataError

RULES = {
    "opportunity": {
        "name": "Project_Name__c",
        "legal_entity": {"from": "Company_Code__c", "lookup": {"1000": "US01"}},
        "billing_method": {"constant": "fixed_fee"},
        "close_date": {"from": "Close_Text__c", "date": "%d.%m.%Y"},
        "amount": {"from": "Net_Value__c", "number": "comma"},
        "currency": {"from": "Currency_Name__c", "currency": {"US Dollar": "USD"}},
    },
}


def test_each_transform_reads_the_vendor_field_into_canonical_data() -> None:
    field_map = parse_field_map("salesforce", RULES, lambda _key: "")
    record = {"Project_Name__c": "Rollout", "Company_Code__c": 1000, "Close_Text__c": "30.11.2026",
              "Net_Value__c": "1.234.567,89", "Currency_Name__c": "US Dollar"}
    data = field_map.apply("opportunity", record, {"name": "as built in", "billing_method": "milestone",
                                                   "stage": "Closed Won"})
    assert data == {"name": "Rollout", "legal_entity": "US01", "billing_method": "fixed_fee",
                    "close_date": "2026-11-30", "amount": "1234567.89", "currency": "USD",
                    "stage": "Closed Won"}
    assert field_map.sources("opportunity") == ["Project_Name__c", "Company_Code__c", "Close_Text__c",
                                                "Net_Value__c", "Currency_Name__c"]
    assert field_map.apply("customer", record, {"name": "x"}) == {"name": "x"}  # nothing mapped


@pytest.mark.parametrize("record, field", [
    ({"Company_Code__c": "2000"}, "legal_entity"),
    ({"Close_Text__c": "2026-11-30"}, "close_date"),
    ({"Net_Value__c": "lots"}, "amount"),
    ({"Currency_Name__c": "Pound"}, "currency"),
])
def test_a_value_the_rule_cannot_read_is_refused_naming_the_field(record: dict, field: str) -> None:
    field_map = parse_field_map("salesforce", {"opportunity": {field: RULES["opportunity"][field]}},
                                lambda _key: "")
    with pytest.raises(DataError) as caught:
        field_map.apply("opportunity", record, {})
    assert caught.value.field == field and caught.value.system == "salesforce"


@pytest.mark.parametrize("table, message", [
    ('[systems.salesforce.mapping.opportunity]\nlegal_entty = "X__c"\n',
     "line 2: systems.salesforce.mapping.opportunity.legal_entty: 'legal_entty' is not a field"),
    ('[systems.salesforce.mapping.opportunity]\n\nbilling_method = { from = "B__c", constant = "x" }\n',
     "line 3: systems.salesforce.mapping.opportunity.billing_method: a constant takes no from"),
    ('[systems.salesforce.mapping.opportunity]\nclose_date = { date = "%d.%m.%Y" }\n',
     'line 2: systems.salesforce.mapping.opportunity.close_date: name the vendor field: from = "…"'),
    ('[systems.salesforce.mapping.opportunity]\namount = { from = "A__c", number = "german" }\n',
     'line 2: systems.salesforce.mapping.opportunity.amount: number is "point"'),
    ('[systems.salesforce.mapping.lead]\nname = "N"\n',
     "line 1: [systems.salesforce.mapping.lead]: no object 'lead'"),
    ('[systems.salesforce.mapping.opportunity]\ncurrency = { from = "C", currency = { "Euro" = "EURO" } }\n',
     "line 2: systems.salesforce.mapping.opportunity.currency: currency must be a table"),
])
def test_a_mistake_in_the_mapping_is_found_at_start_naming_its_line(tmp_path: Path, table: str,
                                                                      message: str) -> None:
    config = tmp_path / "handoff.toml"
    config.write_text(table)
    with pytest.raises(ConfigError) as caught:
        load_settings(config, {})
    assert str(caught.value).startswith(f"{config}: {message}")


def test_only_the_crm_a_deal_comes_from_takes_a_mapping() -> None:
    systems = {"erp": "netsuite", "netsuite": {"base_url": "https://x/services/rest",
                                               "mapping": {"opportunity": {"name": "N"}}}}
    with pytest.raises(ConfigError, match=r"\[systems.netsuite.mapping\]: field mapping is for the CRM"):
        connect_erp(systems, {"HANDOFF_NETSUITE_TOKEN": "t"})
