"""Pure parts of the SAP connector: where the keys live, mapping to request bodies, billing
documents read back as handoff's invoices, settings, OData v2 values and `$batch` bodies, and
the translation of SAP's answers into handoff's error taxonomy."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from email.message import Message
from typing import Any

import pytest

from handoff.connectors.keepalive import TransportError
from handoff.connectors.sap import Organization, SapSettings
from handoff.connectors.sap.errors import from_response, is_csrf_refusal, translate
from handoff.connectors.sap.mapping import (
    deal_of_project_key,
    element_key,
    invoice_from,
    key_within,
    partner_body,
    partner_changes,
    partner_key,
    partner_names,
    project_changes,
    project_create_body,
    project_fields,
    project_key,
    status_change,
)
from handoff.connectors.sap.odata import (
    BatchRequest,
    BatchResponse,
    batch_answer,
    batch_body,
    date_value,
    parse_batch_answer,
    parse_batch_request,
    parse_date,
    parse_decimal,
    query,
)
from handoff.domain import InvoiceStatus, Money, ProjectStatus
from handoff.errors import (
    BusinessRuleError,
    ConfigError,
    DataError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from tests.connectors.sap_support import ORGANIZATIONS, a_customer, a_project

SETTINGS = SapSettings("http://sap.test", "HANDOFF_COMM", "pw", organizations=ORGANIZATIONS,
                       default_legal_entity="US01")
GUID = "0894ef2b-4ea6-1ede-b5a5-b6e1a4b8c0d2"


def salesforce_18(id15: str) -> str:
    """Salesforce's case-safe id: three characters flagging the capitals of each five."""
    flags = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
    return id15 + "".join(flags[sum(1 << n for n, c in enumerate(id15[b * 5:b * 5 + 5]) if c.isupper())]
                          for b in range(3))


# --- keys ------------------------------------------------------------------------------------------

def test_a_key_that_fits_is_kept_and_a_longer_one_is_shortened_the_same_way_every_time() -> None:
    assert partner_key("HO-C-001A") == "HO-C-001A"
    long_id = "HO-C-" + salesforce_18("001Dn00000AbCdE")
    key = partner_key(long_id)
    assert len(key) == 20 and key == partner_key(long_id) and key.startswith("HO-C-001D")
    assert key != partner_key(long_id[:-1] + "X")
    assert key_within("x" * 30, 24) != key_within("x" * 29 + "y", 24)


def test_project_ids_are_upper_case_and_too_long_ones_shortened_the_same_way_every_time() -> None:
    assert project_key("HO-P-006Ab") == "HO-P-006AB"
    guid = "HO-P-3a6c6777-81a3-4257-b797-c98ac0a6b169"  # a Dynamics deal
    assert len(project_key(guid)) == 24 and project_key(guid) == project_key(guid)
    assert project_key(guid) != project_key(guid.replace("a6b169", "a6b168"))


def test_a_milestone_element_names_its_project_and_fits_in_24_characters() -> None:
    assert element_key("HO-P-006A", "m1") == "HO-P-006A.M1"
    long_project = "HO-P-" + salesforce_18("006Dn00000XyZaB").upper()
    key = element_key(long_project, "M1")
    assert len(key) == 24 and key.startswith("HO-P-006DN") and key != element_key(long_project, "M2")


def test_a_salesforce_deal_id_gets_its_letter_case_back_from_its_checksum() -> None:
    deal = salesforce_18("006Dn00000XyZaB")
    assert deal_of_project_key(project_key(f"HO-P-{deal}")) == deal
    assert deal_of_project_key("HO-P-123456789012345678") == "123456789012345678"  # HubSpot ids
    assert deal_of_project_key("HO-P-006A") == "006A"


@pytest.mark.parametrize("external_id", ["", " HO-C-1", "HO-C-\n1"])
def test_unusable_keys_are_data_errors(external_id: str) -> None:
    with pytest.raises(DataError):
        partner_key(external_id)


