"""Runs the demo: twins and handoff in their own processes, the scripted lifecycle through
the real HTTP intake, faults injected along the way, then the summary."""

from __future__ import annotations

import random
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson

from handoff.connectors.tryton.sandbox import TrytonSandboxInfo
from handoff.connectors.twin_process import TwinProcess, free_port
from handoff.demo import scenario
from handoff.demo.processes import HandoffProcess
from handoff.demo.summary import DemoSummary, gather, render
from handoff.demo.systems import (
    BILLINGS,
    CRMS,
    ERPS,
    CrmSandbox,
    netsuite_section,
    salesforce_section,
)

Out = Callable[[str], None]
FAULTS = {"throttle_rate": 0.08, "retry_after_seconds": 0.25, "unavailable_rate": 0.06,
          "lose_response_rate": 0.05, "seed": 11}
CRM_FAULTS = {"throttle_rate": 0.04, "retry_after_seconds": 0.25, "seed": 12}
SECRETS = {"HANDOFF_SALESFORCE_SESSION_ID": "SANDBOX_SESSION",
           "HANDOFF_NETSUITE_TOKEN": "sandbox-token"}


DEMO_TOKEN = secrets.token_urlsafe(24)  # the demo's operator, for the API's acting routes


def run_demo(deals: int = 60, seed: int = 7, workdir: Path = Path(".handoff/demo"),
             out: Out = print, crm_name: str = "salesforce", erp_name: str = "netsuite",
             billing_name: str | None = None) -> DemoSummary:
    started = time.monotonic()
    rng = random.Random(seed)
    database_url = fresh_workdir(workdir)
    with ExitStack() as stack:
        crm, erp = CRMS[crm_name](stack, workdir / "tls"), ERPS[erp_name](stack, workdir / "tls")
        billing = BILLINGS[billing_name](stack, workdir / "tls") if billing_name else None
        labels = ", ".join(s.label for s in (crm, erp, billing) if s)
        out(f"Started the sandbox twins ({labels}); handoff on {database_url}")
        config = write_config_text(workdir, database_url, (crm.name, crm.config), (erp.name, erp.config),
                                   billing=(billing.name, billing.config) if billing else None)
        env = {**crm.secrets, **erp.secrets, **(billing.secrets if billing else {}),
               "HANDOFF_CONFIG": str(config),
               "HANDOFF_DATABASE_URL": database_url, "HANDOFF_API_TOKENS": f"demo={DEMO_TOKEN}"}
        out(f"Seeding {deals} opportunities and their accounts in the {crm.label} twin")
        fates, accounts = scenario.seed_crm(crm.seeder, scenario.fates(deals, rng), rng)
        port = free_port()
        service_url = f"http://127.0.0.1:{port}"
        stack.enter_context(HandoffProcess(["serve", "--port", str(port)], env,
                                           ready_url=f"{service_url}/healthz"))
        set_faults(erp.twin, FAULTS)
        stack.enter_context(HandoffProcess(["worker"], env))
        refused = _phase_one(crm.connector, service_url, rng, out)
        set_faults(crm.twin, CRM_FAULTS)
        set_faults(erp.twin, {**FAULTS, "maintenance_seconds": 2})
        out(f"{erp.label} maintenance window: every call answered 503 for 2 s")
        wait_idle(service_url, out)
        set_faults(crm.twin, {})  # the demo's own edits in the CRM are not under test
        _phase_two(crm, fates, accounts, service_url, rng, out)
        set_faults(crm.twin, CRM_FAULTS)
        wait_idle(service_url, out)
        set_faults(crm.twin, {})
        set_faults(erp.twin, {})
        reconciled = reconcile_over_http(service_url, erp.label, out)
        summary = gather(database_url, fates, crm, erp, refused, time.monotonic() - started, reconciled,
                         billing)
    out(render(summary, database_url))
    return summary


def fresh_workdir(workdir: Path) -> str:
    database = workdir / "handoff.db"
    for leftover in workdir.glob("handoff.db*"):
        leftover.unlink()
    shutil.rmtree(workdir / "tls", ignore_errors=True)
    workdir.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{database}"


def write_config(workdir: Path, database_url: str, sf: TwinProcess,
                 erp: TwinProcess | TrytonSandboxInfo, lease_seconds: float = 30) -> Path:
    """A handoff.toml aimed at the Salesforce twin and either the NetSuite twin or a sandbox
    Tryton (secrets stay out of it: see SECRETS and `secrets_for`)."""
    erp_name = "netsuite" if isinstance(erp, TwinProcess) else "tryton"
    return write_config_text(workdir, database_url, ("salesforce", salesforce_section(sf)),
                             (erp_name, _erp_section(erp)), lease_seconds)


def write_config_text(workdir: Path, database_url: str, crm: tuple[str, str], erp: tuple[str, str],
                      lease_seconds: float = 30, billing: tuple[str, str] | None = None) -> Path:
    """A handoff.toml aimed at the running sandbox: (name, its [systems.<name>] section) of the
    CRM, of the ERP and of a billing system that invoices instead of the ERP."""
    billing_line = f'billing = "{billing[0]}"\n' if billing else ""
    path = workdir / "handoff.toml"
    path.write_text(f"""# Written by `handoff demo` for its sandbox.
[database]
url = "{database_url}"

[worker]
concurrency = 16
lease_seconds = {lease_seconds}

[retry]
base_seconds = 0.2
cap_seconds = 1.5
max_attempts = 12

[reconcile]
cron = ""  # the demo reconciles once, through the API, when its lifecycle is played
snapshots = "{workdir / 'reconcile'}"

[roles]
integrator = ["demo"]  # the demo's operator, who starts the reconciliation

[poll]
crm_minutes = 0  # the demo delivers the CRM's changes as events itself,
erp_minutes = 0  # and delivery's milestones too

[policy.release]
legal_entities = ["US01", "UK01", "DE01"]

[systems]
crm = "{crm[0]}"
erp = "{erp[0]}"
{billing_line}
{crm[1]}{erp[1]}{billing[1] if billing else ""}""")
    return path


