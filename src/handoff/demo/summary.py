"""What the demo proves, read back from handoff's store and from the twins themselves."""

from __future__ import annotations

import os
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from handoff.connectors.twin_process import TwinProcess
from handoff.demo.scenario import Fate
from handoff.demo.systems import BillingSandbox, CrmSandbox, ErpSandbox
from handoff.render import table
from handoff.store import open_database
from handoff.store.metrics import counts
from handoff.store.tables import exceptions, hops, invoices, opportunities, provisioning


@dataclass
class DemoSummary:
    deals: int
    seconds: float
    expected_provisioned: int
    statuses: Counter[str]
    blocked_by_gate: Counter[str]
    counters: dict[str, int]
    refused: list[tuple[str, int]]
    faults: dict[str, Counter[str]]
    erp_projects: int
    erp_customers: int
    erp_duplicate_external_ids: int
    crm_showing_project: int
    crm_project_mismatches: int
    open_dead_letters: int
    blocked_then_released: int
    fixed_fees: int = 0     # provisioned deals billed by fixed fee: each invoiced once
    handoff_bills: bool = True  # False: the ERP invoices by its own run, handoff sends none
    invoices: int = 0       # the invoices handoff recorded
    erp_invoices: int = 0   # … and those NetSuite holds
    reconciliation: dict[str, Any] = field(default_factory=dict)  # the run, as the API shows it
    expected_findings: dict[str, int] | None = field(default_factory=dict)  # None: not matched
    examples: dict[str, str] = field(default_factory=dict)
    crm_label: str = "Salesforce"
    erp_label: str = "NetSuite"
    billing_label: str = "NetSuite"  # where the invoices are: the ERP, or a billing system

    @property
    def expected_invoices(self) -> int:
        return self.fixed_fees if self.handoff_bills else 0

    @property
    def findings(self) -> dict[str, int]:
        return {kind: n for kind, n in self.reconciliation.get("counts", {}).items() if n}

    @property
    def ok(self) -> bool:
        provisioned = self.statuses["provisioned"]
        return (provisioned == self.expected_provisioned == self.erp_projects
                == self.crm_showing_project and self.erp_duplicate_external_ids == 0
                and self.crm_project_mismatches == 0 and self.open_dead_letters == 0
                and self.expected_invoices == self.invoices == self.erp_invoices
                and self.reconciliation.get("status") == "done"
                and self.expected_findings in (None, self.findings)
                and all(400 <= status < 500 for _, status in self.refused))


def gather(database_url: str, fates: dict[str, Fate], crm: CrmSandbox, erp: ErpSandbox,
           refused: list[tuple[str, int]], seconds: float,
           reconciliation: dict[str, Any] | None = None,
           billing: BillingSandbox | None = None) -> DemoSummary:
    db = open_database(database_url, migrate=False)
    with db.reading() as conn:
        rows = conn.execute(sa.select(provisioning.c.opportunity_id, provisioning.c.status,
                                      provisioning.c.detail, provisioning.c.project_target_id)).all()
        counters = counts(conn)
        unblocked = conn.execute(
            sa.select(sa.func.count(sa.distinct(hops.c.opportunity_id)))
            .join(provisioning, provisioning.c.opportunity_id == hops.c.opportunity_id)
            .where(hops.c.step == "release", hops.c.outcome == "blocked",
                   provisioning.c.status == "provisioned")).scalar_one()
        busiest = conn.execute(
            sa.select(hops.c.opportunity_id).group_by(hops.c.opportunity_id)
            .order_by(sa.func.count().desc()).limit(1)).scalar()
        dead = conn.execute(sa.select(sa.func.count()).select_from(exceptions).where(
            exceptions.c.kind == "dead_letter", exceptions.c.resolved_at.is_(None))).scalar_one()
        invoiced = conn.execute(sa.select(sa.func.count()).select_from(invoices)).scalar_one()
        methods = Counter(data["billing_method"] for data in conn.execute(
            sa.select(opportunities.c.data).join(
                provisioning, provisioning.c.opportunity_id == opportunities.c.id)
            .where(provisioning.c.status == "provisioned")).scalars())
    db.dispose()
    held, shown = erp.counts(), crm.projects_shown()
    projects = {r.opportunity_id: r.project_target_id for r in rows if r.project_target_id}
    return DemoSummary(
        deals=len(fates), seconds=seconds,
        expected_provisioned=sum(f.ends_provisioned for f in fates.values()),
        statuses=Counter(r.status for r in rows),
        blocked_by_gate=Counter(part.split(":")[0].strip() for r in rows
                                if r.status == "blocked" for part in r.detail.split(";")),
        counters=counters, refused=refused, faults=_faults(crm.twin, erp.twin),
        erp_projects=held.projects, erp_customers=held.customers,
        erp_duplicate_external_ids=held.duplicate_external_ids,
        crm_showing_project=sum(1 for v in shown.values() if v),
        crm_project_mismatches=sum(1 for o, p in projects.items() if shown.get(o) != p),
        open_dead_letters=dead, blocked_then_released=unblocked, fixed_fees=methods["fixed_fee"],
        invoices=invoiced, erp_invoices=billing.invoices() if billing else held.invoices,
        crm_label=crm.label, erp_label=erp.label, billing_label=billing.label if billing else erp.label,
        handoff_bills=billing is not None or erp.bills,
        reconciliation=reconciliation or {}, expected_findings=expected_findings(fates, methods, erp),
        examples={**_examples(rows), "busiest": busiest or ""},
    )


