"""Every CRM × every ERP twin: 100 approved deals, each change delivered twice, shuffled,
against twins answering 10 % of calls with 429/503 and losing 5 % of responses after
committing: exactly one customer and one project per deal in the ERP, and every deal in the
CRM shows its project. A system joins the matrix by joining demo/systems.py."""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from handoff.bootstrap import build_worker
from handoff.config import PollSettings, Settings, WorkerSettings
from handoff.demo import scenario
from handoff.demo.systems import CRMS, ERPS, CrmSandbox, ErpSandbox
from handoff.engine.clock import utcnow
from handoff.engine.exceptions import open_exceptions
from handoff.engine.inbox import accept
from handoff.engine.retry import RetryPolicy
from handoff.store.db import open_database

DEALS = 100
USD_ONLY = [("US01", "US-CA", "USD")]
FAULTS = {"throttle_rate": 0.05, "retry_after_seconds": 0.2, "unavailable_rate": 0.05,
          "lose_response_rate": 0.05, "seed": 9}
# The CRMs' 429s carry a short Retry-After (Dataverse without one waits a long fallback); the
# ERPs' carry none, so the pair is a test of exactly-once, not of waiting (pacing has its own tests).
ERP_FAULTS = {**FAULTS, "retry_after_seconds": 0}
SETTINGS = Settings(worker=WorkerSettings(concurrency=8), poll=PollSettings(0, 0),
                    retry=RetryPolicy(base_seconds=0.02, cap_seconds=0.5, max_attempts=30))


@pytest.fixture(scope="module")
def sandboxes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every sandbox system's twin, started once for the module."""
    tls = tmp_path_factory.mktemp("matrix-tls")
    with ExitStack() as stack:
        yield {**{f"crm:{n}": make(stack, tls) for n, make in CRMS.items()},
               **{f"erp:{n}": make(stack, tls) for n, make in ERPS.items()}}


def set_faults(sandbox: CrmSandbox | ErpSandbox, plan: dict[str, Any]) -> None:
    with sandbox.twin.control() as control:
        control.put("/_twin/faults", json=plan).raise_for_status()


@pytest.mark.slow
@pytest.mark.parametrize("crm_name", sorted(CRMS))
@pytest.mark.parametrize("erp_name", sorted(ERPS))
def test_one_customer_and_one_project_per_deal_whatever_the_pair(
        sandboxes: dict[str, Any], crm_name: str, erp_name: str, tmp_path: Path) -> None:
    crm, erp = sandboxes[f"crm:{crm_name}"], sandboxes[f"erp:{erp_name}"]
    crm.reset()
    erp.reset()
    db = open_database(f"sqlite:///{tmp_path / 'handoff.db'}")
    since = datetime.now(UTC) - timedelta(hours=1)
    scenario.seed_crm(crm.seeder, [scenario.Deal(n, scenario.Fate.CLEAN) for n in range(DEALS)],
                      random.Random(1), entities=USD_ONLY, methods=["time_and_materials"])
    customers = list(crm.connector.changed_accounts(since))
    deals = list(crm.connector.changed_opportunities(since))
    assert len(deals) == DEALS
    events = scenario.deliveries(customers, deals, random.Random(2), copies=2, stale_share=0)
    set_faults(erp, ERP_FAULTS)
    set_faults(crm, {**FAULTS, "lose_response_rate": 0.0})
    for body in events:
        accept(db, body, utcnow())
    connector = erp.connect()
    build_worker(SETTINGS, db, crm.connector, connector).run(until_idle=True)
    set_faults(erp, {})
    set_faults(crm, {})
    held = erp.counts()
    with db.reading() as conn:
        stuck = [(x.business_key, x.message) for x in open_exceptions(conn)]
    assert (held.customers, held.projects, held.duplicate_external_ids) == (DEALS, DEALS, 0), stuck
    shown = crm.projects_shown()
    assert sum(1 for deal in deals if shown.get(deal["id"])) == DEALS
    connector.close()
    db.dispose()