# --- customers ---------------------------------------------------------------------------------------

def test_a_customer_is_one_deep_insert_with_roles_company_and_sales_area() -> None:
    body = partner_body("HO-C-001A", a_customer(legal_entity="US01"), SETTINGS)
    assert body == {
        "BusinessPartnerCategory": "2", "BusinessPartnerGrouping": "BP02",
        "OrganizationBPName1": "Acme Consulting", "OrganizationBPName2": "", "OrganizationBPName3": "",
        "OrganizationBPName4": "", "BusinessPartnerIDByExtSystem": "HO-C-001A",
        "to_BusinessPartnerRole": [{"BusinessPartnerRole": "FLCU00"}, {"BusinessPartnerRole": "FLCU01"}],
        "to_Customer": {
            "to_CustomerCompany": [{"CompanyCode": "1710", "ReconciliationAccount": "12100000",
                                    "PaymentTerms": "0004"}],
            "to_CustomerSalesArea": [{"SalesOrganization": "1710", "DistributionChannel": "10",
                                      "Division": "00", "Currency": "USD", "CustomerPaymentTerms": "0004"}]}}


def test_an_organization_without_sales_organization_makes_company_data_only() -> None:
    body = partner_body("HO-C-1", a_customer(legal_entity="DE01", currency="EUR"), SETTINGS)
    assert set(body["to_Customer"]) == {"to_CustomerCompany"}


def test_a_long_name_is_broken_between_words_over_the_four_lines() -> None:
    name = "Consolidated Intercontinental Engineering and Professional Services Holding GmbH"
    lines = partner_names(name)
    assert all(len(line) <= 40 for line in lines.values())
    assert " ".join(line for line in lines.values() if line) == name
    with pytest.raises(DataError) as caught:
        partner_names("x" * 161)
    assert caught.value.field == "name"


def test_an_update_sends_only_the_name_lines_that_differ() -> None:
    body = partner_body("HO-C-1", a_customer(name="Acme Consulting Ltd"), SETTINGS)
    held = {"OrganizationBPName1": "Acme Consulting", "OrganizationBPName2": None}
    assert partner_changes(held, body) == {"OrganizationBPName1": "Acme Consulting Ltd"}


def test_a_legal_entity_without_organization_is_a_data_error() -> None:
    with pytest.raises(DataError) as caught:
        partner_body("HO-C-1", a_customer(legal_entity="FR01"), SETTINGS)
    assert caught.value.field == "legal_entity"


# --- projects ------------------------------------------------------------------------------------------

def test_a_project_is_one_deep_insert_with_a_billing_element_per_milestone() -> None:
    project = a_project()
    body = project_create_body(project, "HO-P-006A", project_fields(project, GUID, SETTINGS), SETTINGS)
    assert body["Project"] == "HO-P-006A" and body["CustomerUUID"] == GUID
    assert (body["ProjectStartDate"], body["ProjectEndDate"]) == ("/Date(1740787200000)/",
                                                                  "/Date(1772323200000)/")
    assert (body["ProjectProfileCode"], body["ProjectCurrency"]) == ("YP03", "USD")
    assert (body["ResponsibleCostCenter"], body["ProfitCenter"]) == ("17101101", "YB600")
    assert [(e["ProjectElement"], e["ProjectElementDescription"], e["WBSElementIsBillingElement"])
            for e in body["to_EnterpriseProjectElement"]] == [
        ("HO-P-006A.M1", "Kick-off workshop", True), ("HO-P-006A.M2", "Go-live", True)]
    assert "jobPrice" not in json.dumps(body)  # an enterprise project holds no value


def test_an_update_sends_what_differs_and_leaves_the_planned_finish_to_sap() -> None:
    project = a_project(name="Acme rollout, phase 1")
    fields = project_fields(project, GUID.upper(), SETTINGS)
    held = {**fields, "ProjectDescription": "Acme rollout", "CustomerUUID": GUID,
            "ProjectEndDate": "/Date(1767225600000)/"}
    assert project_changes(held, fields) == {"ProjectDescription": "Acme rollout, phase 1"}


