"""The HubSpot twin over HTTP: HubSpot's paths, payloads, paging, search, associations, error
bodies and rate limits — on the wire, and through hubspot-api-client as the connector uses it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hubspot.crm.deals import ApiException

from handoff.connectors.hubspot.twin import SANDBOX_TOKEN
from handoff.connectors.twin_process import TwinProcess
from tests.connectors.hubspot_support import (
    api,
    fresh,
    sdk,
    set_faults,
    set_twin,
    twin_records,
)

DEALS, COMPANIES = "/crm/v3/objects/deals", "/crm/v3/objects/companies"



@pytest.fixture
def twin(hubspot_twin: TwinProcess) -> TwinProcess:
    return fresh(hubspot_twin, search_per_second=1000)  # search's 4/s has a test of its own


@pytest.fixture
def client(twin: TwinProcess) -> Iterator[httpx.Client]:
    with api(twin) as c:
        yield c


def create(client: httpx.Client, path: str, **properties: Any) -> dict[str, Any]:
    response = client.post(path, json={"properties": properties})
    assert response.status_code == 201, response.text
    return response.json()


def error_of(response: httpx.Response, status: int, category: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "error" and body["category"] == category and body["correlationId"]
    return body


# --- auth ------------------------------------------------------------------------------------------

def test_a_missing_or_wrong_token_gets_401_invalid_authentication(twin: TwinProcess) -> None:
    with httpx.Client(base_url=twin.base_url) as anonymous:
        body = error_of(anonymous.get(DEALS), 401, "INVALID_AUTHENTICATION")
    assert "Authentication credentials not found" in body["message"]
    with api(twin, token="pat-na1-revoked") as wrong:
        error_of(wrong.get(DEALS), 401, "INVALID_AUTHENTICATION")


# --- single objects --------------------------------------------------------------------------------

def test_create_answers_201_with_string_values_and_system_properties(client: httpx.Client) -> None:
    deal = create(client, DEALS, dealname="Acme rollout", amount=1234567.89, dealstage="closedwon")
    props = deal["properties"]
    assert deal["id"] == props["hs_object_id"] and deal["archived"] is False
    assert props["amount"] == "1234567.89" and props["pipeline"] == "default"
    assert props["hs_lastmodifieddate"] == deal["updatedAt"] and deal["createdAt"].endswith("Z")


def test_read_returns_the_asked_properties_repeated_or_comma_separated(client: httpx.Client) -> None:
    deal_id = create(client, DEALS, dealname="A", amount="10")["id"]
    repeated = client.get(f"{DEALS}/{deal_id}", params=[("properties", "amount"),
                                                        ("properties", "sow_status")]).json()
    assert repeated["properties"] == {"amount": "10", "sow_status": None}
    commas = client.get(f"{DEALS}/{deal_id}?properties=dealname,no_such_property").json()
    assert commas["properties"] == {"dealname": "A"}  # unknown properties are ignored
    default = client.get(f"{DEALS}/{deal_id}").json()["properties"]
    assert set(default) == {"dealname", "amount", "closedate", "pipeline", "dealstage", "createdate",
                            "hs_lastmodifieddate", "hs_object_id"}


def test_update_bumps_the_modification_date(client: httpx.Client) -> None:
    deal = create(client, DEALS, dealname="A")
    response = client.patch(f"{DEALS}/{deal['id']}", json={"properties": {"dealname": "B"}})
    assert response.status_code == 200
    after = response.json()["properties"]
    assert after["dealname"] == "B"
    assert after["hs_lastmodifieddate"] > deal["properties"]["hs_lastmodifieddate"]


def test_archive_is_204_and_the_object_is_gone_unless_archived_is_asked(client: httpx.Client) -> None:
    deal_id = create(client, DEALS, dealname="A")["id"]
    assert client.delete(f"{DEALS}/{deal_id}").status_code == 204
    assert client.delete(f"{DEALS}/{deal_id}").status_code == 204  # idempotent
    error_of(client.get(f"{DEALS}/{deal_id}"), 404, "OBJECT_NOT_FOUND")
    assert client.get(f"{DEALS}/{deal_id}?archived=true").json()["archived"] is True


def test_a_non_numeric_id_is_hubspots_404(client: httpx.Client) -> None:
    body = error_of(client.get(f"{DEALS}/not-an-id"), 404, "OBJECT_NOT_FOUND")
    assert body["message"] == "Object not found.  objectId are usually numeric."


@pytest.mark.parametrize(("properties", "code", "name"), [
    ({"credit_limit": "5"}, "PROPERTY_DOESNT_EXIST", "credit_limit"),
    ({"billing_method": "barter"}, "INVALID_OPTION", "billing_method"),
    ({"amount": "lots"}, "INVALID_FLOAT", "amount"),
    ({"amount": " 10"}, "INVALID_VALUE", "amount"),
    ({"hs_lastmodifieddate": "0"}, "READ_ONLY_VALUE", "hs_lastmodifieddate"),
])
def test_refused_values_are_validation_errors_naming_the_property(
    client: httpx.Client, properties: dict[str, str], code: str, name: str
) -> None:
    body = error_of(client.post(DEALS, json={"properties": {"dealname": "X", **properties}}),
                    400, "VALIDATION_ERROR")
    prefix = "Property values were not valid: "
    assert body["message"].startswith(prefix)
    [result] = json.loads(body["message"].removeprefix(prefix))
    assert (result["error"], result["name"], result["isValid"]) == (code, name, False)


def test_an_unknown_object_type_is_refused(client: httpx.Client) -> None:
    error_of(client.get("/crm/v3/objects/widgets"), 400, "VALIDATION_ERROR")


# --- list paging -----------------------------------------------------------------------------------

def test_the_list_pages_with_after_in_id_order(client: httpx.Client) -> None:
    ids = [create(client, COMPANIES, name=f"C{n}")["id"] for n in range(5)]
    seen, after, pages = [], None, 0
    while True:
        params = {"limit": 2, "properties": "name"} | ({"after": after} if after else {})
        page = client.get(COMPANIES, params=params).json()
        seen += [r["id"] for r in page["results"]]
        pages += 1
        if "paging" not in page:
            break
        after = page["paging"]["next"]["after"]
        assert page["paging"]["next"]["link"].endswith(f"after={after}")
    assert (seen, pages) == (ids, 3)
    error_of(client.get(COMPANIES, params={"limit": 101}), 400, "VALIDATION_ERROR")


# --- batch -----------------------------------------------------------------------------------------

def test_batch_update_answers_200_or_207_with_the_failed_ids(client: httpx.Client) -> None:
    deal_id = create(client, DEALS, dealname="A")["id"]
    ok = client.post(f"{DEALS}/batch/update", json={"inputs": [
        {"id": deal_id, "properties": {"handoff_status": "provisioned"}}]})
    assert ok.status_code == 200 and ok.json()["status"] == "COMPLETE"
    mixed = client.post(f"{DEALS}/batch/update", json={"inputs": [
        {"id": deal_id, "properties": {"handoff_status": "parked"}},
        {"id": "99999999", "properties": {"handoff_status": "parked"}},
        {"id": deal_id[:-1] + "0", "properties": {"handoff_status": "nope"}}]})
    assert mixed.status_code == 207
    body = mixed.json()
    assert [r["id"] for r in body["results"]] == [deal_id] and body["numErrors"] == 2
    assert [e["context"]["ids"] for e in body["errors"]] == [["99999999"], [deal_id[:-1] + "0"]]
    assert {e["category"] for e in body["errors"]} == {"OBJECT_NOT_FOUND"}


def test_batch_limits_and_duplicates(client: httpx.Client) -> None:
    too_many = {"inputs": [{"id": str(n), "properties": {}} for n in range(101)]}
    error_of(client.post(f"{DEALS}/batch/update", json=too_many), 400, "VALIDATION_ERROR")
    twice = {"inputs": [{"id": "1", "properties": {}}, {"id": "1", "properties": {}}]}
    body = error_of(client.post(f"{DEALS}/batch/update", json=twice), 400, "VALIDATION_ERROR")
    assert "Duplicate IDs" in body["message"]


def test_whole_batch_mode_refuses_the_batch_and_saves_nothing(
    twin: TwinProcess, client: httpx.Client
) -> None:
    set_twin(twin, batch_errors="whole_batch")
    deal_id = create(client, DEALS, dealname="A")["id"]
    response = client.post(f"{DEALS}/batch/update", json={"inputs": [
        {"id": deal_id, "properties": {"dealname": "B"}},
        {"id": deal_id[:-1] + "9", "properties": {"amount": "x"}}]})
    error_of(response, 404, "OBJECT_NOT_FOUND")
    assert twin_records(twin, "deals")[0]["properties"]["dealname"] == "A"


def test_batch_upsert_by_a_unique_property(client: httpx.Client) -> None:
    first = client.post(f"{COMPANIES}/batch/upsert", json={"inputs": [
        {"id": "HO-C-1", "idProperty": "handoff_external_id", "properties": {"name": "Acme"}}]})
    assert first.status_code == 200
    [created] = first.json()["results"]
    again = client.post(f"{COMPANIES}/batch/upsert?idProperty=handoff_external_id", json={"inputs": [
        {"id": "HO-C-1", "properties": {"name": "Acme Ltd"}}]}).json()["results"]
    assert (created["new"], again[0]["new"], again[0]["id"]) == (True, False, created["id"])
    assert again[0]["properties"]["name"] == "Acme Ltd"
    refused = client.post(f"{COMPANIES}/batch/upsert", json={"inputs": [
        {"id": "Acme", "idProperty": "name", "properties": {}}]})
    assert refused.status_code == 207 and refused.json()["errors"][0]["category"] == "VALIDATION_ERROR"
    by_key = client.get(f"{COMPANIES}/HO-C-1?idProperty=handoff_external_id").json()
    assert by_key["id"] == created["id"]


# --- search ----------------------------------------------------------------------------------------

def search(client: httpx.Client, body: dict[str, Any], path: str = DEALS) -> dict[str, Any]:
    response = client.post(f"{path}/search", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def modified_after(stamp_ms: int | str, **extra: Any) -> dict[str, Any]:
    return {"filterGroups": [{"filters": [
        {"propertyName": "hs_lastmodifieddate", "operator": "GT", "value": str(stamp_ms)}]}],
        "sorts": [{"propertyName": "hs_lastmodifieddate", "direction": "ASCENDING"}]} | extra


def test_search_by_modification_date_sorted_and_paged(client: httpx.Client) -> None:
    deals = [create(client, DEALS, dealname=f"D{n}", amount=str(n)) for n in range(5)]
    client.patch(f"{DEALS}/{deals[0]['id']}", json={"properties": {"amount": "100"}})
    first = search(client, modified_after(0, limit=2, properties=["amount"]))
    assert first["total"] == 5 and first["paging"]["next"]["after"] == "2"
    assert set(first["results"][0]["properties"]) == {"amount", "createdate", "hs_lastmodifieddate",
                                                      "hs_object_id"}
    order = [r["id"] for r in first["results"]]
    after = first["paging"]["next"]["after"]
    while after:
        page = search(client, modified_after(0, limit=2, after=after))
        order += [r["id"] for r in page["results"]]
        after = page.get("paging", {}).get("next", {}).get("after")
    assert order == [d["id"] for d in deals[1:]] + [deals[0]["id"]]  # the edited one last
    since = deals[2]["properties"]["hs_lastmodifieddate"]  # ISO works as well as ms
    assert [r["id"] for r in search(client, modified_after(since))["results"]] == [
        deals[3]["id"], deals[4]["id"], deals[0]["id"]]


def test_search_operators_groups_and_both_sort_forms(client: httpx.Client) -> None:
    ids = [create(client, DEALS, dealname=f"Deal {n}", amount=str(n * 10),
                  **({"sow_status": "approved"} if n % 2 else {}))["id"] for n in range(5)]

    def found(*groups: list[dict[str, Any]], sorts: list[Any] | None = None) -> list[str]:
        body: dict[str, Any] = {"filterGroups": [{"filters": g} for g in groups]}
        return [r["id"] for r in search(client, body | ({"sorts": sorts} if sorts else {}))["results"]]

    assert found([{"propertyName": "amount", "operator": "BETWEEN", "value": "10", "highValue": "30"}]) \
        == ids[1:4]
    assert found([{"propertyName": "sow_status", "operator": "HAS_PROPERTY"}]) == [ids[1], ids[3]]
    assert found([{"propertyName": "amount", "operator": "IN", "values": ["0", "40"]}],
                 [{"propertyName": "amount", "operator": "EQ", "value": "20"}]) == [ids[0], ids[2], ids[4]]
    assert found([{"propertyName": "amount", "operator": "GTE", "value": "20"},
                  {"propertyName": "sow_status", "operator": "NEQ", "value": "APPROVED"}]) == [ids[2], ids[4]]
    assert found([{"propertyName": "dealname", "operator": "CONTAINS_TOKEN", "value": "3"}]) == [ids[3]]
    assert found(sorts=["-amount"]) == ids[::-1]
    assert found(sorts=[{"propertyName": "amount", "direction": "DESCENDING"}]) == ids[::-1]


def test_search_limits(twin: TwinProcess, client: httpx.Client) -> None:
    error_of(client.post(f"{DEALS}/search", json={"limit": 201}), 400, "VALIDATION_ERROR")
    six = {"filterGroups": [{"filters": []}] * 6}
    error_of(client.post(f"{DEALS}/search", json=six), 400, "VALIDATION_ERROR")
    error_of(client.post(f"{DEALS}/search", json={"after": "9950", "limit": 100}), 400,
             "VALIDATION_ERROR")  # no deeper than 10,000 results
    set_twin(twin, search_result_cap=4)
    error_of(client.post(f"{DEALS}/search", json={"after": "3", "limit": 2}), 400, "VALIDATION_ERROR")


# --- associations and pipelines --------------------------------------------------------------------

def test_a_deal_created_with_its_primary_company(client: httpx.Client) -> None:
    company_id = create(client, COMPANIES, name="Acme")["id"]
    deal = client.post(DEALS, json={"properties": {"dealname": "A"}, "associations": [
        {"to": {"id": company_id},
         "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}]}]}).json()
    v4 = client.get(f"/crm/v4/objects/deals/{deal['id']}/associations/companies").json()
    assert v4 == {"results": [{"toObjectId": int(company_id), "associationTypes": [
        {"category": "HUBSPOT_DEFINED", "typeId": 5, "label": "Primary"},
        {"category": "HUBSPOT_DEFINED", "typeId": 341, "label": None}]}]}
    back = client.get(f"/crm/v4/objects/companies/{company_id}/associations/deals").json()
    assert [t["typeId"] for t in back["results"][0]["associationTypes"]] == [6, 342]
    v3 = client.get(f"{DEALS}/{deal['id']}?associations=companies").json()["associations"]
    assert v3 == {"companies": {"results": [
        {"id": company_id, "type": "deal_to_company"},
        {"id": company_id, "type": "deal_to_company_unlabeled"}]}}


def test_default_and_labelled_associations_and_their_batch_read(client: httpx.Client) -> None:
    a, b = (create(client, COMPANIES, name=n)["id"] for n in ("A", "B"))
    d1, d2 = (create(client, DEALS, dealname=n)["id"] for n in ("D1", "D2"))
    assert client.put(f"/crm/v4/objects/deals/{d1}/associations/default/companies/{a}").status_code == 200
    labelled = client.put(f"/crm/v4/objects/deals/{d1}/associations/companies/{b}",
                          json=[{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 5}])
    assert labelled.status_code == 201 and labelled.json()["labels"] == ["Primary"]
    read = client.post("/crm/v4/associations/deals/companies/batch/read",
                       json={"inputs": [{"id": d1}, {"id": d2}]})
    assert read.status_code == 207
    body = read.json()
    assert [r["from"]["id"] for r in body["results"]] == [d1]
    assert [(t["toObjectId"], [x["typeId"] for x in t["associationTypes"]])
            for t in body["results"][0]["to"]] == [(int(a), [341]), (int(b), [5, 341])]
    assert body["errors"][0]["context"] == {"fromObjectId": [d2]}
    assert client.delete(f"/crm/v4/objects/deals/{d1}/associations/companies/{b}").status_code == 204
    assert len(client.get(f"/crm/v4/objects/deals/{d1}/associations/companies").json()["results"]) == 1


def test_the_default_pipeline_names_its_won_stage(client: httpx.Client) -> None:
    [pipeline] = client.get("/crm/v3/pipelines/deals").json()["results"]
    stages = {s["id"]: s["metadata"] for s in pipeline["stages"]}
    assert pipeline["id"] == "default"
    assert stages["closedwon"] == {"isClosed": "true", "probability": "1.0"}
    assert stages["closedlost"]["isClosed"] == "true"


# --- limits ----------------------------------------------------------------------------------------

def test_the_burst_window_answers_429_in_hubspots_words(
    twin: TwinProcess, client: httpx.Client
) -> None:
    set_twin(twin, burst_limit=3, burst_window_seconds=0.5)
    answers = [client.get(DEALS) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["X-HubSpot-RateLimit-Remaining"] for r in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["X-HubSpot-RateLimit-Max"] == "3"
    assert answers[0].headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "500"
    body = error_of(answers[3], 429, "RATE_LIMITS")
    assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT", "TEN_SECONDLY_ROLLING")
    assert "Retry-After" not in answers[3].headers
    time.sleep(0.6)  # the window rolls on
    assert client.get(DEALS).status_code == 200
    set_twin(twin, send_retry_after=True)
    for _ in range(3):
        client.get(DEALS)
    assert client.get(DEALS).headers["Retry-After"] == "1"


def test_search_has_its_own_rate_and_the_day_its_quota(
    twin: TwinProcess, client: httpx.Client
) -> None:
    set_twin(twin, search_per_second=4)
    statuses = [client.post(f"{DEALS}/search", json={}).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 200, 429]
    fresh(twin)
    set_twin(twin, daily_limit=2)
    answers = [client.get(DEALS) for _ in range(3)]
    assert answers[1].headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    assert error_of(answers[2], 429, "RATE_LIMITS")["policyName"] == "DAILY"


def test_injected_faults_speak_hubspot(twin: TwinProcess, client: httpx.Client) -> None:
    set_faults(twin, throttle_rate=1.0, retry_after_seconds=7)
    response = client.get(DEALS)
    assert error_of(response, 429, "RATE_LIMITS")["errorType"] == "RATE_LIMIT"
    assert response.headers["Retry-After"] == "7"
    set_faults(twin, unavailable_rate=1.0)
    assert client.get(DEALS).status_code == 503


# --- the official client ---------------------------------------------------------------------------

def test_hubspot_api_client_works_against_the_twin(twin: TwinProcess) -> None:
    crm = sdk(twin).crm
    deals, search_api = crm.deals.basic_api, crm.deals.search_api
    created = deals.create({"properties": {"dealname": "SDK deal", "amount": "99.95"}})
    read = deals.get_by_id(created.id, properties=["amount", "dealname"])
    assert read.properties == {"amount": "99.95", "dealname": "SDK deal"}
    page = deals.get_page(limit=10, properties=["dealname"])
    assert [o.id for o in page.results] == [created.id] and page.paging is None
    found = search_api.do_search({"filterGroups": [{"filters": [
        {"propertyName": "amount", "operator": "GT", "value": "50"}]}], "limit": 10})
    assert found.total == 1 and found.results[0].id == created.id
    batch = crm.deals.batch_api.update({"inputs": [
        {"id": created.id, "properties": {"handoff_status": "provisioned"}},
        {"id": "424242", "properties": {"handoff_status": "provisioned"}}]})
    assert batch.num_errors == 1 and batch.errors[0].context == {"id": ["424242"], "ids": ["424242"]}
    with pytest.raises(ApiException) as exc_info:
        sdk(twin, token="wrong").crm.deals.basic_api.get_page()
    assert exc_info.value.status == 401
    assert SANDBOX_TOKEN not in str(exc_info.value)
