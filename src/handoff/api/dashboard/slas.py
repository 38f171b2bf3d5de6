"""The SLA page: provisioning time and invoice status freshness, p50 and p95 per day, as a
chart and a table."""

from __future__ import annotations

from collections.abc import Sequence

from handoff.api.dashboard.html import e, num, table
from handoff.flows.slas import DailySla

WIDTH, HEIGHT, PAD = 600, 160, 30


def sla_section(title: str, days: Sequence[DailySla], empty: str) -> str:
    if not days:
        return f"<h2>{e(title)}</h2><p class=empty>{e(empty)}</p>"
    rows = [[e(d.day), num(d.count), num(seconds(d.p50_seconds)), num(seconds(d.p95_seconds))] for d in days]
    return f"<h2>{e(title)}</h2>" + chart(title, days) + table(
        f"{title} per day", ["day (UTC)", "count", "p50", "p95"], rows, "")


def chart(title: str, days: Sequence[DailySla]) -> str:
    top = max(d.p95_seconds for d in days) or 1.0
    step = (WIDTH - 2 * PAD) / max(len(days) - 1, 1)

    def points(values: list[float]) -> str:
        return " ".join(f"{PAD + i * step:.1f},{HEIGHT - PAD - (HEIGHT - 2 * PAD) * v / top:.1f}"
                        for i, v in enumerate(values))

    lines = "".join(f"<polyline fill=none stroke='{colour}' stroke-width=2 points='{points(values)}'>"
                    f"<title>{name}</title></polyline>"
                    for name, colour, values in (("p50", "#1d3557", [d.p50_seconds for d in days]),
                                                  ("p95", "#b33", [d.p95_seconds for d in days])))
    labels = (f"<text x=2 y={PAD - 8} font-size=11>{e(seconds(top))}</text>"
              f"<text x={PAD} y={HEIGHT - 8} font-size=11>{e(days[0].day)}</text>"
              f"<text x={WIDTH - PAD - 70} y={HEIGHT - 8} font-size=11>{e(days[-1].day)}</text>"
              f"<text x={WIDTH - 120} y=14 font-size=11 fill='#1d3557'>p50</text>"
              f"<text x={WIDTH - 80} y=14 font-size=11 fill='#b33'>p95</text>")
    return (f"<svg role=img aria-label='{e(title)}: p50 and p95 per day' width={WIDTH} height={HEIGHT}>"
            f"{lines}{labels}</svg>")


def seconds(value: float) -> str:
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"
