"""The Oracle twin speaks Fusion REST's wire format: paths, headers (REST-Framework-Version,
Upsert-Mode, ETag and If-Match), collections and their query parameters, payloads, error
bodies and injected faults, checked with plain HTTP against the twin in its own process."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from handoff.connectors import exact_json
from handoff.connectors.twin_process import TwinProcess
from tests.connectors.oracle_support import (
    CRM,
    FSCM,
    ITEM_TYPE,
    api,
    fresh,
    pay,
    set_faults,
    summary,
)

ERROR_TYPE = "application/vnd.oracle.adf.error+json"
WRITE = {"Content-Type": ITEM_TYPE}




@pytest.fixture
def fusion(oracle_twin: TwinProcess) -> Iterator[httpx.Client]:
    fresh(oracle_twin)
    with api(oracle_twin) as client:
        yield client


def post(client: httpx.Client, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return client.post(path, content=exact_json.dumps(body), headers=WRITE | headers)


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith(ITEM_TYPE)
    return response.json(parse_float=Decimal)


def new_account(client: httpx.Client, reference: str = "HO-C-1", **fields: Any) -> dict[str, Any]:
    body = {"OrganizationName": "Acme", "SourceSystem": "HANDOFF",
            "SourceSystemReferenceValue": reference, "CurrencyCode": "USD"} | fields
    return created(post(client, f"{CRM}/accounts", body))


def new_project(client: httpx.Client, party: str, reference: str = "HO-P-1", **fields: Any) -> dict[str, Any]:
    body = {"ProjectName": "Rollout", "SourceApplicationCode": "HANDOFF",
            "SourceProjectReference": reference, "ProjectStartDate": "2025-03-01",
            "ProjectCurrencyCode": "USD", "ProjectType": "Fixed Price",
            "BusinessUnitName": "US1 Business Unit", "ProjectValue": Decimal("1234567.89"),
            "ProjectCustomers": [{"PartyNumber": party}]} | fields
    return created(post(client, f"{FSCM}/projects", body))


def invoice_body(party: str, *amounts: str, **fields: Any) -> dict[str, Any]:
    lines = [{"Description": "Milestone", "Quantity": 1, "UnitSellingPrice": Decimal(a)} for a in amounts]
    return {"BusinessUnit": "US1 Business Unit", "TransactionSource": "Manual",
            "TransactionType": "Invoice", "TransactionDate": "2025-03-10",
            "InvoiceCurrencyCode": "USD", "BillToCustomerNumber": party,
            "CrossReference": "HO-I-006A-M1", "receivablesInvoiceLines": lines} | fields


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(ERROR_TYPE)
    body = response.json()
    assert (set(body), body["status"]) == ({"title", "status", "o:errorDetails"}, str(status))
    return body["o:errorDetails"][0]


# --- items, upserts, concurrency ------------------------------------------------------------

def test_post_answers_201_with_location_etag_and_the_item(fusion: httpx.Client) -> None:
    response = post(fusion, f"{CRM}/accounts", {"OrganizationName": "Acme", "SourceSystem": "HANDOFF",
                                                "SourceSystemReferenceValue": "HO-C-1"})
    account = created(response)
    assert response.headers["Location"].endswith(f"{CRM}/accounts/{account['PartyNumber']}")
    assert response.headers["REST-Framework-Version"] == "4"
    self_link = account["links"][0]
    assert (self_link["rel"], self_link["kind"]) == ("self", "item")
    assert self_link["properties"]["changeIndicator"] == response.headers["ETag"]
    read = fusion.get(f"{CRM}/accounts/{account['PartyNumber']}")
    assert read.status_code == 200 and read.json() == account
    assert read.headers["ETag"] == response.headers["ETag"]


def test_writes_need_oracles_item_media_type(fusion: httpx.Client) -> None:
    response = fusion.post(f"{CRM}/accounts", json={"OrganizationName": "Acme"})
    assert response.status_code == 415


def test_upsert_mode_updates_the_record_its_reference_finds_else_creates(
    fusion: httpx.Client, oracle_twin: TwinProcess
) -> None:
    body = {"OrganizationName": "Acme", "SourceSystem": "HANDOFF", "SourceSystemReferenceValue": "HO-C-9"}
    first = post(fusion, f"{CRM}/accounts", body, **{"Upsert-Mode": "true"})
    again = post(fusion, f"{CRM}/accounts", body | {"OrganizationName": "Acme Ltd"},
                 **{"Upsert-Mode": "true"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["PartyNumber"] == again.json()["PartyNumber"]
    assert again.json()["OrganizationName"] == "Acme Ltd"
    assert summary(oracle_twin)["counts"]["accounts"] == 1
    plain = post(fusion, f"{CRM}/accounts", body)
    assert "Too many objects match the primary key" in error_of(plain, 400)["detail"]


def test_patch_changes_only_what_is_sent_and_a_stale_etag_is_412(fusion: httpx.Client) -> None:
    party = new_account(fusion)["PartyNumber"]
    project = new_project(fusion, party)
    url = f"{FSCM}/projects/{project['ProjectId']}"
    etag = fusion.get(url).headers["ETag"]
    changed = fusion.patch(url, content=b'{"ProjectValue": 95000.10}', headers=WRITE | {"If-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert b'"ProjectValue":95000.10' in changed.content
    assert changed.json()["ProjectName"] == "Rollout"
    stale = fusion.patch(url, json={"ProjectName": "X"}, headers=WRITE | {"If-Match": etag})
    assert stale.status_code == 412 and stale.headers["ETag"] == changed.headers["ETag"]
    refused = fusion.patch(url, json={"ProjectCurrencyCode": "EUR"}, headers=WRITE)
    assert error_of(refused, 400)["o:errorPath"] == "/ProjectCurrencyCode"


def test_accept_with_q_0_answers_a_write_with_204(fusion: httpx.Client) -> None:
    response = post(fusion, f"{CRM}/accounts", {"OrganizationName": "Acme"},
                    Accept="application/json;q=0")
    assert (response.status_code, response.content) == (204, b"")
    assert "/accounts/CDRM_" in response.headers["Location"]


# --- collections and queries ----------------------------------------------------------------

def test_q_finds_by_the_key_fields_in_expression_syntax(fusion: httpx.Client) -> None:
    for n in range(3):
        new_account(fusion, f"HO-C-{n}")
    query = "SourceSystem='HANDOFF' and SourceSystemReferenceValue='HO-C-1'"
    found = fusion.get(f"{CRM}/accounts", params={"q": query}).json()
    assert [a["SourceSystemReferenceValue"] for a in found["items"]] == ["HO-C-1"]
    like = fusion.get(f"{CRM}/accounts", params={"q": "SourceSystemReferenceValue LIKE 'HO-C-%' and "
                                                      "(PartyId > 0 or OrganizationName is null)"})
    assert like.json()["count"] == 3
    assert error_of(fusion.get(f"{CRM}/accounts", params={"q": "Colour='red'"}), 400)["detail"].startswith(
        "URL request parameter q")


def test_framework_version_1_queries_by_example_and_2_does_not(oracle_twin: TwinProcess,
                                                               fusion: httpx.Client) -> None:
    new_account(fusion, "HO-C-1")
    new_account(fusion, "HO-C-2")
    by_example = {"q": "SourceSystemReferenceValue=HO-C-2;SourceSystem=HANDOFF"}
    with api(oracle_twin, framework=1) as old:
        found = old.get(f"{CRM}/accounts", params=by_example)
        assert [a["SourceSystemReferenceValue"] for a in found.json()["items"]] == ["HO-C-2"]
        assert found.headers["REST-Framework-Version"] == "1"
    with api(oracle_twin, framework=2) as newer:
        refused = newer.get(f"{CRM}/accounts", params=by_example)
        assert refused.status_code == 400 and refused.headers["content-type"].startswith("text/plain")
    with api(oracle_twin, framework=10) as unknown:
        assert unknown.get(f"{CRM}/accounts").status_code == 400


def test_finders_search_invoices_by_their_variables(fusion: httpx.Client) -> None:
    party = new_account(fusion)["PartyNumber"]
    post(fusion, f"{FSCM}/receivablesInvoices", invoice_body(party, "10"))
    post(fusion, f"{FSCM}/receivablesInvoices", invoice_body(party, "20", CrossReference="HO-I-006A-M2",
                                                             InvoiceStatus="Incomplete"))
    finder = f"invoiceSearch;BillToCustomerNumber={party},InvoiceStatus=Complete"
    found = fusion.get(f"{FSCM}/receivablesInvoices", params={"finder": finder})
    assert [i["CrossReference"] for i in found.json()["items"]] == ["HO-I-006A-M1"]
    for finder in ("nope;X=1", "invoiceSearch;Colour=red"):
        assert error_of(fusion.get(f"{FSCM}/receivablesInvoices", params={"finder": finder}), 400)


def test_collections_page_by_limit_and_offset_with_has_more(fusion: httpx.Client) -> None:
    numbers = [new_account(fusion, f"HO-C-{n}")["PartyNumber"] for n in range(5)]
    seen, offset, pages = [], 0, 0
    while True:
        page = fusion.get(f"{CRM}/accounts", params={"limit": 2, "offset": offset, "totalResults": "true",
                                                     "orderBy": "PartyId:asc"}).json()
        assert page["totalResults"] == 5 and page["limit"] == 2 and page["offset"] == offset
        seen += [a["PartyNumber"] for a in page["items"]]
        pages += 1
        if not page["hasMore"]:
            break
        offset += page["count"]
    assert (seen, pages) == (numbers, 3)
    assert "totalResults" not in fusion.get(f"{CRM}/accounts").json()
    assert fusion.get(f"{CRM}/accounts", params={"limit": 9999}).json()["limit"] == 500
    assert fusion.get(f"{CRM}/accounts", params={"limit": 0}).status_code == 400
    descending = fusion.get(f"{CRM}/accounts", params={"orderBy": "PartyId:desc"}).json()["items"]
    assert [a["PartyNumber"] for a in descending] == numbers[::-1]


def test_children_are_arrays_before_framework_version_3_and_collections_after(
    oracle_twin: TwinProcess, fusion: httpx.Client
) -> None:
    party = new_account(fusion)["PartyNumber"]
    url = f"{FSCM}/projects/{new_project(fusion, party)['ProjectId']}"
    plain = fusion.get(url).json()
    assert "ProjectCustomers" not in plain
    assert any(link["rel"] == "child" and link["name"] == "ProjectCustomers" for link in plain["links"])
    nested = fusion.get(url, params={"expand": "ProjectCustomers", "onlyData": "true"}).json()
    assert "links" not in nested
    assert nested["ProjectCustomers"]["items"][0]["PartyNumber"] == party
    assert set(nested["ProjectCustomers"]) == {"items", "count", "hasMore", "limit", "offset", "links"}
    with api(oracle_twin, framework=2) as old:
        assert old.get(url, params={"expand": "all"}).json()["ProjectCustomers"][0]["PartyNumber"] == party
    child = fusion.get(f"{url}/child/ProjectCustomers").json()
    assert child["items"][0]["PartyName"] == "Acme"


def test_fields_choose_attributes_and_child_attributes(fusion: httpx.Client) -> None:
    party = new_account(fusion)["PartyNumber"]
    post(fusion, f"{FSCM}/receivablesInvoices", invoice_body(party, "12.50"))
    fields = "CustomerTransactionId,EnteredAmount;receivablesInvoiceLines:UnitSellingPrice"
    params = {"fields": fields, "onlyData": "true"}
    [row] = fusion.get(f"{FSCM}/receivablesInvoices", params=params).json()["items"]
    assert set(row) == {"CustomerTransactionId", "EnteredAmount", "receivablesInvoiceLines"}
    assert row["receivablesInvoiceLines"]["items"] == [{"UnitSellingPrice": 12.5}]


# --- errors, auth, faults -------------------------------------------------------------------

def test_errors_are_json_from_framework_version_4_and_plain_text_before(
    oracle_twin: TwinProcess, fusion: httpx.Client
) -> None:
    body = {"ProjectName": "P", "ProjectStartDate": "2025-03-01", "ProjectCurrencyCode": "USD",
            "ProjectType": "Fixed Price", "BusinessUnitName": "US1 Business Unit",
            "ProjectCustomers": [{"PartyNumber": "CDRM_404"}]}
    detail = error_of(post(fusion, f"{FSCM}/projects", body), 400)
    assert detail["o:errorPath"] == "/ProjectCustomers/0/PartyNumber"
    assert "CDRM_404" in detail["detail"]
    with api(oracle_twin, framework=3) as old:
        text = post(old, f"{FSCM}/projects", body)
        assert text.status_code == 400 and text.headers["content-type"].startswith("text/plain")
        assert "CDRM_404" in text.text
    with api(oracle_twin, Accept="*/*") as no_json:
        assert post(no_json, f"{FSCM}/projects", body).headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("resource", "body", "path"),
    [("projects", {"ProjectName": "P"}, "/ProjectStartDate"),
     ("projects", {"ProjectName": "P", "ProjectStartDate": "01/03/2025"}, "/ProjectStartDate"),
     ("projects", {"ProjectName": "P", "ProjectValue": "12.50"}, "/ProjectValue"),
     ("projects", {"ProjectName": "P", "ProjectId": 5}, "/ProjectId"),
     ("projects", {"ProjectName": "P", "Colour": "red"}, "/Colour"),
     ("receivablesInvoices", {"BusinessUnit": "Nowhere"}, "/BusinessUnit")],
)
def test_validation_errors_name_the_attribute(fusion: httpx.Client, resource: str,
                                              body: dict[str, Any], path: str) -> None:
    assert error_of(post(fusion, f"{FSCM}/{resource}", body), 400)["o:errorPath"] == path


def test_a_missing_item_is_404(fusion: httpx.Client) -> None:
    assert error_of(fusion.get(f"{FSCM}/projects/999"), 404)
    assert fusion.get(f"{FSCM}/projects/999", headers={"Accept": "*/*"}).headers[
        "content-type"].startswith("text/plain")


@pytest.mark.parametrize("authorization",
                         [None, "Bearer wrong", "Basic " + base64.b64encode(b"x:y").decode()])
def test_bad_credentials_are_401_without_a_body(oracle_twin: TwinProcess,
                                                authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = httpx.get(f"{oracle_twin.base_url}{FSCM}/projects", headers=headers)
    assert (response.status_code, response.content) == (401, b"")
    assert response.headers["WWW-Authenticate"].startswith("Basic")


def test_basic_auth_with_the_sandbox_user_is_accepted(oracle_twin: TwinProcess) -> None:
    pair = base64.b64encode(b"handoff.integration:sandbox-password").decode()
    response = httpx.get(f"{oracle_twin.base_url}{FSCM}/projects", headers={"Authorization": f"Basic {pair}"})
    assert response.status_code == 200 and response.json()["items"] == []


@pytest.mark.parametrize("retry_after", [3, 0])
def test_injected_throttling_is_429_with_retry_after_when_set(
    fusion: httpx.Client, oracle_twin: TwinProcess, retry_after: int
) -> None:
    set_faults(oracle_twin, throttle_rate=1.0, retry_after_seconds=retry_after)
    response = fusion.get(f"{FSCM}/projects")
    assert response.status_code == 429 and response.headers["content-type"].startswith("text/plain")
    assert response.headers.get("Retry-After") == (str(retry_after) if retry_after else None)


def test_injected_unavailability_is_503(fusion: httpx.Client, oracle_twin: TwinProcess) -> None:
    set_faults(oracle_twin, unavailable_rate=1.0)
    assert fusion.get(f"{FSCM}/projects").status_code == 503


# --- receivables ----------------------------------------------------------------------------

@pytest.fixture
def party(fusion: httpx.Client) -> str:
    return new_account(fusion)["PartyNumber"]


def test_an_invoice_is_numbered_totalled_exactly_and_due_on_its_terms(fusion: httpx.Client,
                                                                      party: str) -> None:
    response = post(fusion, f"{FSCM}/receivablesInvoices", invoice_body(party, "1000.10", "99.99"))
    invoice = created(response)
    assert b'"EnteredAmount":1100.09' in response.content
    assert (invoice["TransactionNumber"], invoice["InvoiceStatus"], invoice["DueDate"]) == (
        "10001", "Complete", "2025-04-09")
    assert (invoice["InvoiceBalanceAmount"], invoice["BillToCustomerName"]) == (Decimal("1100.09"), "Acme")
    [installment] = invoice["receivablesInvoiceInstallments"]["items"]
    assert (installment["InstallmentStatus"], installment["InstallmentBalanceDue"]) == (
        "Open", Decimal("1100.09"))
    assert [line["LineAmount"] for line in invoice["receivablesInvoiceLines"]["items"]] == [
        Decimal("1000.10"), Decimal("99.99")]


def test_receipts_lower_the_balance_until_the_installment_closes(
    fusion: httpx.Client, oracle_twin: TwinProcess, party: str
) -> None:
    invoice_id = created(post(fusion, f"{FSCM}/receivablesInvoices", invoice_body(party, "100.50")))[
        "CustomerTransactionId"]
    url = f"{FSCM}/receivablesInvoices/{invoice_id}"
    assert pay(oracle_twin, str(invoice_id), "40.25")["InvoiceBalanceAmount"] == Decimal("60.25")
    assert fusion.get(url).json(parse_float=Decimal)["InvoiceBalanceAmount"] == Decimal("60.25")
    with pytest.raises(httpx.HTTPStatusError):
        pay(oracle_twin, str(invoice_id), "60.26")
    pay(oracle_twin, str(invoice_id), "60.25")
    paid = fusion.get(url, params={"expand": "receivablesInvoiceInstallments"}).json()
    assert paid["InvoiceBalanceAmount"] == 0
    assert paid["receivablesInvoiceInstallments"]["items"][0]["InstallmentStatus"] == "Closed"
    reopened = fusion.patch(url, json={"InvoiceStatus": "Incomplete"}, headers=WRITE)
    assert "activity" in error_of(reopened, 400)["detail"]


def test_an_incomplete_invoice_is_completed_by_patch_and_only_then_due(fusion: httpx.Client,
                                                                       party: str) -> None:
    invoice = created(post(fusion, f"{FSCM}/receivablesInvoices",
                           invoice_body(party, "10", InvoiceStatus="Incomplete")))
    url = f"{FSCM}/receivablesInvoices/{invoice['CustomerTransactionId']}"
    assert invoice["receivablesInvoiceInstallments"]["items"] == []
    moved = fusion.patch(url, json={"TransactionDate": "2025-03-20"}, headers=WRITE).json()
    assert (moved["DueDate"], moved["InvoiceStatus"]) == ("2025-04-19", "Incomplete")
    completed = fusion.patch(url, json={"InvoiceStatus": "Complete"}, headers=WRITE)
    assert completed.json()["InvoiceStatus"] == "Complete"
    refused = fusion.patch(url, json={"TransactionDate": "2025-03-21"}, headers=WRITE)
    assert "complete transaction" in error_of(refused, 400)["detail"]
    assert error_of(fusion.delete(url), 400)
    patched = fusion.patch(url, json={"EnteredAmount": 5}, headers=WRITE)
    assert error_of(patched, 400)["o:errorPath"] == "/EnteredAmount"


def test_an_incomplete_invoice_can_be_deleted(fusion: httpx.Client, party: str) -> None:
    invoice = created(post(fusion, f"{FSCM}/receivablesInvoices",
                           invoice_body(party, "10", InvoiceStatus="Incomplete")))
    url = f"{FSCM}/receivablesInvoices/{invoice['CustomerTransactionId']}"
    assert fusion.delete(url).status_code == 204
    assert fusion.get(url).status_code == 404


def test_a_credit_memo_is_negative_and_numbered_apart(fusion: httpx.Client, party: str) -> None:
    body = {"BusinessUnit": "US1 Business Unit", "TransactionSource": "Manual",
            "TransactionType": "Credit Memo", "CreditMemoCurrency": "USD",
            "BillToCustomerNumber": party, "CrossReference": "HO-CN-006A-M1",
            "receivablesCreditMemoLines": [{"LineDescription": "Credit",
                                            "LineAmountCredit": Decimal("-40.10")}]}
    memo = created(post(fusion, f"{FSCM}/receivablesCreditMemos", body))
    assert (memo["TransactionNumber"], memo["EnteredAmount"]) == ("CM10001", Decimal("-40.10"))
    assert fusion.get(f"{FSCM}/receivablesInvoices/{memo['CustomerTransactionId']}").status_code == 404
    positive = body | {"receivablesCreditMemoLines": [{"LineDescription": "C", "LineAmountCredit": 5}]}
    detail = error_of(post(fusion, f"{FSCM}/receivablesCreditMemos", positive), 400)
    assert detail["o:errorPath"] == "/receivablesCreditMemoLines/0/LineAmountCredit"


@pytest.mark.parametrize(
    ("change", "path"),
    [({"BillToCustomerNumber": "CDRM_404"}, "/BillToCustomerNumber"),
     ({"receivablesInvoiceLines": []}, "/receivablesInvoiceLines"),
     ({"receivablesInvoiceLines": [{"Description": "X", "UnitSellingPrice": 1, "MemoLine": "Nope"}]},
      "/receivablesInvoiceLines/0/MemoLine"),
     ({"receivablesInvoiceLines": [{"Description": "X"}]}, "/receivablesInvoiceLines/0/UnitSellingPrice"),
     ({"TransactionType": "Credit Memo"}, "/TransactionType"),
     ({"PaymentTerms": "90 Net"}, "/PaymentTerms")],
)
def test_invoice_validation_errors_name_the_attribute(fusion: httpx.Client, party: str,
                                                      change: dict[str, Any], path: str) -> None:
    response = post(fusion, f"{FSCM}/receivablesInvoices", invoice_body(party, "10") | change)
    assert error_of(response, 400)["o:errorPath"] == path
