"""The Business Central twin speaks API v2.0's wire format: paths, status codes, headers, OData
bodies, ETags, paging, error bodies and the rate limit, checked with plain HTTP against the
twin in its own process."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from handoff.connectors import exact_json
from handoff.connectors.twin_process import TwinProcess
from tests.connectors.businesscentral_support import (
    API_PATH,
    COMPANY_ID,
    api,
    fresh,
    pay,
    set_faults,
    set_twin,
    summary,
)

ODATA_JSON = "application/json; odata.metadata=minimal"


@pytest.fixture
def twin(businesscentral_twin: TwinProcess) -> TwinProcess:
    return fresh(businesscentral_twin)  # type: ignore[return-value]


@pytest.fixture
def bc(twin: TwinProcess) -> Iterator[httpx.Client]:
    with api(twin) as client:
        yield client


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith(ODATA_JSON)
    body = exact_json.loads(response.content)
    assert response.headers["Location"].endswith(f"({body['id']})")
    return body


def error_of(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert "CorrelationId:" in body["error"]["message"]
    return body["error"]


def new_customer(bc: httpx.Client, number: str = "HO-C-001A", **fields: Any) -> dict[str, Any]:
    return created(bc.post("customers", json={"number": number, "displayName": "Acme"} | fields))


def new_invoice(bc: httpx.Client, customer_id: str, *prices: str, key: str = "HO-I-006A-M1",
                entity_set: str = "salesInvoices") -> dict[str, Any]:
    date_field = "invoiceDate" if entity_set == "salesInvoices" else "creditMemoDate"
    document = created(bc.post(entity_set, json={"externalDocumentNumber": key, "customerId": customer_id,
                                                 date_field: "2025-03-10"}))
    lines = "salesInvoiceLines" if entity_set == "salesInvoices" else "salesCreditMemoLines"
    for price in prices:
        body = {"lineType": "Item", "lineObjectNumber": "SERVICES", "quantity": 1,
                "unitPrice": Decimal(price)}
        created(bc.post(f"{entity_set}({document['id']})/{lines}", content=exact_json.dumps(body),
                        headers={"Content-Type": "application/json"}))
    return exact_json.loads(bc.get(f"{entity_set}({document['id']})").content)


# --- entities, ETags, keys ----------------------------------------------------------------------

def test_post_creates_and_get_reads_with_an_etag_and_odata_context(bc: httpx.Client) -> None:
    customer = new_customer(bc, currencyCode="EUR")
    assert customer["@odata.etag"].startswith('W/"')
    assert customer["@odata.context"].endswith(f"$metadata#companies({COMPANY_ID})/customers/$entity")
    read = bc.get(f"customers({customer['id']})")
    assert read.status_code == 200 and read.headers["ETag"] == customer["@odata.etag"]
    assert read.json() == customer
    assert (customer["number"], customer["displayName"], customer["currencyCode"], customer["type"]) == (
        "HO-C-001A", "Acme", "EUR", "Company")


def test_code_fields_are_upper_cased_and_a_no_is_held_once(bc: httpx.Client) -> None:
    assert new_customer(bc, "ho-c-001a")["number"] == "HO-C-001A"
    again = error_of(bc.post("customers", json={"number": "HO-C-001A", "displayName": "Other"}), 409)
    assert again["code"] == "Internal_EntityWithSameKeyExists"
    assert "No.='HO-C-001A'" in again["message"]
    assert new_customer(bc, "HO-C-002")["number"] == "HO-C-002"
    assert created(bc.post("customers", json={"displayName": "Numbered by BC"}))["number"] == "C00110"


def test_a_value_longer_than_its_field_is_refused_in_a_write_and_in_a_filter(bc: httpx.Client) -> None:
    long_number = "HO-C-006Ak00000AbCdEfGH"
    error = error_of(bc.post("customers", json={"number": long_number, "displayName": "A"}), 400)
    assert error["code"] == "Application_StringExceededLength"
    assert "The length of the string is 23, but it must be less than or equal to 20" in error["message"]
    error = error_of(bc.get("customers", params={"$filter": f"number eq '{long_number}'"}), 400)
    assert error["code"] == "Application_FilterErrorException"


def test_patch_needs_the_current_etag_or_a_star(bc: httpx.Client) -> None:
    customer = new_customer(bc)
    path = f"customers({customer['id']})"
    missing = error_of(bc.patch(path, json={"displayName": "Acme Ltd"}), 400)
    assert missing["code"] == "BadRequest_InvalidToken"
    updated = bc.patch(path, json={"displayName": "Acme Ltd"}, headers={"If-Match": customer["@odata.etag"]})
    assert updated.status_code == 200 and updated.json()["displayName"] == "Acme Ltd"
    assert updated.json()["@odata.etag"] != customer["@odata.etag"]
    stale = error_of(bc.patch(path, json={"displayName": "X"}, headers={"If-Match": customer["@odata.etag"]}),
                     409)
    assert (stale["code"], stale["message"].split("  ")[0]) == (
        "Request_EntityChanged", "Another user has already changed the record.")
    assert bc.patch(path, json={"email": "ap@acme.test"}, headers={"If-Match": "*"}).status_code == 200
    assert bc.get(path).json()["displayName"] == "Acme Ltd"


def test_a_stale_etag_can_be_played_as_412(twin: TwinProcess, bc: httpx.Client) -> None:
    set_twin(twin, stale_etag_status=412)
    customer = new_customer(bc)
    bc.patch(f"customers({customer['id']})", json={"displayName": "B"}, headers={"If-Match": "*"})
    stale = bc.patch(f"customers({customer['id']})", json={"displayName": "C"},
                     headers={"If-Match": customer["@odata.etag"]})
    assert error_of(stale, 412)["code"] == "Request_EntityChanged"


@pytest.mark.parametrize(
    ("body", "status", "code", "words"),
    [({"number": "HO-C-9", "displayName": "A", "currencyCode": "JPY"}, 400, "Application_DialogException",
      'The "currencyCode" does not match to a Currency.'),
     ({"number": "HO-C-9"}, 400, "Application_DialogException", 'A "displayName" must be provided.'),
     ({"number": "HO-C-9", "displayName": "A", "colour": "red"}, 400, "BadRequest",
      "The property 'colour' does not exist on type 'Microsoft.NAV.customer'."),
     ({"number": "HO-C-9", "displayName": "A", "balanceDue": 5}, 400, "BadRequest_InvalidOperation",
      "is read-only"),
     ({"number": "HO-C-9", "displayName": "A", "creditLimit": "5"}, 400, "BadRequest",
      "Cannot convert the literal '5' to the expected type 'Edm.Decimal'.")],
)
def test_customer_validation_errors_look_like_bc(bc: httpx.Client, body: dict[str, Any], status: int,
                                                 code: str, words: str) -> None:
    error = error_of(bc.post("customers", json=body), status)
    assert error["code"] == code and words in error["message"]


def test_numbers_cannot_be_entered_by_hand_unless_the_series_allows_it(
    twin: TwinProcess, bc: httpx.Client
) -> None:
    set_twin(twin, manual_numbers=False)
    error = error_of(bc.post("customers", json={"number": "HO-C-1", "displayName": "A"}), 400)
    assert "please activate Manual Nos. in No. Series CUST" in error["message"]


def test_projects_hold_a_number_and_a_name(bc: httpx.Client) -> None:
    project = created(bc.post("projects", json={"number": "HO-P-006A", "displayName": "Acme rollout"}))
    assert set(project) == {"@odata.context", "@odata.etag", "id", "number", "displayName",
                            "lastModifiedDateTime"}
    error = error_of(bc.post("projects", json={"number": "HO-P-7", "customerId": project["id"]}), 400)
    assert "The property 'customerId' does not exist on type 'Microsoft.NAV.project'" in error["message"]


# --- lists ---------------------------------------------------------------------------------------

def test_filters_find_by_key_and_by_prefix(bc: httpx.Client) -> None:
    for number in ("HO-C-1", "HO-C-2", "OTHER-1"):
        new_customer(bc, number)
    by_key = bc.get("customers", params={"$filter": "number eq 'ho-c-2'"}).json()["value"]
    assert [c["number"] for c in by_key] == ["HO-C-2"]
    condition = "startswith(number,'HO-C-') and displayName eq 'Acme'"
    by_prefix = bc.get("customers", params={"$filter": condition})
    assert [c["number"] for c in by_prefix.json()["value"]] == ["HO-C-1", "HO-C-2"]
    error = error_of(bc.get("customers", params={"$filter": "colour eq 'red'"}), 400)
    assert "Could not find a property named 'colour'" in error["message"]


def test_lists_page_with_next_links_when_asked_for_a_page_size(bc: httpx.Client) -> None:
    numbers = [new_customer(bc, f"HO-C-{n}")["number"] for n in range(5)]
    seen, url, pages = [], "customers?$filter=startswith(number,'HO-C-')", 0
    while url:
        page = bc.get(url, headers={"Prefer": "odata.maxpagesize=2"})
        assert page.headers["Preference-Applied"] == "odata.maxpagesize=2"
        body = page.json()
        assert len(body["value"]) <= 2 and body["@odata.context"].endswith("/customers")
        seen += [c["number"] for c in body["value"]]
        url = body.get("@odata.nextLink")
        if url:
            assert url.startswith(f"{bc.base_url}".rstrip("/")) and "$skiptoken=" in url
            assert "$filter=startswith(number,'HO-C-')" in url
        pages += 1
    assert (seen, pages) == (numbers, 3)


def test_the_servers_own_page_size_applies_without_a_preference(
    twin: TwinProcess, bc: httpx.Client
) -> None:
    set_twin(twin, max_page_size=3)
    for n in range(4):
        new_customer(bc, f"HO-C-{n}")
    first = bc.get("customers", headers={"Prefer": "odata.maxpagesize=100"}).json()
    assert len(first["value"]) == 3 and "@odata.nextLink" in first
    assert len(bc.get(first["@odata.nextLink"]).json()["value"]) == 1


def test_top_and_skip_take_a_window(bc: httpx.Client) -> None:
    for n in range(5):
        new_customer(bc, f"HO-C-{n}")
    window = bc.get("customers", params={"$top": "2", "$skip": "1", "$select": "number"}).json()
    assert [c for c in window["value"]] == [
        {"@odata.etag": window["value"][0]["@odata.etag"], "number": "HO-C-1"},
        {"@odata.etag": window["value"][1]["@odata.etag"], "number": "HO-C-2"}]
    assert "@odata.nextLink" not in window


def test_the_companies_of_the_environment(twin: TwinProcess) -> None:
    with httpx.Client(base_url=f"{twin.base_url}{API_PATH}/",
                      headers={"Authorization": "Bearer sandbox-token"}) as client:
        companies = client.get("companies").json()["value"]
        assert [c["id"] for c in companies] == [COMPANY_ID]
        unknown = client.get("companies(00000000-0000-0000-0000-000000000001)/customers")
        assert unknown.status_code == 404


def test_reference_data_is_read_only_and_filterable(bc: httpx.Client) -> None:
    [item] = bc.get("items", params={"$filter": "number eq 'services'"}).json()["value"]
    assert (item["number"], item["type"], item["blocked"]) == ("SERVICES", "Service", False)
    assert [c["code"] for c in bc.get("currencies").json()["value"]] == ["EUR", "GBP", "CAD"]
    assert bc.get(f"items({item['id']})").json()["displayName"] == "Consulting services"


# --- sales documents -------------------------------------------------------------------------------

def test_an_invoice_is_drafted_lined_and_posted(bc: httpx.Client) -> None:
    customer = new_customer(bc)
    draft = new_invoice(bc, customer["id"], "12345.67", "0.33")
    assert (draft["status"], draft["number"], draft["dueDate"]) == ("Draft", "S-INV100001", "2025-04-09")
    assert draft["totalAmountIncludingTax"] == draft["remainingAmount"] == Decimal("12346.00")
    assert bc.post(f"salesInvoices({draft['id']})/Microsoft.NAV.post").status_code == 204
    posted = exact_json.loads(bc.get(f"salesInvoices({draft['id']})").content)
    assert (posted["status"], posted["number"], posted["remainingAmount"]) == (
        "Open", "PS-INV103001", Decimal("12346.00"))
    again = error_of(bc.post(f"salesInvoices({draft['id']})/Microsoft.NAV.post"), 400)
    assert again["message"].startswith("The action can be applied to a draft invoice only.")
    line = {"lineType": "Item", "lineObjectNumber": "SERVICES", "quantity": 1}
    assert error_of(bc.post(f"salesInvoices({draft['id']})/salesInvoiceLines", json=line), 400)
    patched = bc.patch(f"salesInvoices({draft['id']})", json={"email": "x@y.z"}, headers={"If-Match": "*"})
    assert "has been posted" in error_of(patched, 400)["message"]
    assert bc.get(f"customers({customer['id']})").json()["balanceDue"] == 12346.0


def test_expand_reads_a_document_with_its_lines(bc: httpx.Client) -> None:
    document = new_invoice(bc, new_customer(bc)["id"], "10", "20")
    found = bc.get("salesInvoices", params={"$filter": "externalDocumentNumber eq 'HO-I-006A-M1'",
                                            "$expand": "salesInvoiceLines"}).json()["value"]
    assert [line["unitPrice"] for line in found[0]["salesInvoiceLines"]] == [10, 20]
    assert [line["sequence"] for line in found[0]["salesInvoiceLines"]] == [10000, 20000]
    assert found[0]["id"] == document["id"]


def test_lines_at_the_top_level_need_their_document(bc: httpx.Client) -> None:
    document = new_invoice(bc, new_customer(bc)["id"], "10")
    error = error_of(bc.get("salesInvoiceLines"), 400)
    assert error["message"].startswith("You must specify an Id or a Document Id to get the lines.")
    line = {"documentId": document["id"], "lineType": "Account", "lineObjectNumber": "40400",
            "quantity": 2, "unitPrice": 2.5, "description": "Travel"}
    assert created(bc.post("salesInvoiceLines", json=line))["amountExcludingTax"] == 5
    lines = bc.get("salesInvoiceLines", params={"$filter": f"documentId eq {document['id']}"}).json()["value"]
    assert [(line["lineType"], line["netAmount"]) for line in lines] == [("Item", 10), ("Account", 5)]
    assert bc.get(f"salesInvoices({document['id']})").json()["totalAmountExcludingTax"] == 15


@pytest.mark.parametrize(
    ("line", "words"),
    [({"lineType": "Item", "lineObjectNumber": "NOPE", "quantity": 1}, "Item does not exist."),
     ({"lineType": "Item", "lineObjectNumber": "TRAVEL", "quantity": 1}, "Blocked check box"),
     ({"lineType": "Account", "lineObjectNumber": "99999", "quantity": 1}, "Account does not exist."),
     ({"lineType": "Item", "lineObjectNumber": "SERVICES", "quantity": -1}, "must not be negative")],
)
def test_line_validation_errors_look_like_bc(bc: httpx.Client, line: dict[str, Any], words: str) -> None:
    document = new_invoice(bc, new_customer(bc)["id"])
    error = error_of(bc.post(f"salesInvoices({document['id']})/salesInvoiceLines", json=line), 400)
    assert error["code"] == "Application_DialogException" and words in error["message"]


@pytest.mark.parametrize(
    ("body", "words"),
    [({}, 'A "customerNumber" or a "customerId" must be provided.'),
     ({"customerNumber": "NOBODY"}, "The sell-to customer cannot be found."),
     ({"customerNumber": "HO-C-001A", "currencyCode": "XYZ"},
      'The "currencyCode" does not match to a Currency.'),
     ({"customerNumber": "HO-C-001A", "number": "X"}, "read-only")],
)
def test_invoice_validation_errors_look_like_bc(bc: httpx.Client, body: dict[str, Any], words: str) -> None:
    new_customer(bc)
    assert words in error_of(bc.post("salesInvoices", json=body), 400)["message"]


def test_posting_needs_something_to_post_and_an_unblocked_customer(bc: httpx.Client) -> None:
    customer = new_customer(bc)
    empty = new_invoice(bc, customer["id"])
    error = error_of(bc.post(f"salesInvoices({empty['id']})/Microsoft.NAV.post"), 400)
    assert error["message"].startswith("There is nothing to post.")
    lined = new_invoice(bc, customer["id"], "5", key="HO-I-2")
    bc.patch(f"customers({customer['id']})", json={"blocked": "Invoice"}, headers={"If-Match": "*"})
    error = error_of(bc.post(f"salesInvoices({lined['id']})/Microsoft.NAV.post"), 400)
    assert "is blocked with type Invoice" in error["message"]


def test_a_payment_lowers_the_remaining_amount_until_the_invoice_is_paid(
    twin: TwinProcess, bc: httpx.Client
) -> None:
    invoice = new_invoice(bc, new_customer(bc)["id"], "100.50")
    bc.post(f"salesInvoices({invoice['id']})/Microsoft.NAV.post")
    assert pay(twin, invoice["id"], "40.25")["remainingAmount"] == Decimal("60.25")
    with twin.control() as client:
        too_much = client.post("/_twin/payments", json={"invoiceId": invoice["id"], "amount": "60.26"})
    assert error_of(too_much, 400)["code"] == "Application_DialogException"
    paid = pay(twin, invoice["id"], "60.25")
    assert (paid["remainingAmount"], paid["status"]) == (0, "Paid")


def test_a_credit_memo_is_drafted_and_posted_in_its_own_series(bc: httpx.Client) -> None:
    memo = new_invoice(bc, new_customer(bc)["id"], "400.10", key="HO-CN-006A-M1",
                       entity_set="salesCreditMemos")
    assert (memo["number"], memo["creditMemoDate"], memo["status"]) == ("S-CR100001", "2025-03-10", "Draft")
    assert "remainingAmount" not in memo
    assert bc.post(f"salesCreditMemos({memo['id']})/Microsoft.NAV.post").status_code == 204
    posted = bc.get(f"salesCreditMemos({memo['id']})").json()
    assert (posted["number"], posted["status"], posted["totalAmountIncludingTax"]) == (
        "PS-CR104001", "Open", 400.1)


def test_a_draft_is_deleted_with_its_lines_and_a_customer_with_documents_is_kept(
    twin: TwinProcess, bc: httpx.Client
) -> None:
    customer = new_customer(bc)
    draft = new_invoice(bc, customer["id"], "1")
    assert error_of(bc.delete(f"customers({customer['id']})"), 400)["code"] == "Application_DialogException"
    assert bc.delete(f"salesInvoices({draft['id']})").status_code == 204
    assert summary(twin)["counts"]["salesInvoiceLines"] == 0
    assert bc.delete(f"customers({customer['id']})").status_code == 204


# --- the edges -------------------------------------------------------------------------------------

def test_a_bad_token_is_refused_with_bcs_authentication_error(twin: TwinProcess) -> None:
    with api(twin, token="expired") as client:
        response = client.get("customers")
    assert error_of(response, 401)["code"] == "Authentication_InvalidCredentials"
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


@pytest.mark.parametrize(("send_retry_after", "header"), [(False, None), (True, "60")])
def test_the_rate_limit_answers_429_with_retry_after_only_when_configured(
    twin: TwinProcess, bc: httpx.Client, send_retry_after: bool, header: str | None
) -> None:
    set_twin(twin, requests_per_window=2, window_seconds=60, send_retry_after=send_retry_after)
    assert [bc.get("customers").status_code for _ in range(2)] == [200, 200]
    refused = bc.get("customers")
    assert error_of(refused, 429)["code"] == "Application_TooManyRequests"
    assert refused.headers.get("Retry-After") == header


def test_injected_faults_speak_bcs_error_body(twin: TwinProcess, bc: httpx.Client) -> None:
    set_faults(twin, throttle_rate=1.0, retry_after_seconds=2)
    throttled = bc.get("customers")
    assert error_of(throttled, 429)["code"] == "Application_TooManyRequests"
    assert throttled.headers["Retry-After"] == "2"
    set_faults(twin, unavailable_rate=1.0)
    assert error_of(bc.get("customers"), 503)["code"] == "Internal_ServerError"


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [("GET", "vendors", 404, "BadRequest_ResourceNotFound"),
     ("PUT", "customers", 405, "BadRequest_MethodNotAllowed"),
     ("GET", "customers(not-a-guid)", 400, "BadRequest_NotFound"),
     ("GET", "customers(00000000-0000-0000-0000-000000000009)", 404, "Internal_RecordNotFound"),
     ("POST", "items", 405, "BadRequest_MethodNotAllowed")],
)
def test_unknown_paths_and_methods_look_like_bc(bc: httpx.Client, method: str, path: str, status: int,
                                                code: str) -> None:
    assert error_of(bc.request(method, path, json={}), status)["code"] == code
