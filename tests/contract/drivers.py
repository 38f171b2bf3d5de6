"""How the contract suite drives each connector with its twin (or the real Tryton): build the
connector, one with a wrong credential, seed records, change a page size, inject faults. A
new connector joins the suite by adding a driver here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest

from handoff.connectors.fieldmap import NO_MAPPING, FieldMap
from handoff.connectors.hubspot import mapping as hubspot_mapping
from handoff.connectors.netsuite import NetSuiteConnector, NetSuiteSettings
from handoff.connectors.salesforce import SalesforceConnector, SalesforceSettings
from handoff.connectors.salesforce import mapping as salesforce_mapping
from handoff.connectors.tryton.client import TrytonConnector, TrytonSettings
from handoff.connectors.twin_process import TwinProcess
from handoff.demo.systems import seeder_for
from tests.conftest import reset_twin
from tests.connectors import (
    businesscentral_support,
    dynamics_support,
    hubspot_support,
    oracle_support,
    sap_support,
)

SUBSIDIARIES = {"US01": "2", "UK01": "3", "DE01": "4"}


@dataclass
class CrmDriver:
    name: str
    twin: TwinProcess
    make: Callable[..., Any]                          # (page_size, bad_auth, field_map) → connector
    seed: Callable[[Any, dict[str, Any], dict[str, Any]], str]  # (crm, account, deal) → deal id
    won_stage: str = "Closed Won"

    def connector(self, page_size: int | None = None, bad_auth: bool = False,
                  field_map: FieldMap = NO_MAPPING) -> Any:
        reset_twin(self.twin)
        return self.make(page_size=page_size, bad_auth=bad_auth, field_map=field_map)

    def faults(self, **plan: Any) -> None:
        with self.twin.control() as control:
            control.put("/_twin/faults", json=plan).raise_for_status()


@dataclass
class ErpDriver:
    name: str
    make: Callable[..., Any]                  # (page_size=None, bad_auth=False) → connector
    twin: TwinProcess | None = None           # None: a real server, no faults to inject
    refusal: str = "missing customer"         # what the ERP refuses: see test_erp_contract
    holds_value: bool = True                  # its projects show their value and currency
    names_documents: bool = True              # its documents name their deal (reconciliation)
    bills: bool = True                        # it issues invoices (SAP's billing run does its own)

    def connector(self, page_size: int | None = None, bad_auth: bool = False) -> Any:
        if self.twin is not None:
            reset_twin(self.twin)
        return self.make(page_size=page_size, bad_auth=bad_auth)

    def faults(self, **plan: Any) -> None:
        assert self.twin is not None
        with self.twin.control() as control:
            control.put("/_twin/faults", json=plan).raise_for_status()


def salesforce(request: pytest.FixtureRequest) -> CrmDriver:
    twin = request.getfixturevalue("salesforce_twin")

    def make(page_size: int | None, bad_auth: bool, field_map: FieldMap) -> SalesforceConnector:
        if page_size:
            with twin.control() as control:
                control.put("/_twin/settings", json={"query_batch_size": page_size}).raise_for_status()
        return SalesforceConnector(SalesforceSettings(
            twin.base_url, session_id="EXPIRED" if bad_auth else "SANDBOX_SESSION",
            ca_file=twin.ca_file, timeout=10, field_map=field_map))

    def seed(crm: SalesforceConnector, account: dict[str, Any], deal: dict[str, Any]) -> str:
        account_id = crm.create_account(salesforce_mapping.account_record(account))
        fields = salesforce_mapping.opportunity_record(deal | {"account_id": account_id})
        return crm.create_opportunity(fields)

    return CrmDriver("salesforce", twin, make, seed)


def hubspot(request: pytest.FixtureRequest) -> CrmDriver:
    twin = request.getfixturevalue("hubspot_twin")

    def make(page_size: int | None, bad_auth: bool, field_map: FieldMap) -> Any:
        overrides: dict[str, Any] = {"field_map": field_map} | ({"page_size": page_size} if page_size else {})
        if bad_auth:
            overrides["access_token"] = "revoked-token"
        with twin.control() as control:
            control.put("/_twin/settings", json={"search_per_second": 1000}).raise_for_status()
        return hubspot_support.connector(twin, **overrides)

    def seed(crm: Any, account: dict[str, Any], deal: dict[str, Any]) -> str:
        company = crm.create_account(hubspot_mapping.company_properties(account))
        return crm.create_opportunity(hubspot_mapping.deal_properties(deal), company_id=company)

    return CrmDriver("hubspot", twin, make, seed, won_stage="closedwon")


def netsuite(request: pytest.FixtureRequest) -> ErpDriver:
    twin = request.getfixturevalue("netsuite_twin")

    def make(page_size: int | None, bad_auth: bool) -> NetSuiteConnector:
        return NetSuiteConnector(NetSuiteSettings(
            f"{twin.base_url}/services/rest", "wrong-token" if bad_auth else "sandbox-token",
            subsidiary_ids=SUBSIDIARIES, timeout=10, **({"page_size": page_size} if page_size else {})))

    return ErpDriver("netsuite", make, twin)


def tryton(request: pytest.FixtureRequest) -> ErpDriver:
    server = request.getfixturevalue("tryton_server")
    info = server.info

    def make(page_size: int | None, bad_auth: bool) -> TrytonConnector:
        if page_size:
            request.getfixturevalue("monkeypatch").setattr(
                "handoff.connectors.tryton.client.PAGE", page_size)
        return TrytonConnector(TrytonSettings(info.url, info.database, info.user,
                                              "wrong-password" if bad_auth else info.password))

    # Tryton on SQLite keeps no foreign keys: a missing party is not refused; a project in
    # another currency than the company's is (the connector checks it before any call).
    return ErpDriver("tryton", make, refusal="another currency")


def dynamics(request: pytest.FixtureRequest) -> CrmDriver:
    twin = request.getfixturevalue("dynamics_twin")

    def make(page_size: int | None, bad_auth: bool, field_map: FieldMap) -> Any:
        options: dict[str, Any] = {"field_map": field_map} | ({"page_size": page_size} if page_size else {})
        if bad_auth:
            options["access_token"] = "eyJ.revoked"
        return dynamics_support.connector(twin, **options)

    def seed(crm: Any, account: dict[str, Any], deal: dict[str, Any]) -> str:
        seeder = seeder_for(crm)
        return seeder.create_opportunity(deal | {"account_id": seeder.create_account(account)})

    return CrmDriver("dynamics", twin, make, seed, won_stage="Won")


def businesscentral(request: pytest.FixtureRequest) -> ErpDriver:
    twin = request.getfixturevalue("businesscentral_twin")

    def make(page_size: int | None, bad_auth: bool) -> Any:
        options: dict[str, Any] = {"page_size": page_size} if page_size else {}
        return businesscentral_support.connector(
            twin, **({"token": "revoked-token"} if bad_auth else {}), **options)

    # API v2.0 projects hold a number and a name only (no customer, value or currency), and
    # a document's key is kept upper-cased: a lower-case deal id cannot be read back from it.
    return ErpDriver("businesscentral", make, twin, refusal="customer currency", holds_value=False,
                     names_documents=False)


def oracle(request: pytest.FixtureRequest) -> ErpDriver:
    twin = request.getfixturevalue("oracle_twin")

    def make(page_size: int | None, bad_auth: bool) -> Any:
        options: dict[str, Any] = {"page_size": page_size} if page_size else {}
        return oracle_support.connector(twin, **({"password": "wrong-password"} if bad_auth else {}),
                                        **options)

    return ErpDriver("oracle", make, twin)


def sap(request: pytest.FixtureRequest) -> ErpDriver:
    twin = request.getfixturevalue("sap_twin")

    def make(page_size: int | None, bad_auth: bool) -> Any:
        options: dict[str, Any] = {"page_size": page_size} if page_size else {}
        return sap_support.connector(twin, **({"password": "wrong-password"} if bad_auth else {}),
                                     **options)

    # An enterprise project holds no contract value; SAP's own billing run makes the invoices.
    return ErpDriver("sap", make, twin, refusal="unknown legal entity", holds_value=False, bills=False)


CRM_DRIVERS = {"salesforce": salesforce, "hubspot": hubspot, "dynamics": dynamics}
ERP_DRIVERS = {"netsuite": netsuite, "tryton": tryton, "businesscentral": businesscentral, "oracle": oracle,
               "sap": sap}
ERP_TWINS = [name for name in ERP_DRIVERS if name != "tryton"]  # faults can be injected

ACCOUNT = {"name": "Contract Test Ltd", "currency": "USD", "tax_jurisdiction": "US-CA",
           "legal_entity": "US01", "validation_status": "valid"}
DEAL = {"name": "Contract test deal", "stage": "Closed Won", "amount": Decimal("125000.50"),
        "currency": "USD", "close_date": "2026-11-20", "billing_method": "fixed_fee",
        "contract_status": "approved", "sow_status": "approved", "legal_entity": "US01"}
