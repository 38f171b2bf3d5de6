"""The SAP twin speaks S/4HANA's OData v2: service paths, Basic auth, the CSRF token and session
cookie, `{"d": …}` bodies with `/Date(ms)/` and decimals as strings, query options, ETags,
`$batch`, error bodies, and the shared fault injection; checked with plain HTTP against the
running twin."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from handoff.connectors.sap.odata import BatchRequest, batch_body, parse_batch_answer
from handoff.connectors.twin_process import TwinProcess
from tests.connectors.sap_support import (
    BILLING,
    BP,
    OPEN_ITEMS,
    PROJECTS,
    api,
    bill,
    cancel,
    control,
    fresh,
    pay,
    set_faults,
    set_twin,
    summary,
    twin_records,
)

PARTNER = {"BusinessPartnerCategory": "2", "BusinessPartnerGrouping": "BP02", "OrganizationBPName1": "Acme",
           "BusinessPartnerIDByExtSystem": "HO-C-1",
           "to_BusinessPartnerRole": [{"BusinessPartnerRole": "FLCU01"}],
           "to_Customer": {"to_CustomerCompany": [{"CompanyCode": "1710",
                                                   "ReconciliationAccount": "12100000"}],
                           "to_CustomerSalesArea": [{"SalesOrganization": "1710", "DistributionChannel": "10",
                                                     "Division": "00", "Currency": "USD"}]}}


@pytest.fixture
def twin(sap_twin: TwinProcess) -> TwinProcess:
    return fresh(sap_twin)  # type: ignore[return-value]


class Session:
    """A client holding the CSRF token and cookies, as a well-behaved consumer does."""

    def __init__(self, client: httpx.Client, service: str) -> None:
        self.client, self.service = client, service
        fetched = client.get(f"{service}/", headers={"x-csrf-token": "Fetch"})
        assert fetched.status_code == 200
        self.token = fetched.headers["x-csrf-token"]

    def write(self, method: str, path: str, body: Any = None, **headers: str) -> httpx.Response:
        sent = {"x-csrf-token": self.token, **{k.replace("_", "-"): v for k, v in headers.items()}}
        return self.client.request(method, f"{self.service}/{path}", json=body, headers=sent)


@pytest.fixture
def client(twin: TwinProcess) -> Iterator[httpx.Client]:
    with api(twin) as http:
        yield http


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"code", "message", "innererror"} and error["message"]["lang"] == "en"
    inner = error["innererror"]
    assert len(inner["transactionid"]) == 32 and inner["errordetails"][0]["severity"] == "error"
    return error


def new_partner(session: Session, **changes: Any) -> dict[str, Any]:
    created = session.write("POST", "A_BusinessPartner", PARTNER | changes)
    assert created.status_code == 201, created.text
    return created.json()["d"]


def new_project(session: Session, customer_uuid: str | None = None, **changes: Any) -> httpx.Response:
    body = {"Project": "ho-p-1", "ProjectDescription": "Rollout", "ProjectStartDate": "/Date(1740787200000)/",
            "ProjectEndDate": "/Date(1772323200000)/", "ProjectProfileCode": "YP03",
            "ResponsibleCostCenter": "17101101", "ProfitCenter": "YB600",
            "to_EnterpriseProjectElement": [{"ProjectElement": "ho-p-1.m1", "ProjectElementDescription": "M1",
                                             "WBSElementIsBillingElement": True}]}
    if customer_uuid:
        body["CustomerUUID"] = customer_uuid
    return session.write("POST", "A_EnterpriseProject", body | changes)


# --- auth and CSRF --------------------------------------------------------------------------------------

def test_the_service_document_and_metadata_need_basic_credentials(twin: TwinProcess) -> None:
    with api(twin, password="wrong") as wrong:
        refused = wrong.get(f"{BP}/")
        assert refused.status_code == 401 and "Logon failed" in refused.text
        assert refused.headers["www-authenticate"].startswith('Basic realm="SAP NetWeaver')
    with api(twin) as client:
        assert "A_BusinessPartner" in client.get(f"{BP}/").json()["d"]["EntitySets"]
        metadata = client.get(f"{PROJECTS}/$metadata")
        assert metadata.headers["content-type"].startswith("application/xml")
        assert '<Property Name="Project" Type="Edm.String" MaxLength="24" sap:display-format="UpperCase"' in (
            metadata.text)


def test_a_token_is_fetched_with_a_session_cookie_by_get_or_head(client: httpx.Client) -> None:
    head = client.head(PROJECTS, headers={"x-csrf-token": "Fetch"})
    assert head.status_code == 200 and head.content == b""
    assert head.headers["x-csrf-token"] and "SAP_SESSIONID_SBX_100" in head.headers["set-cookie"]
    again = client.get(f"{PROJECTS}/", headers={"x-csrf-token": "fetch"})
    assert again.headers["x-csrf-token"] == head.headers["x-csrf-token"]  # same session, same token
    assert "x-csrf-token" not in client.get(f"{PROJECTS}/").headers


def test_a_write_needs_the_token_and_its_session_cookie(twin: TwinProcess, client: httpx.Client) -> None:
    without = client.post(f"{BP}/A_BusinessPartner", json=PARTNER)
    assert without.status_code == 403 and without.headers["x-csrf-token"] == "Required"
    assert without.text == "CSRF token validation failed"
    session = Session(client, BP)
    with api(twin) as stranger:  # the token, but not the session it belongs to
        assert stranger.post(f"{BP}/A_BusinessPartner", json=PARTNER,
                             headers={"x-csrf-token": session.token}).status_code == 403
    assert session.write("POST", "A_BusinessPartner", PARTNER).status_code == 201
    control(twin, "POST", "/_twin/sessions/expire")
    assert session.write("POST", "A_BusinessPartner", PARTNER).headers["x-csrf-token"] == "Required"


# --- entities, values, query options ------------------------------------------------------------------

def test_a_partner_is_created_deep_and_read_back_in_odata_json(client: httpx.Client) -> None:
    session = Session(client, BP)
    created = session.write("POST", "A_BusinessPartner", PARTNER)
    assert created.status_code == 201
    partner = created.json()["d"]
    assert created.headers["location"].endswith(f"{BP}/A_BusinessPartner('{partner['BusinessPartner']}')")
    assert created.headers["etag"] == partner["__metadata"]["etag"]
    assert partner["Customer"] == partner["BusinessPartner"]
    assert partner["to_Customer"]["to_CustomerSalesArea"]["results"][0]["Currency"] == "USD"
    read = client.get(f"{BP}/A_BusinessPartner('{partner['BusinessPartner']}')",
                      params={"$expand": "to_Customer/to_CustomerCompany", "$select":
                              "BusinessPartner,CreationDate,to_Customer/Customer"}).json()["d"]
    assert set(read) == {"__metadata", "BusinessPartner", "CreationDate", "to_Customer"}
    assert read["CreationDate"].startswith("/Date(")
    assert read["to_Customer"]["Customer"] == partner["Customer"]
    assert read["__metadata"]["type"] == "API_BUSINESS_PARTNER.A_BusinessPartnerType"


def test_a_project_with_elements_filters_selects_and_counts(client: httpx.Client) -> None:
    session = Session(client, PROJECTS)
    created = new_project(session)
    assert created.status_code == 201, created.text
    project = created.json()["d"]
    assert (project["Project"], project["CompanyCode"], project["ProcessingStatus"]) == (
        "HO-P-1", "1710", "00")
    assert project["to_EnterpriseProjectElement"]["results"][0]["ProjectElement"] == "HO-P-1.M1"
    assert project["__metadata"]["etag"].startswith("W/\"datetimeoffset'")
    assert project["LastChangeDateTime"].endswith("+0000)/")
    found = client.get(f"{PROJECTS}/A_EnterpriseProject", params={
        "$filter": "Project eq 'HO-P-1' and startswith(ProjectDescription,'Roll') eq true",
        "$select": "ProjectUUID,Project", "$inlinecount": "allpages"}).json()["d"]
    assert found["__count"] == "1" and set(found["results"][0]) == {"__metadata", "ProjectUUID", "Project"}
    assert client.get(f"{PROJECTS}/A_EnterpriseProjectElement/$count").text == "1"
    path = f"A_EnterpriseProject(guid'{project['ProjectUUID']}')/to_EnterpriseProjectElement"
    nav = client.get(f"{PROJECTS}/{path}")
    assert nav.json()["d"]["results"][0]["ProjectElementDescription"] == "M1"


def test_top_skip_and_server_paging_with_next_links(twin: TwinProcess, client: httpx.Client) -> None:
    session = Session(client, BP)
    numbers = [new_partner(session, BusinessPartnerIDByExtSystem=f"HO-C-{n}")["BusinessPartner"]
               for n in range(5)]
    page = client.get(f"{BP}/A_BusinessPartner", params={"$top": 2, "$skip": 2}).json()["d"]
    assert [p["BusinessPartner"] for p in page["results"]] == numbers[2:4] and "__next" not in page
    set_twin(twin, server_page_size=2)
    seen, url, pages = [], f"{BP}/A_BusinessPartner?$orderby=BusinessPartner%20desc", 0
    while url:
        body = client.get(url).json()["d"]
        seen += [p["BusinessPartner"] for p in body["results"]]
        url, pages = body.get("__next"), pages + 1
    assert (seen, pages) == (numbers[::-1], 3)


def test_values_sap_refuses_name_their_property(client: httpx.Client) -> None:
    session = Session(client, PROJECTS)
    for changes, target in [({"ProjectProfileCode": "ZZ99"}, "ProjectProfileCode"),
                            ({"ProjectDescription": "x" * 61}, "ProjectDescription"),
                            ({"Colour": "red"}, "Colour"), ({"CompanyCode": "1010"}, "CompanyCode"),
                            ({"ProjectStartDate": "2025-03-01"}, "ProjectStartDate")]:
        error = error_of(new_project(session, **changes), 400)
        assert error["innererror"]["errordetails"][0]["target"] == target, changes
    assert new_project(session).status_code == 201
    assert "already exists" in error_of(new_project(session), 400)["message"]["value"]
    partner = Session(client, BP)
    refused = partner.write("POST", "A_BusinessPartner", PARTNER | {"BusinessPartnerGrouping": "ZZZZ"})
    assert error_of(refused, 400)["innererror"]["application"]["service_id"] == "API_BUSINESS_PARTNER"
    bad_decimal = client.get(f"{BILLING}/A_BillingDocument('1')")
    assert error_of(bad_decimal, 404)["message"]["value"] == (
        "Resource not found for segment 'A_BillingDocument'")


def test_updates_need_the_current_etag(twin: TwinProcess, client: httpx.Client) -> None:
    session = Session(client, PROJECTS)
    project = new_project(session).json()["d"]
    path = f"A_EnterpriseProject(guid'{project['ProjectUUID']}')"
    etag = project["__metadata"]["etag"]
    assert error_of(session.write("PATCH", path, {"ProjectDescription": "A"}), 428)
    changed = session.write("PATCH", path, {"ProjectDescription": "A"}, If_Match=etag)
    assert changed.status_code == 204 and changed.headers["etag"] != etag
    assert error_of(session.write("PATCH", path, {"ProjectDescription": "B"}, If_Match=etag), 412)
    assert session.write("MERGE", path, {"ProjectDescription": "C"}, If_Match="*").status_code == 204
    set_twin(twin, edit_before_next_write=True)  # someone saves it in SAP before this write lands
    current = client.get(f"{PROJECTS}/{path}").headers["etag"]
    assert error_of(session.write("PATCH", path, {"ProjectDescription": "D"}, If_Match=current), 412)
    record = client.get(f"{PROJECTS}/{path}").json()["d"]
    assert (record["ProjectDescription"], record["LastChangedByUser"]) == ("C", "CB9980000042")
    assert error_of(session.write("PATCH", path, {"Project": "X"}, If_Match="*"), 400)  # not updatable


def test_the_status_function_import_takes_its_parameters_in_the_url(client: httpx.Client) -> None:
    session = Session(client, PROJECTS)
    project = new_project(session).json()["d"]
    released = session.write("POST", f"ChangeEntProjProcgStatus?ProjectUUID=guid'{project['ProjectUUID']}'"
                             "&ProcessingStatus='10'")
    assert released.status_code == 200 and released.json()["d"]["ProcessingStatus"] == "10"
    element = client.get(f"{PROJECTS}/A_EnterpriseProjectElement").json()["d"]["results"][0]
    assert element["ProcessingStatus"] == "10"
    unknown = session.write("POST", f"ChangeEntProjProcgStatus?ProjectUUID=guid'{project['ProjectUUID']}'"
                            "&ProcessingStatus='77'")
    assert error_of(unknown, 400)["innererror"]["errordetails"][0]["target"] == "ProcessingStatus"


# --- $batch ---------------------------------------------------------------------------------------------

def test_a_change_set_is_applied_whole(twin: TwinProcess, client: httpx.Client) -> None:
    session = Session(client, PROJECTS)
    project = new_project(session).json()["d"]
    path = f"A_EnterpriseProject(guid'{project['ProjectUUID']}')"
    writes = [BatchRequest("PATCH", path, {"Content-Type": "application/json",
                                           "If-Match": project["__metadata"]["etag"]},
                           json.dumps({"ProjectDescription": "Rollout 2"}).encode()),
              BatchRequest("POST", f"{path}/to_EnterpriseProjectElement",
                           {"Content-Type": "application/json"},
                           json.dumps({"ProjectElement": "HO-P-1.M2",
                                       "ProjectElementDescription": "M2"}).encode())]
    content_type, body = batch_body([BatchRequest("GET", "A_EnterpriseProject?$select=Project")], writes)
    answer = session.client.post(f"{PROJECTS}/$batch", content=body,
                                 headers={"Content-Type": content_type, "x-csrf-token": session.token})
    assert answer.status_code == 202 and answer.headers["content-type"].startswith("multipart/mixed")
    parts = parse_batch_answer(answer.headers["content-type"], answer.content)
    assert [p.status for p in parts] == [200, 204, 201]
    assert json.loads(parts[2].body)["d"]["ProjectElement"] == "HO-P-1.M2"
    assert summary(twin)["elements_per_project"] == {"HO-P-1": 2}


def test_a_failing_change_set_answers_once_and_changes_nothing(
    twin: TwinProcess, client: httpx.Client
) -> None:
    session = Session(client, PROJECTS)
    project = new_project(session).json()["d"]
    path = f"A_EnterpriseProject(guid'{project['ProjectUUID']}')"
    writes = [BatchRequest("PATCH", path, {"If-Match": "*"}, b'{"ProjectDescription": "Changed"}'),
              BatchRequest("PATCH", path, {"If-Match": 'W/"stale"'}, b'{"ProjectDescription": "Again"}')]
    content_type, body = batch_body([], writes)
    answer = session.client.post(f"{PROJECTS}/$batch", content=body,
                                 headers={"Content-Type": content_type, "x-csrf-token": session.token})
    [part] = parse_batch_answer(answer.headers["content-type"], answer.content)
    assert part.status == 412 and "error" in json.loads(part.body)
    assert twin_records(twin, "A_EnterpriseProject")[0]["ProjectDescription"] == "Rollout"


# --- billing documents (twin-only controls) ----------------------------------------------------------------

def test_billing_documents_and_their_open_items_follow_payments_and_cancellation(
    twin: TwinProcess, client: httpx.Client
) -> None:
    partner = new_partner(Session(client, BP))
    assert new_project(Session(client, PROJECTS), partner["BusinessPartnerUUID"]).status_code == 201
    document = bill(twin, "HO-P-1", "1000.00", tax_amount="190.00", wbs_element="HO-P-1.M1",
                    billing_date="2025-03-10")
    number = document["BillingDocument"]
    read = client.get(f"{BILLING}/A_BillingDocument('{number}')", params={"$expand": "to_Item"}).json()["d"]
    assert (read["TotalGrossAmount"], read["TransactionCurrency"], read["SoldToParty"]) == (
        "1190.000", "USD", partner["Customer"])
    assert read["to_Item"]["results"][0]["WBSElement"] == "HO-P-1.M1"
    assert read["BillingDocumentDate"] == "/Date(1741564800000)/"
    items = f"{OPEN_ITEMS}/A_OperationalAcctgDocItemCube"
    own = client.get(items, params={"$filter": f"AccountingDocument eq '{number}'"})
    [open_item] = own.json()["d"]["results"]
    assert (open_item["IsCleared"], open_item["AmountInTransactionCurrency"]) == (False, "1190.000")
    pay(twin, number, "190.00", on="2025-04-01")
    residual = client.get(items, params={"$filter": f"InvoiceReference eq '{number}'"}).json()["d"]["results"]
    assert [(r["AmountInTransactionCurrency"], r["IsCleared"]) for r in residual] == [("1000.000", False)]
    cancellation = cancel(twin, number)
    assert (cancellation["SDDocumentCategory"], cancellation["CancelledBillingDocument"]) == ("N", number)
    assert client.get(f"{BILLING}/A_BillingDocument('{number}')").json()["d"]["BillingDocumentIsCancelled"]
    assert all(i["IsCleared"] for i in twin_records(twin, "A_OperationalAcctgDocItemCube"))


def test_read_only_sets_refuse_writes(client: httpx.Client) -> None:
    session = Session(client, BILLING)
    assert error_of(session.write("POST", "A_BillingDocument", {"BillingDocument": "1"}), 405)


# --- faults ---------------------------------------------------------------------------------------------

def test_injected_throttling_and_maintenance(twin: TwinProcess, client: httpx.Client) -> None:
    set_faults(twin, throttle_rate=1.0, retry_after_seconds=7)
    throttled = client.get(f"{BP}/A_BusinessPartner")
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "7"
    assert throttled.json()["fault"]["detail"]["errorcode"] == "policies.ratelimit.QuotaViolation"
    set_faults(twin, maintenance_seconds=30)
    down = client.get(f"{BP}/A_BusinessPartner")
    assert down.status_code == 503 and "maintenance" in down.text and int(down.headers["retry-after"]) >= 29
