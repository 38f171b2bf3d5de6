"""The sandbox systems a demo (or a test) can run handoff against, by name: each CRM twin with
the connector that seeds it in canonical terms, each ERP twin with what it holds. A system
joins the demo, `handoff demo --crm … --erp …`, by adding its entry here.

    CRM    seed and change accounts and deals from canonical data; read back which deals
           show their project; handoff's config section and secrets for it
    ERP    handoff's config section and secrets; how many customers, projects, duplicate
           external ids and invoices it holds
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handoff.connectors.twin_process import TwinProcess


@dataclass
class Seeder:
    """A CRM connector's seeding in canonical terms (demos and tests only)."""

    won_stage: str
    open_stage: str
    create_account: Callable[[Mapping[str, Any]], str]
    create_opportunity: Callable[[Mapping[str, Any]], str]
    update_account: Callable[[str, Mapping[str, Any]], None]
    update_opportunity: Callable[[str, Mapping[str, Any]], None]


@dataclass
class CrmSandbox:
    name: str
    label: str
    twin: TwinProcess
    connector: Any
    seeder: Seeder
    secrets: dict[str, str]
    config: str                                  # its [systems.<name>] section
    projects_shown: Callable[[], dict[str, Any]]  # deal id → the project id the CRM shows
    settings: dict[str, Any] | None = None        # twin settings the sandbox runs with

    def reset(self) -> None:
        """Empty the twin, no faults, and its sandbox settings again."""
        reset(self.twin, self.settings)


@dataclass(frozen=True)
class ErpCounts:
    customers: int
    projects: int
    duplicate_external_ids: int
    invoices: int


@dataclass
class ErpSandbox:
    name: str
    label: str
    twin: TwinProcess
    secrets: dict[str, str]
    config: str
    counts: Callable[[], ErpCounts]
    connect: Callable[[], Any]  # a fresh connector to it, as handoff's worker uses
    settings: dict[str, Any] | None = None
    bills: bool = True          # handoff invoices through it (else its own billing run does)
    holds_value: bool = True    # its projects show their value (reconciliation compares it)
    keys_read_back: bool = True  # every deal id comes back from its keys (reconciliation matches)

    def reset(self) -> None:
        reset(self.twin, self.settings)


def reset(twin: TwinProcess, settings: dict[str, Any] | None) -> None:
    with twin.control() as control:
        control.post("/_twin/reset").raise_for_status()
        control.put("/_twin/faults", json={}).raise_for_status()
        if settings:
            control.put("/_twin/settings", json=settings).raise_for_status()


@dataclass
class BillingSandbox:
    """A billing system that invoices instead of the ERP."""

    name: str
    label: str
    twin: TwinProcess
    secrets: dict[str, str]
    config: str
    invoices: Callable[[], int]


def seeder_for(crm: Any) -> Seeder:
    """The canonical seeding of a CRM connector."""
    if crm.system == "dynamics":
        from handoff.connectors.dynamics.mapping import account_columns, opportunity_columns

        def create_deal(data: Mapping[str, Any]) -> str:
            columns = opportunity_columns({k: v for k, v in data.items() if k != "account_id"},
                                          crm.currency_ids())
            deal = crm.create_opportunity(columns, account_id=data.get("account_id"))
            if data.get("stage") == "Won":
                crm.win_opportunity(deal)
            return deal

        def columns(data: Mapping[str, Any], of: Callable[..., dict[str, Any]]) -> dict[str, Any]:
            return of(data, crm.currency_ids())

        return Seeder("Won", "Open", lambda data: crm.create_account(columns(data, account_columns)),
                      create_deal,
                      lambda i, data: crm.update_account(i, columns(data, account_columns)),
                      lambda i, data: crm.update_opportunity(i, columns(data, opportunity_columns)))
    if crm.system == "hubspot":
        from handoff.connectors.hubspot.mapping import company_properties, deal_properties

        return Seeder("closedwon", "presentationscheduled",
                      lambda data: crm.create_account(company_properties(data)),
                      lambda data: crm.create_opportunity(
                          deal_properties({k: v for k, v in data.items() if k != "account_id"}),
                          company_id=data.get("account_id")),
                      lambda i, data: crm.update_account(i, company_properties(data)),
                      lambda i, data: crm.update_opportunity(i, deal_properties(data)))
    from handoff.connectors.salesforce.mapping import account_record, opportunity_record

    return Seeder("Closed Won", "Negotiation/Review",
                  lambda data: crm.create_account(account_record(data)),
                  lambda data: crm.create_opportunity(opportunity_record(data)),
                  lambda i, data: crm.update_account(i, account_record(data)),
                  lambda i, data: crm.update_opportunity(i, opportunity_record(data)))


