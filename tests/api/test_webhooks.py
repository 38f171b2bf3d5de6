"""Vendor webhooks through the real ASGI app, on a real database: HubSpot signatures (signed
here with HubSpot's own SDK), Salesforce Outbound Messages and CDC events (records read from
the Salesforce twin)."""

from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from hubspot.utils.signature import Signature

from handoff.api import create_app
from handoff.connectors.salesforce import SalesforceConnector
from handoff.connectors.twin_process import TwinProcess
from handoff.reconcile.runs import Systems
from handoff.store.tables import inbox_events, intake_rejections, opportunities
from handoff.webhooks.salesforce import ACK
from tests.connectors.salesforce_helpers import sdk, seed_account
from tests.factories import customer_data, opportunity_data

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
ORG = "00D5e000000KQ2eEAG"
BASE = "http://handoff"
HUBSPOT_URI = f"{BASE}/webhooks/hubspot"


class HubSpotRecords:
    """A test double for the CRM read HubSpot webhooks trigger (the read is not under test):
    answers with canonical data as the HubSpot connector would, counting the reads."""

    system = "hubspot"

    def __init__(self, **overrides: Any) -> None:
        self.overrides, self.reads = overrides, []

    def opportunity_event_data(self, object_id: str) -> dict[str, Any]:
        self.reads.append(object_id)
        return opportunity_data(object_id, account_id="202", **self.overrides.get(object_id, {}))

    def customer_event_data(self, object_id: str) -> dict[str, Any]:
        self.reads.append(object_id)
        return customer_data(object_id)


@pytest.fixture(autouse=True)
def webhook_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HANDOFF_HUBSPOT_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("HANDOFF_SALESFORCE_ORGANIZATION_ID", ORG)
    monkeypatch.delenv("HANDOFF_WEBHOOK_BASE_URL", raising=False)


def client_for(db, crm: object | None = None) -> httpx.AsyncClient:
    systems = Systems(crm=crm, erp=None, approval_gates=()) if crm is not None else None
    app = create_app(db, tokens={}, systems=systems)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)


@pytest.fixture
def records() -> HubSpotRecords:
    return HubSpotRecords()


@pytest.fixture
def client(db, records):
    return client_for(db, records)


def hubspot_event(event_id: int = 802835955, object_id: int = 101,
                  kind: str = "deal.propertyChange", **extra: Any) -> dict[str, Any]:
    event = {"eventId": event_id, "subscriptionId": 92894, "portalId": 5799819, "appId": 186886,
             "occurredAt": 1793523600000, "subscriptionType": kind, "attemptNumber": 0,
             "objectId": object_id, "changeSource": "CRM_UI"}
    if kind.endswith("propertyChange"):
        event |= {"propertyName": "dealstage", "propertyValue": "closedwon"}
    return event | extra


def now_ms(offset_seconds: float = 0) -> str:
    return str(int((time.time() + offset_seconds) * 1000))


async def post_hubspot(client: httpx.AsyncClient, events: Any, *, secret: str = SECRET,
                       timestamp: str | None = None, sent: bytes | None = None,
                       headers: dict[str, str] | None = None) -> httpx.Response:
    """Signed as HubSpot signs (its SDK's v3), then `sent` (the body on the wire) if given."""
    body = json.dumps(events).encode()
    timestamp = timestamp or now_ms()
    signature = Signature.get_signature(secret, body.decode(), "v3", HUBSPOT_URI, "POST", timestamp)
    signed = {"content-type": "application/json", "X-HubSpot-Signature-v3": signature,
              "X-HubSpot-Request-Timestamp": timestamp}
    return await client.post("/webhooks/hubspot", content=sent if sent is not None else body,
                             headers=signed | (headers or {}))


def inbox(db, source: str) -> list[Any]:
    with db.reading() as conn:
        return conn.execute(sa.select(inbox_events).where(inbox_events.c.source == source)
                            .order_by(inbox_events.c.event_id)).all()


def rejections(db) -> list[Any]:
    with db.reading() as conn:
        return conn.execute(sa.select(intake_rejections).order_by(intake_rejections.c.id)).all()


