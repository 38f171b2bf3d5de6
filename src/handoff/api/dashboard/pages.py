"""Each dashboard page's content (title, active tab, body), and what each button does. Pages
read through the same store functions as the API; buttons call the same flows."""

from __future__ import annotations

from datetime import timedelta

from handoff.api.auth import Authorizer, Principal
from handoff.api.dashboard.html import button, e, layout, num, table, when
from handoff.api.dashboard.lineage import lineage_body
from handoff.api.dashboard.reconciliation import reconciliation_body
from handoff.api.dashboard.slas import sla_section
from handoff.api.operations import replay_audited
from handoff.engine import queue
from handoff.engine.clock import utcnow
from handoff.engine.exceptions import KINDS, open_exceptions
from handoff.errors import IntakeError
from handoff.flows import amendments as amendment_flows
from handoff.flows.slas import invoice_freshness, provisioning_times
from handoff.flows.trace import find_opportunity_id, trace
from handoff.reconcile import actions
from handoff.store import reconciliation as store
from handoff.store.db import Database
from handoff.store.terms import pending_amendments

__all__ = ["e", "layout"]
Page = tuple[str, str, str]


def login_page(target: str, error: str = "") -> str:
    body = ("<p>Sign in with your handoff API token (an admin makes one with "
            "<code>handoff token create --user YOU --role viewer</code>).</p>"
            "<form method=post action='/dashboard/login'>"
            f"<input type=hidden name=next value='{e(target)}'>"
            "<label for=token>API token</label> <input id=token name=token type=password required "
            "autocomplete=off size=50> <button>Sign in</button></form>")
    return layout("Sign in", body, error=error)


def overview(db: Database) -> Page:
    with db.reading() as conn:
        depth = queue.depth(conn)
        held = {kind: len(open_exceptions(conn, [kind])) for kind in KINDS}
        pending = len(pending_amendments(conn))
        latest = store.latest_run(conn)
    rows = [
        ["Deals waiting in the queue", num(depth), "the workers take them in turn"],
        ["Parked", num(held["parked"]), link("/dashboard/exceptions", "a person decides, then replays")],
        ["Dead letters", num(held["dead_letter"]), link("/dashboard/exceptions", "fix the cause, replay")],
        ["Amendments awaiting a decision", num(pending), link("/dashboard/amendments", "decide")],
        ["Latest reconciliation", num("" if latest is None else latest.total),
         "<a href='/dashboard/reconciliation'>" + (f"run {latest.id}, {when(latest.started_at)}"
                                                    if latest else "none yet") + "</a>"],
    ]
    intro = ("<p>Type any id a deal is known by in <em>Find a deal</em> above to follow its lineage "
             "through every system.</p>")
    return "Overview", "Overview", intro + table("Now", ["what", "count", ""], rows, "")


def link(href: str, text: str) -> str:
    return f"<a href='{e(href)}'>{e(text)}</a>"


def find_deal(db: Database, business_id: str) -> str | None:
    if not business_id:
        return None
    with db.reading() as conn:
        return find_opportunity_id(conn, business_id)


def deal(db: Database, business_id: str) -> Page:
    lineage = trace(db, business_id)
    if lineage is None:
        raise IntakeError(f"No deal is known by “{business_id}”.", status=404)
    return f"Deal {lineage['opportunity_id']}", "", lineage_body(lineage)


def exceptions(db: Database) -> Page:
    with db.reading() as conn:
        rows = open_exceptions(conn)
    cells = [[e(x.kind.replace("_", " ")), deal_link(x.business_key), e(x.message), e(x.system or ""),
              num(x.attempts), when(x.created_at),
              button(f"/dashboard/exceptions/{x.id}/replay", "Replay", {"back": "/dashboard/exceptions"})]
             for x in rows]
    return "Exceptions and dead letters", "Exceptions", table(
        "Held, oldest first", ["kind", "deal", "why", "system", "attempts", "since", ""], cells,
        "Nothing is held: every deal is moving or done.")


def deal_link(business_key: str) -> str:
    deal_id = business_key.partition(":")[2] or business_key
    return f"<a href='/dashboard/deals/{e(deal_id)}'>{e(business_key)}</a>"


def amendments(db: Database) -> Page:
    with db.reading() as conn:
        found = pending_amendments(conn)
    cells = [[e(a.id), deal_link(f"deal:{a.opportunity_id}"),
              e("; ".join(f"{k}: {old} → {new}" for k, (old, new) in a.delta().items())),
              e(a.requester), e(a.reason), when(a.requested_at), decision_form(a.id)] for a in found]
    return "Amendments awaiting approval", "Amendments", table(
        "Oldest first", ["amendment", "deal", "changes", "requested by", "why", "when", "decision"], cells,
        "No amendment waits for a decision.")


def decision_form(amendment_id: str) -> str:
    url = f"/dashboard/amendments/{e(amendment_id)}"
    return (f"<form class=inline method=post action='{url}/approve'><input type=hidden name=back "
            f"value='/dashboard/amendments'><label>Reason <input name=reason></label> "
            f"<button>Approve</button> <button formaction='{url}/reject'>Reject</button></form>")


def reconciliation(db: Database) -> Page:
    with db.reading() as conn:
        runs = store.runs(conn)
        latest = store.latest_run(conn)
        found = store.findings(conn, latest.id) if latest else []
    return "Reconciliation", "Reconciliation", reconciliation_body(runs, latest, found)


def slas(db: Database, days: str = "30") -> Page:
    if not days.isdigit() or not 1 <= int(days) <= 366:
        raise IntakeError("days: a whole number from 1 to 366", status=422)
    since = utcnow() - timedelta(days=int(days))
    with db.reading() as conn:
        provisioning, freshness = provisioning_times(conn, since), invoice_freshness(conn, since)
    body = (f"<p>The last {int(days)} days, by day (UTC).</p>"
            + sla_section("Provisioning time (approved → project active)", provisioning,
                          "No deal was provisioned in this time.")
            + sla_section("Invoice status freshness (posted in the ERP → shown in the CRM)", freshness,
                          "No invoice was issued or read in this time."))
    return "Business SLAs", "SLAs", body


def replay(db: Database, principal: Principal, exception_id: str) -> str:
    keys = replay_audited(db, principal.user, KINDS, [int(exception_id)])
    return f"re-queued {', '.join(keys)}"


def decide(db: Database, auth: Authorizer, principal: Principal, amendment_id: str, verb: str,
           reason: str) -> str:
    how = amendment_flows.approve if verb == "approve" else amendment_flows.reject
    done = how(db, amendment_id, principal.user, auth.roles_of(principal), reason, utcnow())
    return f"{done.id} {done.status}"


def acknowledge(db: Database, principal: Principal, deal_id: str, kind: str, reason: str) -> str:
    actions.acknowledge(db, deal_id, kind, principal.user, reason, utcnow())
    return f"{kind} of {deal_id} acknowledged"


def repair(db: Database, principal: Principal, deal_id: str, kind: str) -> str:
    return actions.repair(db, deal_id, kind, principal.user, utcnow())
