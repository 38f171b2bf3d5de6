"""HubSpot objects ↔ canonical event data, error translation, settings and pacing, without a
twin."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import urllib3

from handoff.connectors.hubspot import HubSpotSettings, PropertyNames
from handoff.connectors.hubspot.errors import (
    ObjectNotFound,
    batch_errors,
    classify,
    property_named,
    translate,
)
from handoff.connectors.hubspot.mapping import (
    customer_event_data,
    deal_figures,
    deal_properties,
    ms_epoch,
    opportunity_event_data,
    primary_company,
    won_stages_from_pipelines,
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

WON = frozenset({"closedwon"})
DEAL = {
    "id": "10000002", "properties": {
        "dealname": "Acme rollout", "amount": "1234567.89", "dealstage": "closedwon",
        "pipeline": "default", "closedate": "2026-11-26T00:00:00.000Z", "deal_currency_code": "EUR",
        "billing_method": "Fixed Fee", "contract_status": "approved", "sow_status": "Draft",
        "legal_entity": "Handoff GmbH", "hubspot_owner_id": "75211", "description": None,
        "hs_updated_by_user_id": "9001", "hs_lastmodifieddate": "2026-11-26T10:00:00.123Z",
        "hs_object_id": "10000002",
    },
}
COMPANY = {"id": "10000001", "properties": {
    "name": "Acme", "billing_currency": "USD", "tax_jurisdiction": "US-CA", "legal_entity": "",
    "validation_status": None, "hs_lastmodifieddate": "1795687200000"}}


def with_properties(record: dict, **changes: object) -> dict:
    return {"id": record["id"], "properties": record["properties"] | changes}


# --- HubSpot → canonical -------------------------------------------------------------------------

def test_opportunity_event_data_has_exactly_the_canonical_shape() -> None:
    assert opportunity_event_data(DEAL, "10000001", WON) == {
        "id": "10000002", "name": "Acme rollout", "account_id": "10000001", "stage": "closedwon",
        "is_won": True, "amount": "1234567.89", "currency": "EUR", "close_date": "2026-11-26",
        "billing_method": "fixed_fee", "contract_status": "approved", "sow_status": "draft",
        "legal_entity": "Handoff GmbH", "owner": "75211", "description": None,
        "modified_by": "9001", "version": "2026-11-26T10:00:00.123Z",
    }


def test_the_keys_are_those_of_the_salesforce_mapping() -> None:
    record = {"Id": "006", "SystemModstamp": "2026-11-26T10:00:00.000+0000"}
    assert set(opportunity_event_data(DEAL, None, WON)) == set(salesforce.opportunity_event_data(record))
    assert set(customer_event_data(COMPANY)) == set(salesforce.customer_event_data(record))


@pytest.mark.parametrize(("amount", "text"), [
    ("1234567.89", "1234567.89"), ("12345678901234567.89", "12345678901234567.89"),
    ("0.1", "0.1"), ("1E+3", "1000"), ("", None), (None, None), ("lots", "lots"),
])
def test_amounts_stay_exact_decimal_text(amount: object, text: str | None) -> None:
    assert opportunity_event_data(with_properties(DEAL, amount=amount), None, WON)["amount"] == text


@pytest.mark.parametrize("closedate", ["2026-11-26T00:00:00.000Z", "2026-11-26T23:59:59Z",
                                        "1795651200000", "2026-11-26"])
def test_close_dates_become_the_utc_day(closedate: str) -> None:
    data = opportunity_event_data(with_properties(DEAL, closedate=closedate), None, WON)
    assert data["close_date"] == "2026-11-26"


def test_versions_are_utc_with_milliseconds_whatever_form_hubspot_sends() -> None:
    data = opportunity_event_data(with_properties(DEAL, hs_lastmodifieddate="2026-11-26T10:00:00Z"),
                                  None, WON)
    assert data["version"] == "2026-11-26T10:00:00.000Z"
    assert customer_event_data(COMPANY)["version"] == "2026-11-26T10:00:00.000Z"  # ms epoch


def test_labels_and_values_map_to_canonical_and_unknown_ones_pass_through() -> None:
    data = opportunity_event_data(with_properties(
        DEAL, billing_method="Time and Materials", contract_status="Barter", dealstage="qualifiedtobuy",
    ), None, WON)
    assert (data["billing_method"], data["contract_status"]) == ("time_and_materials", "Barter")
    assert data["is_won"] is False


def test_customer_event_data_defaults_to_unvalidated_and_empty_is_none() -> None:
    assert customer_event_data(COMPANY) == {
        "id": "10000001", "name": "Acme", "currency": "USD", "tax_jurisdiction": "US-CA",
        "legal_entity": None, "validation_status": "unvalidated",
        "version": "2026-11-26T10:00:00.000Z",
    }


def test_property_names_are_the_portals_choice() -> None:
    props = PropertyNames(billing_method="hs_billing_type", company_currency="currency")
    deal = with_properties(DEAL, hs_billing_type="milestone")
    assert opportunity_event_data(deal, None, WON, props)["billing_method"] == "milestone"
    company = with_properties(COMPANY, currency="GBP")
    assert customer_event_data(company, props)["currency"] == "GBP"


def test_deal_figures_are_exact_decimals() -> None:
    record = with_properties(DEAL, handoff_invoiced_amount="1000.10", handoff_paid_amount="0")
    assert deal_figures(record, WON) == DealFigures(
        deal_id="10000002", currency="EUR", sold_value=Decimal("1234567.89"), is_won=True,
        contract_status="approved", sow_status="draft", invoiced=Decimal("1000.10"),
        paid=Decimal("0"))
    with pytest.raises(DataError) as exc_info:
        deal_figures(with_properties(DEAL, handoff_paid_amount="n/a"), WON)
    assert exc_info.value.field == "handoff_paid_amount"


def test_the_primary_company_wins_else_the_lowest_id() -> None:
    def target(to_id: int, *type_ids: int) -> dict:
        return {"toObjectId": to_id, "associationTypes": [{"typeId": t} for t in type_ids]}

    assert primary_company([target(30, 341), target(40, 5, 341), target(20, 341)]) == "40"
    assert primary_company([target(30, 341), target(20, 341)]) == "20"
    assert primary_company([]) is None


def test_won_stages_are_closed_with_probability_one() -> None:
    pipelines = [{"id": "default", "stages": [
        {"id": "closedwon", "metadata": {"isClosed": "true", "probability": "1.0"}},
        {"id": "closedlost", "metadata": {"isClosed": "true", "probability": "0.0"}},
        {"id": "contractsent", "metadata": {"isClosed": "false", "probability": "0.9"}}]},
        {"id": "renewals", "stages": [{"id": "123", "metadata": {"isClosed": True, "probability": 1}}]}]
    assert won_stages_from_pipelines(pipelines) == {"closedwon", "123"}


# --- canonical → HubSpot -------------------------------------------------------------------------

def test_write_back_fields_clear_the_project_id_with_an_empty_string() -> None:
    update = CrmStatusUpdate("10000002", ProvisioningStatus.PARKED, "waiting for the SOW")
    assert write_back_fields(update) == {
        "handoff_project_id": "", "handoff_status": "parked",
        "handoff_status_detail": "waiting for the SOW",
    }


def test_write_back_fields_show_billing_as_exact_text() -> None:
    billing = BillingSummary(Money(Decimal("1234567.8"), "EUR"), Money(Decimal("0"), "EUR"),
                             Money(Decimal("1234567.80"), "EUR"), 12, ("INV/1", "INV/2"))
    update = CrmStatusUpdate("10000002", ProvisioningStatus.PROVISIONED, "", "PRJ-7", billing)
    fields = write_back_fields(update, PropertyNames(days_overdue="days_late"))
    assert fields["handoff_invoiced_amount"] == "1234567.80"
    assert fields["handoff_paid_amount"] == "0.00"
    assert fields["handoff_open_balance"] == "1234567.80"
    assert fields["days_late"] == "12"
    assert fields["handoff_invoice_numbers"] == "INV/1, INV/2"
    assert fields["handoff_billing_status"].startswith("billed 1234567.80 EUR")
    assert all(isinstance(v, str) for v in fields.values())


def test_deal_properties_are_the_reverse_of_event_data() -> None:
    data = opportunity_event_data(DEAL, "10000001", WON)
    props = deal_properties(data)
    assert "account_id" not in props and props["closedate"] == "1795651200000"
    assert props["amount"] == "1234567.89" and props["billing_method"] == "fixed_fee"
    again = opportunity_event_data(with_properties(DEAL, **props), "10000001", WON)
    assert again == data
    assert deal_properties({"description": None}) == {"description": ""}


def test_a_float_amount_is_refused() -> None:
    with pytest.raises(DataError) as exc_info:
        deal_properties({"amount": 0.1})
    assert exc_info.value.field == "amount"


def test_search_moments_are_milliseconds_and_need_a_timezone() -> None:
    assert ms_epoch(datetime(2026, 11, 26, 10, 0, 0, 123999, tzinfo=UTC)) == 1795687200123
    with pytest.raises(ValueError):
        ms_epoch(datetime(2026, 11, 26))


# --- errors ---------------------------------------------------------------------------------------

INVALID = ('Property values were not valid: [{"isValid":false,"message":"Property \\"credit\\" '
           'does not exist","error":"PROPERTY_DOESNT_EXIST","name":"credit"}]')


def test_a_bad_token_is_permanent_and_says_what_to_check() -> None:
    error = classify(401, {"status": "error", "message": "The OAuth token used to make this call "
                           "expired", "category": "INVALID_AUTHENTICATION", "correlationId": "c-1"})
    assert type(error) is PermanentError
    assert "HANDOFF_HUBSPOT_ACCESS_TOKEN" in str(error) and "c-1" in str(error)


@pytest.mark.parametrize(("headers", "body", "wait"), [
    ({"Retry-After": "7"}, {"policyName": "TEN_SECONDLY_ROLLING"}, 7.0),
    ({"X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}, {"policyName": "TEN_SECONDLY_ROLLING"}, 10.0),
    ({}, {"policyName": "SECONDLY"}, 1.0),
    ({}, {"policyName": "DAILY"}, 3600.0),
    ({}, {}, None),
])
def test_a_429_waits_as_long_as_hubspot_says(headers: dict, body: dict, wait: float | None) -> None:
    error = classify(429, {"status": "error", "message": "You have reached your limit.",
                           "errorType": "RATE_LIMIT", "category": "RATE_LIMITS"} | body, headers)
    assert isinstance(error, ThrottledError) and error.retry_after == wait


@pytest.mark.parametrize("body", [
    {"message": INVALID},
    {"message": "Invalid input", "errors": [{"message": "bad", "in": "credit"}]},
    {"message": "Invalid input", "context": {"propertyName": ["credit"]}},
    {"message": 'Property "credit" does not exist'},
])
def test_a_validation_error_names_the_property(body: dict) -> None:
    error = classify(400, {"category": "VALIDATION_ERROR"} | body)
    assert isinstance(error, DataError) and error.field == "credit"
    assert property_named(body) == "credit"


def test_a_validation_error_naming_no_property_is_a_refused_request() -> None:
    error = classify(400, {"category": "VALIDATION_ERROR", "message": "limit must be at most 200"})
    assert type(error) is PermanentError and "request refused" in str(error)


@pytest.mark.parametrize(("status", "category", "kind"), [
    (404, "OBJECT_NOT_FOUND", ObjectNotFound), (403, "MISSING_SCOPES", PermanentError),
    (409, "CONFLICT", BusinessRuleError), (500, None, TransientError), (502, None, TransientError),
    (423, None, TransientError), (418, None, PermanentError),
])
def test_statuses_and_categories(status: int, category: str | None, kind: type) -> None:
    assert type(classify(status, {"category": category, "message": "x"})) is kind


def test_batch_errors_name_the_inputs_they_are_about() -> None:
    errors = batch_errors([
        {"status": "error", "category": "OBJECT_NOT_FOUND", "message": "gone",
         "context": {"ids": ["1", "2"]}},
        {"status": "error", "category": "VALIDATION_ERROR", "message": INVALID, "id": "3",
         "context": {}},
    ])
    assert [ids for ids, _ in errors] == [["1", "2"], ["3"]]
    assert isinstance(errors[0][1], ObjectNotFound)
    assert isinstance(errors[1][1], DataError) and errors[1][1].field == "credit"


def test_transport_failures() -> None:
    refused = urllib3.exceptions.MaxRetryError(
        None, "/crm/v3/objects/deals", urllib3.exceptions.NewConnectionError(None, "refused"))
    assert type(translate(refused)) is TransientError
    assert type(translate(urllib3.exceptions.ProtocolError("Connection broken"))) is TransientError
    assert "TLS" in str(translate(urllib3.exceptions.SSLError("certificate verify failed")))


# --- settings and pacing --------------------------------------------------------------------------

def test_settings_need_a_token_and_hide_it() -> None:
    with pytest.raises(ConfigError, match="HANDOFF_HUBSPOT_ACCESS_TOKEN"):
        HubSpotSettings(access_token="")
    settings = HubSpotSettings(access_token="pat-na1-secret")
    assert "secret" not in repr(settings) and settings.base_url == "https://api.hubapi.com"
    with pytest.raises(ConfigError):
        HubSpotSettings(access_token="t", base_url="api.hubapi.com")


def test_property_names_come_from_a_toml_table() -> None:
    settings = HubSpotSettings(access_token="t", properties={"status": "ho_status"},  # type: ignore[arg-type]
                               won_stages=["closedwon", "123"])  # type: ignore[arg-type]
    assert settings.properties.status == "ho_status" and settings.won_stages == ("closedwon", "123")
    with pytest.raises(ConfigError, match="unknown key"):
        HubSpotSettings(access_token="t", properties={"colour": "x"})  # type: ignore[arg-type]


def test_the_rate_gate_sleeps_until_the_oldest_call_leaves_the_window() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    gate = RateGate(3, 10.0, clock=lambda: now[0], sleep=sleep)
    for step in (0.0, 1.0, 1.0):
        now[0] += step
        gate.wait()
    assert slept == []
    gate.wait()  # the 4th call within 10 s waits for the 1st to leave the window
    assert slept == [pytest.approx(8.0)] and now[0] == pytest.approx(110.0)
    assert RateGate.per_second(0.5).window == 2.0
