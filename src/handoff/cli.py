"""The `handoff` command. Errors a person reads are one line, never a traceback."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from handoff.cli_amend import add_amend_command
from handoff.cli_month_end import add_month_end_command
from handoff.cli_prune import add_prune_command
from handoff.cli_reconcile import add_reconcile_command
from handoff.cli_tokens import add_token_command
from handoff.config import Settings, load_settings
from handoff.demo.systems import BILLINGS, CRMS, ERPS
from handoff.errors import HandoffError
from handoff.observability import configure_logging, configure_tracing

if TYPE_CHECKING:
    from handoff.reconcile.runs import Systems
    from handoff.store.db import Database

Handler = Callable[[argparse.Namespace, Settings], int]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING if not args.verbose else logging.INFO
    configure_logging("text", level)  # until the configuration says otherwise
    try:
        settings = load_settings(args.config)
        if args.database:
            settings = _with_database(settings, args.database)
        configure_logging(settings.logging.format, level)
        configure_tracing(settings.tracing.exporter, settings.tracing.service_name)
        return args.handler(args, settings)
    except HandoffError as exc:
        print(f"handoff: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`| head`): nothing left to say
        sys.stderr.close()
        return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="handoff", parents=[_common_options(None, False)],
        description="Won deals become exactly one project; status flows back to the CRM.")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = _command(commands, "demo", _demo, "play a scripted lifecycle against the sandbox")
    demo.add_argument("--deals", type=int, help="opportunities to play (default 60; 30 on Tryton)")
    demo.add_argument("--seed", type=int, default=7, help="seed of the shuffles and faults")
    demo.add_argument("--workdir", type=Path, help="where the demo's files go "
                      "(default .handoff/demo, .handoff/demo-tryton)")
    demo.add_argument("--crm", choices=sorted(CRMS), default="salesforce",
                      help="the CRM twin the deals start in (default salesforce)")
    demo.add_argument("--erp", choices=sorted([*ERPS, "tryton"]), default="netsuite",
                      help="the ERP twin (default netsuite), or a real Tryton, billing included")
    demo.add_argument("--billing", choices=sorted(BILLINGS),
                      help="a billing system that invoices instead of the ERP")

    serve = _command(commands, "serve", _serve, "run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)

    worker = _command(commands, "worker", _worker, "reconcile queued deals against the systems")
    worker.add_argument("--concurrency", type=int, help="threads (default from config)")
    worker.add_argument("--until-idle", action="store_true", help="exit when the queue is empty")

    poll = _command(commands, "poll", _poll, "read what changed in the CRM since the last poll, now")
    poll.add_argument("--erp", action="store_true",
                      help="also read the milestones delivery reached in the PSA/ERP")

    sandbox = _command(commands, "sandbox", _sandbox, "run the sandbox CRM and ERP until Ctrl-C")
    sandbox.add_argument("--erp", choices=["netsuite", "tryton"], default="netsuite",
                         help="the NetSuite twin (default) or a real Tryton server")
    sandbox.add_argument("--salesforce-port", type=int, default=8443)
    sandbox.add_argument("--netsuite-port", type=int, default=8081)
    sandbox.add_argument("--tryton-port", type=int, default=8082)
    sandbox.add_argument("--tls-dir", type=Path, default=Path(".handoff/tls"))

    trace = _command(commands, "trace", _trace, "show the lineage of one deal")
    trace.add_argument("business_id", help="opportunity id, project id or correlation id")
    trace.add_argument("--json", action="store_true", help="print JSON")

    plan = _command(commands, "plan", _plan, "show what provisioning would do, without doing it")
    plan.add_argument("opportunity_id")

    replay = _command(commands, "replay", _replay, "re-queue dead letters and parked deals")
    replay.add_argument("--kind", action="append", choices=["dead_letter", "parked", "quarantined"],
                        help="only these kinds (repeatable; default all)")
    replay.add_argument("--key", action="append", help="only this business key (repeatable)")

    export = _command(commands, "export", _export, "the billing feed for analytics, as JSON Lines")
    export.add_argument("--since", help="only invoices observed at or after this ISO time (UTC)")
    export.add_argument("--out", type=Path, help="write to this file (default: standard output)")

    audit = _command(commands, "audit", _audit, "the hash-chained log of financial changes")
    audit.add_argument("action", choices=["verify", "log"],
                       help="verify: recompute the chain; log: print the entries")
    audit.add_argument("--key", help="log: only this deal")
    add_amend_command(commands, _command)
    add_month_end_command(commands, _command)
    add_prune_command(commands, _command)
    add_reconcile_command(commands, _command)
    add_token_command(commands, _command)
    return parser


def _common_options(default_path: object, default_flag: object) -> argparse.ArgumentParser:
    """Accepted before or after the command; the command's copy never erases the other."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=default_path,
                        help="TOML configuration (default: ./handoff.toml)")
    common.add_argument("--database", default=default_path,
                        help="database URL (overrides config and environment)")
    common.add_argument("-v", "--verbose", action="store_true", default=default_flag,
                        help="log progress details")
    return common


