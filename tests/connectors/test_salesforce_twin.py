"""The Salesforce twin, driven by the official SDK exactly as a real org would be."""

from __future__ import annotations

import pytest
import requests
from simple_salesforce import SalesforceLogin
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from handoff.connectors.salesforce.twin_soql import batch_size
from handoff.connectors.salesforce.twin_store import case_safe_id, salesforce_id
from handoff.connectors.twin_process import TwinProcess
from tests.connectors.salesforce_helpers import (
    OPEN_DEAL,
    fresh,
    sdk,
    sdk_session,
    seed_account,
    seed_opportunities,
    seed_opportunity,
    set_faults,
    set_twin,
    twin_records,
)


@pytest.fixture
def twin(salesforce_twin: TwinProcess) -> TwinProcess:
    return fresh(salesforce_twin)


def error_of(exc_info: pytest.ExceptionInfo) -> dict:
    return exc_info.value.content[0]


# --- login and sessions --------------------------------------------------------------------

def test_soap_login_hands_out_a_session_on_the_twin_itself(twin: TwinProcess) -> None:
    session_id, instance = SalesforceLogin(
        username="handoff@example.com", password="sandbox", security_token="TOKEN",
        scratch_url=twin.base_url, session=sdk_session(twin),
    )
    assert instance == f"127.0.0.1:{twin.port}"
    sf = sdk(twin, session_id=session_id)
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0


def test_wrong_password_is_an_invalid_login_fault(twin: TwinProcess) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as exc_info:
        SalesforceLogin(username="handoff@example.com", password="wrong", security_token="TOKEN",
                        scratch_url=twin.base_url, session=sdk_session(twin))
    assert exc_info.value.code == "INVALID_LOGIN"


def test_a_bad_session_gets_salesforces_401(twin: TwinProcess) -> None:
    with pytest.raises(SalesforceExpiredSession) as exc_info:
        sdk(twin, session_id="not-a-session").query("SELECT Id FROM Account")
    assert error_of(exc_info) == {"message": "Session expired or invalid",
                                  "errorCode": "INVALID_SESSION_ID"}


def test_tls_is_verified_against_the_twins_own_ca(twin: TwinProcess) -> None:
    untrusting = requests.Session()
    untrusting.trust_env = False
    with pytest.raises(requests.exceptions.SSLError):
        untrusting.get(f"{twin.base_url}/services/data/v59.0/query/?q=SELECT+Id+FROM+Account")


def test_every_rest_response_reports_api_usage(twin: TwinProcess) -> None:
    sf = sdk(twin)
    sf.query("SELECT Id FROM Account")
    sf.query("SELECT Id FROM Account")
    assert sf.api_usage["api-usage"].used == 2
    assert sf.api_usage["api-usage"].total == 15000


# --- single records ------------------------------------------------------------------------

def test_create_get_update_delete(twin: TwinProcess) -> None:
    sf = sdk(twin)
    account_id = seed_account(sf)
    opportunity_id = seed_opportunity(sf, account_id, Amount=5000)
    assert len(opportunity_id) == 18 and opportunity_id.startswith("006")
    assert account_id.startswith("001")
    created = sf.Opportunity.get(opportunity_id)
    assert created["attributes"] == {
        "type": "Opportunity", "url": f"/services/data/v59.0/sobjects/Opportunity/{opportunity_id}"}
    assert (created["IsWon"], created["IsClosed"]) == (False, False)
    assert created["CurrencyIsoCode"] == "USD"

    assert sf.Opportunity.update(opportunity_id, {"StageName": "Closed Won"}) == 204
    won = sf.Opportunity.get(opportunity_id)
    assert (won["IsWon"], won["IsClosed"]) == (True, True)
    assert won["SystemModstamp"] > created["SystemModstamp"]
    assert won["LastModifiedDate"] == won["SystemModstamp"]

    assert sf.Opportunity.delete(opportunity_id) == 204
    with pytest.raises(SalesforceResourceNotFound) as exc_info:
        sf.Opportunity.get(opportunity_id)
    assert error_of(exc_info)["errorCode"] == "ENTITY_IS_DELETED"


