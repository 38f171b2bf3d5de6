"""One deal's lineage as a page: where it stands, its record in every system, every hop with
its outcome, attempts and timings, its events, exceptions, amendments and billing."""

from __future__ import annotations

from typing import Any

from handoff.api.dashboard.html import button, e, num, outcome, table, when


def lineage_body(t: dict[str, Any]) -> str:
    deal = t["opportunity_id"]
    opp = t["opportunity"]
    summary = (f"<p>Status: {outcome(t['status'])}{' — ' + e(t['detail']) if t['detail'] else ''}</p>"
               f"<p>{e(opp.get('name'))} · {e(opp.get('amount'))} {e(opp.get('currency'))} · "
               f"correlation id <code>{e(t['correlation_id'])}</code></p>")
    return summary + "".join([systems(t), hops(t), exceptions(t, deal), amendments(t), documents(t),
                              events(t), queued(t)])


def systems(t: dict[str, Any]) -> str:
    targets = t.get("targets") or {}
    customer, project = targets.get("customer") or {}, targets.get("project") or {}
    rows = [["CRM", "opportunity", e(t["opportunity_id"]), "", outcome(t["status"])],
            ["ERP", "customer", e(customer.get("id") or "not yet"), e(customer.get("external_id")), ""],
            ["ERP", "project", e(project.get("id") or "not yet"), e(project.get("external_id")),
             when(targets.get("provisioned_at"))]]
    return table("In each system", ["system", "record", "its id there", "handoff's external id",
                                    "status"], rows, "")


def hops(t: dict[str, Any]) -> str:
    rows = [[when(h["started_at"]), e(h["step"]), e(h["system"]), outcome(h["outcome"]),
             num(h["attempt"]), num(f"{h['duration_ms']} ms"),
             e(h.get("target_id")), e(h.get("detail"))] for h in t["hops"]]
    return table("Hops", ["when", "step", "system", "outcome", "attempt", "took", "target id", "detail"],
                 rows, "No call made yet: the deal waits in the queue or at a release gate.")


def exceptions(t: dict[str, Any], deal: str) -> str:
    rows = [[e(x["kind"]), e(x["business_key"]), e(x["message"]), when(x["created_at"]),
             "resolved " + e(x["resolution"]) if x.get("resolved_at") else
             button(f"/dashboard/exceptions/{x['id']}/replay", "Replay",
                    {"back": f"/dashboard/deals/{deal}"})]
            for x in t["exceptions"]]
    return table("Exceptions", ["kind", "key", "message", "since", ""], rows, "None: nothing is held.")


def amendments(t: dict[str, Any]) -> str:
    rows = [[e(a["id"]), e(a["status"]), e(", ".join(f"{k}: {v['before']} → {v['after']}"
                                                        for k, v in a["changes"].items())),
             e(a["requester"]), e(a.get("decided_by") or "")] for a in t.get("amendments", [])]
    return table("Amendments", ["id", "status", "changes", "requested by", "decided by"], rows,
                 "No amendment: the approved terms are those provisioned.")


def documents(t: dict[str, Any]) -> str:
    rows = [[e(d["number"] or d["target_id"]), e(d["line_id"]), outcome(d["status"]),
             num(f"{d['total']} {d['currency']}"), num(d["amount_due"]), e(d.get("invoice_date"))]
            for d in t.get("documents", [])]
    return table("Invoices and credit notes", ["number", "line", "status", "total", "due", "dated"], rows,
                 "Nothing billed yet.")


def events(t: dict[str, Any]) -> str:
    rows = [[when(v["received_at"]), e(v["type"]), e(v["source"]), e(v["outcome"]),
             num(v["deliveries"])] for v in t["events"]]
    return table("Events received", ["received", "type", "source", "outcome", "deliveries"], rows,
                 "") + pruned_events(t.get("events_pruned"))


def pruned_events(pruned: dict[str, Any] | None) -> str:
    """What retention removed of the deal's events: the lineage keeps that it happened."""
    if not pruned:
        return ""
    where = f"archived in {e(pruned['archive'])}" if pruned.get("archive") else "not archived"
    return (f"<p class=\"pruned\">{int(pruned['events']):,} earlier event(s) pruned by retention, received "
            f"{when(pruned['first_received_at'])} to {when(pruned['last_received_at'])}; {where}.</p>")


def queued(t: dict[str, Any]) -> str:
    rows = [[e(q["key"]), when(q["due_at"]), e(q["attempts"]), e(q.get("last_error") or "")]
            for q in t["queued"]]
    return table("Queued", ["key", "due", "attempts", "last error"], rows, "Nothing queued for this deal.")
