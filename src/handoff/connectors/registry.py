"""Build the configured connectors from `[systems]` in the TOML file; secrets come from
the environment only.

    [systems]
    crm = "salesforce"
    erp = "netsuite"

    [systems.salesforce]          # HANDOFF_SALESFORCE_SESSION_ID, or
    instance_url = "https://…"    # HANDOFF_SALESFORCE_USERNAME / _PASSWORD / _SECURITY_TOKEN
    ca_file = "…"                 # optional: a private CA to trust

    [systems.hubspot]             # HANDOFF_HUBSPOT_ACCESS_TOKEN  (with crm = "hubspot")
    base_url = "https://api.hubapi.com"

    [systems.dynamics]            # HANDOFF_DYNAMICS_ACCESS_TOKEN  (with crm = "dynamics")
    base_url = "https://<org>.crm.dynamics.com"

    [systems.netsuite]            # HANDOFF_NETSUITE_TOKEN
    base_url = "https://<account>.suitetalk.api.netsuite.com/services/rest"
    subsidiary_ids = { US01 = "2" }

    [systems.businesscentral]     # HANDOFF_BUSINESSCENTRAL_TOKEN  (with erp = "businesscentral")
    tenant = "contoso.onmicrosoft.com"
    environment = "production"
    company_id = "…"              # GET …/api/v2.0/companies
    legal_entities = ["US01"]

    [systems.oracle]              # HANDOFF_ORACLE_USER and _PASSWORD, or HANDOFF_ORACLE_TOKEN
    base_url = "https://<pod>.fa.<region>.oraclecloud.com"
    business_units = { US01 = "US1 Business Unit" }

    [systems.stripe]              # HANDOFF_STRIPE_API_KEY  (with billing = "stripe": it invoices,
    base_url = "https://api.stripe.com"   # not the ERP)

    [systems.tryton]              # HANDOFF_TRYTON_PASSWORD  (with erp = "tryton")
    url = "https://erp.example.com/"
    database = "tryton"
    user = "handoff"
    product_code = "SERVICE"
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from handoff.connectors.fieldmap import parse_field_map
from handoff.connectors.ports import CrmConnector, ErpConnector
from handoff.errors import ConfigError

SECRETS = {
    "salesforce": {"session_id": "HANDOFF_SALESFORCE_SESSION_ID",
                   "username": "HANDOFF_SALESFORCE_USERNAME",
                   "password": "HANDOFF_SALESFORCE_PASSWORD",
                   "security_token": "HANDOFF_SALESFORCE_SECURITY_TOKEN"},
    "hubspot": {"access_token": "HANDOFF_HUBSPOT_ACCESS_TOKEN"},
    "dynamics": {"access_token": "HANDOFF_DYNAMICS_ACCESS_TOKEN"},
    "businesscentral": {"token": "HANDOFF_BUSINESSCENTRAL_TOKEN"},
    "sap": {"user": "HANDOFF_SAP_USER", "password": "HANDOFF_SAP_PASSWORD"},
    "stripe": {"api_key": "HANDOFF_STRIPE_API_KEY"},
    "oracle": {"user": "HANDOFF_ORACLE_USER", "password": "HANDOFF_ORACLE_PASSWORD",
               "token": "HANDOFF_ORACLE_TOKEN"},
    "netsuite": {"token": "HANDOFF_NETSUITE_TOKEN"},
    "tryton": {"password": "HANDOFF_TRYTON_PASSWORD"},
}


def connect_crm(systems: Mapping[str, Any], env: Mapping[str, str]) -> CrmConnector:
    name = _chosen(systems, "crm", ("salesforce", "hubspot", "dynamics"))
    if name == "dynamics":
        from handoff.connectors.dynamics import DynamicsConnector, DynamicsSettings

        return DynamicsConnector(_settings(DynamicsSettings, name, systems, env))
    if name == "hubspot":
        from handoff.connectors.hubspot.client import HubSpotConnector
        from handoff.connectors.hubspot.settings import HubSpotSettings

        return HubSpotConnector(_settings(HubSpotSettings, name, systems, env))
    from handoff.connectors.salesforce import SalesforceConnector, SalesforceSettings

    return SalesforceConnector(_settings(SalesforceSettings, name, systems, env))


def connect_erp(systems: Mapping[str, Any], env: Mapping[str, str]) -> ErpConnector:
    name = _chosen(systems, "erp", ("netsuite", "tryton", "businesscentral", "oracle", "sap"))
    if name == "sap":
        from handoff.connectors.sap import SapConnector, SapSettings

        return SapConnector(_settings(SapSettings, name, systems, env))
    if name == "oracle":
        from handoff.connectors.oracle import OracleConnector, OracleSettings

        return OracleConnector(_settings(OracleSettings, name, systems, env))
    if name == "businesscentral":
        from handoff.connectors.businesscentral import BusinessCentralConnector, BusinessCentralSettings

        return BusinessCentralConnector(_settings(BusinessCentralSettings, name, systems, env))
    if name == "tryton":
        from handoff.connectors.tryton.client import TrytonConnector, TrytonSettings

        return TrytonConnector(_settings(TrytonSettings, name, systems, env))
    from handoff.connectors.netsuite import NetSuiteConnector, NetSuiteSettings

    return NetSuiteConnector(_settings(NetSuiteSettings, name, systems, env))


def connect_billing(systems: Mapping[str, Any], db: Any, env: Mapping[str, str]) -> Any:
    """The billing system (`[systems] billing = "stripe"`), or None: the ERP invoices."""
    if systems.get("billing") is None:
        return None
    name = _chosen(systems, "billing", ("stripe",))
    from handoff.connectors.stripe import StripeConnector, StripeSettings
    from handoff.connectors.stripe.customers import StoreCustomers

    return StripeConnector(_settings(StripeSettings, name, systems, env), StoreCustomers(db))


def _chosen(systems: Mapping[str, Any], role: str, known: tuple[str, ...]) -> str:
    name = systems.get(role, known[0])
    if name not in known:
        raise ConfigError(f"[systems] {role} = {name!r} is not supported; choose {', '.join(known)}")
    return str(name)


def _settings(kind: type, name: str, systems: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    options = dict(systems.get(name, {}))
    if "mapping" in options:  # checked with its line numbers when the configuration loaded
        if "field_map" not in {f.name for f in dataclasses.fields(kind)}:
            raise ConfigError(f"[systems.{name}.mapping]: field mapping is for the CRM a deal comes "
                              "from; this system takes none")
        options["field_map"] = parse_field_map(name, options.pop("mapping"), lambda _key: "")
    secrets = SECRETS[name]
    leaked = set(options) & set(secrets)
    if leaked:
        raise ConfigError(f"[systems.{name}] must not hold secrets ({', '.join(sorted(leaked))}); "
                          f"set {', '.join(secrets[k] for k in sorted(leaked))} instead")
    fields = dataclasses.fields(kind)
    unknown = set(options) - {f.name for f in fields}
    if unknown:
        raise ConfigError(f"[systems.{name}]: unknown key(s) {', '.join(sorted(unknown))}")
    options |= {key: env[var] for key, var in secrets.items() if var in env}
    missing = [f.name for f in fields if f.name not in options
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        where = ", ".join(secrets.get(m, f"[systems.{name}] {m}") for m in missing)
        raise ConfigError(f"{name} is not configured: set {where} (try `handoff demo` or "
                          "`handoff sandbox` for local twins)")
    try:
        return kind(**options)
    except TypeError as exc:
        raise ConfigError(f"[systems.{name}]: {exc}") from None
