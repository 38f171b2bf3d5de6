"""SalesforceConnector against the twin: the CRM port, change reading, and every failure
arriving as the right class of handoff's error taxonomy."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from handoff.connectors.ports import CrmStatusUpdate
from handoff.connectors.salesforce import SalesforceConnector, SalesforceSettings
from handoff.connectors.salesforce.mapping import (
    account_record,
    customer_event_data,
    opportunity_record,
)
from handoff.connectors.salesforce.twin import SANDBOX_SESSION
from handoff.connectors.twin_process import TwinProcess
from handoff.domain import ProvisioningStatus
from handoff.errors import (
    ConfigError,
    DataError,
    PermanentError,
    ThrottledError,
    TransientError,
)
from tests.connectors.salesforce_helpers import (
    connector,
    control,
    sdk,
    seed_account,
    seed_opportunities,
    set_faults,
    set_twin,
    twin_records,
)

LONG_AGO = datetime(2000, 1, 1, tzinfo=UTC)
DEAL = {
    "name": "Globex migration", "stage": "Closed Won", "amount": "1234567.89",
    "currency": "EUR", "close_date": "2026-11-26", "billing_method": "time_and_materials",
    "contract_status": "approved", "sow_status": "pending", "legal_entity": "Handoff GmbH",
    "description": "Phase 1",
}


@pytest.fixture
def opportunity_id(crm: SalesforceConnector) -> str:
    account_id = crm.create_account(account_record({"name": "Globex", "currency": "EUR"}))
    return crm.create_opportunity(opportunity_record(DEAL | {"account_id": account_id}))


def provisioned(opportunity_id: str, detail: str = "project created") -> CrmStatusUpdate:
    return CrmStatusUpdate(opportunity_id, ProvisioningStatus.PROVISIONED, detail, "PRJ-7")


# --- modes and settings --------------------------------------------------------------------

def test_settings_need_a_session_or_full_credentials() -> None:
    with pytest.raises(ConfigError):
        SalesforceSettings(instance_url="https://example.invalid", username="u", password="p")
    secret = SalesforceSettings(instance_url="https://x.invalid", session_id="00D!secret")
    assert "secret" not in repr(secret)


def test_direct_mode_uses_the_session_id_as_given(twin: TwinProcess) -> None:
    direct = connector(twin, session_id=SANDBOX_SESSION, username=None, password=None,
                       security_token=None)
    account_id = direct.create_account({"Name": "Direct"})
    assert [r["Id"] for r in twin_records(twin, "Account")] == [account_id]


def test_an_expired_session_is_renewed_by_logging_in_again(
    twin: TwinProcess, crm: SalesforceConnector, opportunity_id: str
) -> None:
    control(twin, "POST", "/_twin/sessions/expire")
    crm.write_back(provisioned(opportunity_id))
    assert crm.get_opportunity(opportunity_id)["Handoff_Status__c"] == "provisioned"


# --- the CRM port --------------------------------------------------------------------------

def test_write_back_sets_the_provisioning_fields(
    crm: SalesforceConnector, opportunity_id: str
) -> None:
    crm.write_back(provisioned(opportunity_id, detail="x" * 300))
    record = crm.get_opportunity(opportunity_id)
    assert record["Handoff_Project_Id__c"] == "PRJ-7"
    assert record["Handoff_Status__c"] == "provisioned"
    assert record["Handoff_Status_Detail__c"] == "x" * 255


def test_write_back_many_reports_each_update(
    twin: TwinProcess, crm: SalesforceConnector, opportunity_id: str
) -> None:
    outcomes = crm.write_back_many([
        provisioned(opportunity_id),
        provisioned("006RO0000000999YAA"),  # well formed, but no such record
        provisioned("not-an-id"),
    ])
    assert outcomes[0] is None
    assert isinstance(outcomes[1], PermanentError)
    assert isinstance(outcomes[2], DataError) and outcomes[2].field == "Id"
    assert twin_records(twin, "Opportunity")[0]["Handoff_Status__c"] == "provisioned"


def test_write_back_many_sends_collections_of_200(
    twin: TwinProcess, crm: SalesforceConnector
) -> None:
    sf = sdk(twin)
    ids = seed_opportunities(sf, seed_account(sf), 250)
    crm.write_back(provisioned(ids[0]))  # logs in
    requests_before = control(twin, "GET", "/_twin/stats")["requests"]
    assert crm.write_back_many([provisioned(i) for i in ids]) == [None] * 250
    assert control(twin, "GET", "/_twin/stats")["requests"] - requests_before == 2
    assert {r["Handoff_Status__c"] for r in twin_records(twin, "Opportunity")} == {"provisioned"}


def test_a_refused_collection_call_marks_every_update(
    twin: TwinProcess, crm: SalesforceConnector, opportunity_id: str
) -> None:
    crm.write_back(provisioned(opportunity_id))  # logged in before the faults start
    set_faults(twin, throttle_rate=1.0)
    outcomes = crm.write_back_many([provisioned(opportunity_id)] * 3)
    assert len(outcomes) == 3 and all(isinstance(o, ThrottledError) for o in outcomes)


def test_one_connector_serves_many_threads(
    twin: TwinProcess, crm: SalesforceConnector, opportunity_id: str
) -> None:
    def write(n: int) -> None:
        crm.write_back(provisioned(opportunity_id, detail=f"write {n}"))

    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(write, range(160)))
    assert twin_records(twin, "Opportunity")[0]["Handoff_Status_Detail__c"].startswith("write")


# --- reading changes -----------------------------------------------------------------------

def test_changed_opportunities_yield_canonical_event_data(
    crm: SalesforceConnector, opportunity_id: str
) -> None:
    [data] = crm.changed_opportunities(LONG_AGO)
    assert data == DEAL | {
        "id": opportunity_id, "account_id": data["account_id"], "is_won": True,
        "owner": data["owner"], "version": data["version"],
        "modified_by": data["owner"],  # the twin's API user made and owns it
    }
    assert data["amount"] == "1234567.89"  # exact, never through a float's rounding
    assert data["version"].endswith("Z")


def test_changed_opportunities_only_after_the_given_moment(
    crm: SalesforceConnector, opportunity_id: str
) -> None:
    [first] = crm.changed_opportunities(LONG_AGO)
    later = datetime.fromisoformat(first["version"]) + timedelta(seconds=1)
    assert list(crm.changed_opportunities(later)) == []
    with pytest.raises(ValueError):
        list(crm.changed_opportunities(datetime(2000, 1, 1)))


def test_changed_opportunities_read_every_page(twin: TwinProcess, crm: SalesforceConnector) -> None:
    sf = sdk(twin)
    ids = seed_opportunities(sf, seed_account(sf), 7)
    set_twin(twin, query_batch_size=2)
    assert [d["id"] for d in crm.changed_opportunities(LONG_AGO)] == ids


def test_changed_accounts_yield_customer_event_data(
    twin: TwinProcess, crm: SalesforceConnector
) -> None:
    account_id = crm.create_account(account_record({
        "name": "Initech", "currency": "GBP", "tax_jurisdiction": "GB",
        "legal_entity": "Initech Ltd", "validation_status": "valid"}))
    [data] = crm.changed_accounts(LONG_AGO)
    assert data == {"id": account_id, "name": "Initech", "currency": "GBP",
                    "tax_jurisdiction": "GB", "legal_entity": "Initech Ltd",
                    "validation_status": "valid", "version": data["version"]}
    assert customer_event_data(twin_records(twin, "Account")[0]) == data


# --- failures, translated ------------------------------------------------------------------

def test_throttling_is_a_throttled_error_with_retry_after(
    twin: TwinProcess, crm: SalesforceConnector, opportunity_id: str
) -> None:
    set_faults(twin, throttle_rate=1.0, retry_after_seconds=7)
    with pytest.raises(ThrottledError) as exc_info:
        crm.write_back(provisioned(opportunity_id))
    assert exc_info.value.retry_after == 7
    assert "REQUEST_LIMIT_EXCEEDED" in str(exc_info.value)


def test_unavailability_is_transient(
    twin: TwinProcess, crm: SalesforceConnector, opportunity_id: str
) -> None:
    set_faults(twin, unavailable_rate=1.0)
    with pytest.raises(TransientError) as exc_info:
        crm.write_back(provisioned(opportunity_id))
    assert not isinstance(exc_info.value, ThrottledError)


def test_a_lost_response_is_transient_though_the_write_committed(
    twin: TwinProcess, crm: SalesforceConnector, opportunity_id: str
) -> None:
    set_faults(twin, lose_response_rate=1.0)
    with pytest.raises(TransientError):
        crm.write_back(provisioned(opportunity_id))
    assert twin_records(twin, "Opportunity")[0]["Handoff_Status__c"] == "provisioned"


def test_row_lock_contention_is_transient(
    twin: TwinProcess, crm: SalesforceConnector, opportunity_id: str
) -> None:
    set_twin(twin, unable_to_lock_row_rate=1.0)
    with pytest.raises(TransientError, match="UNABLE_TO_LOCK_ROW"):
        crm.write_back(provisioned(opportunity_id))


def test_an_unknown_field_is_a_data_error_naming_it(crm: SalesforceConnector) -> None:
    with pytest.raises(DataError) as exc_info:
        crm.create_account({"Name": "X", "Credit_Limit__c": 5})
    assert exc_info.value.field == "Credit_Limit__c"


def test_a_missing_required_field_is_a_data_error(crm: SalesforceConnector) -> None:
    with pytest.raises(DataError) as exc_info:
        crm.create_opportunity({"Name": "No stage", "CloseDate": "2026-12-31"})
    assert exc_info.value.field == "StageName"


def test_a_bad_session_is_permanent(twin: TwinProcess) -> None:
    stale = connector(twin, session_id="expired-long-ago")
    with pytest.raises(PermanentError, match="session invalid or expired"):
        stale.create_account({"Name": "X"})


def test_a_bad_password_is_permanent(twin: TwinProcess) -> None:
    with pytest.raises(PermanentError, match="INVALID_LOGIN"):
        connector(twin, password="wrong").create_account({"Name": "X"})


def test_a_missing_record_is_permanent(crm: SalesforceConnector) -> None:
    with pytest.raises(PermanentError):
        crm.get_opportunity("006RO0000000999YAA")


def test_an_untrusted_certificate_is_permanent(twin: TwinProcess) -> None:
    with pytest.raises(PermanentError, match="TLS"):
        connector(twin, ca_file=None).create_account({"Name": "X"})


def test_an_unreachable_org_is_transient(twin: TwinProcess) -> None:
    nowhere = connector(twin, instance_url="https://127.0.0.1:9", timeout=2.0)
    with pytest.raises(TransientError):
        nowhere.create_account({"Name": "X"})
