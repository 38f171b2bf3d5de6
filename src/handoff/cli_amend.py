"""`handoff amend`: list, show, request, approve and reject amendments to deals' approved
terms. The user is named with `--as` (the CLI is an operator's tool with database access;
the HTTP API names the user by their token)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from handoff.config import Settings
from handoff.errors import HandoffError


def add_amend_command(commands: argparse._SubParsersAction,
                      command: Callable[..., argparse.ArgumentParser]) -> None:
    amend = command(commands, "amend", _amend,
                    "amendments to approved terms: list, show, request, approve, reject")
    amend.add_argument("action", choices=["list", "show", "request", "approve", "reject"])
    amend.add_argument("target", nargs="?",
                       help="show/approve/reject: the amendment id; request: the deal's id")
    amend.add_argument("--as", dest="user", help="who acts (requester or approver)")
    amend.add_argument("--reason", default="", help="why (required to request)")
    amend.add_argument("--value", help="request: the new contract value")
    amend.add_argument("--milestone", action="append", default=[], metavar="ID=AMOUNT",
                       help="request: set a milestone's amount; a new id adds one (repeatable)")
    amend.add_argument("--cancel-milestone", action="append", default=[], metavar="ID",
                       help="request: take a milestone out of the schedule (repeatable)")


def _amend(args: argparse.Namespace, settings: Settings) -> int:
    from handoff.engine.clock import utcnow
    from handoff.flows import amendments
    from handoff.store import open_database
    from handoff.store.terms import load_amendment, pending_amendments

    db = open_database(settings.database_url)
    if args.action == "list":
        with db.reading() as conn:
            _print_list(pending_amendments(conn))
        return 0
    target = _required(args.target, f"amend {args.action} needs an id")
    if args.action == "show":
        with db.reading() as conn:
            found = load_amendment(conn, target)
        if found is None:
            raise HandoffError(f"no amendment {target!r}")
        _print_one(found)
        return 0
    user = _required(args.user, f"amend {args.action} needs --as USER")
    if args.action == "request":
        done = amendments.request(db, target, user, args.reason, _change(args), utcnow())
    else:
        decide = amendments.approve if args.action == "approve" else amendments.reject
        done = decide(db, target, user, settings.roles, args.reason, utcnow())
    print(f"{done.describe()}: {done.status}")
    return 0


def _change(args: argparse.Namespace) -> Any:
    from handoff.flows.amendments import TermsChange

    milestones = {}
    for item in args.milestone:
        milestone_id, _, amount = item.partition("=")
        milestones[_required(milestone_id, f"--milestone {item!r}: use ID=AMOUNT")] = _decimal(amount)
    value = _decimal(args.value) if args.value is not None else None
    return TermsChange(value, milestones, tuple(args.cancel_milestone))


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise HandoffError(f"{text!r} is not an amount") from None


def _required(value: str | None, message: str) -> str:
    if not value:
        raise HandoffError(message)
    return value


def _print_list(items: list[Any]) -> None:
    from handoff.render import table

    if not items:
        print("no amendment awaits a decision")
        return
    print(table(["id", "deal", "requested", "by", "changes", "reason"],
                [[a.id, a.opportunity_id, a.requested_at.isoformat()[:19], a.requester,
                  a.describe().partition("(")[2].rstrip(")"), a.reason] for a in items]))


def _print_one(amendment: Any) -> None:
    print(f"{amendment.describe()}\n  status     {amendment.status}\n"
          f"  requested  {amendment.requested_at.isoformat()} by {amendment.requester} "
          f"({amendment.origin}): {amendment.reason}\n  amends     plan v{amendment.base_version}")
    if amendment.decided_by:
        print(f"  decided    {amendment.decided_at.isoformat()} by {amendment.decided_by}"
              + (f": {amendment.decision_reason}" if amendment.decision_reason else ""))