def held_opportunity(db, opp_id: str) -> dict[str, Any] | None:
    with db.reading() as conn:
        return conn.execute(sa.select(opportunities.c.data)
                            .where(opportunities.c.id == opp_id)).scalar()


def untouched(db) -> bool:
    with db.reading() as conn:
        return (conn.execute(sa.select(sa.func.count()).select_from(inbox_events)).scalar() == 0
                and conn.execute(sa.select(sa.func.count()).select_from(opportunities)).scalar() == 0)


# --- HubSpot -------------------------------------------------------------------------------------

@pytest.mark.anyio
async def test_signed_hubspot_events_become_full_canonical_events(client, db, records) -> None:
    events = [hubspot_event(1, 101), hubspot_event(2, 202, "company.creation"),
              hubspot_event(3, 101, "deal.propertyChange", propertyName="amount"),
              hubspot_event(4, 303, "deal.deletion"), hubspot_event(5, 404, "contact.creation")]
    response = await post_hubspot(client, events)
    assert response.status_code == 200, response.text
    summary = response.json()
    assert [(a["delivery"], a["outcome"]) for a in summary["accepted"]] == [
        ("1:101", "applied"), ("2:202", "applied"), ("3:101", "unchanged")]
    assert [i["delivery"] for i in summary["ignored"]] == ["4:303", "5:404"]
    assert summary["rejected"] == []
    assert records.reads == ["101", "202"]  # each record read once, however many events name it
    rows = inbox(db, "/webhooks/hubspot")
    assert [r.event_id for r in rows] == ["1:101@2026-11-01T09:00:00Z", "2:202@2026-11-01T09:00:00Z",
                                          "3:101@2026-11-01T09:00:00Z"]
    assert [r.type for r in rows] == ["handoff.opportunity.changed", "handoff.customer.changed",
                                      "handoff.opportunity.changed"]
    assert held_opportunity(db, "101")["amount"] == "120000.00"


@pytest.mark.anyio
@pytest.mark.parametrize("case", ["wrong secret", "no signature", "no timestamp",
                                  "body changed after signing", "timestamp changed after signing",
                                  "signed 6 minutes ago", "signed 6 minutes ahead"])
async def test_a_webhook_not_signed_now_by_hubspot_is_refused_and_changes_nothing(
        client, db, records, case: str) -> None:
    events = [hubspot_event()]
    kwargs: dict[str, Any] = {
        "wrong secret": {"secret": "not-the-secret"},
        "no signature": {"headers": {"X-HubSpot-Signature-v3": ""}},
        "no timestamp": {"headers": {"X-HubSpot-Request-Timestamp": ""}},
        "body changed after signing": {"sent": json.dumps([hubspot_event(object_id=999)]).encode()},
        "timestamp changed after signing": {"headers": {"X-HubSpot-Request-Timestamp": now_ms(1)}},
        "signed 6 minutes ago": {"timestamp": now_ms(-360)},
        "signed 6 minutes ahead": {"timestamp": now_ms(360)},
    }[case]
    response = await post_hubspot(client, events, **kwargs)
    assert response.status_code == 401, response.text
    error = response.json()["error"]
    assert error["status"] == 401 and error["message"]
    if case.startswith("signed 6"):
        assert "replayed or stale" in error["message"]
    assert untouched(db) and records.reads == []
    [refusal] = rejections(db)
    assert (refusal.status_code, refusal.source) == (401, "/webhooks/hubspot")


@pytest.mark.anyio
async def test_a_hubspot_retry_is_one_inbox_row(client, db) -> None:
    first = await post_hubspot(client, [hubspot_event(attemptNumber=0)])
    retry = await post_hubspot(client, [hubspot_event(attemptNumber=1)])
    assert first.json()["accepted"][0]["outcome"] == "applied"
    assert retry.json()["accepted"][0]["outcome"] == "duplicate"
    [row] = inbox(db, "/webhooks/hubspot")
    assert row.deliveries == 2


