"""`handoff month-end`: is the period ready to close? Exit 0 when every check holds, 1 when
one does not (so a scheduler or a close checklist can act on it)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import timedelta

from handoff.config import Settings

NOT_READY = 1


def add_month_end_command(commands: argparse._SubParsersAction,
                          command: Callable[..., argparse.ArgumentParser]) -> None:
    month_end = command(commands, "month-end", _month_end,
                        "check the period is ready to close; exit 1 when it is not")
    month_end.add_argument("--period", help="YYYY-MM (default: this month)")
    month_end.add_argument("--parked-days", type=float, default=3.0,
                           help="how long a deal may stay parked (default 3)")
    month_end.add_argument("--freshness-hours", type=float,
                           help="how old an open invoice's status may be (default: two "
                                "[policy.billing] refresh intervals)")


def _month_end(args: argparse.Namespace, settings: Settings) -> int:
    from handoff.engine.clock import utcnow
    from handoff.flows.month_end import check_period, month_end
    from handoff.render import table
    from handoff.store import open_database

    now = utcnow()
    period = check_period(args.period or f"{now:%Y-%m}")
    freshness = (timedelta(hours=args.freshness_hours) if args.freshness_hours
                 else timedelta(minutes=2 * settings.billing.refresh_minutes))
    result = month_end(open_database(settings.database_url), period, now,
                       timedelta(days=args.parked_days), freshness)
    print(f"month-end {result.period}: " + ("ready to close" if result.ready else "NOT ready"))
    print(table(["check", "", "detail"], [[c.name, "ok" if c.ok else "FAIL", c.detail]
                                          for c in result.checks]))
    return 0 if result.ready else NOT_READY
