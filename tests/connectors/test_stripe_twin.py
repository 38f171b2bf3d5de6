"""The Stripe twin over HTTP, in its own process: Stripe's wire format unwrapped — form-encoded
writes, Idempotency-Key replay and conflict, list paging, error bodies, rate limits and the
shared fault injection, and invoice amounts kept consistent through payment and credit."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from handoff.connectors.stripe.twin import SANDBOX_KEY, parse_form
from handoff.connectors.twin_process import TwinProcess
from tests.connectors.stripe_support import (
    api,
    control,
    fresh,
    objects,
    pay,
    set_faults,
    set_twin,
)


@pytest.fixture
def twin(stripe_twin: TwinProcess) -> TwinProcess:
    return fresh(stripe_twin)


@pytest.fixture
def client(twin: TwinProcess) -> Iterator[httpx.Client]:
    with api(twin) as c:
        yield c


def post(client: httpx.Client, path: str, data: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(path, data=data, headers=headers)


def customer(client: httpx.Client, **extra: str) -> str:
    response = post(client, "/v1/customers", {"name": "Globex", "metadata[handoff_customer]": "HO-C-1",
                                               **extra})
    assert response.status_code == 200, response.text
    return response.json()["id"]


def draft(client: httpx.Client, customer_id: str, amount: int = 3000000, **extra: str) -> dict[str, Any]:
    invoice = post(client, "/v1/invoices", {"customer": customer_id, "currency": "usd",
                                            "collection_method": "send_invoice", "days_until_due": "30",
                                            "auto_advance": "false", **extra}).json()
    item = post(client, "/v1/invoiceitems", {"customer": customer_id, "invoice": invoice["id"],
                                             "amount": str(amount), "currency": "usd"})
    assert item.status_code == 200, item.text
    return client.get(f"/v1/invoices/{invoice['id']}").json()


def finalized(client: httpx.Client, customer_id: str, amount: int = 3000000) -> dict[str, Any]:
    invoice = draft(client, customer_id, amount)
    return post(client, f"/v1/invoices/{invoice['id']}/finalize", {}).json()


def test_forms_nest_with_brackets_as_stripe_encodes_them() -> None:
    assert parse_form("a=1&metadata[k]=v&metadata[x]=&expand[]=p&expand[]=q&lines[0][amount]=5") == {
        "a": "1", "metadata": {"k": "v", "x": ""}, "expand": ["p", "q"], "lines": {"0": {"amount": "5"}}}


def test_requests_without_the_key_or_with_another_are_refused_in_stripes_words(
        twin: TwinProcess) -> None:
    with httpx.Client(base_url=twin.base_url) as anonymous:
        missing = anonymous.get("/v1/invoices")
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert "You did not provide an API key" in missing.json()["error"]["message"]
    with api(twin, "sk_test_someone_else_1234") as other:
        wrong = other.get("/v1/invoices")
    assert wrong.status_code == 401
    assert "Invalid API Key provided: sk_test_" in wrong.json()["error"]["message"]
    assert wrong.headers["Request-Id"].startswith("req_")
    with httpx.Client(base_url=twin.base_url, auth=(SANDBOX_KEY, "")) as basic:  # curl -u sk_…:
        assert basic.get("/v1/invoices").status_code == 200


def test_a_customer_is_created_from_a_form_with_metadata(client: httpx.Client) -> None:
    created = post(client, "/v1/customers", {"name": "Globex", "email": "ap@globex.example",
                                              "metadata[handoff_customer]": "HO-C-1"})
    body = created.json()
    assert created.status_code == 200 and body["object"] == "customer" and body["id"].startswith("cus_")
    assert body["metadata"] == {"handoff_customer": "HO-C-1"} and body["balance"] == 0
    bad = post(client, "/v1/customers", {"email": "not-an-email"})
    assert bad.status_code == 400
    assert {k: bad.json()["error"][k] for k in ("type", "code", "param")} == {
        "type": "invalid_request_error", "code": "email_invalid", "param": "email"}


def test_the_same_key_and_body_replays_the_first_answer(twin: TwinProcess,
                                                       client: httpx.Client) -> None:
    first = post(client, "/v1/customers", {"name": "Globex"}, key="handoff:HO-C-1:customer")
    again = post(client, "/v1/customers", {"name": "Globex"}, key="handoff:HO-C-1:customer")
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Original-Request"] == first.headers["Request-Id"]
    assert len(objects(twin, "customer")) == 1


def test_the_same_key_with_other_parameters_or_on_another_endpoint_is_an_idempotency_error(
        twin: TwinProcess, client: httpx.Client) -> None:
    post(client, "/v1/customers", {"name": "Globex"}, key="k-1")
    other = post(client, "/v1/customers", {"name": "Initech"}, key="k-1")
    assert other.status_code == 400 and other.json()["error"]["type"] == "idempotency_error"
    assert "same parameters" in other.json()["error"]["message"]
    elsewhere = post(client, "/v1/invoices", {"customer": "cus_x"}, key="k-1")
    assert elsewhere.status_code == 400 and "same endpoint" in elsewhere.json()["error"]["message"]
    assert len(objects(twin, "customer")) == 1


def test_a_request_refused_by_validation_is_not_kept_under_its_key(client: httpx.Client) -> None:
    refused = post(client, "/v1/invoices", {"currency": "usd"}, key="k-2")
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "customer"
    fixed = post(client, "/v1/invoices", {"customer": customer(client), "currency": "usd"}, key="k-2")
    assert fixed.status_code == 200 and "Idempotent-Replayed" not in fixed.headers


def test_a_key_older_than_its_lifetime_is_a_new_request(twin: TwinProcess,
                                                       client: httpx.Client) -> None:
    set_twin(twin, idempotency_ttl_seconds=0.0)
    first = post(client, "/v1/customers", {"name": "Globex"}, key="k-3")
    time.sleep(0.01)
    later = post(client, "/v1/customers", {"name": "Globex"}, key="k-3")
    assert first.json()["id"] != later.json()["id"]


def test_lists_page_newest_first_with_starting_after_and_ending_before(client: httpx.Client) -> None:
    cus = customer(client)
    made = [post(client, "/v1/invoices", {"customer": cus, "currency": "usd"}).json()["id"]
            for _ in range(25)]
    newest_first = list(reversed(made))
    first = client.get("/v1/invoices", params={"limit": 10}).json()
    assert first["object"] == "list" and first["url"] == "/v1/invoices" and first["has_more"] is True
    assert [i["id"] for i in first["data"]] == newest_first[:10]
    second = client.get("/v1/invoices", params={"limit": 10, "starting_after": newest_first[9]}).json()
    third = client.get("/v1/invoices", params={"limit": 10, "starting_after": newest_first[19]}).json()
    assert [i["id"] for i in second["data"]] == newest_first[10:20] and second["has_more"] is True
    assert [i["id"] for i in third["data"]] == newest_first[20:] and third["has_more"] is False
    back = client.get("/v1/invoices", params={"limit": 5, "ending_before": newest_first[10]}).json()
    assert [i["id"] for i in back["data"]] == newest_first[5:10] and back["has_more"] is True
    assert len(client.get("/v1/invoices").json()["data"]) == 10  # Stripe's default limit
    too_many = client.get("/v1/invoices", params={"limit": 101})
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "limit"
    unknown = client.get("/v1/invoices", params={"starting_after": "in_nope"})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "resource_missing"


def test_lists_filter_by_customer(client: httpx.Client) -> None:
    one, two = customer(client), customer(client)
    mine = post(client, "/v1/invoices", {"customer": one, "currency": "usd"}).json()["id"]
    post(client, "/v1/invoices", {"customer": two, "currency": "usd"})
    assert [i["id"] for i in client.get("/v1/invoices", params={"customer": one}).json()["data"]] == [mine]


def test_errors_use_stripes_body(client: httpx.Client) -> None:
    unknown = post(client, "/v1/customers", {"nmae": "typo"})
    assert unknown.status_code == 400 and unknown.json() == {"error": {
        "type": "invalid_request_error", "code": "parameter_unknown", "param": "nmae",
        "message": "Received unknown parameter: nmae",
        "doc_url": "https://stripe.com/docs/error-codes/parameter-unknown",
        "request_log_url": unknown.json()["error"]["request_log_url"]}}
    missing = client.get("/v1/invoices/in_missing")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "resource_missing"
    nowhere = client.get("/v1/nothing_here")
    assert nowhere.status_code == 404 and "Unrecognized request URL" in nowhere.json()["error"]["message"]
    not_integer = post(client, "/v1/invoiceitems", {"customer": customer(client), "amount": "12.50",
                                                     "currency": "usd"})
    assert not_integer.json()["error"]["code"] == "parameter_invalid_integer"
    assert not_integer.json()["error"]["param"] == "amount"


def test_over_the_rate_limit_stripe_answers_429_rate_limit(twin: TwinProcess,
                                                          client: httpx.Client) -> None:
    set_twin(twin, requests_per_second=3, send_retry_after=True)
    answers = [client.get("/v1/invoices") for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["error"]["code"] == "rate_limit" and answers[-1].headers["Retry-After"] == "1"


def test_search_finds_by_metadata_but_not_what_is_younger_than_the_lag(twin: TwinProcess,
                                                                      client: httpx.Client) -> None:
    customer(client)
    query = {"query": "metadata['handoff_customer']:'HO-C-1'"}
    found = client.get("/v1/customers/search", params=query).json()
    assert found["object"] == "search_result" and len(found["data"]) == 1
    set_twin(twin, search_lag_seconds=60)  # what was made in the last minute is not found yet
    assert client.get("/v1/customers/search", params=query).json()["data"] == []
    bad = client.get("/v1/customers/search", params={"query": "metadata['x'] = 'y'"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "query"


def test_injected_faults_speak_stripe_and_a_lost_response_still_commits(
        twin: TwinProcess, client: httpx.Client) -> None:
    set_faults(twin, throttle_rate=1.0, retry_after_seconds=3)
    throttled = client.get("/v1/invoices")
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert throttled.json()["error"]["code"] == "rate_limit"
    set_faults(twin, unavailable_rate=1.0)
    unavailable = client.get("/v1/invoices")
    assert unavailable.status_code == 503 and unavailable.json()["error"]["type"] == "api_error"
    assert unavailable.headers["Stripe-Should-Retry"] == "true"
    set_faults(twin, lose_response_rate=1.0)
    with pytest.raises(httpx.HTTPError):
        post(client, "/v1/customers", {"name": "Globex"}, key="lost-1")
    set_faults(twin)
    replay = post(client, "/v1/customers", {"name": "Globex"}, key="lost-1")
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert [c["id"] for c in objects(twin, "customer")] == [replay.json()["id"]]


def test_an_invoice_goes_draft_open_paid_with_consistent_amounts(twin: TwinProcess,
                                                                client: httpx.Client) -> None:
    cus = customer(client)
    invoice = draft(client, cus, 3000000)
    assert (invoice["status"], invoice["total"], invoice["amount_due"], invoice["number"]) == (
        "draft", 3000000, 3000000, None)
    assert invoice["lines"]["data"][0]["amount"] == 3000000
    opened = post(client, f"/v1/invoices/{invoice['id']}/finalize", {}).json()
    assert opened["status"] == "open" and opened["number"].endswith("-0001")
    assert opened["due_date"] == opened["status_transitions"]["finalized_at"] + 30 * 86400
    again = post(client, f"/v1/invoices/{invoice['id']}/finalize", {})
    assert again.status_code == 400 and again.json()["error"]["code"] == "invoice_not_editable"
    late_item = post(client, "/v1/invoiceitems", {"customer": cus, "invoice": invoice["id"], "amount": "1",
                                                   "currency": "usd"})
    assert late_item.status_code == 400
    part = pay(twin, invoice["id"], amount=1000000)["invoice"]
    assert (part["status"], part["amount_paid"], part["amount_remaining"]) == ("open", 1000000, 2000000)
    settled = pay(twin, invoice["id"])
    assert settled["invoice"]["status"] == "paid" and settled["invoice"]["amount_remaining"] == 0
    assert [e["type"] for e in settled["events"]] == ["invoice.payment_succeeded", "invoice.paid"]
    declined = post(client, f"/v1/invoices/{finalized(client, cus)['id']}/pay", {})
    assert declined.status_code == 402 and declined.json()["error"]["type"] == "card_error"


def test_credit_notes_take_what_is_due_first_and_must_name_the_rest(twin: TwinProcess,
                                                                   client: httpx.Client) -> None:
    cus = customer(client)
    invoice = finalized(client, cus, 3000000)
    pay(twin, invoice["id"], amount=2500000)  # 5000.00 still due
    unbalanced = post(client, "/v1/credit_notes", {"invoice": invoice["id"], "amount": "1000000"})
    assert unbalanced.status_code == 400 and unbalanced.json()["error"]["param"] == "out_of_band_amount"
    note = post(client, "/v1/credit_notes", {"invoice": invoice["id"], "amount": "1000000",
                                             "credit_amount": "500000"}).json()
    assert (note["status"], note["pre_payment_amount"], note["post_payment_amount"], note["type"]) == (
        "issued", 500000, 500000, "mixed")
    credited = client.get(f"/v1/invoices/{invoice['id']}").json()
    assert (credited["status"], credited["amount_remaining"], credited["post_payment_credit_notes_amount"]) \
        == ("paid", 0, 500000)
    assert client.get(f"/v1/customers/{cus}").json()["balance"] == -500000
    too_much = post(client, "/v1/credit_notes", {"invoice": invoice["id"], "amount": "2500000",
                                                 "out_of_band_amount": "2500000"})
    assert too_much.status_code == 400 and too_much.json()["error"]["param"] == "amount"
    next_invoice = finalized(client, cus, 800000)  # the customer's credit balance is applied
    assert (next_invoice["starting_balance"], next_invoice["amount_due"]) == (-500000, 300000)
    assert [e["type"] for e in control(twin, "GET", "/_twin/events")] == [
        "invoice.finalized", "invoice.payment_succeeded", "credit_note.created", "invoice.paid",
        "invoice.finalized"]
