"""The reconciliation page: the latest run's findings, and the trend of every class run by run."""

from __future__ import annotations

from collections.abc import Sequence

from handoff.api.dashboard.html import button, e, num, table, when
from handoff.reconcile.classes import CLASSES
from handoff.reconcile.report import summary_line
from handoff.store import reconciliation as store

BAR_WIDTH, CHART_HEIGHT = 18, 120


def reconciliation_body(runs: Sequence[store.Run], latest: store.Run | None,
                        found: Sequence[store.Finding]) -> str:
    if latest is None:
        return ("<p class=empty>No reconciliation has run yet. Run <code>handoff reconcile</code>, or "
                "wait for the schedule in <code>[reconcile] cron</code> of the configuration.</p>")
    counts = [[e(c.kind.value.replace("_", " ")), num(latest.counts.get(c.kind.value, 0))] for c in CLASSES]
    rows = [[e(f.deal_id), e(f.kind.replace("_", " ")),
             f"{e(f.explanation)}<br><em>Repair:</em> {e(f.repair)}", acknowledgement(f)] for f in found]
    return (f"<p>{e(summary_line(latest, found))}</p>"
            + table("Discrepancies by class", ["class", "found"], counts, "")
            + table("Findings", ["deal", "class", "explanation and repair", "acknowledged"], rows,
                    "Nothing to act on: the CRM, the ERP and billing agree.")
            + trend(runs))


def acknowledgement(f: store.Finding) -> str:
    if f.acknowledged:
        return f"{e(f.acknowledged.by)}: {e(f.acknowledged.reason)}"
    url = f"/dashboard/reconciliation/{f.deal_id}/{f.kind}"
    return ("not yet " + button(f"{url}/repair", "Repair")
            + f"<form class=inline method=post action='{e(url)}/acknowledge'>"
            f"<label>Reason <input name=reason required></label> <button>Acknowledge</button></form>")


def trend(runs: Sequence[store.Run]) -> str:
    done = [r for r in reversed(runs) if r.status == "done"]
    highest = max((r.total or 0 for r in done), default=0) or 1
    bars = "".join(
        f"<rect x={i * (BAR_WIDTH + 4)} y={CHART_HEIGHT - h} width={BAR_WIDTH} height={h} fill='#b33'>"
        f"<title>run {r.id}: {r.total} discrepancies</title></rect>"
        for i, r in enumerate(done) for h in [round(CHART_HEIGHT * (r.total or 0) / highest)])
    chart = (f"<svg role=img aria-label='discrepancies per run, oldest first' "
             f"width={len(done) * (BAR_WIDTH + 4)} height={CHART_HEIGHT}>{bars}</svg>")
    rows = [[e(r.id), when(r.started_at), e(r.trigger), e(r.status), e(r.contracts or ""),
             *(e(r.counts.get(c.kind.value, "")) for c in CLASSES)] for r in runs]
    return "<h2>Trend</h2>" + chart + table(
        "Runs, newest first", ["run", "started", "trigger", "status", "contracts",
                               *(c.kind.value.replace("_", " ") for c in CLASSES)], rows, "")
