"""The dashboard's pages, rendered on the server (no front-end build): for now the
reconciliation page — the latest run's findings, and the trend of every class run by run."""

from __future__ import annotations

import html
from collections.abc import Sequence

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from handoff.reconcile.classes import CLASSES
from handoff.reconcile.report import page, run_section
from handoff.store import reconciliation as store
from handoff.store.db import Database

TREND_RUNS = 30
BAR_WIDTH, CHART_HEIGHT = 18, 120
# Times are written in UTC and shown in the reader's own zone by the browser.
LOCAL_TIMES = ("<script>for(const t of document.querySelectorAll('time'))"
               "t.textContent=new Date(t.dateTime).toLocaleString()</script>")


def dashboard_router(db: Database) -> APIRouter:
    router = APIRouter(prefix="/dashboard", tags=["dashboard"])

    @router.get("/reconciliation", response_class=HTMLResponse,
                summary="Reconciliation: the latest findings and the trend")
    def reconciliation_page() -> HTMLResponse:
        with db.reading() as conn:
            runs = store.runs(conn, TREND_RUNS)
            latest = store.latest_run(conn)
            found = store.findings(conn, latest.id) if latest else []
        if latest is None:
            body = ("<p>No reconciliation has run yet. Run <code>handoff reconcile</code>, or wait for "
                    "the schedule in <code>[reconcile] cron</code> of the configuration.</p>")
        else:
            body = run_section(latest, found) + trend(runs)
        return HTMLResponse(page("Reconciliation", body + LOCAL_TIMES))

    return router


def trend(runs: Sequence[store.Run]) -> str:
    done = [r for r in reversed(runs) if r.status == "done"]
    highest = max((r.total or 0 for r in done), default=0) or 1
    bars = "".join(
        f"<rect x={i * (BAR_WIDTH + 4)} y={CHART_HEIGHT - h} width={BAR_WIDTH} height={h} fill='#b33'>"
        f"<title>run {r.id}: {r.total} discrepancies</title></rect>"
        for i, r in enumerate(done) for h in [round(CHART_HEIGHT * (r.total or 0) / highest)])
    chart = (f"<svg role=img aria-label='discrepancies per run, oldest first' "
             f"width={len(done) * (BAR_WIDTH + 4)} height={CHART_HEIGHT}>{bars}</svg>")
    header = "".join(f"<th>{c.kind.value.replace('_', ' ')}</th>" for c in CLASSES)
    rows = "".join(
        f"<tr><td>{r.id}</td><td><time datetime='{r.started_at.isoformat()}'>"
        f"{r.started_at:%Y-%m-%d %H:%M} UTC</time></td><td>{html.escape(r.trigger)}</td>"
        f"<td>{html.escape(r.status)}</td><td class=num>{r.contracts or ''}</td>"
        + "".join(f"<td class=num>{r.counts.get(c.kind.value, '')}</td>" for c in CLASSES)
        + "</tr>" for r in runs)
    return (f"<h2>Trend</h2>{chart}<table><caption>Runs, newest first</caption><tr><th>run</th>"
            f"<th>started</th><th>trigger</th><th>status</th><th>contracts</th>{header}</tr>{rows}</table>")
