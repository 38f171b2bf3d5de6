"""Dataverse rows ↔ canonical event data, error translation, settings, the $batch wire format
and pacing, without a twin."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from handoff.connectors.dynamics import ColumnNames, DynamicsConnector, DynamicsSettings, batch
from handoff.connectors.dynamics.errors import (
    PreconditionFailed,
    RecordNotFound,
    classify,
    column_named,
    read_body,
    translate,
)
from handoff.connectors.dynamics.mapping import (
    FORMATTED,
    LOOKUP_TABLE,
    account_columns,
    customer_event_data,
    deal_figures,
    dumps,
    entity_id,
    key_segment,
    loads,
    money_text,
    odata_datetime,
    opportunity_columns,
    opportunity_event_data,
    write_back_fields,
)
from handoff.connectors.pacing import RateGate
from handoff.connectors.ports import BillingSummary, CrmStatusUpdate, DealFigures
from handoff.connectors.salesforce import mapping as salesforce
from handoff.domain import Money, ProvisioningStatus
from handoff.errors import (
    BusinessRuleError,
    ConfigError,
    DataError,
    PermanentError,
    ThrottledError,
    TransientError,
)

EUR_ID, USD_ID = "5a1e0c00-0000-4000-8000-000000000978", "5a1e0c00-0000-4000-8000-000000000840"
CURRENCIES = {EUR_ID: "EUR", USD_ID: "USD"}
ACCOUNT_ID = "a3c1e2d4-0000-4000-8000-000000000001"
OPPORTUNITY = {
    "@odata.etag": 'W/"1000042"', "opportunityid": "0b7f2e10-0000-4000-8000-000000000002",
    "name": "Acme rollout", "_parentaccountid_value": ACCOUNT_ID, "_customerid_value": ACCOUNT_ID,
    "statecode": 1, "statuscode": 3, "statuscode" + FORMATTED: "Won",
    "estimatedvalue": Decimal("1234567.8900"), "_transactioncurrencyid_value": EUR_ID.upper(),
    "estimatedclosedate": "2026-11-26", "handoff_billingmethod": "Fixed Fee",
    "handoff_contractstatus": "approved", "handoff_sowstatus": "Draft", "handoff_legalentity": "Handoff GmbH",
    "_ownerid_value": "75c2…", "description": None, "_modifiedby_value": "9001…",
    "modifiedon": "2026-11-26T10:00:00Z",
}
ACCOUNT = {"accountid": ACCOUNT_ID, "name": "Acme", "_transactioncurrencyid_value": USD_ID,
           "handoff_taxjurisdiction": "US-CA", "handoff_legalentity": "", "handoff_validationstatus": None,
           "modifiedon": "2026-11-26T10:00:00Z"}


# --- Dataverse → canonical -----------------------------------------------------------------------

def test_opportunity_event_data_has_exactly_the_canonical_shape() -> None:
    assert opportunity_event_data(OPPORTUNITY, CURRENCIES) == {
        "id": "0b7f2e10-0000-4000-8000-000000000002", "name": "Acme rollout", "account_id": ACCOUNT_ID,
        "stage": "Won", "is_won": True, "amount": "1234567.89", "currency": "EUR",
        "close_date": "2026-11-26", "billing_method": "fixed_fee", "contract_status": "approved",
        "sow_status": "draft", "legal_entity": "Handoff GmbH", "owner": "75c2…", "description": None,
        "modified_by": "9001…", "version": "2026-11-26T10:00:00.000Z",
    }


def test_the_keys_are_those_of_the_salesforce_mapping() -> None:
    record = {"Id": "006", "SystemModstamp": "2026-11-26T10:00:00.000+0000"}
    assert set(opportunity_event_data(OPPORTUNITY, CURRENCIES)) == set(
        salesforce.opportunity_event_data(record))
    assert set(customer_event_data(ACCOUNT, CURRENCIES)) == set(salesforce.customer_event_data(record))


def test_an_open_opportunity_without_labels_shows_its_status_reason() -> None:
    record = {k: v for k, v in OPPORTUNITY.items() if "@" not in k} | {"statecode": 0, "statuscode": 2}
    data = opportunity_event_data(record, CURRENCIES)
    assert (data["stage"], data["is_won"]) == ("On Hold", False)


def test_choice_columns_are_read_by_their_label() -> None:
    record = OPPORTUNITY | {"handoff_billingmethod": 100000001,
                            "handoff_billingmethod" + FORMATTED: "Time and Materials",
                            "handoff_contractstatus": 100000009}
    data = opportunity_event_data(record, CURRENCIES)
    assert data["billing_method"] == "time_and_materials"
    assert data["contract_status"] == "100000009"  # no label: passes through for validation to name


def test_the_account_is_the_parent_else_an_account_customer() -> None:
    no_parent = OPPORTUNITY | {"_parentaccountid_value": None}
    assert opportunity_event_data(no_parent, CURRENCIES)["account_id"] == ACCOUNT_ID
    contact = no_parent | {"_customerid_value" + LOOKUP_TABLE: "contact"}
    assert opportunity_event_data(contact, CURRENCIES)["account_id"] is None


@pytest.mark.parametrize(("value", "text"), [
    (Decimal("1234567.8900"), "1234567.89"), (Decimal("5000000.0000"), "5000000"),
    (Decimal("0.0000"), "0"), (Decimal("12345678901234567.89"), "12345678901234567.89"),
    (1000, "1000"), (None, None), ("lots", "lots"),
])
def test_amounts_stay_exact_decimal_text(value: object, text: str | None) -> None:
    assert money_text(value) == text


def test_a_currency_the_table_lacks_is_none_and_no_modifiedon_is_a_data_error() -> None:
    assert opportunity_event_data(OPPORTUNITY, {})["currency"] is None
    with pytest.raises(DataError) as exc_info:
        opportunity_event_data(OPPORTUNITY | {"modifiedon": None}, CURRENCIES)
    assert exc_info.value.field == "modifiedon"


def test_customer_event_data_defaults_to_unvalidated_and_empty_is_none() -> None:
    assert customer_event_data(ACCOUNT, CURRENCIES) == {
        "id": ACCOUNT_ID, "name": "Acme", "currency": "USD", "tax_jurisdiction": "US-CA",
        "legal_entity": None, "validation_status": "unvalidated", "version": "2026-11-26T10:00:00.000Z",
    }


def test_column_names_are_the_environments_choice() -> None:
    cols = ColumnNames(amount="totalamount", billing_method="new_billingtype")
    record = OPPORTUNITY | {"totalamount": Decimal("10.50"), "new_billingtype": "milestone"}
    data = opportunity_event_data(record, CURRENCIES, cols)
    assert (data["amount"], data["billing_method"]) == ("10.5", "milestone")


def test_deal_figures_are_exact_decimals() -> None:
    record = OPPORTUNITY | {"handoff_invoicedamount": Decimal("1000.1000"), "handoff_paidamount": 0}
    assert deal_figures(record, CURRENCIES) == DealFigures(
        deal_id=OPPORTUNITY["opportunityid"], currency="EUR", sold_value=Decimal("1234567.89"),
        is_won=True, contract_status="approved", sow_status="draft", invoiced=Decimal("1000.10"),
        paid=Decimal("0"))
    with pytest.raises(DataError) as exc_info:
        deal_figures(record | {"handoff_paidamount": "n/a"}, CURRENCIES)
    assert exc_info.value.field == "handoff_paidamount"


# --- canonical → Dataverse -----------------------------------------------------------------------

def test_write_back_fields_clear_the_project_id_with_null() -> None:
    update = CrmStatusUpdate(OPPORTUNITY["opportunityid"], ProvisioningStatus.PARKED, "waiting for the SOW")
    assert write_back_fields(update) == {
        "handoff_projectid": None, "handoff_status": "parked", "handoff_statusdetail": "waiting for the SOW"}


def test_write_back_fields_send_billing_as_exact_numbers() -> None:
    billing = BillingSummary(Money(Decimal("1234567.8"), "EUR"), Money(Decimal("0"), "EUR"),
                             Money(Decimal("1234567.80"), "EUR"), 12, ("INV/1", "INV/2"))
    update = CrmStatusUpdate("x", ProvisioningStatus.PROVISIONED, "", "PRJ-7", billing)
    fields = write_back_fields(update, ColumnNames(days_overdue="new_dayslate"))
    assert fields["handoff_invoicedamount"] == Decimal("1234567.80")
    assert fields["new_dayslate"] == 12 and fields["handoff_invoicenumbers"] == "INV/1, INV/2"
    assert fields["handoff_billingstatus"].startswith("billed 1234567.80 EUR")
    wire = dumps(fields)
    assert b'"handoff_invoicedamount":1234567.80' in wire and b'"handoff_paidamount":0.00' in wire
    assert loads(wire)["handoff_invoicedamount"] == Decimal("1234567.80")


def test_a_long_detail_is_cut_to_the_column() -> None:
    update = CrmStatusUpdate("x", ProvisioningStatus.BLOCKED, "x" * 5000)
    assert len(write_back_fields(update)["handoff_statusdetail"]) == 2000


def test_opportunity_columns_are_the_reverse_of_event_data() -> None:
    data = opportunity_event_data(OPPORTUNITY, CURRENCIES)
    columns = opportunity_columns(data, {"EUR": EUR_ID})
    assert columns["estimatedvalue"] == Decimal("1234567.89")
    assert columns["estimatedclosedate"] == "2026-11-26"
    assert columns["parentaccountid@odata.bind"] == f"/accounts({ACCOUNT_ID})"
    assert columns["transactioncurrencyid@odata.bind"] == f"/transactioncurrencies({EUR_ID})"
    assert "stage" not in columns and "is_won" not in columns
    assert opportunity_columns({"description": None}) == {"description": None}


def test_a_float_amount_a_bad_account_or_an_unknown_currency_is_refused() -> None:
    for data, field in (({"amount": 0.1}, "amount"), ({"account_id": "nope"}, "account_id"),
                        ({"currency": "XTS"}, "currency")):
        with pytest.raises(DataError) as exc_info:
            opportunity_columns(data, {"EUR": EUR_ID})
        assert exc_info.value.field == field
    assert account_columns({"name": "A", "validation_status": "valid"}) == {
        "name": "A", "handoff_validationstatus": "valid"}


def test_addressing_helpers() -> None:
    assert key_segment("handoff_key", "O'Brien & Co") == "handoff_key='O''Brien%20%26%20Co'"
    url = f"https://org.crm.dynamics.com/api/data/v9.2/accounts({ACCOUNT_ID.upper()})"
    assert entity_id(url) == ACCOUNT_ID
    assert entity_id(None) is None
    assert odata_datetime(datetime(2026, 11, 26, 10, 0, 0, 999999, tzinfo=UTC)) == "2026-11-26T10:00:00Z"
    with pytest.raises(ValueError):
        odata_datetime(datetime(2026, 11, 26))


# --- errors -------------------------------------------------------------------------------------

def test_a_bad_token_is_permanent_and_says_what_to_check() -> None:
    error = classify(401, {}, {"WWW-Authenticate": 'Bearer error="invalid_token", '
                                                   'error_description="The access token expired"'})
    assert type(error) is PermanentError
    assert "HANDOFF_DYNAMICS_ACCESS_TOKEN" in str(error) and "expired" in str(error)


@pytest.mark.parametrize(("code", "headers", "wait"), [
    ("0x80072322", {"Retry-After": "17"}, 17.0),
    ("0x80072322", {}, 60.0),
    ("0x80072321", {}, 60.0),
    ("0x80072326", {}, 1.0),
    ("", {}, None),
])
def test_service_protection_waits_as_long_as_dataverse_says(
    code: str, headers: dict, wait: float | None
) -> None:
    error = classify(429, {"code": code, "message": "Number of requests exceeded the limit"}, headers)
    assert isinstance(error, ThrottledError) and error.retry_after == wait


@pytest.mark.parametrize(("message", "column"), [
    ("Could not find a property named 'handoff_state' on type 'Microsoft.Dynamics.CRM.opportunity'.",
     "handoff_state"),
    ("An error occurred while validating input parameters: Microsoft.OData.ODataException: The property "
     "'handoff_state' does not exist on type 'Microsoft.Dynamics.CRM.opportunity'.", "handoff_state"),
    ("A validation error occurred.  The length of the 'handoff_state' attribute of the 'opportunity' "
     "entity exceeded the maximum allowed length of '100'.", "handoff_state"),
    ("A validation error occurred.  The value 7 of 'handoff_state' on record of type 'opportunity' is "
     "outside the valid range.", "handoff_state"),
    ("An undeclared property 'handoff_state' which only has property annotations", "handoff_state"),
])
def test_a_validation_error_names_the_column(message: str, column: str) -> None:
    error = classify(400, {"code": "0x0", "message": message})
    assert isinstance(error, DataError) and error.field == column
    assert column_named(message) == column


def test_a_bad_request_naming_no_column() -> None:
    assert type(classify(400, {"code": "0x0", "message": "Cannot convert the literal 'x'"})) is PermanentError
    validation = classify(400, {"code": "0x80044331", "message": "A validation error occurred."})
    assert isinstance(validation, DataError) and validation.field is None


@pytest.mark.parametrize(("status", "code", "kind"), [
    (404, "0x80040217", RecordNotFound), (404, "0x8006088a", RecordNotFound),
    (412, "0x80060892", PreconditionFailed), (412, "0x80060882", PreconditionFailed),
    (403, "0x80040220", PermanentError), (409, "", BusinessRuleError), (500, "", TransientError),
    (503, "", TransientError), (504, "", TransientError), (418, "", PermanentError),
])
def test_statuses_and_codes(status: int, code: str, kind: type) -> None:
    assert type(classify(status, {"code": code, "message": "x"})) is kind


def test_error_bodies_are_read_whatever_comes() -> None:
    assert read_body(b'{"error":{"code":"0x0","message":"m"}}') == {"code": "0x0", "message": "m"}
    assert read_body(b"") == {} and read_body(b"<html>Bad gateway</html>") == {
        "message": "<html>Bad gateway</html>"}


def test_transport_failures() -> None:
    request = httpx.Request("GET", "https://org.crm.dynamics.com/api/data/v9.2/accounts")
    assert type(translate(httpx.ConnectError("refused", request=request))) is TransientError
    assert type(translate(httpx.RemoteProtocolError("peer closed", request=request))) is TransientError
    assert type(translate(httpx.ReadTimeout("timed out", request=request))) is TransientError
    tls = httpx.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed", request=request)
    assert "TLS" in str(translate(tls)) and type(translate(tls)) is PermanentError


# --- settings, $batch format and pacing ---------------------------------------------------------

def test_settings_need_a_token_and_an_environment_url_and_hide_the_token() -> None:
    with pytest.raises(ConfigError, match="HANDOFF_DYNAMICS_ACCESS_TOKEN"):
        DynamicsSettings(access_token="", base_url="https://org.crm.dynamics.com")
    settings = DynamicsSettings(access_token="eyJ-secret", base_url="https://org.crm.dynamics.com/")
    assert "secret" not in repr(settings)
    assert settings.api_root == "https://org.crm.dynamics.com/api/data/v9.2"
    for url in ("org.crm.dynamics.com", "https://org.crm.dynamics.com/api/data/v9.2"):
        with pytest.raises(ConfigError, match="base_url"):
            DynamicsSettings(access_token="t", base_url=url)
    with pytest.raises(ConfigError):
        DynamicsSettings(access_token="t", base_url="https://o.crm.dynamics.com", page_size=5001)


def test_column_names_come_from_a_toml_table_and_must_be_logical_names() -> None:
    settings = DynamicsSettings(access_token="t", base_url="https://o.crm.dynamics.com",
                                columns={"status": "new_status"})  # type: ignore[arg-type]
    assert settings.columns.status == "new_status"
    with pytest.raises(ConfigError, match="unknown key"):
        ColumnNames.from_mapping({"colour": "x"})
    with pytest.raises(ConfigError, match="logical name"):
        ColumnNames(status="Handoff Status")


def test_batch_requests_and_responses_round_trip() -> None:
    requests = [batch.Request("PATCH", "/api/data/v9.2/opportunities(1)", {"If-Match": "*"}, b'{"a":1}'),
                [batch.Request("POST", "/api/data/v9.2/accounts", {}, b'{"name":"x"}', "1"),
                 batch.Request("PATCH", "$1", {}, b'{"name":"y"}', "2")]]
    boundary = batch.new_boundary()
    decoded = batch.decode_requests(f"multipart/mixed; boundary={boundary}",
                                    batch.encode_requests(requests, boundary))
    assert decoded[0] == batch.Request("PATCH", "/api/data/v9.2/opportunities(1)", {"if-match": "*"},
                                       b'{"a":1}')
    assert isinstance(decoded[1], list) and [r.content_id for r in decoded[1]] == ["1", "2"]
    answers = [batch.Response(204, {"OData-Version": "4.0"}),
               [batch.Response(400, {"Content-Type": "application/json"}, b'{"error":{}}')]]
    body = batch.encode_responses(answers, "batchresponse_x")
    found = batch.decode_responses('multipart/mixed; boundary="batchresponse_x"', body)
    assert [(r.status, r.body) for r in found] == [(204, b""), (400, b'{"error":{}}')]
    lf_only = body.replace(b"\r\n", b"\n")
    found = batch.decode_responses("multipart/mixed;boundary=batchresponse_x", lf_only)
    assert [r.status for r in found] == [204, 400]
    with pytest.raises(ValueError):
        batch.decode_responses("multipart/mixed; boundary=other", body)


def test_the_rate_gate_sleeps_until_the_oldest_call_leaves_the_window() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    gate = RateGate(3, 300.0, clock=lambda: now[0], sleep=sleep)
    for step in (0.0, 10.0, 10.0):
        now[0] += step
        gate.wait()
    assert slept == []
    gate.wait()  # the 4th call within 300 s waits for the 1st to leave the window
    assert slept == [pytest.approx(280.0)] and now[0] == pytest.approx(400.0)


def test_next_links_are_followed_on_the_configured_environment_only() -> None:
    settings = DynamicsSettings(access_token="t", base_url="https://org.crm.dynamics.com")
    with DynamicsConnector(settings) as crm:
        alias = "https://org.api.crm.dynamics.com/api/data/v9.2/accounts?$select=name&$skiptoken=%3Ccookie"
        assert crm._same_environment(alias) == (
            "https://org.crm.dynamics.com/api/data/v9.2/accounts?$select=name&$skiptoken=%3Ccookie")
        with pytest.raises(PermanentError, match="leaves the Web API"):
            crm._same_environment("https://elsewhere.example/collect?token=1")
