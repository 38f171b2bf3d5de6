"""The Dynamics twin over HTTP: the Dataverse Web API's paths, OData payloads, conditional
writes, alternate keys, paging, $batch, error bodies and service protection limits, on the
wire."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from handoff.connectors.dynamics import batch
from handoff.connectors.dynamics.mapping import FORMATTED, LOOKUP_TABLE, entity_id, loads
from handoff.connectors.twin_process import TwinProcess
from tests.connectors.dynamics_support import (
    api,
    fresh,
    set_faults,
    set_twin,
    twin_records,
)

EUR = "5a1e0c00-0000-4000-8000-000000000978"



@pytest.fixture
def twin(dynamics_twin: TwinProcess) -> TwinProcess:
    return fresh(dynamics_twin)


@pytest.fixture
def client(twin: TwinProcess) -> Iterator[httpx.Client]:
    with api(twin) as c:
        yield c


def create(client: httpx.Client, entity_set: str, **columns: Any) -> str:
    response = client.post(entity_set, json=columns)
    assert response.status_code == 204, response.text
    created = entity_id(response.headers["OData-EntityId"])
    assert created is not None
    return created


def error_of(response: httpx.Response, status: int, code: str | None = None) -> str:
    assert response.status_code == status, response.text
    assert response.headers["OData-Version"] == "4.0"
    error = response.json()["error"]
    assert set(error) == {"code", "message"}
    if code is not None:
        assert error["code"] == code
    return str(error["message"])


def body(response: httpx.Response) -> dict[str, Any]:
    return loads(response.content)


# --- auth and addressing -------------------------------------------------------------------------

def test_a_missing_or_wrong_token_gets_401_with_a_bearer_challenge(twin: TwinProcess) -> None:
    with httpx.Client(base_url=twin.base_url) as anonymous:
        response = anonymous.get("/api/data/v9.2/accounts")
    assert response.status_code == 401 and response.content == b""
    assert response.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")
    with api(twin, token="eyJ.revoked") as wrong:
        assert wrong.get("accounts").status_code == 401


def test_an_unknown_entity_set_is_resource_not_found(client: httpx.Client) -> None:
    message = error_of(client.get("Account"), 404, "0x8006088a")
    assert message == "Resource not found for the segment 'Account'."


# --- create, read, update, delete ----------------------------------------------------------------

def test_create_answers_204_with_the_entity_id_or_201_with_the_row(client: httpx.Client) -> None:
    account_id = create(client, "accounts", name="Globex")
    response = client.post("opportunities?$select=name,estimatedvalue,_parentaccountid_value", json={
        "name": "Rollout", "estimatedvalue": 1234567.89,
        "parentaccountid@odata.bind": f"/accounts({account_id})"},
        headers={"Prefer": "return=representation"})
    assert response.status_code == 201 and response.headers["Preference-Applied"] == "return=representation"
    row = body(response)
    assert row["@odata.context"].endswith(
        "/$metadata#opportunities(name,estimatedvalue,_parentaccountid_value)/$entity")
    assert row["@odata.etag"].startswith('W/"') and row["_parentaccountid_value"] == account_id
    assert str(row["estimatedvalue"]) == "1234567.8900"  # exact digits, money's four places


def test_read_selects_columns_and_annotates_choices_lookups_and_money(client: httpx.Client) -> None:
    account_id = create(client, "accounts", name="Globex")
    opportunity_id = create(client, "opportunities", name="Rollout", estimatedvalue=1000,
                            **{"customerid_account@odata.bind": f"/accounts({account_id})",
                               "transactioncurrencyid@odata.bind": f"/transactioncurrencies({EUR})"})
    url = f"opportunities({opportunity_id})?$select=statuscode,_customerid_value,estimatedvalue"
    plain = body(client.get(url))
    assert set(plain) == {"@odata.context", "@odata.etag", "statuscode", "_customerid_value",
                          "estimatedvalue", "opportunityid"}
    rich = body(client.get(url, headers={"Prefer": 'odata.include-annotations="*"'}))
    assert rich["statuscode" + FORMATTED] == "In Progress"
    assert rich["_customerid_value" + LOOKUP_TABLE] == "account"
    assert rich["_customerid_value" + FORMATTED] == "Globex"
    navigation = "_customerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"
    assert rich[navigation] == "customerid_account"
    assert rich["estimatedvalue" + FORMATTED] == "€1,000.00"


def test_updates_bump_the_etag_and_modifiedon_keeps_whole_seconds(client: httpx.Client) -> None:
    account_id = create(client, "accounts", name="A")
    first = body(client.get(f"accounts({account_id})"))
    assert first["modifiedon"].endswith("Z") and len(first["modifiedon"]) == 20
    assert client.patch(f"accounts({account_id})", json={"name": "B"}).status_code == 204
    second = body(client.get(f"accounts({account_id})"))
    assert second["@odata.etag"] != first["@odata.etag"] and second["name"] == "B"
    unchanged = client.get(f"accounts({account_id})", headers={"If-None-Match": second["@odata.etag"]})
    assert unchanged.status_code == 304
    stale = client.patch(f"accounts({account_id})", json={"name": "C"},
                         headers={"If-Match": first["@odata.etag"]})
    assert "RowVersion" in error_of(stale, 412, "0x80060882")
    assert client.delete(f"accounts({account_id})").status_code == 204
    error_of(client.get(f"accounts({account_id})"), 404, "0x80040217")


def test_upsert_by_guid_creates_unless_if_match_says_update_only(client: httpx.Client) -> None:
    row_id = "0b7f2e10-0000-4000-8000-000000000099"
    update_only = client.patch(f"accounts({row_id})", json={"name": "A"}, headers={"If-Match": "*"})
    message = error_of(update_only, 404, "")
    assert message == f"account With Id = {row_id} Does Not Exist"
    assert client.patch(f"accounts({row_id})", json={"name": "A"}).status_code == 204
    assert body(client.get(f"accounts({row_id})"))["name"] == "A"


def test_upsert_by_alternate_key_is_204_both_ways_and_leaves_one_row(
    twin: TwinProcess, client: httpx.Client
) -> None:
    for name in ("First", "Second"):
        response = client.patch("accounts(handoff_key='O''Brien & Co')", json={"name": name})
        assert response.status_code == 204 and entity_id(response.headers["OData-EntityId"])
    [row] = twin_records(twin, "accounts")
    assert (row["name"], row["handoff_key"]) == ("Second", "O'Brien & Co")
    exists = client.patch("accounts(handoff_key='O''Brien & Co')", json={"name": "X"},
                          headers={"If-None-Match": "*"})
    assert "already exists" in error_of(exists, 412)
    missing = client.patch("accounts(handoff_key='nobody')", json={"name": "X"}, headers={"If-Match": "*"})
    error_of(missing, 404)
    error_of(client.get("accounts(name='Second')"), 400, "0x80060891")


def test_a_duplicate_alternate_key_value_is_refused(client: httpx.Client) -> None:
    create(client, "accounts", name="A", handoff_key="K-1")
    assert "K-1 already exists" in error_of(client.post("accounts", json={"name": "B", "handoff_key": "K-1"}),
                                            412, "0x80060892")


@pytest.mark.parametrize(("columns", "code", "words"), [
    ({"handoff_state": "x"}, "0x0", "The property 'handoff_state' does not exist on type "
                                    "'Microsoft.Dynamics.CRM.opportunity'"),
    ({"handoff_status": "x" * 101}, "0x80044331", "The length of the 'handoff_status' attribute"),
    ({"statuscode": 7}, "0x8004431a", "The value 7 of 'statuscode' on record of type 'opportunity'"),
    ({"estimatedvalue": "lots"}, "0x0", "Cannot convert the literal 'lots' to the expected type"),
    ({"handoff_project@odata.bind": "/accounts(x)"}, "0x0", "undeclared property 'handoff_project'"),
])
def test_refused_values_are_odata_errors(client: httpx.Client, columns: dict, code: str, words: str) -> None:
    assert words in error_of(client.post("opportunities", json={"name": "X", **columns}), 400, code)


def test_a_bind_to_a_missing_row_is_not_found(client: httpx.Client) -> None:
    missing = "0b7f2e10-0000-4000-8000-000000000098"
    response = client.post("opportunities", json={"name": "X",
                                                  "parentaccountid@odata.bind": f"/accounts({missing})"})
    assert error_of(response, 404, "0x80040217") == f"account With Id = {missing} Does Not Exist"


def test_win_opportunity_closes_it_as_won(client: httpx.Client) -> None:
    opportunity_id = create(client, "opportunities", name="X", estimatedvalue=500)
    response = client.post("WinOpportunity", json={"Status": 3, "OpportunityClose": {
        "subject": "Won", "opportunityid@odata.bind": f"/opportunities({opportunity_id})"}})
    assert response.status_code == 204
    row = body(client.get(f"opportunities({opportunity_id})?$select=statecode,statuscode,actualvalue"))
    assert (row["statecode"], row["statuscode"], str(row["actualvalue"])) == (1, 3, "500.0000")
    again = client.post("WinOpportunity", json={"Status": 3, "OpportunityClose": {
        "opportunityid@odata.bind": f"/opportunities({opportunity_id})"}})
    error_of(again, 400, "0x80040203")


# --- queries and paging -------------------------------------------------------------------------

def test_pages_follow_the_next_link_until_it_is_absent(client: httpx.Client) -> None:
    ids = sorted(create(client, "accounts", name=f"A{n}") for n in range(5))
    headers = {"Prefer": "odata.maxpagesize=2"}
    response = client.get("accounts?$select=name", headers=headers)
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=2"
    pages = [body(response)]
    while "@odata.nextLink" in pages[-1]:
        link = pages[-1]["@odata.nextLink"]
        assert "$skiptoken=%3Ccookie%20pagenumber=%22" in link
        pages.append(body(client.get(link, headers=headers)))
    assert [len(p["value"]) for p in pages] == [2, 2, 1]
    assert [r["accountid"] for p in pages for r in p["value"]] == ids  # primary key order


def test_filter_and_orderby(client: httpx.Client) -> None:
    for n, value in enumerate((10, 20, 30, None)):
        create(client, "opportunities", name=f"O'{n}", estimatedvalue=value)
    query = ("opportunities?$select=name&$filter=(estimatedvalue ge 15 and estimatedvalue lt 31) or "
             "name eq 'O''3'&$orderby=estimatedvalue desc")
    assert [r["name"] for r in body(client.get(query))["value"]] == ["O'2", "O'1", "O'3"]
    nulls = body(client.get("opportunities?$select=name&$filter=estimatedvalue eq null"))["value"]
    assert [r["name"] for r in nulls] == ["O'3"]
    assert "modifiedon" in body(client.get(
        "opportunities?$select=modifiedon&$filter=modifiedon gt 2000-01-01T00:00:00Z&$top=1"))["value"][0]


@pytest.mark.parametrize(("query", "words"), [
    ("accounts?$select=fullname", "named 'fullname' on type 'Microsoft.Dynamics.CRM.account'"),
    ("accounts?$filter=fullname eq 'x'", "Could not find a property named 'fullname'"),
    ("accounts?$filter=name eq", "Syntax error"),
    ("accounts?$skip=10", "$skip is not supported"),
])
def test_bad_queries_are_400(client: httpx.Client, query: str, words: str) -> None:
    assert words in error_of(client.get(query), 400)


# --- $batch -------------------------------------------------------------------------------------

def send_batch(client: httpx.Client, items: list[Any], continue_on_error: bool = True) -> httpx.Response:
    boundary = batch.new_boundary()
    headers = {"Content-Type": f"multipart/mixed; boundary={boundary}"}
    if continue_on_error:
        headers["Prefer"] = "odata.continue-on-error"
    return client.post("$batch", content=batch.encode_requests(items, boundary), headers=headers)


def patch(row: str, **columns: Any) -> batch.Request:
    headers = {"Content-Type": "application/json", "If-Match": "*"}
    return batch.Request("PATCH", f"/api/data/v9.2/{row}", headers, orjson.dumps(columns))


def test_a_batch_answers_each_request_and_continues_on_error(client: httpx.Client) -> None:
    account_id = create(client, "accounts", name="A")
    missing = "0b7f2e10-0000-4000-8000-000000000097"
    response = send_batch(client, [patch(f"accounts({missing})", name="X"),
                                   patch(f"accounts({account_id})", name="B")])
    assert response.status_code == 200
    answers = batch.decode_responses(response.headers["Content-Type"], response.content)
    assert [a.status for a in answers] == [404, 204]
    assert loads(answers[0].body)["error"]["message"].endswith("Does Not Exist")
    assert body(client.get(f"accounts({account_id})"))["name"] == "B"


def test_a_batch_stops_at_the_first_failure_unless_told_to_go_on(client: httpx.Client) -> None:
    account_id = create(client, "accounts", name="A")
    response = send_batch(client, [patch(f"accounts({account_id})", handoff_state="x"),
                                   patch(f"accounts({account_id})", name="B")], continue_on_error=False)
    assert response.status_code == 400
    assert len(batch.decode_responses(response.headers["Content-Type"], response.content)) == 1
    assert body(client.get(f"accounts({account_id})"))["name"] == "A"


def test_a_change_set_is_all_or_nothing(twin: TwinProcess, client: httpx.Client) -> None:
    create_one = batch.Request("POST", "/api/data/v9.2/accounts", {"Content-Type": "application/json"},
                               b'{"name": "In the change set"}', "1")
    json_type = {"Content-Type": "application/json"}
    name_it = batch.Request("PATCH", "$1", json_type, b'{"accountnumber": "N-1"}', "2")
    response = send_batch(client, [[create_one, name_it]])
    answers = batch.decode_responses(response.headers["Content-Type"], response.content)
    assert [a.status for a in answers] == [204, 204]
    assert twin_records(twin, "accounts")[0]["accountnumber"] == "N-1"
    broken = batch.Request("PATCH", "$1", {"Content-Type": "application/json"}, b'{"colour": "red"}', "2")
    response = send_batch(client, [[create_one, broken]])
    [answer] = batch.decode_responses(response.headers["Content-Type"], response.content)
    assert answer.status == 400 and len(twin_records(twin, "accounts")) == 1  # rolled back


# --- service protection and faults ---------------------------------------------------------------

def test_over_the_request_limit_is_429_with_retry_after(
    twin: TwinProcess, client: httpx.Client
) -> None:
    set_twin(twin, request_limit=2, window_seconds=60)
    assert client.get("accounts").status_code == 200
    response = client.get("accounts")
    assert response.headers["x-ms-ratelimit-burst-remaining-xrm-requests"] == "0"
    throttled = client.get("accounts")
    assert error_of(throttled, 429, "0x80072322") == (
        "Number of requests exceeded the limit of 2 over time window of 60 seconds.")
    assert 55 <= int(throttled.headers["Retry-After"]) <= 60
    set_twin(twin, send_retry_after=False)
    assert "Retry-After" not in client.get("accounts").headers


def test_over_the_concurrency_limit_is_429_at_once(twin: TwinProcess) -> None:
    set_twin(twin, concurrency_limit=2, hold_ms=400)
    statuses: list[int] = []

    def call() -> None:
        with api(twin) as own:
            response = own.get("accounts")
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert response.json()["error"]["code"] == "0x80072326"

    threads = [threading.Thread(target=call) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 200, 429, 429]


def test_a_batch_counts_as_one_request(twin: TwinProcess, client: httpx.Client) -> None:
    set_twin(twin, request_limit=3, window_seconds=60)
    account_id = create(client, "accounts", name="A")
    response = send_batch(client, [patch(f"accounts({account_id})", name=str(n)) for n in range(5)])
    assert response.status_code == 200, response.text
    assert client.get("accounts").status_code == 200
    error_of(client.get("accounts"), 429, "0x80072322")


def test_injected_faults_speak_dataverse(twin: TwinProcess, client: httpx.Client) -> None:
    set_faults(twin, throttle_rate=1.0, retry_after_seconds=7)
    response = client.get("accounts")
    assert error_of(response, 429, "0x80072322") and response.headers["Retry-After"] == "7"
    set_faults(twin, unavailable_rate=1.0)
    error_of(client.get("accounts"), 503)
