"""A reconciliation run and its findings as a person or a program reads them: a table, JSON,
CSV or an HTML page (the same page the dashboard shows)."""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Sequence
from typing import Any

from handoff.reconcile.classes import CLASSES
from handoff.render import table
from handoff.store.reconciliation import Finding, Run

FORMATS = ("table", "json", "csv", "html")
CSV_COLUMNS = ("run", "deal_id", "kind", "currency", "explanation", "repair", "acknowledged_by",
               "acknowledged_reason", "amounts")


def run_view(run: Run) -> dict[str, Any]:
    return {"id": run.id, "trigger": run.trigger, "status": run.status,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "as_of": run.as_of.isoformat() if run.as_of else None, "contracts": run.contracts,
            "counts": run.counts, "total": run.total, "error": run.error}


def finding_view(finding: Finding) -> dict[str, Any]:
    ack = finding.acknowledged
    return {"deal_id": finding.deal_id, "kind": finding.kind, "currency": finding.currency,
            "amounts": {name: str(amount) for name, amount in finding.amounts.items()},
            "explanation": finding.explanation, "repair": finding.repair,
            "acknowledged": None if ack is None else {"by": ack.by, "reason": ack.reason,
                                                      "at": ack.at.isoformat()}}


def render(run: Run, findings: Sequence[Finding], fmt: str) -> str:
    return {"table": as_table, "json": as_json, "csv": as_csv, "html": as_html}[fmt](run, findings)


def summary_line(run: Run, findings: Sequence[Finding]) -> str:
    acknowledged = sum(1 for f in findings if f.acknowledged)
    return (f"reconciliation run {run.id} ({run.trigger}, {run.started_at:%Y-%m-%d %H:%M} UTC"
            + (f", snapshot as of {run.as_of}" if run.as_of else "")
            + f"): {run.contracts} contracts compared, {run.total} discrepancies"
            + (f", {acknowledged} acknowledged" if acknowledged else ""))


def as_table(run: Run, findings: Sequence[Finding]) -> str:
    counts = table(["class", "found"], [[c.kind.value, run.counts.get(c.kind.value, 0)] for c in CLASSES])
    lines = [summary_line(run, findings), "", counts]
    if findings:
        lines += ["", table(["deal", "class", "explanation", "acknowledged"],
                            [[f.deal_id, f.kind, f.explanation,
                              f"{f.acknowledged.by}: {f.acknowledged.reason}" if f.acknowledged else ""]
                             for f in findings])]
    return "\n".join(lines)


def as_json(run: Run, findings: Sequence[Finding]) -> str:
    return json.dumps({"run": run_view(run), "findings": [finding_view(f) for f in findings]},
                      indent=2)


def as_csv(run: Run, findings: Sequence[Finding]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for f in findings:
        ack = f.acknowledged
        writer.writerow([run.id, f.deal_id, f.kind, f.currency, f.explanation, f.repair,
                         ack.by if ack else "", ack.reason if ack else "",
                         "; ".join(f"{name}={amount}" for name, amount in f.amounts.items())])
    return out.getvalue()


def as_html(run: Run, findings: Sequence[Finding]) -> str:
    return page(f"Reconciliation run {run.id}", run_section(run, findings))


def run_section(run: Run, findings: Sequence[Finding]) -> str:
    counts = "".join(f"<tr><td>{c.kind.value.replace('_', ' ')}</td>"
                     f"<td class=num>{run.counts.get(c.kind.value, 0)}</td></tr>" for c in CLASSES)
    rows = "".join(finding_row(f) for f in findings) or (
        "<tr><td colspan=4>Nothing to act on: the CRM, the ERP and billing agree.</td></tr>")
    return (f"<p>{html.escape(summary_line(run, findings))}</p>"
            f"<table><caption>Discrepancies by class</caption><tr><th>class</th><th>found</th></tr>"
            f"{counts}</table>"
            f"<table><caption>Findings</caption><tr><th>deal</th><th>class</th><th>explanation and "
            f"repair</th><th>acknowledged</th></tr>{rows}</table>")


def finding_row(f: Finding) -> str:
    ack = f.acknowledged
    acked = f"{html.escape(ack.by)}: {html.escape(ack.reason)}" if ack else "not yet"
    return (f"<tr><td>{html.escape(f.deal_id)}</td><td>{f.kind.replace('_', ' ')}</td>"
            f"<td>{html.escape(f.explanation)}<br><em>Repair:</em> {html.escape(f.repair)}</td>"
            f"<td>{acked}</td></tr>")


STYLE = ("body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem}"
         "table{border-collapse:collapse;margin:1rem 0;width:100%}"
         "td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}"
         "caption{text-align:left;font-weight:bold;padding:.3rem 0}.num{text-align:right}")


def page(title: str, body: str) -> str:
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}"
            f"</title><style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>{body}"
            "</body></html>\n")