SUBSIDIARIES = {"US01": "2", "UK01": "3", "DE01": "4"}  # the NetSuite twin's


def twin_records(twin: TwinProcess, path: str) -> list[dict[str, Any]]:
    with twin.control() as control:
        body = control.get(path).raise_for_status().json()
    return body.get("records", body.get("items", [])) if isinstance(body, dict) else list(body)


def salesforce_section(twin: TwinProcess) -> str:
    return (f'[systems.salesforce]\ninstance_url = "{twin.base_url}"\n'
            f'ca_file = "{Path(twin.ca_file or "").resolve()}"\n')


def netsuite_section(twin: TwinProcess) -> str:
    return (f'\n[systems.netsuite]\nbase_url = "{twin.base_url}/services/rest"\n'
            'subsidiary_ids = { US01 = "2", UK01 = "3", DE01 = "4" }\n')


def salesforce(stack: ExitStack, tls_dir: Path) -> CrmSandbox:
    from handoff.connectors.salesforce import SalesforceConnector, SalesforceSettings

    twin = stack.enter_context(TwinProcess("salesforce", tls_dir))
    crm = SalesforceConnector(SalesforceSettings(twin.base_url, session_id="SANDBOX_SESSION",
                                                 ca_file=twin.ca_file))
    stack.callback(crm.close)
    return CrmSandbox("salesforce", "Salesforce", twin, crm, seeder_for(crm),
                      {"HANDOFF_SALESFORCE_SESSION_ID": "SANDBOX_SESSION"}, salesforce_section(twin),
                      lambda: {r["Id"]: r.get("Handoff_Project_Id__c")
                               for r in twin_records(twin, "/_twin/records/Opportunity")})


def hubspot(stack: ExitStack, tls_dir: Path) -> CrmSandbox:
    from handoff.connectors.hubspot import HubSpotConnector, HubSpotSettings
    from handoff.connectors.hubspot.twin import SANDBOX_TOKEN

    twin = stack.enter_context(TwinProcess("hubspot", tls_dir))
    # Seeding hundreds of records is the sandbox's scaffolding, not handoff's traffic: the
    # twin's 190/10 s window is lifted for it (the connector's own tests keep it).
    relaxed = {"burst_limit": 100_000}
    reset(twin, relaxed)
    crm = HubSpotConnector(HubSpotSettings(access_token=SANDBOX_TOKEN, base_url=twin.base_url,
                                           requests_per_window=100_000))
    stack.callback(crm.close)
    return CrmSandbox("hubspot", "HubSpot", twin, crm, seeder_for(crm),
                      {"HANDOFF_HUBSPOT_ACCESS_TOKEN": SANDBOX_TOKEN},
                      f'[systems.hubspot]\nbase_url = "{twin.base_url}"\n',
                      lambda: {r["id"]: r["properties"].get("handoff_project_id")
                               for r in twin_records(twin, "/_twin/records/deals")}, relaxed)