def test_a_start_moved_past_the_planned_finish_moves_the_finish_too() -> None:
    fields = project_fields(a_project(start_date=date(2026, 6, 1)), GUID, SETTINGS)
    held = {**fields, "ProjectStartDate": date_value(date(2025, 3, 1)),
            "ProjectEndDate": date_value(date(2026, 3, 1))}
    assert project_changes(held, fields) == {"ProjectStartDate": date_value(date(2026, 6, 1)),
                                             "ProjectEndDate": date_value(date(2027, 6, 1))}


@pytest.mark.parametrize(("current", "wanted", "change"), [
    ("00", "10", "10"), ("10", "00", None), ("42", "10", None), ("10", "10", None), ("99", "10", None)])
def test_statuses_only_move_forward(current: str, wanted: str, change: str | None) -> None:
    assert status_change(current, wanted, SETTINGS) == change
    assert SETTINGS.status_codes[ProjectStatus.ACTIVE] == "10"


# --- billing documents ----------------------------------------------------------------------------------

def document(**changes: Any) -> dict[str, Any]:
    values = {"BillingDocument": "90000001", "SDDocumentCategory": "M", "BillingDocumentType": "F2",
              "BillingDocumentDate": "/Date(1741564800000)/", "BillingDocumentIsCancelled": False,
              "TotalNetAmount": "12345.670", "TaxAmount": "2345.680", "TotalGrossAmount": "14691.350",
              "TransactionCurrency": "USD", "CompanyCode": "1710", "FiscalYear": "2025",
              "AccountingDocument": "90000001", "AccountingTransferStatus": "C"}
    return values | changes


def item(amount: str, cleared: bool = False, debit: bool = True, **changes: Any) -> dict[str, Any]:
    values = {"CompanyCode": "1710", "FiscalYear": "2025", "AccountingDocument": "90000001",
              "FinancialAccountType": "D", "IsCleared": cleared, "DebitCreditCode": "S" if debit else "H",
              "AmountInTransactionCurrency": amount, "NetDueDate": "/Date(1744156800000)/"}
    return values | changes


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def test_a_posted_invoice_reads_exactly_with_its_open_amount() -> None:
    invoice = invoice_from(document(), [item("14691.350")], SETTINGS)
    assert (invoice.target_id, invoice.number, invoice.status, invoice.external_id) == (
        "90000001", "90000001", InvoiceStatus.POSTED, "")
    assert (invoice.untaxed, invoice.tax, invoice.total, invoice.amount_due) == (
        usd("12345.67"), usd("2345.68"), usd("14691.35"), usd("14691.35"))
    assert (invoice.invoice_date, invoice.due_date) == (date(2025, 3, 10), date(2025, 4, 9))


def test_an_invoice_is_paid_once_every_customer_item_is_cleared() -> None:
    invoice = invoice_from(document(), [item("14691.350", cleared=True)], SETTINGS)
    assert (invoice.status, invoice.amount_due, invoice.paid) == (InvoiceStatus.PAID, usd("0.00"),
                                                                 usd("14691.35"))


def test_a_residual_item_referring_to_the_invoice_is_what_is_still_due() -> None:
    residual = item("4691.35", AccountingDocument="1400000001", InvoiceReference="90000001",
                    InvoiceReferenceFiscalYear="2025")
    invoice = invoice_from(document(), [item("14691.35", cleared=True), residual], SETTINGS)
    assert (invoice.status, invoice.amount_due) == (InvoiceStatus.POSTED, usd("4691.35"))


def test_items_of_other_documents_and_companies_do_not_count() -> None:
    others = [item("1.00", AccountingDocument="90000002"), item("1.00", CompanyCode="1010"),
              item("1.00", FinancialAccountType="S")]
    invoice = invoice_from(document(), [item("14691.35", cleared=True), *others], SETTINGS)
    assert invoice.status is InvoiceStatus.PAID