@pytest.mark.anyio
async def test_a_record_handoff_refuses_does_not_hold_back_the_others(db) -> None:
    records = HubSpotRecords(**{"102": {"currency": "EURO"}})
    response = await post_hubspot(client_for(db, records), [hubspot_event(1, 101), hubspot_event(2, 102)])
    assert response.status_code == 200
    summary = response.json()
    assert [a["delivery"] for a in summary["accepted"]] == ["1:101"]
    [refused] = summary["rejected"]
    assert (refused["delivery"], refused["status"], refused["field"]) == ("2:102", 422, "data.currency")
    assert [r.status_code for r in rejections(db)] == [422]


@pytest.mark.anyio
async def test_hubspot_without_a_reader_is_503_not_an_incomplete_event(db) -> None:
    response = await post_hubspot(client_for(db), [hubspot_event()])
    assert response.status_code == 503
    assert "reader" in response.json()["error"]["message"]
    assert untouched(db)


@pytest.mark.anyio
async def test_webhooks_without_their_setting_are_not_offered(db, records, monkeypatch) -> None:
    monkeypatch.delenv("HANDOFF_HUBSPOT_CLIENT_SECRET")
    monkeypatch.delenv("HANDOFF_SALESFORCE_ORGANIZATION_ID")
    client = client_for(db, records)
    response = await post_hubspot(client, [hubspot_event()])
    assert response.status_code == 404
    assert "HANDOFF_HUBSPOT_CLIENT_SECRET" in response.json()["error"]["message"]
    response = await post_salesforce(client, outbound_message(OPPORTUNITY_FIELDS))
    assert response.status_code == 404
    assert "HANDOFF_SALESFORCE_ORGANIZATION_ID" in response.json()["error"]["message"]
    assert untouched(db)


@pytest.mark.anyio
@pytest.mark.parametrize("body, field", [
    ({"eventId": 1}, None),
    ([{"eventId": 1, "subscriptionType": "deal.creation"}], "[0].objectId"),
    ([hubspot_event(), "nope"], "[1]"),
])
async def test_a_malformed_hubspot_body_is_400(client, db, body, field) -> None:
    response = await post_hubspot(client, body)
    assert response.status_code == 400
    assert response.json()["error"]["field"] == field
    assert untouched(db)


@pytest.mark.anyio
async def test_the_signature_covers_the_query_as_hubspot_sent_it(client, db) -> None:
    body = json.dumps([hubspot_event()]).encode()
    timestamp = now_ms()
    uri = f"{HUBSPOT_URI}?app=a:b"  # HubSpot decodes %3A before signing
    signature = Signature.get_signature(SECRET, body.decode(), "v3", uri, "POST", timestamp)
    response = await client.post("/webhooks/hubspot?app=a%3Ab", content=body, headers={
        "content-type": "application/json", "X-HubSpot-Signature-v3": signature,
        "X-HubSpot-Request-Timestamp": timestamp})
    assert response.status_code == 200, response.text


# --- Salesforce Outbound Messages ------------------------------------------------------------------

OPPORTUNITY_FIELDS = {
    "Id": "006000000000001AAA", "Name": "Acme rollout", "AccountId": "001000000000001AAA",
    "StageName": "Closed Won", "IsWon": "true", "Amount": "1234567.89", "CurrencyIsoCode": "USD",
    "CloseDate": "2026-11-01", "Billing_Method__c": "Fixed Fee", "Contract_Status__c": "Approved",
    "SOW_Status__c": "Approved", "Legal_Entity__c": "US01", "OwnerId": "005000000000001AAA",
    "LastModifiedById": "005000000000002AAA", "SystemModstamp": "2026-11-01T09:00:00.000Z",
}


