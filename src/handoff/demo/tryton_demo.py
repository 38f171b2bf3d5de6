"""`handoff demo --erp tryton`: the lifecycle against a real Tryton. Won deals become Tryton
projects, delivery reports milestones achieved, each becomes a posted Tryton invoice, and
its number and amounts come back into the lineage and out to the Salesforce twin."""

from __future__ import annotations

import random
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import orjson
import sqlalchemy as sa

from handoff.connectors.salesforce import SalesforceConnector, SalesforceSettings
from handoff.connectors.tryton.client import TrytonConnector, TrytonSettings
from handoff.connectors.tryton.sandbox import TrytonProcess
from handoff.connectors.twin_process import TwinProcess, free_port
from handoff.demo import scenario
from handoff.demo.processes import HandoffProcess
from handoff.demo.run import (
    CRM_FAULTS,
    Out,
    fresh_workdir,
    post_all,
    secrets_for,
    set_faults,
    tally,
    wait_idle,
    write_config,
)
from handoff.render import table
from handoff.store import open_database
from handoff.store.tables import invoices, provisioning

USD_ENTITIES = [("US01", "US-CA", "USD"), ("US01", "US-NY", "USD")]  # the sandbox company's


@dataclass
class TrytonDemoSummary:
    deals: int
    seconds: float
    statuses: Counter[str]
    expected_provisioned: int
    tryton_projects: int
    tryton_posted: int
    tryton_invoiced: Decimal
    handoff_invoices: int
    handoff_invoiced: Decimal
    crm_invoiced: Decimal
    milestones_reported: int
    example: str

    @property
    def ok(self) -> bool:
        return (self.statuses["provisioned"] == self.expected_provisioned == self.tryton_projects
                and self.tryton_posted == self.handoff_invoices == self.milestones_reported
                and self.tryton_invoiced == self.handoff_invoiced == self.crm_invoiced)


def run_tryton_demo(deals: int = 30, seed: int = 7, workdir: Path = Path(".handoff/demo-tryton"),
                    out: Out = print) -> TrytonDemoSummary:
    started, rng = time.monotonic(), random.Random(seed)
    database_url = fresh_workdir(workdir)
    with ExitStack() as stack:
        out("Starting the Salesforce twin, a real Tryton (its sandbox database comes from the "
            f"cache; the first run builds it) and handoff on {database_url}")
        sf = stack.enter_context(TwinProcess("salesforce", workdir / "tls"))
        tryton = stack.enter_context(TrytonProcess("sqlite"))
        info = tryton.info
        assert info is not None
        env = {**secrets_for(info), "HANDOFF_DATABASE_URL": database_url,
               "HANDOFF_CONFIG": str(write_config(workdir, database_url, sf, info))}
        crm = SalesforceConnector(SalesforceSettings(sf.base_url, session_id="SANDBOX_SESSION",
                                                     ca_file=sf.ca_file))
        stack.callback(crm.close)
        out(f"Seeding {deals} opportunities billed by milestone in the Salesforce twin")
        since = datetime.now(UTC) - timedelta(hours=1)
        fates, _ = scenario.seed_crm(crm, scenario.fates(deals, rng), rng, entities=USD_ENTITIES)
        port = free_port()
        service_url = f"http://127.0.0.1:{port}"
        stack.enter_context(HandoffProcess(["serve", "--port", str(port)], env,
                                           ready_url=f"{service_url}/healthz"))
        stack.enter_context(HandoffProcess(["worker"], env))
        set_faults(sf, CRM_FAULTS)
        opportunities = [scenario.with_schedule(o) for o in crm.changed_opportunities(since)]
        events = scenario.deliveries(list(crm.changed_accounts(since)), opportunities, rng)
        out(f"Delivering {len(events)} CloudEvents (repeats, stale versions; Salesforce throttles "
            "now and then)")
        out(f"  intake answered {tally(post_all(service_url, [orjson.dumps(e) for e in events]))}")
        wait_idle(service_url, out)
        reported = _report_milestones(service_url, fates, rng, out)
        wait_idle(service_url, out)
        set_faults(sf, {})
        summary = _gather(database_url, fates, sf, info, reported, time.monotonic() - started)
    out(render(summary, database_url))
    return summary