def test_a_credit_memo_comes_back_negative_and_settles_to_zero() -> None:
    credit = document(SDDocumentCategory="O", BillingDocumentType="G2", TotalNetAmount="400.10",
                      TaxAmount="0", TotalGrossAmount="400.10")
    open_credit = invoice_from(credit, [item("-400.10", debit=False)], SETTINGS)
    assert (open_credit.total, open_credit.amount_due) == (usd("-400.10"), usd("-400.10"))
    settled = invoice_from(credit, [item("-400.10", cleared=True, debit=False)], SETTINGS)
    assert (settled.status, str(settled.amount_due.amount)) == (InvoiceStatus.PAID, "0.00")


@pytest.mark.parametrize(("changes", "items", "status", "due"), [
    ({"AccountingTransferStatus": "A"}, [], InvoiceStatus.DRAFT, "14691.35"),
    ({"BillingDocumentIsCancelled": True}, [], InvoiceStatus.CANCELLED, "0"),
    ({}, [], InvoiceStatus.POSTED, "14691.35"),  # no customer item visible: nothing known as paid
])
def test_statuses_of_billing_documents(changes: dict[str, Any], items: list[dict[str, Any]],
                                       status: InvoiceStatus, due: str) -> None:
    invoice = invoice_from(document(**changes), items, SETTINGS)
    assert (invoice.status, invoice.amount_due.amount) == (status, Decimal(due))


def test_amounts_finer_than_the_currency_or_in_an_unknown_currency_are_refused() -> None:
    with pytest.raises(DataError) as caught:
        invoice_from(document(TotalGrossAmount="14691.355"), [], SETTINGS)
    assert caught.value.field == "TotalGrossAmount"
    with pytest.raises(DataError) as caught:
        invoice_from(document(TransactionCurrency="XXX"), [], SETTINGS)
    assert caught.value.field == "TransactionCurrency"


# --- settings --------------------------------------------------------------------------------------------

def test_organizations_come_from_toml_tables() -> None:
    settings = SapSettings("https://my1-api.s4hana.cloud.sap", "U", "s3cret-pw", organizations={
        "US01": {"company_code": "1710", "cost_center": "17101101", "profit_center": "YB600"}})
    assert settings.organizations["US01"] == Organization("1710", "17101101", "YB600")
    assert "s3cret-pw" not in repr(settings)


@pytest.mark.parametrize("options", [
    {"base_url": "sap.example.com"},
    {"organizations": {"US01": {"company_code": "1710", "colour": "red"}}},
    {"default_legal_entity": "FR01"},
    {"page_size": 0},
])
def test_settings_refuse_what_cannot_work(options: dict[str, Any]) -> None:
    values = {"base_url": "https://sap.example.com", "user": "U", "password": "P"} | options
    with pytest.raises(ConfigError):
        SapSettings(**values)


# --- OData values and $batch -------------------------------------------------------------------------------

def test_odata_values() -> None:
    assert date_value(date(2025, 3, 1)) == "/Date(1740787200000)/"
    assert parse_date("/Date(1740787200000+0060)/") == date(2025, 3, 1)
    assert parse_decimal("12345.670") == Decimal("12345.670")
    with pytest.raises(ValueError):
        parse_decimal(12.5)  # type: ignore[arg-type]
    assert query({"$filter": "Project eq 'HO-P-1'", "$top": 2, "$skip": None}) == (
        "$filter=Project%20eq%20'HO-P-1'&$top=2")


