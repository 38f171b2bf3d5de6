"""The NetSuite twin speaks the REST record service's wire format: paths, status codes,
headers, bodies and error bodies, checked with plain HTTP against the running twin."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from handoff.connectors import exact_json
from handoff.connectors.twin_process import TwinProcess
from tests.conftest import reset_twin
from tests.connectors.netsuite_support import RECORD_PATH, TOKEN, set_faults, summary

ERROR_TYPE = "application/vnd.oracle.resource+json; type=error"


@pytest.fixture
def ns(netsuite_twin: TwinProcess) -> Iterator[httpx.Client]:
    reset_twin(netsuite_twin)
    with httpx.Client(base_url=f"{netsuite_twin.base_url}{RECORD_PATH}/",
                      headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


def created_id(response: httpx.Response, record_type: str) -> str:
    assert response.status_code == 204, response.text
    assert response.content == b""
    prefix, _, internal_id = response.headers["Location"].rpartition("/")
    assert prefix.endswith(f"{RECORD_PATH}/{record_type}")
    return internal_id


def new_customer(ns: httpx.Client, external_id: str = "C-1", **fields: Any) -> str:
    body = {"externalId": external_id, "companyName": "Acme"} | fields
    return created_id(ns.post("customer", json=body), "customer")


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(ERROR_TYPE)
    body = response.json()
    assert set(body) == {"type", "title", "status", "o:errorDetails"}
    assert body["status"] == status
    return body["o:errorDetails"][0]


def test_post_creates_and_get_reads_by_id_and_external_id(ns: httpx.Client) -> None:
    customer_id = new_customer(ns, currency={"id": "2"}, subsidiary={"id": "3"})
    by_id, by_eid = ns.get(f"customer/{customer_id}"), ns.get("customer/eid:C-1")
    assert by_id.status_code == 200
    assert by_id.headers["content-type"].startswith(
        "application/vnd.oracle.resource+json; type=singular")
    record = by_id.json()
    assert record == by_eid.json()
    assert record["id"] == customer_id and record["companyName"] == "Acme"
    assert record["links"][0]["href"].endswith(f"/customer/{customer_id}")
    assert record["currency"]["id"] == "2" and record["currency"]["refName"] == "British pound"
    assert record["subsidiary"]["refName"] == "UK01"
    assert record["subsidiary"]["links"][0]["href"].endswith("/subsidiary/3")
    assert record["lastModifiedDate"].endswith("Z")


def test_patch_changes_only_the_fields_sent(ns: httpx.Client) -> None:
    customer_id = new_customer(ns, email="ap@acme.test")
    response = ns.patch("customer/eid:C-1", json={"companyName": "Acme Ltd"})
    assert response.status_code == 204
    assert response.headers["Location"].endswith(f"/customer/{customer_id}")
    record = ns.get(f"customer/{customer_id}").json()
    assert (record["companyName"], record["email"]) == ("Acme Ltd", "ap@acme.test")
    assert record["lastModifiedDate"] >= record["dateCreated"]


def test_put_by_external_id_creates_then_updates_the_same_record(
    ns: httpx.Client, netsuite_twin: TwinProcess
) -> None:
    first = created_id(ns.put("customer/eid:C-9", json={"companyName": "Acme"}), "customer")
    second = created_id(ns.put("customer/eid:C-9", json={"companyName": "Acme 2"}), "customer")
    assert first == second
    assert ns.get("customer/eid:C-9").json()["companyName"] == "Acme 2"
    assert summary(netsuite_twin)["counts"] == {"customer": 1, "job": 0}


def test_put_needs_an_external_id_in_the_url(ns: httpx.Client) -> None:
    customer_id = new_customer(ns)
    detail = error_of(ns.put(f"customer/{customer_id}", json={"companyName": "X"}), 400)
    assert detail["o:errorCode"] == "INVALID_PARAMETER"


def test_delete_removes_the_record(ns: httpx.Client) -> None:
    customer_id = new_customer(ns)
    assert ns.delete(f"customer/{customer_id}").status_code == 204
    assert error_of(ns.get(f"customer/{customer_id}"), 404)["o:errorCode"] == "NONEXISTENT_ID"
    assert error_of(ns.get("customer/eid:C-1"), 404)["o:errorCode"] == "NONEXISTENT_ID"


def test_a_customer_with_projects_cannot_be_deleted(ns: httpx.Client) -> None:
    customer_id = new_customer(ns)
    created_id(ns.post("job", json={"companyName": "P", "parent": {"id": customer_id}}), "job")
    assert error_of(ns.delete(f"customer/{customer_id}"), 400)["o:errorCode"] == "USER_ERROR"


def test_list_pages_with_links_and_only_ids(ns: httpx.Client) -> None:
    ids = [new_customer(ns, f"C-{n}") for n in range(5)]
    seen, url, pages = [], "customer?limit=2&offset=0", 0
    while url:
        page = ns.get(url)
        assert page.headers["content-type"].startswith(
            "application/vnd.oracle.resource+json; type=collection")
        body = page.json()
        assert body["totalResults"] == 5 and body["count"] == len(body["items"])
        assert all(set(item) == {"links", "id"} for item in body["items"])
        seen += [item["id"] for item in body["items"]]
        links = {link["rel"]: link["href"] for link in body["links"]}
        assert ("next" in links) == body["hasMore"]
        url, pages = links.get("next"), pages + 1
    assert (seen, pages) == (ids, 3)


def test_list_limit_is_at_most_1000(ns: httpx.Client) -> None:
    assert error_of(ns.get("customer?limit=1001"), 400)["o:errorCode"] == "INVALID_PARAMETER"


def test_reference_data_is_there_from_the_start(ns: httpx.Client) -> None:
    currencies = [ns.get(f"currency/{n}").json()["symbol"] for n in range(1, 5)]
    assert currencies == ["USD", "GBP", "CAD", "EUR"]
    assert ns.get("subsidiary/1").json()["name"] == "Parent Company"
    assert ns.get("currency").json()["totalResults"] == 4


def test_job_price_is_kept_exactly(ns: httpx.Client) -> None:
    customer_id = new_customer(ns)
    body = '{"companyName": "P", "parent": {"id": "' + customer_id + '"}, "jobPrice": 1234567.89}'
    job_id = created_id(ns.post("job", content=body), "job")
    assert b'"jobPrice":1234567.89' in ns.get(f"job/{job_id}").content


def test_a_job_takes_its_customers_currency_and_accepts_an_external_id_parent(
    ns: httpx.Client,
) -> None:
    customer_id = new_customer(ns, currency={"id": "4"})
    body = {"companyName": "P", "parent": {"externalId": "C-1"}, "startDate": "2025-03-01"}
    job = ns.get(f"job/{created_id(ns.post('job', json=body), 'job')}").json()
    assert job["parent"]["id"] == customer_id and job["currency"]["refName"] == "Euro"


@pytest.mark.parametrize(
    ("record_type", "body", "code", "path", "words"),
    [
        ("customer", {"companyName": "A", "colour": "red"}, "NONEXISTENT_FIELD", "colour",
         "colour"),
        ("job", {"companyName": "P", "parent": {"id": "999"}}, "INVALID_CONTENT", "parent",
         "Invalid Field Value 999 for the following field: parent"),
        ("customer", {"companyName": "A", "currency": {"id": "77"}}, "INVALID_CONTENT",
         "currency", "for the following field: currency"),
        ("customer", {"companyName": "A", "subsidiary": {"id": "77"}}, "INVALID_CONTENT",
         "subsidiary", "for the following field: subsidiary"),
        ("customer", {"email": "a@b.test"}, "USER_ERROR", None,
         "Please enter value(s) for: Company Name"),
        ("job", {"companyName": "P"}, "USER_ERROR", None, "Please enter value(s) for: Customer"),
        ("customer", {"companyName": "A", "externalId": "has space"}, "INVALID_CONTENT",
         "externalId", "externalId"),
        ("job", {"companyName": "P", "startDate": "01/03/2025"}, "INVALID_CONTENT", "startDate",
         "startDate"),
        ("job", {"companyName": "P", "jobPrice": "12.50"}, "INVALID_CONTENT", "jobPrice",
         "jobPrice"),
    ],
)
def test_validation_errors_look_like_netsuite(
    ns: httpx.Client, record_type: str, body: dict[str, Any], code: str, path: str | None,
    words: str,
) -> None:
    detail = error_of(ns.post(record_type, json=body), 400)
    assert detail["o:errorCode"] == code
    assert detail.get("o:errorPath") == path
    assert words in detail["detail"]


def test_an_external_id_in_use_cannot_be_posted_again(ns: httpx.Client) -> None:
    new_customer(ns)
    detail = error_of(ns.post("customer", json={"externalId": "C-1", "companyName": "B"}), 400)
    assert detail == {"detail": "Error while accessing a resource. This entity already exists.",
                      "o:errorCode": "USER_ERROR"}


def test_a_body_that_is_not_a_json_object_is_invalid_content(ns: httpx.Client) -> None:
    assert error_of(ns.post("customer", content=b"[1,"), 400)["o:errorCode"] == "INVALID_CONTENT"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}])
def test_missing_or_bad_token_is_refused(netsuite_twin: TwinProcess,
                                         headers: dict[str, str]) -> None:
    response = httpx.get(f"{netsuite_twin.base_url}{RECORD_PATH}/customer", headers=headers)
    assert error_of(response, 401)["o:errorCode"] == "INVALID_LOGIN"
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer realm=") and 'error="invalid_token"' in challenge


def test_injected_throttle_is_a_concurrency_limit_with_retry_after(
    ns: httpx.Client, netsuite_twin: TwinProcess
) -> None:
    set_faults(netsuite_twin, throttle_rate=1.0, retry_after_seconds=3)
    response = ns.get("customer")
    assert error_of(response, 429)["o:errorCode"] == "CONCURRENCY_LIMIT_EXCEEDED"
    assert response.headers["Retry-After"] == "3"


def test_suiteql_finds_ids_by_external_id_in_pages(ns: httpx.Client,
                                                   netsuite_twin: TwinProcess) -> None:
    ids = [new_customer(ns, f"C-{n}") for n in range(3)]
    url = f"{netsuite_twin.base_url}/services/rest/query/v1/suiteql"
    query = "SELECT id, externalid FROM customer ORDER BY id"
    first = ns.post(url, params={"limit": 2}, json={"q": query}).json()
    assert (first["hasMore"], first["totalResults"]) == (True, 3)
    assert first["items"][0] == {"links": [], "id": ids[0], "externalid": "C-0"}
    one = ns.post(url, json={"q": query.replace("ORDER", "WHERE externalid = 'C-2' ORDER")})
    assert [row["id"] for row in one.json()["items"]] == [ids[2]]
    refused = error_of(ns.post(url, json={"q": "SELECT * FROM x"}), 400)
    assert refused["o:errorCode"] == "INVALID_PARAMETER"


def test_summary_counts_jobs_per_customer(ns: httpx.Client, netsuite_twin: TwinProcess) -> None:
    customer_id = new_customer(ns)
    for n in range(2):
        ns.put(f"job/eid:P-{n}", json={"companyName": f"P{n}", "parent": {"id": customer_id}})
    assert summary(netsuite_twin) == {
        "counts": {"customer": 1, "job": 2},
        "transactions": {"invoice": 0, "creditMemo": 0, "customerPayment": 0},
        "duplicate_external_ids": 0, "jobs_per_parent": {customer_id: 2}}


# --- invoices, credit memos, payments ----------------------------------------------------

def new_job(ns: httpx.Client, customer_id: str, external_id: str = "P-1") -> str:
    body = {"companyName": "P", "parent": {"id": customer_id}}
    return created_id(ns.put(f"job/eid:{external_id}", json=body), "job")


def invoice_body(customer_id: str, job_id: str, *amounts: str) -> bytes:
    """Amounts travel as exact JSON numbers."""
    lines = [{"item": {"id": "1"}, "quantity": 1, "rate": Decimal(a), "amount": Decimal(a)}
             for a in amounts]
    return exact_json.dumps({"entity": {"id": customer_id}, "job": {"id": job_id},
                             "tranDate": "2025-03-10", "item": {"items": lines}})


@pytest.fixture
def billed(ns: httpx.Client) -> tuple[str, str]:
    customer_id = new_customer(ns, currency={"id": "4"}, subsidiary={"id": "4"})
    return customer_id, new_job(ns, customer_id)


def test_an_invoice_upserted_by_external_id_is_posted_numbered_and_due_on_net_30(
    ns: httpx.Client, netsuite_twin: TwinProcess, billed: tuple[str, str]
) -> None:
    body = invoice_body(*billed, "1000.10", "99.99")
    first = created_id(ns.put("invoice/eid:HO-I-1", content=body), "invoice")
    again = created_id(ns.put("invoice/eid:HO-I-1", content=body), "invoice")
    assert first == again
    response = ns.get(f"invoice/{first}")
    assert b'"total":1100.09' in response.content
    assert b'"amountRemaining":1100.09' in response.content
    invoice = response.json()
    assert (invoice["tranId"], invoice["status"]) == ("INV10001", {
        "links": [], "id": "A", "refName": "Open"})
    assert (invoice["tranDate"], invoice["dueDate"]) == ("2025-03-10", "2025-04-09")
    assert (invoice["currency"]["refName"], invoice["subsidiary"]["refName"]) == ("Euro", "DE01")
    assert (invoice["entity"]["id"], invoice["job"]["id"]) == billed
    assert (invoice["amountPaid"], invoice["taxTotal"]) == (0, 0)
    assert set(invoice["item"]) == {"links"}
    assert summary(netsuite_twin)["transactions"]["invoice"] == 1


def test_expanded_sub_resources_show_the_lines(ns: httpx.Client, billed: tuple[str, str]) -> None:
    invoice_id = created_id(ns.put("invoice/eid:HO-I-1", content=invoice_body(*billed, "5")),
                            "invoice")
    [line] = ns.get(f"invoice/{invoice_id}?expandSubResources=true").json()["item"]["items"]
    assert line["item"]["refName"] == "Professional Services" and line["amount"] == 5


def test_a_credit_memo_is_positive_and_numbered_apart(
    ns: httpx.Client, billed: tuple[str, str]
) -> None:
    ns.put("invoice/eid:HO-I-1", content=invoice_body(*billed, "100"))
    memo_id = created_id(ns.put("creditMemo/eid:HO-CN-1", content=invoice_body(*billed, "40")),
                         "creditMemo")
    memo = ns.get(f"creditMemo/{memo_id}").json()
    assert (memo["tranId"], memo["total"], memo["amountRemaining"]) == ("CM10001", 40, 40)
    assert memo["status"]["refName"] == "Open"
    assert error_of(ns.get(f"invoice/{memo_id}"), 404)["o:errorCode"] == "NONEXISTENT_ID"


def test_payments_lower_what_remains_until_the_invoice_is_paid_in_full(
    ns: httpx.Client, billed: tuple[str, str]
) -> None:
    customer_id, _ = billed
    invoice_id = created_id(ns.put("invoice/eid:HO-I-1", content=invoice_body(*billed, "100.50")),
                            "invoice")

    def payment(*amounts: str) -> httpx.Response:
        lines = [{"doc": {"id": invoice_id}, "apply": True, "amount": Decimal(a)} for a in amounts]
        return ns.post("customerPayment", content=exact_json.dumps({
            "customer": {"id": customer_id}, "payment": sum(map(Decimal, amounts)),
            "apply": {"items": lines}}))

    created_id(payment("40.25"), "customerPayment")
    invoice = ns.get(f"invoice/{invoice_id}").json()
    assert (invoice["amountPaid"], invoice["amountRemaining"]) == (40.25, 60.25)
    assert invoice["status"]["refName"] == "Open"
    for amounts, path in [(["60.26"], "apply.items[0].amount"),
                          (["30", "30.26"], "apply.items[1].amount")]:
        refused = error_of(payment(*amounts), 400)
        assert (refused["o:errorCode"], refused["o:errorPath"]) == ("INVALID_CONTENT", path)
    assert ns.get(f"invoice/{invoice_id}").json()["amountRemaining"] == 60.25
    created_id(payment("60.25"), "customerPayment")
    invoice = ns.get(f"invoice/{invoice_id}").json()
    assert (invoice["amountRemaining"], invoice["status"]["id"]) == (0, "B")
    assert invoice["status"]["refName"] == "Paid In Full"
    assert error_of(ns.delete(f"invoice/{invoice_id}"), 400)["o:errorCode"] == "USER_ERROR"


def test_a_payment_is_not_changed_once_made(ns: httpx.Client) -> None:
    assert ns.put("customerPayment/eid:PAY-1", json={}).status_code == 405


@pytest.mark.parametrize(
    ("change", "code", "path", "words"),
    [
        (lambda body: body | {"entity": {"id": "999"}}, "INVALID_CONTENT", "entity",
         "Invalid Field Value 999 for the following field: entity"),
        (lambda body: {k: v for k, v in body.items() if k != "item"}, "USER_ERROR", None,
         "You must enter at least one line item for this transaction."),
        (lambda body: body | {"item": {"items": [{"item": {"id": "9999"}, "amount": 1}]}},
         "INVALID_CONTENT", "item.items[0].item",
         "Invalid Field Value 9999 for the following field: item"),
        (lambda body: body | {"item": {"items": [{"amount": 1}]}}, "USER_ERROR", None,
         "Please enter value(s) for: Item"),
        (lambda body: body | {"item": {"items": [{"item": {"id": "1"}, "colour": "red"}]}},
         "NONEXISTENT_FIELD", "item.items[0].colour", "colour"),
        (lambda body: body | {"item": {"items": [{"item": {"id": "1"}, "amount": -5}]}},
         "USER_ERROR", None, "The total can not be negative."),
        (lambda body: body | {"item": {"items": [{"item": {"id": "1"}, "amount": "5"}]}},
         "INVALID_CONTENT", "item.items[0].amount", "amount"),
        (lambda body: body | {"item": [{"item": {"id": "1"}}]}, "INVALID_CONTENT", "item",
         "item"),
    ],
)
def test_invoice_validation_errors_look_like_netsuite(
    ns: httpx.Client, billed: tuple[str, str], change: Any, code: str, path: str | None,
    words: str,
) -> None:
    body = change({"entity": {"id": billed[0]}, "item": {"items": [{"item": {"id": "1"},
                                                                    "amount": 5}]}})
    detail = error_of(ns.put("invoice/eid:HO-I-1", json=body), 400)
    assert (detail["o:errorCode"], detail.get("o:errorPath")) == (code, path)
    assert words in detail["detail"]


def test_an_invoice_for_another_customers_project_is_refused(
    ns: httpx.Client, billed: tuple[str, str]
) -> None:
    other = new_customer(ns, "C-2")
    body = invoice_body(other, billed[1], "5")
    assert error_of(ns.put("invoice/eid:HO-I-1", content=body), 400)["o:errorPath"] == "job"