def outbound_message(*records: dict[str, str | None], organization: str = ORG,
                     notification_ids: tuple[str, ...] = ("04l5e00000Gx7QzAAJ",),
                     sobject_type: str = "Opportunity") -> bytes:
    notifications = ""
    for note_id, record in zip(notification_ids, records, strict=True):
        fields = "".join(f'<sf:{k} xsi:nil="true"/>' if v is None else f"<sf:{k}>{v}</sf:{k}>"
                         for k, v in record.items())
        notifications += (f"<Notification><Id>{note_id}</Id>"
                          f'<sObject xsi:type="sf:{sobject_type}" '
                          f'xmlns:sf="urn:sobject.enterprise.soap.sforce.com">{fields}</sObject>'
                          "</Notification>")
    return ('<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
            '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
            f"<OrganizationId>{organization}</OrganizationId><ActionId>04k5e000000CaRkAAK</ActionId>"
            '<SessionId xsi:nil="true"/>'
            "<EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/59.0/00D5e000000KQ2e"
            "</EnterpriseUrl><PartnerUrl>https://example.my.salesforce.com/services/Soap/u/59.0/"
            f"00D5e000000KQ2e</PartnerUrl>{notifications}</notifications>"
            "</soapenv:Body></soapenv:Envelope>").encode()


async def post_salesforce(client: httpx.AsyncClient, body: bytes,
                          content_type: str = "text/xml; charset=utf-8") -> httpx.Response:
    return await client.post("/webhooks/salesforce", content=body,
                             headers={"content-type": content_type, "SOAPAction": '""'})


@pytest.mark.anyio
async def test_an_outbound_message_is_acknowledged_and_its_opportunity_taken(client, db) -> None:
    message = outbound_message(OPPORTUNITY_FIELDS | {"Description": None})
    response = await post_salesforce(client, message)
    assert response.status_code == 200, response.text
    assert response.content == ACK
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    held = held_opportunity(db, "006000000000001AAA")
    assert Decimal(held["amount"]) == Decimal("1234567.89") and held["amount"] == "1234567.89"
    assert (held["is_won"], held["billing_method"], held["contract_status"], held["description"]) == (
        True, "fixed_fee", "approved", None)
    [row] = inbox(db, "/webhooks/salesforce")
    assert row.event_id == "04l5e00000Gx7QzAAJ@2026-11-01T09:00:00.000Z"
    again = await post_salesforce(client, message)  # Salesforce delivers more than once
    assert again.content == ACK
    [row] = inbox(db, "/webhooks/salesforce")
    assert row.deliveries == 2


@pytest.mark.anyio
async def test_an_outbound_message_from_another_org_is_refused(client, db) -> None:
    response = await post_salesforce(client, outbound_message(OPPORTUNITY_FIELDS,
                                                              organization="00D000000000001AAA"))
    assert response.status_code == 403
    assert response.json()["error"]["field"] == "OrganizationId"
    assert untouched(db)
    assert [(r.status_code, r.source) for r in rejections(db)] == [(403, "/webhooks/salesforce")]


@pytest.mark.anyio
async def test_the_15_character_org_id_may_be_configured(db, records, monkeypatch) -> None:
    monkeypatch.setenv("HANDOFF_SALESFORCE_ORGANIZATION_ID", ORG[:15])
    response = await post_salesforce(client_for(db, records), outbound_message(OPPORTUNITY_FIELDS))
    assert response.content == ACK


@pytest.mark.anyio
@pytest.mark.parametrize("body, problem", [
    (b"<soapenv:Envelope><unclosed></soapenv:Envelope>", "not well-formed XML"),
    (b"", "not well-formed XML"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "DOCTYPE"),
    (b"<x/>", "not a SOAP 1.1 envelope"),
    (b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body/></e:Envelope>',
     "not a Salesforce Outbound Message"),
])
async def test_malformed_xml_is_400_naming_the_problem(client, db, body, problem) -> None:
    response = await post_salesforce(client, body)
    assert response.status_code == 400
    assert problem in response.json()["error"]["message"]
    assert untouched(db)


@pytest.mark.anyio
async def test_a_bad_field_value_is_400_naming_it(client, db) -> None:
    response = await post_salesforce(client, outbound_message(OPPORTUNITY_FIELDS | {"IsWon": "yes"}))
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "Notification[0].IsWon"
    assert untouched(db)