def test_a_batch_round_trips_through_its_multipart_body() -> None:
    writes = [BatchRequest("PATCH", "A_EnterpriseProject(guid'1')", {"If-Match": 'W/"x"'}, b'{"a":"1"}'),
              BatchRequest("POST", "A_EnterpriseProject(guid'1')/to_EnterpriseProjectElement", {}, b"{}")]
    content_type, body = batch_body([BatchRequest("GET", "A_EnterpriseProject?$top=1")], writes)
    assert b"\r\n--changeset_" in body and body.endswith(b"--\r\n")
    read, changeset = parse_batch_request(content_type, body)
    assert isinstance(read, BatchRequest) and read.path == "A_EnterpriseProject?$top=1"
    assert isinstance(changeset, list)
    assert [(r.method, r.path, r.body) for r in changeset] == [(w.method, w.path, w.body) for w in writes]
    assert changeset[0].headers["if-match"] == 'W/"x"'
    answer_type, answer = batch_answer([BatchResponse(200, {}, b"{}"),
                                        [BatchResponse(204, {}, b""), BatchResponse(201, {}, b'{"d":{}}')]])
    assert [(a.status, a.body) for a in parse_batch_answer(answer_type, answer)] == [
        (200, b"{}"), (204, b""), (201, b'{"d":{}}')]


# --- errors -------------------------------------------------------------------------------------------------

def headers(**values: str) -> Message:
    message = Message()
    for name, value in values.items():
        message[name.replace("_", "-")] = value
    return message


def odata_error(code: str, message: str, target: str = "") -> bytes:
    return json.dumps({"error": {"code": code, "message": {"lang": "en", "value": message}, "innererror": {
        "transactionid": "ABC123", "errordetails": [{"code": code, "message": message, "propertyref": "",
                                                     "severity": "error", "target": target}]}}}).encode()


def test_a_property_named_by_sap_is_a_data_error_on_that_field() -> None:
    error = from_response(400, headers(), odata_error("CJ/002", "ProjectProfileCode ZZ99 does not exist",
                                                      "ProjectProfileCode"))
    assert isinstance(error, DataError) and error.field == "ProjectProfileCode"
    assert "[CJ/002] ProjectProfileCode ZZ99 does not exist (SAP transaction ABC123)" in str(error)


def test_an_application_message_is_a_business_rule_and_a_framework_one_permanent() -> None:
    business = from_response(400, headers(), odata_error("CJ/002", "Project exists"))
    assert isinstance(business, BusinessRuleError)
    assert type(from_response(400, headers(), odata_error("/IWBEP/CM_MGW_RT/000", "bad"))) is PermanentError


def test_throttling_and_unavailability_are_transient_with_their_wait() -> None:
    quota = b'{"fault":{"faultstring":"Rate limit quota violation.","detail":{"errorcode":"policies.x"}}}'
    throttled = from_response(429, headers(Retry_After="3"), quota)
    assert isinstance(throttled, ThrottledError) and throttled.retry_after == 3.0
    assert "Rate limit quota violation" in str(throttled)
    down = from_response(503, headers(), b"<html><body><h1>503 Service Unavailable</h1></body></html>")
    assert type(down) is TransientError and "503 Service Unavailable" in str(down)


def test_credentials_and_access_refused_are_permanent_with_what_to_check() -> None:
    refused = from_response(401, headers(), b"Logon failed", user="HANDOFF_COMM")
    assert isinstance(refused, PermanentError)
    assert "HANDOFF_SAP_USER and HANDOFF_SAP_PASSWORD" in str(refused) and "HANDOFF_COMM" in str(refused)
    forbidden = from_response(403, headers(), odata_error("/IWFND/CM_BEC/026", "No authorization"))
    assert isinstance(forbidden, PermanentError) and "communication arrangement" in str(forbidden)


def test_a_csrf_refusal_is_recognised_by_header_or_text() -> None:
    assert is_csrf_refusal(403, headers(x_csrf_token="Required"), b"")
    assert is_csrf_refusal(403, headers(), b"CSRF token validation failed")
    assert not is_csrf_refusal(403, headers(), b"No authorization")
    assert isinstance(from_response(403, headers(x_csrf_token="Required"), b""), TransientError)


def test_no_answer_is_transient_unless_the_certificate_is_untrusted() -> None:
    assert type(translate(TransportError("reset", retryable=True))) is TransientError
    assert type(translate(TransportError("cert", retryable=False))) is PermanentError
