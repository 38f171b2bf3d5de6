"""`handoff reconcile`: compare the CRM, the ERP and billing now (or the snapshot kept from a
past day), show earlier runs, acknowledge a finding, run a repair. A run exits 1 while a
discrepancy is not acknowledged, so a scheduler can act on it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

from handoff.config import Settings
from handoff.errors import HandoffError

UNRESOLVED = 1
ACTIONS = ("run", "runs", "show", "ack", "repair")


def add_reconcile_command(commands: argparse._SubParsersAction,
                          command: Callable[..., argparse.ArgumentParser]) -> None:
    rec = command(commands, "reconcile", _reconcile,
                  "three-way reconciliation: run (default), runs, show [RUN], "
                  "ack DEAL CLASS, repair DEAL CLASS")
    rec.add_argument("action", nargs="?", default="run", choices=ACTIONS)
    rec.add_argument("target", nargs="*", help="show: a run id; ack/repair: DEAL CLASS")
    rec.add_argument("--as-of", type=_day, metavar="DATE",
                     help="compare again the snapshot kept on DATE (YYYY-MM-DD) or the last before")
    rec.add_argument("--format", choices=["table", "json", "csv", "html"], default="table")
    rec.add_argument("--output", type=Path, help="write the report to this file")
    rec.add_argument("--as", dest="user", help="ack/repair: who acts")
    rec.add_argument("--reason", default="", help="ack: why the finding is accepted")
    rec.add_argument("--limit", type=int, default=30, help="runs: how many (default 30)")


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _reconcile(args: argparse.Namespace, settings: Settings) -> int:
    from handoff.store import open_database

    db = open_database(settings.database_url)
    if args.action in ("ack", "repair"):
        return _act(args, db)
    if args.action == "runs":
        return _runs(args, db)
    if args.action == "show":
        return _show(args, db, _run_id(args.target))
    return _run(args, settings, db)


def _run(args: argparse.Namespace, settings: Settings, db: object) -> int:
    from handoff.reconcile.runs import Systems, rerun_as_of, run_reconciliation

    def progress(line: str) -> None:
        print(f"reconcile: {line}", file=sys.stderr, flush=True)

    if args.as_of:
        run = rerun_as_of(db, args.as_of, settings.reconcile, trigger="cli", progress=progress)
    else:
        from handoff.bootstrap import connect_billing_system, connect_systems

        crm, erp = connect_systems(settings)
        systems = Systems(crm, erp, settings.release.gates, connect_billing_system(settings, db))
        run = run_reconciliation(db, systems, settings.reconcile, trigger="cli", progress=progress)
        assert run is not None  # only a scheduled run can collide
    return _show(args, db, run.id)


def _show(args: argparse.Namespace, db: object, run_id: int | None) -> int:
    from handoff.reconcile.report import render
    from handoff.store import reconciliation as store

    with db.reading() as conn:
        run = store.load_run(conn, run_id) if run_id else store.latest_run(conn)
        if run is None:
            raise HandoffError(f"no reconciliation run {run_id}" if run_id else
                               "no reconciliation has run yet: run `handoff reconcile`")
        found = store.findings(conn, run.id)
    text = render(run, found, args.format)
    if args.output:
        args.output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        print(f"reconcile: report written to {args.output}", file=sys.stderr)
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return UNRESOLVED if any(f.acknowledged is None for f in found) else 0


def _runs(args: argparse.Namespace, db: object) -> int:
    from handoff.reconcile.classes import CLASSES
    from handoff.render import table
    from handoff.store import reconciliation as store

    with db.reading() as conn:
        found = store.runs(conn, args.limit)
    print(table(["run", "started (UTC)", "trigger", "status", "contracts", "total",
                 *(c.kind.value for c in CLASSES)],
                [[r.id, f"{r.started_at:%Y-%m-%d %H:%M}", r.trigger, r.status, r.contracts or "",
                  "" if r.total is None else r.total, *(r.counts.get(c.kind.value, "") for c in CLASSES)]
                 for r in found]) if found else "no reconciliation has run yet: run `handoff reconcile`")
    return 0


def _act(args: argparse.Namespace, db: object) -> int:
    from handoff.engine.clock import utcnow
    from handoff.reconcile import actions

    if len(args.target) != 2:
        raise HandoffError(f"reconcile {args.action} needs DEAL CLASS, e.g. "
                           f"`handoff reconcile {args.action} 006A0000001 value_mismatch`")
    if not args.user:
        raise HandoffError(f"reconcile {args.action} needs --as USER")
    deal, kind = args.target
    if args.action == "ack":
        done = actions.acknowledge(db, deal, kind, args.user, args.reason, utcnow())
        print(f"{kind} of deal {deal} acknowledged by {done.by}: {done.reason}")
    else:
        print(actions.repair(db, deal, kind, args.user, utcnow()))
    return 0


def _run_id(target: list[str]) -> int | None:
    if not target:
        return None
    if len(target) > 1 or not target[0].isdigit():
        raise HandoffError(f"reconcile show takes one run id (a number), not {' '.join(target)!r}")
    return int(target[0])