def expected_findings(fates: dict[str, Fate], methods: Counter[str],
                      erp: ErpSandbox) -> dict[str, int] | None:
    """What reconciliation must find in the demo's data, and nothing else: the won, approved
    deals a release gate holds have no project; milestone deals sold without a schedule leave
    their value unscheduled (where the ERP holds a value to compare). None: the ERP's keys do
    not give the deals back, so its projects cannot be matched to them."""
    if not erp.keys_read_back:
        return None
    expected = {"missing_project": sum(f is Fate.STAYS_BLOCKED for f in fates.values()),
                "under_scheduled": methods["milestone"] if erp.holds_value else 0}
    return {kind: n for kind, n in expected.items() if n}


def _faults(crm: TwinProcess, erp: TwinProcess) -> dict[str, Counter[str]]:
    stats = {}
    for role, twin in (("crm", crm), ("erp", erp)):
        with twin.control() as control:
            stats[role] = Counter(control.get("/_twin/stats").json())
    return stats


def _examples(rows: list[sa.Row]) -> dict[str, str]:
    found: dict[str, str] = {}
    for row in rows:
        found.setdefault(row.status, row.opportunity_id)
    return found


def render(s: DemoSummary, database_url: str) -> str:
    c, crm, erp = s.counters, s.faults["crm"], s.faults["erp"]
    rows = [
        ["opportunities played", s.deals, ""],
        ["provisioned", s.statuses["provisioned"],
         f"expected {s.expected_provisioned}; one project each in {s.erp_label}, id shown in {s.crm_label}"],
        ["  of which blocked first", s.blocked_then_released,
         "released when the customer master or the SOW approval caught up"],
        ["still blocked", s.statuses["blocked"], "release gates fail; the CRM shows why"],
        *[[f"  {gate}", n, ""] for gate, n in sorted(s.blocked_by_gate.items())],
        ["waiting (not won)", s.statuses["waiting"], ""],
        ["events accepted", c.get("events_accepted", 0), ""],
        ["duplicates suppressed", c.get("duplicates_suppressed", 0), "same (source, id) again"],
        ["stale versions ignored", c.get("events_stale", 0), "older than the version held"],
        ["bad input refused", len(s.refused), "recorded; nothing else changed"],
        *[[f"  {label}", "", f"HTTP {status}"] for label, status in s.refused],
        ["retried", c.get("retries", 0),
         f"{s.erp_label} 429×{erp['throttle']} 503×{erp['unavailable'] + erp['maintenance']} "
         f"lost×{erp['lose_response']}; {s.crm_label} limit×{crm['throttle']}"],
        ["parked / quarantined", f"{c.get('parked', 0)} / {c.get('quarantined', 0)}",
         "a person decides; `handoff replay` after the fix"],
        ["dead letters", s.open_dead_letters, ""],
        ["fixed fees invoiced", s.invoices,
         f"expected {s.fixed_fees}: each fixed-fee deal once its project is live" if s.handoff_bills
         else f"expected 0: {s.erp_label} invoices by its own billing run"],
        ["reconciliation findings", sum(s.findings.values()), _reconciliation_detail(s)],
    ]
    checks = [
        [f"{s.erp_label} projects", s.erp_projects, f"{s.erp_customers} customers"],
        ["duplicate external ids", s.erp_duplicate_external_ids, "must be 0"],
        [f"{s.billing_label} invoices", s.erp_invoices, "one per fixed-fee deal, none twice"],
        [f"{s.crm_label} deals showing a project", s.crm_showing_project,
         f"{s.crm_project_mismatches} differ from handoff's record (must be 0)"],
    ]
    verdict = "every guarantee held" if s.ok else "SOMETHING DID NOT ADD UP — see above"
    return "\n".join([
        "", f"handoff demo — {s.deals} deals in {s.seconds:.1f} s: {verdict}", "",
        table(["what happened", "count", "detail"], rows), "",
        table(["checked in the twins", "count", "detail"], checks), "",
        _where_to_look(s, database_url),
    ])


def _reconciliation_detail(s: DemoSummary) -> str:
    run = s.reconciliation
    if run.get("status") != "done":
        return f"the run did not finish: {run.get('error') or run.get('status')}"
    found = ", ".join(f"{kind} {n}" for kind, n in sorted(s.findings.items())) or "none"
    if s.expected_findings is None:
        return (f"{run['contracts']} contracts: not matched — {s.erp_label}'s keys do not give the "
                "deal ids back (see its connector's documentation)")
    verdict = "as planted" if s.findings == s.expected_findings else f"expected {s.expected_findings}"
    return (f"{run['contracts']} contracts: {found} ({verdict}: held deals have no project, "
            "milestone deals sold without a schedule)")


def _where_to_look(s: DemoSummary, database_url: str) -> str:
    cmd, db = _handoff_command(), f"--database {database_url}"
    provisioned = s.examples.get("busiest") or s.examples.get("provisioned", "<opportunity id>")
    blocked = s.examples.get("blocked", provisioned)
    return "\n".join([
        "Look further (the demo's database stays where it is):",
        f"  {cmd} trace {provisioned} {db}   every hop of the deal that met most faults",
        f"  {cmd} trace {blocked} {db}   why a deal is blocked",
        f"  {cmd} plan {blocked} {db}    what provisioning would do now",
        f"  {cmd} reconcile show {db}   the reconciliation's findings, each explained",
        f"  {cmd} serve {db}   then http://127.0.0.1:8000/trace/{provisioned}"
        " and http://127.0.0.1:8000/docs",
        f"  {cmd} sandbox   the twins on their own; README 'Sandbox twins' for fault control",
    ])


def _handoff_command() -> str:
    local = Path(sys.prefix) / "bin" / "handoff"
    if local.exists():
        relative = os.path.relpath(local)
        return relative if not relative.startswith("..") else str(local)
    return "handoff"