def dynamics(stack: ExitStack, tls_dir: Path) -> CrmSandbox:
    from handoff.connectors.dynamics import DynamicsConnector, DynamicsSettings
    from handoff.connectors.dynamics.twin import SANDBOX_TOKEN

    twin = stack.enter_context(TwinProcess("dynamics", tls_dir))
    crm = DynamicsConnector(DynamicsSettings(access_token=SANDBOX_TOKEN, base_url=twin.base_url))
    stack.callback(crm.close)
    return CrmSandbox("dynamics", "Dynamics 365", twin, crm, seeder_for(crm),
                      {"HANDOFF_DYNAMICS_ACCESS_TOKEN": SANDBOX_TOKEN},
                      f'[systems.dynamics]\nbase_url = "{twin.base_url}"\n',
                      lambda: {r["opportunityid"]: r.get("handoff_projectid")
                               for r in twin_records(twin, "/_twin/records/opportunities")})


def netsuite(stack: ExitStack, tls_dir: Path) -> ErpSandbox:
    twin = stack.enter_context(TwinProcess("netsuite", tls_dir))

    def counts() -> ErpCounts:
        with twin.control() as control:
            held = control.get("/_twin/summary").raise_for_status().json()
        return ErpCounts(held["counts"]["customer"], held["counts"]["job"],
                         held["duplicate_external_ids"], held["transactions"]["invoice"])

    def connect() -> Any:
        from handoff.connectors.netsuite import NetSuiteConnector, NetSuiteSettings

        return NetSuiteConnector(NetSuiteSettings(f"{twin.base_url}/services/rest", "sandbox-token",
                                                  subsidiary_ids=SUBSIDIARIES, timeout=10))

    return ErpSandbox("netsuite", "NetSuite", twin, {"HANDOFF_NETSUITE_TOKEN": "sandbox-token"},
                      netsuite_section(twin), counts, connect)


def businesscentral(stack: ExitStack, tls_dir: Path) -> ErpSandbox:
    from handoff.connectors.businesscentral import BusinessCentralConnector, BusinessCentralSettings
    from handoff.connectors.businesscentral.twin import SANDBOX_TOKEN
    from handoff.connectors.businesscentral.twin_schema import Company

    twin = stack.enter_context(TwinProcess("businesscentral", tls_dir))
    company, entities = Company().id, ("US01", "UK01", "DE01")

    def counts() -> ErpCounts:
        with twin.control() as control:
            held = control.get("/_twin/summary").raise_for_status().json()
        return ErpCounts(held["counts"]["customers"], held["counts"]["projects"],
                         held["duplicate_numbers"], held["counts"]["salesInvoices"])

    def connect() -> Any:
        return BusinessCentralConnector(BusinessCentralSettings.for_twin(
            twin.base_url, SANDBOX_TOKEN, company, legal_entities=entities, timeout=10))

    config = (f'\n[systems.businesscentral]\ntenant = "sandbox"\nenvironment = "sandbox"\n'
              f'company_id = "{company}"\napi_root = "{twin.base_url}"\n'
              f'legal_entities = {list(entities)}\n'.replace("'", '"'))
    # API v2.0 projects hold no value, and keys are upper-cased Code fields: a long or mixed-case
    # deal id is kept as a compact key that cannot be read back (docs/connectors/businesscentral.md)
    return ErpSandbox("businesscentral", "Business Central", twin,
                      {"HANDOFF_BUSINESSCENTRAL_TOKEN": SANDBOX_TOKEN}, config, counts, connect,
                      holds_value=False, keys_read_back=False)