def _command(commands: argparse._SubParsersAction, name: str, handler: Handler,
             help_text: str) -> argparse.ArgumentParser:
    sub = commands.add_parser(name, help=help_text, description=help_text,
                              parents=[_common_options(argparse.SUPPRESS, argparse.SUPPRESS)])
    sub.set_defaults(handler=handler)
    return sub


def _with_database(settings: Settings, url: str) -> Settings:
    import dataclasses

    return dataclasses.replace(settings, database_url=url)


def _open(settings: Settings):  # noqa: ANN202 - a Database
    from handoff.store import open_database

    return open_database(settings.database_url)


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    deals = args.deals or (30 if args.erp == "tryton" else 60)
    if deals < 10:
        raise HandoffError(f"--deals {deals}: the scripted lifecycle needs at least 10 deals")
    if args.erp == "tryton":
        from handoff.demo.tryton_demo import run_tryton_demo

        if args.crm != "salesforce" or args.billing:
            raise HandoffError("the Tryton demo plays Salesforce deals and bills in Tryton: drop "
                               "--crm and --billing")
        summary = run_tryton_demo(deals=deals, seed=args.seed,
                                  workdir=args.workdir or Path(".handoff/demo-tryton"), out=print)
    else:
        from handoff.demo.run import run_demo

        summary = run_demo(deals=deals, seed=args.seed, workdir=args.workdir or Path(".handoff/demo"),
                           out=print, crm_name=args.crm, erp_name=args.erp, billing_name=args.billing)
    return 0 if summary.ok else 1


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from handoff.api import create_app
    from handoff.engine.pruning import PruningSchedule
    from handoff.reconcile.schedule import ReconcileSchedule

    db = _open(settings)
    systems = _reconcile_systems(settings, db)
    stop = threading.Event()
    if systems and settings.reconcile.cron:
        ReconcileSchedule(db, systems, settings.reconcile).start(stop)
        print(f"handoff serve: reconciling on \"{settings.reconcile.cron}\" (UTC)", file=sys.stderr)
    if settings.retention.interval:
        PruningSchedule(db, settings.retention).start(stop)
        print(f"handoff serve: pruning every {settings.retention.every}", file=sys.stderr)
    try:
        uvicorn.run(create_app(db, settings.roles, systems=systems, reconcile=settings.reconcile),
                    host=args.host, port=args.port, log_level="warning")
    finally:
        stop.set()
    return 0


def _reconcile_systems(settings: Settings, db: Database) -> Systems | None:
    """The connectors reconciliation reads; None (said once) when the systems are not set up."""
    from handoff.bootstrap import connect_billing_system, connect_systems
    from handoff.reconcile.runs import Systems

    try:
        crm, erp = connect_systems(settings)
        billing = connect_billing_system(settings, db)
    except HandoffError as exc:
        print(f"handoff serve: no reconciliation from this server: {exc}", file=sys.stderr)
        return None
    return Systems(crm, erp, settings.release.gates, billing)


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    import dataclasses

    from handoff.bootstrap import build_worker, connect_billing_system, connect_systems

    if args.concurrency:
        worker_settings = dataclasses.replace(settings.worker, concurrency=args.concurrency)
        settings = dataclasses.replace(settings, worker=worker_settings)
    db = _open(settings)
    crm, erp = connect_systems(settings)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    worker = build_worker(settings, db, crm, erp, billing=connect_billing_system(settings, db))
    print(f"{worker.owner}: reconciling on {db.url} with {settings.worker.concurrency} threads",
          file=sys.stderr)
    try:
        worker.run(stop, until_idle=args.until_idle)
    except KeyboardInterrupt:
        stop.set()
    return 0


def _poll(args: argparse.Namespace, settings: Settings) -> int:
    from handoff.bootstrap import polls
    from handoff.connectors.registry import connect_crm, connect_erp
    from handoff.engine.clock import utcnow

    systems = [connect_crm(settings.systems, os.environ)]
    if args.erp:
        systems.append(connect_erp(settings.systems, os.environ))
    found = polls(*systems)
    if not found:
        raise HandoffError(f"the {systems[0].system} connector cannot list its changes")
    db = _open(settings)
    for poll in found:
        print(f"{poll.system}: {poll.run(db, utcnow())}")
    return 0


def _sandbox(args: argparse.Namespace, settings: Settings) -> int:
    from handoff.connectors.twin_process import TwinProcess

    with ExitStack() as running:
        sf = running.enter_context(TwinProcess("salesforce", args.tls_dir, args.salesforce_port))
        print(f"Salesforce twin  {sf.base_url}  (CA: {sf.ca_file}; session id SANDBOX_SESSION)")
        print(_start_sandbox_erp(args, running), flush=True)
        print("Faults: PUT <twin>/_twin/faults — see README. Ctrl-C stops them all.", flush=True)
        threading.Event().wait()
    return 0