def test_ids_carry_salesforces_case_safe_suffix() -> None:
    assert case_safe_id("006RO0000035WQg") == "006RO0000035WQgYAM"  # an id Salesforce issued
    assert salesforce_id("006", 62) == "006RO0000000010YAA"


def test_stamps_strictly_increase_even_within_a_millisecond(twin: TwinProcess) -> None:
    sf = sdk(twin)
    seed_opportunities(sf, seed_account(sf), 50)
    stamps = [r["SystemModstamp"] for r in twin_records(twin, "Opportunity")]
    assert stamps == sorted(set(stamps))
    assert stamps[0].endswith("+0000") and len(stamps[0]) == len("2026-11-26T10:00:00.000+0000")


@pytest.mark.parametrize(
    ("body", "code", "fields"),
    [
        ({"Bogus__c": "x"}, "INVALID_FIELD", ["Bogus__c"]),
        ({"IsWon": True}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["IsWon"]),
        ({"Id": "006RO0000000001YAA"}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["Id"]),
        ({"StageName": None}, "REQUIRED_FIELD_MISSING", ["StageName"]),
        ({"Handoff_Status_Detail__c": "x" * 256}, "STRING_TOO_LONG", ["Handoff_Status_Detail__c"]),
        ({"Billing_Method__c": "Barter"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
         ["Billing_Method__c"]),
        ({"AccountId": "001RO0000000999YAA"}, "INVALID_CROSS_REFERENCE_KEY", ["AccountId"]),
    ],
)
def test_updates_are_checked_like_salesforce_checks_them(
    twin: TwinProcess, body: dict, code: str, fields: list[str]
) -> None:
    sf = sdk(twin)
    opportunity_id = seed_opportunity(sf, seed_account(sf))
    with pytest.raises(SalesforceMalformedRequest) as exc_info:
        sf.Opportunity.update(opportunity_id, body)
    assert (error_of(exc_info)["errorCode"], error_of(exc_info)["fields"]) == (code, fields)


def test_create_needs_name_stage_and_close_date(twin: TwinProcess) -> None:
    with pytest.raises(SalesforceMalformedRequest) as exc_info:
        sdk(twin).Opportunity.create({"Name": "No stage"})
    assert error_of(exc_info)["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert error_of(exc_info)["fields"] == ["StageName", "CloseDate"]


def test_read_by_external_id(twin: TwinProcess) -> None:
    sf = sdk(twin)
    opportunity_id = seed_opportunity(sf, seed_account(sf), Handoff_Key__c="deal-1")
    assert sf.Opportunity.get_by_custom_id("Handoff_Key__c", "deal-1")["Id"] == opportunity_id
    with pytest.raises(SalesforceResourceNotFound):
        sf.Opportunity.get_by_custom_id("Handoff_Key__c", "deal-2")


# --- upsert by external id -----------------------------------------------------------------

def test_upsert_creates_then_updates(twin: TwinProcess) -> None:
    sf = sdk(twin)
    body = {"Name": "Upserted", **OPEN_DEAL}
    created = sf.Opportunity.upsert("Handoff_Key__c/deal-9", body, raw_response=True)
    assert created.status_code == 201
    assert created.json() | {"id": "…"} == {"id": "…", "success": True, "errors": [],
                                           "created": True}
    updated = sf.Opportunity.upsert("Handoff_Key__c/deal-9", {"Amount": 10}, raw_response=True)
    assert updated.status_code == 200
    assert updated.json() == {"id": created.json()["id"], "success": True, "errors": [],
                              "created": False}
    assert [r["Amount"] for r in twin_records(twin, "Opportunity")] == [10]


def test_upsert_answers_204_on_update_before_api_46(twin: TwinProcess) -> None:
    sf = sdk(twin, version="45.0")
    assert sf.Opportunity.upsert("Handoff_Key__c/k", {"Name": "Old API", **OPEN_DEAL}) == 201
    assert sf.Opportunity.upsert("Handoff_Key__c/k", {"Amount": 1}) == 204


def test_upsert_with_several_matches_is_300(twin: TwinProcess) -> None:
    sf = sdk(twin)
    account_id = seed_account(sf)
    ids = sorted(seed_opportunity(sf, account_id, Handoff_Key__c="twice") for _ in range(2))
    with pytest.raises(SalesforceMoreThanOneRecord) as exc_info:
        sf.Opportunity.upsert("Handoff_Key__c/twice", {"Amount": 1})
    assert exc_info.value.content == [f"/services/data/v59.0/sobjects/Opportunity/{i}"
                                      for i in ids]


def test_upsert_on_an_unknown_field_is_404(twin: TwinProcess) -> None:
    with pytest.raises(SalesforceResourceNotFound) as exc_info:
        sdk(twin).Opportunity.upsert("Nope__c/1", {"Name": "x"})
    assert error_of(exc_info)["errorCode"] == "NOT_FOUND"


def test_upsert_update_only_does_not_create(twin: TwinProcess) -> None:
    sf = sdk(twin)
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("sobjects/Opportunity/Handoff_Key__c/absent", method="PATCH",
                   params={"updateOnly": "true"}, json={"Name": "x", **OPEN_DEAL})
    assert twin_records(twin, "Opportunity") == []


# --- SOQL ----------------------------------------------------------------------------------

def test_soql_filters_orders_and_limits(twin: TwinProcess) -> None:
    sf = sdk(twin)
    account_id = seed_account(sf)
    for name, stage, amount in [("A", "Closed Won", 500), ("B", "Closed Won", 1500),
                                ("C", "Prospecting", 2500), ("D", "Closed Lost", 3500)]:
        seed_opportunity(sf, account_id, name=name, StageName=stage, Amount=amount)

    def names(soql: str) -> list[str]:
        return [r["Name"] for r in sf.query_all(soql)["records"]]

    base = "SELECT Name FROM Opportunity"
    assert names(f"{base} WHERE StageName = 'closed won' AND Amount >= 1000") == ["B"]
    assert names(f"{base} WHERE StageName IN ('Prospecting', 'Closed Lost') "
                 "ORDER BY Amount DESC") == ["D", "C"]
    assert names(f"{base} WHERE IsClosed = true ORDER BY Name DESC LIMIT 2") == ["D", "B"]
    assert names(f"{base} WHERE StageName != 'Closed Won' ORDER BY Name") == ["C", "D"]
    assert names(f"{base} WHERE SystemModstamp > 2000-01-01T00:00:00Z LIMIT 1") == ["A"]
    assert names(f"{base} WHERE SystemModstamp < 2000-01-01T00:00:00.000+00:00") == []


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM Opportunity WHERE SystemModstamp > '2026-01-01'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Opportunity WHERE", "MALFORMED_QUERY"),
        ("SELECT Id Opportunity", "MALFORMED_QUERY"),
        ("SELECT Nope__c FROM Opportunity", "INVALID_FIELD"),
        ("SELECT Id FROM Lead", "INVALID_TYPE"),
    ],
)
def test_bad_soql_is_refused(twin: TwinProcess, soql: str, code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as exc_info:
        sdk(twin).query(soql)
    assert error_of(exc_info)["errorCode"] == code


def test_query_pages_with_next_records_url(twin: TwinProcess) -> None:
    sf = sdk(twin)
    seed_opportunities(sf, seed_account(sf), 8)
    set_twin(twin, query_batch_size=3)
    first = sf.query("SELECT Id, Name FROM Opportunity")
    assert (first["totalSize"], first["done"], len(first["records"])) == (8, False, 3)
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    everything = sf.query_all("SELECT Id, Name FROM Opportunity ORDER BY Name")
    assert [r["Name"] for r in everything["records"]] == [f"Deal {n}" for n in range(8)]


def test_query_all_includes_deleted_records(twin: TwinProcess) -> None:
    sf = sdk(twin)
    sf.Account.delete(seed_account(sf))
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0
    deleted = sf.query_all("SELECT Id, IsDeleted FROM Account", include_deleted=True)
    assert [r["IsDeleted"] for r in deleted["records"]] == [True]


def test_batch_size_hint_is_kept_between_200_and_2000() -> None:
    assert batch_size("") == 2000
    assert batch_size("batchSize=50") == 200
    assert batch_size("batchSize=500") == 500
    assert batch_size("batchSize=9000") == 2000


# --- sObject Collections -------------------------------------------------------------------

def test_collection_create_reports_each_record_in_order(twin: TwinProcess) -> None:
    results = sdk(twin).restful("composite/sobjects", method="POST", json={
        "allOrNone": False,
        "records": [{"attributes": {"type": "Account"}, "Name": "One"},
                    {"attributes": {"type": "Account"}, "Tax_Jurisdiction__c": "DE"},
                    {"attributes": {"type": "Account"}, "Name": "Three"}]})
    assert [r["success"] for r in results] == [True, False, True]
    assert results[1]["errors"] == [{"statusCode": "REQUIRED_FIELD_MISSING",
                                     "message": "Required fields are missing: [Name]",
                                     "fields": ["Name"]}]
    assert [r["Name"] for r in twin_records(twin, "Account")] == ["One", "Three"]


def test_all_or_none_rolls_back_the_valid_records(twin: TwinProcess) -> None:
    sf = sdk(twin)
    account_id = seed_account(sf, name="Before")
    results = sf.restful("composite/sobjects", method="PATCH", json={
        "allOrNone": True,
        "records": [{"attributes": {"type": "Account"}, "id": account_id, "Name": "After"},
                    {"attributes": {"type": "Account"}, "id": account_id, "Bogus__c": 1}]})
    assert [e["statusCode"] for r in results for e in r["errors"]] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK", "INVALID_FIELD"]
    assert [r["Name"] for r in twin_records(twin, "Account")] == ["Before"]


def test_collection_update_by_id(twin: TwinProcess) -> None:
    sf = sdk(twin)
    account_id = seed_account(sf)
    results = sf.restful("composite/sobjects", method="PATCH", json={
        "allOrNone": False,
        "records": [{"attributes": {"type": "Account"}, "id": account_id, "Name": "Renamed"},
                    {"attributes": {"type": "Account"}, "id": "001RO0000000999YAA", "Name": "x"}]})
    assert results[0] == {"id": account_id, "success": True, "errors": []}
    assert results[1]["errors"][0]["statusCode"] == "NOT_FOUND"
    assert sf.Account.get(account_id)["Name"] == "Renamed"


def test_collection_upsert_by_external_id(twin: TwinProcess) -> None:
    sf = sdk(twin)
    existing = seed_account(sf, Handoff_Key__c="cust-1")
    results = sf.restful("composite/sobjects/Account/Handoff_Key__c", method="PATCH", json={
        "allOrNone": False,
        "records": [{"attributes": {"type": "Account"}, "Handoff_Key__c": "cust-1", "Name": "A"},
                    {"attributes": {"type": "Account"}, "Handoff_Key__c": "cust-2", "Name": "B"},
                    {"attributes": {"type": "Account"}, "Handoff_Key__c": "cust-3"}]})
    assert results[0] == {"id": existing, "success": True, "errors": [], "created": False}
    assert (results[1]["success"], results[1]["created"]) == (True, True)
    assert results[2]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"


def test_collections_take_at_most_200_records(twin: TwinProcess) -> None:
    records = [{"attributes": {"type": "Account"}, "Name": str(n)} for n in range(201)]
    with pytest.raises(SalesforceMalformedRequest) as exc_info:
        sdk(twin).restful("composite/sobjects", method="POST", json={"records": records})
    assert error_of(exc_info)["errorCode"] == "EXCEEDED_ID_LIMIT"


# --- injected faults in Salesforce's own words ---------------------------------------------

def test_throttle_is_a_403_request_limit_exceeded_with_retry_after(twin: TwinProcess) -> None:
    set_faults(twin, throttle_rate=1.0, retry_after_seconds=3)
    response = sdk_session(twin).get(f"{twin.base_url}/services/data/v59.0/query/",
                                     params={"q": "SELECT Id FROM Account"})
    assert response.status_code == 403
    assert response.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert response.headers["Retry-After"] == "3"
    with pytest.raises(SalesforceRefusedRequest):
        sdk(twin).query("SELECT Id FROM Account")


def test_row_lock_contention_can_be_injected(twin: TwinProcess) -> None:
    sf = sdk(twin)
    account_id = seed_account(sf)
    set_twin(twin, unable_to_lock_row_rate=1.0)
    with pytest.raises(SalesforceMalformedRequest) as exc_info:
        sf.Account.update(account_id, {"Name": "Locked"})
    assert error_of(exc_info)["errorCode"] == "UNABLE_TO_LOCK_ROW"