def oracle(stack: ExitStack, tls_dir: Path) -> ErpSandbox:
    from handoff.connectors.oracle import OracleConnector, OracleSettings
    from handoff.connectors.oracle.twin import SANDBOX_PASSWORD, SANDBOX_USER
    from handoff.connectors.oracle.twin_transactions import INVOICES

    twin = stack.enter_context(TwinProcess("oracle", tls_dir))
    units = {"US01": "US1 Business Unit", "UK01": "UK1 Business Unit", "DE01": "DE1 Business Unit"}

    def counts() -> ErpCounts:
        with twin.control() as control:
            held = control.get("/_twin/summary").raise_for_status().json()
        return ErpCounts(held["counts"]["accounts"], held["counts"]["projects"],
                         held["duplicate_references"], held["counts"].get(INVOICES, 0))

    def connect() -> Any:
        return OracleConnector(OracleSettings(base_url=twin.base_url, user=SANDBOX_USER,
                                              password=SANDBOX_PASSWORD, business_units=units, timeout=10))

    units_toml = ", ".join(f'{k} = "{v}"' for k, v in units.items())
    config = f'\n[systems.oracle]\nbase_url = "{twin.base_url}"\nbusiness_units = {{ {units_toml} }}\n'
    return ErpSandbox("oracle", "Oracle Fusion", twin,
                      {"HANDOFF_ORACLE_USER": SANDBOX_USER, "HANDOFF_ORACLE_PASSWORD": SANDBOX_PASSWORD},
                      config, counts, connect)


def sap(stack: ExitStack, tls_dir: Path) -> ErpSandbox:
    from handoff.connectors.sap import SapConnector, SapSettings
    from handoff.connectors.sap.twin import SANDBOX_PASSWORD, SANDBOX_USER

    twin = stack.enter_context(TwinProcess("sap", tls_dir))
    us = {"company_code": "1710", "cost_center": "17101101", "profit_center": "YB600",
          "sales_organization": "1710", "payment_terms": "0004"}
    organizations = {"US01": us, "DE01": {"company_code": "1010", "cost_center": "10101101",
                                          "profit_center": "YB101"},
                     "UK01": {"company_code": "1110", "cost_center": "11101101", "profit_center": "YB110"}}

    def counts() -> ErpCounts:
        with twin.control() as control:
            held = control.get("/_twin/summary").raise_for_status().json()
        projects = held["counts"]["A_EnterpriseProject"]
        return ErpCounts(held["counts"]["A_BusinessPartner"], projects,
                         held["duplicate_partner_keys"] + projects - len(held["elements_per_project"]),
                         held["counts"].get("A_BillingDocument", 0))

    def connect() -> Any:
        return SapConnector(SapSettings(base_url=twin.base_url, user=SANDBOX_USER, password=SANDBOX_PASSWORD,
                                        organizations=organizations, default_legal_entity="US01",
                                        timeout=10))

    tables = "".join(f"\n[systems.sap.organizations.{name}]\n"
                     + "".join(f'{key} = "{value}"\n' for key, value in values.items())
                     for name, values in organizations.items())
    config = f'\n[systems.sap]\nbase_url = "{twin.base_url}"\ndefault_legal_entity = "US01"\n{tables}'
    # SAP's billing run makes the invoices, and an enterprise project holds no contract value
    return ErpSandbox("sap", "SAP S/4HANA", twin,
                      {"HANDOFF_SAP_USER": SANDBOX_USER, "HANDOFF_SAP_PASSWORD": SANDBOX_PASSWORD},
                      config, counts, connect, bills=False, holds_value=False)


def stripe(stack: ExitStack, tls_dir: Path) -> BillingSandbox:
    from handoff.connectors.stripe.twin import SANDBOX_KEY

    twin = stack.enter_context(TwinProcess("stripe", tls_dir))

    def invoices() -> int:
        with twin.control() as control:
            return len(control.get("/_twin/objects/invoice").raise_for_status().json())

    return BillingSandbox("stripe", "Stripe", twin, {"HANDOFF_STRIPE_API_KEY": SANDBOX_KEY},
                          f'\n[systems.stripe]\nbase_url = "{twin.base_url}"\n', invoices)


CRMS: dict[str, Callable[[ExitStack, Path], CrmSandbox]] = {
    "salesforce": salesforce, "hubspot": hubspot, "dynamics": dynamics}
ERPS: dict[str, Callable[[ExitStack, Path], ErpSandbox]] = {
    "netsuite": netsuite, "businesscentral": businesscentral, "oracle": oracle, "sap": sap}
BILLINGS: dict[str, Callable[[ExitStack, Path], BillingSandbox]] = {"stripe": stripe}
