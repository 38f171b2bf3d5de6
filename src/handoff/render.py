"""Plain-text output for people: aligned tables and a readable lineage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_is_number(r[i]) for r in cells[1:]) and len(cells) > 1
               for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return "  ".join(c.rjust(w) if n else c.ljust(w)
                         for c, w, n in zip(row, widths, numeric, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *[line(r) for r in cells[1:]]])


def lineage(trace: dict[str, Any]) -> str:
    opp = trace["opportunity"]
    targets = trace.get("targets") or {}
    project = targets.get("project") or {}
    lines = [
        f"{opp['name']}  ({trace['opportunity_id']})",
        f"  status        {trace['status']}" + (f" — {trace['detail']}" if trace["detail"] else ""),
        f"  correlation   {trace['correlation_id']}",
        f"  amount        {opp['amount']} {opp['currency']}, {opp['billing_method']}, "
        f"stage {opp['stage']}",
        f"  project       {project.get('external_id') or '-'} → {project.get('id') or '-'}",
        *_plan_line(trace.get("plan_versions") or []),
        "",
        "events",
        table(["received", "source", "id", "outcome", "deliveries"],
              [[e["received_at"][:23], e["source"], e["event_id"], e["outcome"], e["deliveries"]]
               for e in trace["events"]]),
        *_pruned_line(trace.get("events_pruned")),
        "",
        "hops",
        table(["started", "step", "system", "attempt", "outcome", "ms", "target", "detail"],
              [[h["started_at"][:23], h["step"], h["system"], h["attempt"], h["outcome"],
                h["duration_ms"], h["target_id"] or "", _clip(h["detail"], 70)]
               for h in trace["hops"]]),
    ]
    lines += _billing_tables(trace)
    if trace["exceptions"]:
        lines += ["", "exceptions", table(
            ["created", "key", "kind", "error", "attempts", "resolution", "message"],
            [[x["created_at"][:23], x["business_key"], x["kind"], x["error"], x["attempts"],
              x["resolution"] or "open", _clip(x["message"], 70)] for x in trace["exceptions"]])]
    for q in trace["queued"]:
        lines += ["", f"queued {q['key']}: due {q['due_at']}, attempts {q['attempts']}"
                  + (f", last error: {q['last_error']}" if q["last_error"] else "")]
    return "\n".join(lines)


def _pruned_line(pruned: dict[str, Any] | None) -> list[str]:
    """The events retention removed, as the lineage keeps them."""
    if not pruned:
        return []
    where = f"archived in {pruned['archive']}" if pruned["archive"] else "not archived"
    return [f"{pruned['events']} earlier event(s) pruned, received {pruned['first_received_at'][:19]} "
            f"to {pruned['last_received_at'][:19]}; {where}"]


def _plan_line(versions: list[dict[str, Any]]) -> list[str]:
    if not versions:
        return []
    latest = versions[-1]
    by = f" (amendment {latest['amendment_id']})" if latest["amendment_id"] else ""
    return [f"  plan          v{latest['version']}{by}: {latest['value']} {latest['currency']}"]


def _billing_tables(trace: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if trace.get("amendments"):
        lines += ["", "amendments", table(
            ["id", "status", "requested by", "decided by", "changes", "reason"],
            [[a["id"], a["status"], a["requester"], a["decided_by"],
              _clip("; ".join(f"{k} {v['before']} → {v['after']}" for k, v in a["changes"].items()
                              if k != "milestones") or "schedule", 50), _clip(a["reason"], 40)]
             for a in trace["amendments"]])]
    if trace.get("milestones"):
        lines += ["", "milestones", table(
            ["id", "name", "amount", "status", "achieved", "accepted"],
            [[m["id"], m["name"], m["amount"], m["status"] or "planned", m["achieved_on"],
              m["accepted_on"]] for m in trace["milestones"]])]
    if trace.get("documents"):
        lines += ["", "billing documents", table(
            ["document", "line", "number", "status", "total", "due", "due date"],
            [[d["document_id"], d["line_id"], d["number"] or d["target_id"], d["status"],
              f"{d['total']} {d['currency']}", d["amount_due"], d["due_date"]]
             for d in trace["documents"]])]
    return lines


def _cell(value: Any) -> str:
    return "-" if value is None else str(value)


def _is_number(text: str) -> bool:
    return text.replace(".", "", 1).replace("-", "", 1).isdigit() or text == "-"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
