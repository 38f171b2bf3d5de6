"""Shared by the end-to-end tests: real twins in their own processes, real connectors."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from handoff.connectors.netsuite import NetSuiteConnector, NetSuiteSettings
from handoff.connectors.salesforce import SalesforceConnector, SalesforceSettings
from handoff.connectors.twin_process import TwinProcess
from handoff.demo.run import set_faults
from handoff.demo.scenario import Deal, Fate, deliveries, seed_crm
from handoff.engine import queue
from handoff.engine.exceptions import open_exceptions
from handoff.store.db import Database
from handoff.store.tables import provisioning
from tests.conftest import reset_twin

SUBSIDIARIES = {"US01": "2", "UK01": "3", "DE01": "4"}
ERP_FAULTS = {"throttle_rate": 0.10, "unavailable_rate": 0.10, "lose_response_rate": 0.05,
              "retry_after_seconds": 0, "seed": 5}
# Random 429s come without Retry-After: a real one holds every call of the connector until it
# passes (connectors/pacing_adaptive.py), which at one call in ten would be a test of waiting.


def connect(sf: TwinProcess, ns: TwinProcess) -> tuple[SalesforceConnector, NetSuiteConnector]:
    reset_twin(sf)
    reset_twin(ns)
    crm = SalesforceConnector(SalesforceSettings(sf.base_url, session_id="SANDBOX_SESSION",
                                                 ca_file=sf.ca_file, timeout=10))
    erp = NetSuiteConnector(NetSuiteSettings(f"{ns.base_url}/services/rest", "sandbox-token",
                                             subsidiary_ids=SUBSIDIARIES, timeout=10))
    return crm, erp


def won_deals_as_events(crm: SalesforceConnector, count: int, rng: random.Random,
                        copies: int = 3) -> list[dict[str, Any]]:
    """`count` won, approved deals in the CRM, and their deliveries: every change `copies`
    times, half of the deals with a stale version too, all shuffled."""
    since = datetime.now(UTC) - timedelta(hours=1)
    seed_crm(crm, [Deal(n, Fate.CLEAN) for n in range(1, count + 1)], rng)
    customers, opportunities = list(crm.changed_accounts(since)), list(crm.changed_opportunities(since))
    assert len(opportunities) == count
    return deliveries(customers, opportunities, rng, copies=copies, stale_share=0.5)


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def queue_depth(db: Database) -> int:
    with db.reading() as conn:
        return queue.depth(conn)


def provisioned(db: Database) -> dict[str, str]:
    with db.reading() as conn:
        rows = conn.execute(sa.select(provisioning.c.opportunity_id, provisioning.c.project_target_id)
                            .where(provisioning.c.status == "provisioned"))
        return {r.opportunity_id: r.project_target_id for r in rows}


def assert_exactly_once(db: Database, sf: TwinProcess, ns: TwinProcess, count: int) -> None:
    """One customer and one project per deal in the ERP, every CRM deal showing its project,
    nothing dead-lettered."""
    set_faults(ns, {})
    with ns.control() as control:
        erp = control.get("/_twin/summary").json()
    assert erp["counts"] == {"customer": count, "job": count}
    assert erp["duplicate_external_ids"] == 0
    assert set(erp["jobs_per_parent"].values()) == {1}
    with sf.control() as control:
        crm = {r["Id"]: r["Handoff_Project_Id__c"]
               for r in control.get("/_twin/records/Opportunity").json()}
    held = provisioned(db)
    assert len(held) == count and crm == held
    with db.reading() as conn:
        assert open_exceptions(conn) == []
