"""A small lifecycle on the Salesforce and NetSuite twins for the reconciliation tests:
fixed-fee USD deals provisioned and invoiced by handoff, the first one billed by milestone
with nothing delivered yet (a project, no invoice); and the calls that plant discrepancies."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from handoff.bootstrap import build_worker
from handoff.config import PollSettings, ReconcileSettings, Settings, WorkerSettings
from handoff.connectors import exact_json
from handoff.connectors.netsuite import NetSuiteConnector
from handoff.connectors.salesforce import SalesforceConnector
from handoff.demo import scenario
from handoff.engine.clock import utcnow
from handoff.engine.inbox import accept
from handoff.reconcile.runs import Systems, run_reconciliation
from handoff.store import reconciliation as store
from handoff.store.db import Database
from tests.connectors.netsuite_support import RECORD_PATH, TOKEN
from tests.e2e.harness import connect

USD_ONLY = [("US01", "US-CA", "USD")]


@dataclass
class Lifecycle:
    db: Database
    config: Settings
    crm: SalesforceConnector
    erp: NetSuiteConnector
    deals: list[str]  # by id; the first is billed by milestone, the others a fixed fee

    @property
    def systems(self) -> Systems:
        return Systems(self.crm, self.erp, self.config.release.gates)

    def work(self) -> None:
        build_worker(self.config, self.db, self.crm, self.erp).run(threading.Event(), until_idle=True)

    def reconciled(self) -> dict[tuple[str, str], str]:
        """Run a reconciliation: its findings, (deal, class) → explanation."""
        run = run_reconciliation(self.db, self.systems, self.config.reconcile, trigger="test")
        assert run is not None and run.status == "done"
        with self.db.reading() as conn:
            return {(f.deal_id, f.kind): f.explanation for f in store.findings(conn, run.id)}

    def close(self) -> None:
        self.crm.close()
        self.erp.close()


def settings(tmp_path: Path) -> Settings:
    return Settings(worker=WorkerSettings(concurrency=4), poll=PollSettings(0, 0),
                    reconcile=ReconcileSettings(snapshots=str(tmp_path / "snapshots")))


def provisioned(db: Database, sf: Any, ns: Any, tmp_path: Path, count: int) -> Lifecycle:
    crm, erp = connect(sf, ns)
    since = datetime.now(UTC) - timedelta(hours=1)
    scenario.seed_crm(crm, [scenario.Deal(n, scenario.Fate.CLEAN) for n in range(count)],
                      random.Random(3), entities=USD_ONLY, methods=["Fixed Fee"])
    customers = list(crm.changed_accounts(since))
    deals = sorted(crm.changed_opportunities(since), key=lambda o: o["id"])
    deals[0] = scenario.with_schedule(deals[0])
    for body in scenario.deliveries(customers, deals, random.Random(4), copies=1, stale_share=0):
        accept(db, body, utcnow())
    lifecycle = Lifecycle(db, settings(tmp_path), crm, erp, [d["id"] for d in deals])
    lifecycle.work()
    return lifecycle


def netsuite(twin: Any) -> Any:
    client = twin.control()
    client.headers.update({"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    return client


def job(client: Any, deal: str) -> dict[str, Any]:
    return client.get(f"{RECORD_PATH}/job/eid:HO-P-{deal}").raise_for_status().json()


def set_job_price(client: Any, deal: str, price: Decimal) -> None:
    body = exact_json.dumps({"jobPrice": price})
    client.patch(f"{RECORD_PATH}/job/{job(client, deal)['id']}", content=body).raise_for_status()


def invoice_id(client: Any, deal: str) -> str:
    return client.get(f"{RECORD_PATH}/invoice/eid:HO-I-{deal}-fee").raise_for_status().json()["id"]
