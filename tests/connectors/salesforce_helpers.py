"""What the Salesforce tests share: a clean twin, clients aimed at it, seed records."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce

from handoff.connectors.salesforce import SalesforceConnector, SalesforceSettings
from handoff.connectors.salesforce.twin import SANDBOX_SESSION
from handoff.connectors.salesforce.twin_soap import (
    SANDBOX_PASSWORD,
    SANDBOX_SECURITY_TOKEN,
    SANDBOX_USERNAME,
)
from handoff.connectors.twin_process import TwinProcess
from tests.conftest import reset_twin

OPEN_DEAL = {"StageName": "Prospecting", "CloseDate": "2026-12-31"}


def fresh(twin: TwinProcess) -> TwinProcess:
    reset_twin(twin)
    return twin


def sdk_session(twin: TwinProcess) -> requests.Session:
    """A session trusting the twin's CA. trust_env is off because requests lets a
    REQUESTS_CA_BUNDLE in the environment win over `session.verify`."""
    session = requests.Session()
    session.verify = twin.ca_file
    session.trust_env = False
    return session


def sdk(twin: TwinProcess, version: str = "59.0", session_id: str = SANDBOX_SESSION) -> Salesforce:
    """simple-salesforce in direct mode against the twin."""
    return Salesforce(session_id=session_id, instance_url=twin.base_url,
                      session=sdk_session(twin), version=version)


def login_settings(twin: TwinProcess, **overrides: Any) -> SalesforceSettings:
    values: dict[str, Any] = {
        "instance_url": twin.base_url, "username": SANDBOX_USERNAME,
        "password": SANDBOX_PASSWORD, "security_token": SANDBOX_SECURITY_TOKEN,
        "ca_file": twin.ca_file, "timeout": 10.0,
    }
    return SalesforceSettings(**(values | overrides))


def connector(twin: TwinProcess, **overrides: Any) -> SalesforceConnector:
    return SalesforceConnector(login_settings(twin, **overrides))


def control(twin: TwinProcess, method: str, path: str, body: Any = None) -> Any:
    with twin.control() as client:
        response = client.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None


def set_faults(twin: TwinProcess, **plan: Any) -> None:
    control(twin, "PUT", "/_twin/faults", plan)


def set_twin(twin: TwinProcess, **settings: Any) -> None:
    control(twin, "PUT", "/_twin/settings", settings)


def twin_records(twin: TwinProcess, sobject: str) -> list[dict[str, Any]]:
    return control(twin, "GET", f"/_twin/records/{sobject}")


def seed_account(sf: Salesforce, name: str = "Acme GmbH", **fields: Any) -> str:
    return sf.Account.create({"Name": name, **fields})["id"]


def seed_opportunity(sf: Salesforce, account_id: str, name: str = "Acme rollout",
                     **fields: Any) -> str:
    return sf.Opportunity.create({"Name": name, "AccountId": account_id, **OPEN_DEAL,
                                  **fields})["id"]


def seed_opportunities(sf: Salesforce, account_id: str, count: int) -> list[str]:
    """Many opportunities in sObject Collections calls of 200."""
    ids: list[str] = []
    for start in range(0, count, 200):
        records = [{"attributes": {"type": "Opportunity"}, "Name": f"Deal {n}",
                    "AccountId": account_id, **OPEN_DEAL}
                   for n in range(start, min(count, start + 200))]
        results = sf.restful("composite/sobjects", method="POST",
                             json={"allOrNone": True, "records": records})
        ids += [r["id"] for r in results]
    return ids



@pytest.fixture
def twin(salesforce_twin: TwinProcess) -> TwinProcess:
    """The session's Salesforce twin, emptied."""
    return fresh(salesforce_twin)


@pytest.fixture
def crm(twin: TwinProcess) -> SalesforceConnector:
    return connector(twin)