@pytest.mark.anyio
async def test_a_notification_without_its_version_needs_a_reader(db) -> None:
    fields = {k: v for k, v in OPPORTUNITY_FIELDS.items() if k != "SystemModstamp"}
    response = await post_salesforce(client_for(db), outbound_message(fields))
    assert response.status_code == 503
    assert "SystemModstamp" in response.json()["error"]["message"]
    assert untouched(db)


@pytest.mark.anyio
async def test_other_content_types_and_systems_are_refused(client, db) -> None:
    assert (await post_salesforce(client, b"x", "text/plain")).status_code == 415
    response = await client.post("/webhooks/zendesk", content=b"{}")
    assert response.status_code == 404
    assert response.json()["error"]["message"].startswith("no webhook for system 'zendesk'")
    assert untouched(db)


# --- Salesforce Change Data Capture, records read from the twin -------------------------------------

def cdc_message(entity: str, record_ids: list[str], change_type: str = "UPDATE") -> dict[str, Any]:
    return {"data": {"schema": "Xl9ZzvpsADnnGK0pBzsBDA", "event": {"replayId": 12345},
                     "payload": {"ChangeEventHeader": {
                         "entityName": entity, "recordIds": record_ids, "changeType": change_type,
                         "changedFields": ["StageName", "LastModifiedDate"],
                         "transactionKey": "000033a1-d3a5-4c27-b1e2-5bd3d2b8d4a1", "sequenceNumber": 1,
                         "commitTimestamp": 1793523600000, "commitUser": "005000000000001AAA",
                         "commitNumber": 10969661498390},
                         "StageName": "Closed Won"}},
            "channel": f"/data/{entity}ChangeEvent"}


@pytest.mark.anyio
async def test_a_cdc_event_reads_the_record_from_salesforce(db, twin: TwinProcess,
                                                            crm: SalesforceConnector) -> None:
    sf = sdk(twin)
    account = seed_account(sf, Validation_Status__c="Valid", Tax_Jurisdiction__c="US-CA")
    opp = sf.Opportunity.create({
        "Name": "Acme rollout", "AccountId": account, "StageName": "Closed Won",
        "CloseDate": "2026-12-31", "Amount": 98765.43, "Billing_Method__c": "Fixed Fee",
        "Contract_Status__c": "Approved", "SOW_Status__c": "Approved"})["id"]
    client = client_for(db, crm)
    body = [cdc_message("Opportunity", [opp]), cdc_message("Account", [account], "CREATE"),
            cdc_message("Opportunity", ["006000000000009AAA"], "DELETE")]
    response = await client.post("/webhooks/salesforce", json=body)
    assert response.status_code == 200, response.text
    summary = response.json()
    assert [a["outcome"] for a in summary["accepted"]] == ["applied", "applied"]
    assert len(summary["ignored"]) == 1 and "DELETE" in summary["ignored"][0]["reason"]
    held = held_opportunity(db, opp)
    assert held["amount"] == "98765.43" and held["account_id"] == account and held["is_won"]
    ids = [r.event_id for r in inbox(db, "/webhooks/salesforce")]
    assert all(i.startswith("000033a1-d3a5-4c27-b1e2-5bd3d2b8d4a1:") for i in ids)
    again = await client.post("/webhooks/salesforce", json=body[0])  # a relay's redelivery
    assert again.json()["accepted"][0]["outcome"] == "duplicate"


@pytest.mark.anyio
async def test_a_cdc_event_without_a_header_is_400(client, db) -> None:
    response = await client.post("/webhooks/salesforce", json={"data": {"payload": {"StageName": "x"}}})
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "[0].ChangeEventHeader"
    assert untouched(db)


@pytest.mark.anyio
async def test_openapi_documents_the_webhooks(client) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    hubspot, salesforce = paths["/webhooks/hubspot"]["post"], paths["/webhooks/salesforce"]["post"]
    assert hubspot["summary"] and {"200", "400", "401", "503"} <= set(hubspot["responses"])
    assert {"200", "400", "403", "404", "415"} <= set(salesforce["responses"])
    assert {"text/xml", "application/json"} <= set(salesforce["requestBody"]["content"])