def _report_milestones(service_url: str, fates: dict[str, scenario.Fate], rng: random.Random,
                       out: Out) -> int:
    """Delivery reports the first milestone of half the provisioned deals achieved, and the
    second of some of those; each report arrives twice."""
    provisioned = [o for o, f in fates.items() if f is scenario.Fate.CLEAN]
    first = rng.sample(provisioned, max(1, len(provisioned) // 2))
    second = first[: max(1, len(first) // 3)]
    reports = [scenario.milestone_event(o, "M1") for o in first]
    reports += [scenario.milestone_event(o, "M2", on="2026-11-26") for o in second]
    out(f"Delivery reports {len(reports)} milestones achieved ({len(first)} kick-offs, "
        f"{len(second)} acceptances): each must become one posted Tryton invoice")
    post_all(service_url, [orjson.dumps(r) for r in reports * 2])
    return len(reports)


def _gather(database_url: str, fates: dict[str, scenario.Fate], sf: TwinProcess, info,
            reported: int, seconds: float) -> TrytonDemoSummary:
    db = open_database(database_url, migrate=False)
    with db.reading() as conn:
        statuses = Counter(conn.execute(sa.select(provisioning.c.status)).scalars())
        held = list(conn.execute(sa.select(invoices.c.opportunity_id, invoices.c.total)))
    db.dispose()
    with TrytonConnector(TrytonSettings(info.url, info.database, info.user, info.password)) as erp:
        projects = erp.rpc.call("model.project.work.search_count",
                                [("comment", "like", "[handoff HO-P-%")])
        posted = erp.rpc.call("model.account.invoice.search_read",
                              [("type", "=", "out"), ("state", "=", "posted")], 0, None, None,
                              ["total_amount"])
    with sf.control() as control:
        crm = control.get("/_twin/records/Opportunity").json()
    return TrytonDemoSummary(
        deals=len(fates), seconds=seconds, statuses=statuses,
        expected_provisioned=sum(f is scenario.Fate.CLEAN for f in fates.values()),
        tryton_projects=projects, tryton_posted=len(posted),
        tryton_invoiced=sum((r["total_amount"] for r in posted), Decimal(0)),
        handoff_invoices=len(held), handoff_invoiced=sum((r.total for r in held), Decimal(0)),
        crm_invoiced=sum((Decimal(str(r["Handoff_Invoiced_Amount__c"])) for r in crm
                          if r.get("Handoff_Invoiced_Amount__c") is not None), Decimal(0)),
        milestones_reported=reported,
        example=held[0].opportunity_id if held else next(iter(fates), ""),
    )


def render(s: TrytonDemoSummary, database_url: str) -> str:
    verdict = "every guarantee held" if s.ok else "SOMETHING DID NOT ADD UP — see above"
    rows = [
        ["opportunities played", s.deals, ""],
        ["provisioned", s.statuses["provisioned"], f"expected {s.expected_provisioned}"],
        ["blocked", s.statuses["blocked"], "release gates fail; the CRM shows why"],
        ["waiting (not won)", s.statuses["waiting"], ""],
        ["milestones reported achieved", s.milestones_reported, "each delivered twice"],
        ["invoices posted (handoff's record)", s.handoff_invoices, f"{s.handoff_invoiced} USD"],
    ]
    checks = [
        ["Tryton projects carrying handoff's id", s.tryton_projects, "one per provisioned deal"],
        ["Tryton customer invoices posted", s.tryton_posted, f"{s.tryton_invoiced} USD"],
        ["Salesforce deals' invoiced amounts", "", f"{s.crm_invoiced} USD in all"],
    ]
    return "\n".join([
        "", f"handoff demo (Tryton) — {s.deals} deals in {s.seconds:.1f} s: {verdict}", "",
        table(["what happened", "count", "detail"], rows), "",
        table(["checked in Tryton and the CRM twin", "count", "detail"], checks), "",
        "Look further (the demo's database stays where it is):",
        f"  handoff trace {s.example} --database {database_url}   its milestones and invoices",
    ])