def _erp_section(erp: TwinProcess | TrytonSandboxInfo) -> str:
    if isinstance(erp, TwinProcess):
        return netsuite_section(erp)
    return f"""
[systems.tryton]
url = "{erp.url}"
database = "{erp.database}"
user = "{erp.user}"
max_concurrency = {1 if erp.backend == "sqlite" else 4}
"""


def secrets_for(erp: TwinProcess | TrytonSandboxInfo) -> dict[str, str]:
    """The environment a handoff process needs for the sandbox's credentials."""
    if isinstance(erp, TwinProcess):
        return dict(SECRETS)
    return {**SECRETS, "HANDOFF_TRYTON_PASSWORD": erp.password}


def _phase_one(crm: Any, service_url: str, rng: random.Random,
               out: Out) -> list[tuple[str, int]]:
    since = datetime.now(UTC) - timedelta(hours=1)
    customers, opportunities = list(crm.changed_accounts(since)), list(crm.changed_opportunities(since))
    events = scenario.deliveries(customers, opportunities, rng)
    out(f"Delivering {len(events)} CloudEvents for {len(opportunities)} deals: repeats, "
        "reordering and stale versions, with 429s, 503s and lost responses injected")
    statuses = post_all(service_url, [orjson.dumps(e) for e in events])
    out(f"  intake answered {tally(statuses)}")
    return _post_bad_inputs(service_url, opportunities[0])


def _phase_two(crm: CrmSandbox, fates: dict[str, scenario.Fate],
               accounts: dict[str, str], service_url: str, rng: random.Random, out: Out) -> None:
    since = datetime.now(UTC) - timedelta(seconds=1)
    for opportunity_id, fate in fates.items():
        if fate is scenario.Fate.AWAITS_CUSTOMER:
            crm.seeder.update_account(accounts[opportunity_id], {"validation_status": "valid"})
        elif fate is scenario.Fate.AWAITS_SOW:
            crm.seeder.update_opportunity(opportunity_id, {"sow_status": "approved"})
    customers = list(crm.connector.changed_accounts(since))
    opportunities = list(crm.connector.changed_opportunities(since))
    unblocking = [o for o in opportunities if fates.get(o["id"]) is scenario.Fate.AWAITS_SOW]
    events = scenario.deliveries(customers, unblocking, rng)
    out(f"Customer master validates {len(customers)} customers and {len(unblocking)} SOWs are "
        f"approved: {len(events)} more events")
    post_all(service_url, [orjson.dumps(e) for e in events])


def reconcile_over_http(service_url: str, erp_label: str, out: Out,
                        timeout: float = 60.0) -> dict[str, Any]:
    """Start a reconciliation through the API, as an operator would, and wait for its run."""
    out(f"Reconciling the CRM, {erp_label} and handoff's approved plans (POST /reconciliation/runs)")
    with httpx.Client(base_url=service_url, timeout=30.0,
                      headers={"Authorization": f"Bearer {DEMO_TOKEN}"}) as client:
        location = client.post("/reconciliation/runs").raise_for_status().headers["location"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = client.get(location).json().get("run", {})
            if run.get("status") != "running":
                return run
            time.sleep(0.2)
    return {"status": "running", "error": f"not finished after {timeout:.0f} s"}


def post_all(service_url: str, bodies: Iterable[bytes]) -> list[int]:
    headers = {"content-type": "application/cloudevents+json"}
    with httpx.Client(base_url=service_url, timeout=30.0) as client, \
            ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda b: client.post("/events", content=b, headers=headers)
                             .status_code, bodies))


def _post_bad_inputs(service_url: str, template: dict[str, Any]) -> list[tuple[str, int]]:
    bodies = [(label, raw) for label, raw in scenario.BAD_INPUTS]
    bodies += [(problem, orjson.dumps(scenario.bad_opportunity(template, problem)))
               for problem in ("wrong currency", "negative amount")]
    return [(label, status) for (label, _), status
            in zip(bodies, post_all(service_url, [raw for _, raw in bodies]), strict=True)]


def set_faults(twin: TwinProcess, plan: dict[str, Any]) -> None:
    with twin.control() as control:
        control.put("/_twin/faults", json=plan).raise_for_status()


def wait_idle(service_url: str, out: Out, timeout: float = 120.0) -> None:
    """Until the queue is empty twice in a row (nothing queued, nothing in backoff)."""
    deadline, empty_polls, shown = time.monotonic() + timeout, 0, -1
    with httpx.Client(base_url=service_url, timeout=5.0) as client:
        while time.monotonic() < deadline:
            depth = client.get("/healthz").json()["queue_depth"]
            empty_polls = empty_polls + 1 if depth == 0 else 0
            if empty_polls >= 2:
                if shown >= 0:
                    print("\r" + " " * 40 + "\r", end="", file=sys.stderr)
                return
            if depth != shown and sys.stderr.isatty():
                print(f"\r  reconciling… {depth:4d} deals queued ", end="", file=sys.stderr)
                shown = depth
            time.sleep(0.2)
    raise RuntimeError(f"the queue did not drain within {timeout:.0f} s")


def tally(statuses: list[int]) -> str:
    counts: dict[int, int] = {}
    for status in statuses:
        counts[status] = counts.get(status, 0) + 1
    return ", ".join(f"{n}× {s}" for s, n in sorted(counts.items()))
