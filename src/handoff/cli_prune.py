"""`handoff prune [--dry-run]`: remove (archiving first when `[retention] archive_dir` is set)
the inbox events and intake refusals older than `[retention]` keeps them; one line per table."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from handoff.config import Settings


def add_prune_command(commands: argparse._SubParsersAction,
                      command: Callable[..., argparse.ArgumentParser]) -> None:
    prune = command(commands, "prune", _prune,
                    "remove inbox events and refusals older than [retention] keeps them")
    prune.add_argument("--dry-run", action="store_true",
                       help="count what would be removed; change nothing")


def _prune(args: argparse.Namespace, settings: Settings) -> int:
    from handoff.engine.clock import utcnow
    from handoff.store import open_database
    from handoff.store.retention import prune

    db = open_database(settings.database_url)
    try:
        for table in prune(db, settings.retention, utcnow(), dry_run=args.dry_run):
            print(table.describe())
    finally:
        db.dispose()
    return 0