def _start_sandbox_erp(args: argparse.Namespace, running: ExitStack) -> str:
    """Start the chosen ERP, stopped with `running`; what a person needs to connect to it."""
    if args.erp == "tryton":
        from handoff.connectors.tryton.sandbox import TrytonProcess, describe

        print("Tryton ERP       starting (the first start initialises its database: a minute or two)",
              flush=True)
        return describe(running.enter_context(TrytonProcess(port=args.tryton_port)))
    from handoff.connectors.twin_process import TwinProcess

    ns = running.enter_context(TwinProcess("netsuite", args.tls_dir, args.netsuite_port))
    return f"NetSuite twin    {ns.base_url}/services/rest  (bearer token sandbox-token)"


def _trace(args: argparse.Namespace, settings: Settings) -> int:
    from handoff.flows.trace import trace
    from handoff.render import lineage

    found = trace(_open(settings), args.business_id)
    if found is None:
        raise HandoffError(f"no deal known by {args.business_id!r} in {settings.database_url}")
    print(json.dumps(found, indent=2) if args.json else lineage(found))
    return 0


def _plan(args: argparse.Namespace, settings: Settings) -> int:
    from handoff.engine.clock import utcnow
    from handoff.flows.plan import plan_provisioning
    from handoff.store.provisioning import load_snapshot

    db = _open(settings)
    with db.reading() as conn:
        snap = load_snapshot(conn, args.opportunity_id)
    if snap is None:
        raise HandoffError(f"no opportunity {args.opportunity_id!r} in {settings.database_url}")
    plan = plan_provisioning(snap, settings.release, settings.ownership, utcnow())
    print(f"{plan.opportunity_id}: {plan.status}" + (f" — {plan.detail}" if plan.detail else ""))
    notes, billing = _billing_plan(db, args.opportunity_id, settings)
    steps = [step.describe() for step in plan.steps] + billing
    for number, step in enumerate(steps, start=1):
        print(f"  {number}. {step}")
    for note in notes:
        print(f"  billing: {note}")
    if not steps:
        print("  nothing to do: every system already holds what it should")
    return 0


def _billing_plan(db: Database, opportunity_id: str, settings: Settings,
                  ) -> tuple[list[str], list[str]]:
    """What billing waits for or is blocked by, and the steps it would take."""
    from handoff.engine.clock import utcnow
    from handoff.flows.billing import note_of
    from handoff.flows.billing_plan import plan_billing
    from handoff.store.billing import load_billing

    with db.reading() as conn:
        snap = load_billing(conn, opportunity_id)
    if snap is None:
        return [], []
    plan = plan_billing(snap, settings.billing, utcnow().date())
    notes = [note for note in (plan.waiting, note_of(plan)) if note]
    return notes, [step.describe() for step in plan.steps]


def _replay(args: argparse.Namespace, settings: Settings) -> int:
    from handoff.engine.clock import utcnow
    from handoff.engine.exceptions import KINDS, replay

    keys = replay(_open(settings), utcnow(), kinds=args.kind or KINDS, keys=args.key)
    print(f"re-queued {len(keys)} key(s)" + (": " + ", ".join(keys) if keys else ""))
    return 0


def _export(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime

    from handoff.flows.billing_feed import write_feed

    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since.replace("Z", "+00:00"))
        except ValueError:
            raise HandoffError(f"--since {args.since!r} is not an ISO time") from None
        since = since.replace(tzinfo=since.tzinfo or UTC)
    db = _open(settings)
    if args.out is None:
        write_feed(db, sys.stdout.buffer, since)
        return 0
    with args.out.open("wb") as out:
        count = write_feed(db, out, since)
    print(f"{count} invoice row(s) written to {args.out}", file=sys.stderr)
    return 0


def _audit(args: argparse.Namespace, settings: Settings) -> int:
    from handoff.store import audit
    from handoff.store.tables import audit_log

    db = _open(settings)
    with db.reading() as conn:
        if args.action == "verify":
            verdict = audit.verify(conn)
            if verdict.intact:
                print(f"audit chain intact: {verdict.entries} entries")
                return 0
            raise HandoffError(f"audit entry {verdict.broken_at} is broken: {verdict.reason}")
        query = sa.select(audit_log).order_by(audit_log.c.seq)
        if args.key:
            query = query.where(audit_log.c.business_key == args.key)
        for row in conn.execute(query):
            print(f"{row.seq:6d}  {row.recorded_at[:23]}  {row.actor:10s}  {row.action:18s}  "
                  f"{row.business_key}  {row.after or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
