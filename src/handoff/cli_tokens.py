"""`handoff token create|list|revoke`: API tokens with roles, for the HTTP API and the
dashboard. The token is printed once, when it is made; handoff keeps only its hash. The CLI
is an operator's tool with database access, so it acts as an admin (`--as` names who)."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from handoff.config import Settings
from handoff.errors import HandoffError


def add_token_command(commands: argparse._SubParsersAction,
                      command: Callable[..., argparse.ArgumentParser]) -> None:
    token = command(commands, "token", _token, "API tokens: create, list, revoke")
    token.add_argument("action", choices=["create", "list", "revoke"])
    token.add_argument("id", nargs="?", type=int, help="revoke: the token's id (from list)")
    token.add_argument("--user", help="create: whose token")
    token.add_argument("--role", action="append", default=[],
                       help="create: viewer, integrator, approver or admin (repeatable)")
    token.add_argument("--as", dest="by", default="cli", help="who makes or revokes it (audit log)")


def _token(args: argparse.Namespace, settings: Settings) -> int:
    from handoff.api.auth import audited
    from handoff.api.tokens import issue_token, token_view
    from handoff.engine.clock import utcnow
    from handoff.errors import IntakeError
    from handoff.render import table
    from handoff.store import open_database
    from handoff.store.tokens import list_tokens, revoke_token

    db = open_database(settings.database_url)
    if args.action == "list":
        with db.reading() as conn:
            rows = [token_view(r) for r in list_tokens(conn)]
        print(table(["id", "user", "roles", "starts", "made by", "made", "revoked"],
                    [[r["id"], r["user"], ",".join(r["roles"]), r["prefix"] + "…", r["created_by"],
                      r["created_at"][:19], (r["revoked_at"] or "")[:19]] for r in rows])
              if rows else "no tokens yet: `handoff token create --user NAME --role viewer`")
        return 0
    if args.action == "create":
        if not args.user or not args.role:
            raise HandoffError("token create needs --user NAME and at least one --role")
        try:
            made = issue_token(db, args.user, ",".join(args.role), args.by)
        except IntakeError as exc:
            raise HandoffError(exc.message) from None
        print(f"token {made['id']} for {made['user']} ({', '.join(made['roles'])}); shown this once:")
        print(made["token"])
        return 0
    if args.id is None:
        raise HandoffError("token revoke needs the token's id (see `handoff token list`)")
    with db.transaction() as conn:
        record = revoke_token(conn, args.id, utcnow())
    if record is None:
        raise HandoffError(f"no token {args.id}")
    audited(db, args.by, "token.revoked", record.user, None, token_view(record))
    print(f"token {record.id} of {record.user} revoked")
    return 0
