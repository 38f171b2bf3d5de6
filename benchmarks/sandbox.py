"""The sandbox twins as the benchmarks use them: started in their own processes, reset,
seeded with won deals, counted, and checked for exactly one project per deal."""

from __future__ import annotations

import random
import ssl
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from benchmarks.cpu import process_seconds
from benchmarks.load import LeanClient
from handoff.connectors.salesforce import SalesforceConnector, SalesforceSettings
from handoff.connectors.twin_process import TwinProcess
from handoff.demo.scenario import BILLING, Deal, Fate, deliveries, seed_crm

SESSION_ID = "SANDBOX_SESSION"
NETSUITE_TOKEN = "sandbox-token"
Twins = tuple[TwinProcess, TwinProcess]  # Salesforce, NetSuite


class BenchmarkFailed(RuntimeError):
    """A run did not end as it must (a duplicate, a missing project): its figures are void."""


@contextmanager
def running_twins(tls_dir: Path) -> Iterator[Twins]:
    """The Salesforce and NetSuite twins, each in its own process."""
    with ExitStack() as stack:
        yield (stack.enter_context(TwinProcess("salesforce", tls_dir)),
               stack.enter_context(TwinProcess("netsuite", tls_dir)))


def crm_client(sf: TwinProcess) -> SalesforceConnector:
    return SalesforceConnector(SalesforceSettings(sf.base_url, session_id=SESSION_ID,
                                                  ca_file=sf.ca_file))


def api_client(twin: TwinProcess) -> httpx.Client:
    """A plain client of the twin's vendor API, signed in as the sandbox accepts."""
    token = SESSION_ID if twin.system == "salesforce" else NETSUITE_TOKEN
    return httpx.Client(base_url=twin.base_url, verify=twin.verify, timeout=30.0,
                        headers={"Authorization": f"Bearer {token}"})


def lean_api_client(twin: TwinProcess) -> LeanClient:
    """The same on handoff's own keep-alive client: one write a request, as handoff's
    connectors send them, and little enough CPU that the twin, not the generator, is measured."""
    token = SESSION_ID if twin.system == "salesforce" else NETSUITE_TOKEN
    context = twin.verify if isinstance(twin.verify, ssl.SSLContext) else None
    return LeanClient(twin.base_url, headers={"Authorization": f"Bearer {token}"}, ssl_context=context)


def reset(*twins: TwinProcess) -> None:
    """No records, no faults, counters back to zero."""
    for twin in twins:
        with twin.control() as control:
            control.post("/_twin/reset").raise_for_status()
            control.put("/_twin/faults", json={}).raise_for_status()


def seed_won_deals(sf: TwinProcess, count: int, rng: random.Random, copies: int = 1,
                   methods: Sequence[str] = BILLING) -> list[dict[str, Any]]:
    """`count` won, releasable deals in the CRM (after a reset: only these), billed by one of
    `methods`, and the CloudEvents a change feed delivers of them: each deal `copies` times,
    shuffled."""
    since = datetime.now(UTC) - timedelta(hours=1)
    crm = crm_client(sf)
    try:
        seed_crm(crm, [Deal(n, Fate.CLEAN) for n in range(1, count + 1)], rng, methods=methods)
        customers, opportunities = list(crm.changed_accounts(since)), list(crm.changed_opportunities(since))
    finally:
        crm.close()
    return deliveries(customers, opportunities, rng, copies=copies, stale_share=0.0)


def requests_seen(twin: TwinProcess) -> int:
    with twin.control() as control:
        return int(control.get("/_twin/stats").json().get("requests", 0))


def twin_cpu(twin: TwinProcess) -> float:
    assert twin.process is not None, "the twin is not running"
    return process_seconds(twin.process.pid)


def netsuite_summary(ns: TwinProcess) -> dict[str, Any]:
    with ns.control() as control:
        return control.get("/_twin/summary").json()


def crm_opportunities(sf: TwinProcess) -> list[dict[str, Any]]:
    with sf.control() as control:
        return control.get("/_twin/records/Opportunity").json()


def check_exactly_once(sf: TwinProcess, ns: TwinProcess, deals: int) -> None:
    """One customer and one project per deal in NetSuite, each deal showing its project in
    the CRM; raises BenchmarkFailed otherwise."""
    erp = netsuite_summary(ns)
    problems = []
    if erp["counts"] != {"customer": deals, "job": deals}:
        problems.append(f"NetSuite holds {erp['counts']}, expected {deals} of each")
    if erp["duplicate_external_ids"]:
        problems.append(f"{erp['duplicate_external_ids']} duplicate external ids in NetSuite")
    opportunities = crm_opportunities(sf)
    missing = [o["Id"] for o in opportunities if not o.get("Handoff_Project_Id__c")]
    if len(opportunities) != deals or missing:
        problems.append(f"{len(missing)} of {len(opportunities)} CRM deals show no project id")
    if problems:
        raise BenchmarkFailed("; ".join(problems))
