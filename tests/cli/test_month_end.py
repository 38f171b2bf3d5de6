"""`handoff month-end`: not ready (exit 1) while a dead letter waits, ready (exit 0) once it
is replayed and worked off; old parked deals and stale invoice status count too."""

from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

from handoff.bootstrap import build_worker
from handoff.config import PollSettings, Settings
from handoff.connectors.memory import MemoryCrm, MemoryErp
from handoff.engine.clock import utcnow
from handoff.engine.inbox import accept
from handoff.errors import PermanentError
from handoff.flows.month_end import month_end
from handoff.reconcile import Discrepancy, Kind
from handoff.reconcile.actions import acknowledge
from handoff.store import reconciliation
from handoff.store.db import Database, open_database
from handoff.store.tables import exceptions
from tests.cli.test_cli import handoff
from tests.factories import customer_data, customer_event, event, opportunity_data

SETTINGS = Settings(poll=PollSettings(0, 0))


def test_a_dead_letter_holds_the_close_until_it_is_replayed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    db, erp = open_database(url), MemoryErp()
    accept(db, customer_event(customer_data("001M")), utcnow())
    accept(db, event(opportunity_data("006M", "001M", billing_method="milestone")), utcnow())
    erp.faults.fail_next([PermanentError("the integration role lost its licence")])
    build_worker(SETTINGS, db, MemoryCrm(), erp).run(until_idle=True)
    reconciled(db, [])

    blocked = handoff("month-end", "--period", "2026-11", "--database", url, cwd=tmp_path)
    assert blocked.returncode == 1, blocked.stderr
    assert "month-end 2026-11: NOT ready" in blocked.stdout
    assert "no dead letters" in blocked.stdout and "opportunity:006M" in blocked.stdout

    assert handoff("replay", "--kind", "dead_letter", "--database", url, cwd=tmp_path).returncode == 0
    build_worker(SETTINGS, db, MemoryCrm(), erp).run(until_idle=True)
    ready = handoff("month-end", "--period", "2026-11", "--database", url, cwd=tmp_path)
    assert ready.returncode == 0, ready.stdout
    assert "ready to close" in ready.stdout and "FAIL" not in ready.stdout
    db.dispose()


def test_parked_too_long_and_stale_invoice_status_are_not_ready(db) -> None:
    crm, erp = MemoryCrm(), MemoryErp()
    accept(db, customer_event(customer_data("001M")), utcnow())
    accept(db, event(opportunity_data("006F", "001M")), utcnow())  # a fixed fee: invoiced
    build_worker(SETTINGS, db, crm, erp).run(until_idle=True)
    now = utcnow()
    with db.transaction() as conn:
        conn.execute(sa.insert(exceptions), [
            {"business_key": key, "kind": "parked", "error": "BusinessRuleError", "message": "m",
             "attempts": 1, "created_at": now - age}
            for key, age in (("billing:old", timedelta(days=5)), ("billing:new", timedelta(0)))])
    checks = {c.name: c for c in month_end(db, "2026-11", now, timedelta(days=3),
                                           timedelta(minutes=30)).checks}
    parked = checks["nothing parked over 3 days"]
    assert not parked.ok and "billing:old" in parked.detail and "billing:new" not in parked.detail
    assert checks["invoice status read within 0.5 h"].ok  # just read as it was made
    later = month_end(db, "2026-11", now + timedelta(hours=2), timedelta(days=30),
                      timedelta(minutes=30))
    stale = {c.name: c for c in later.checks}["invoice status read within 0.5 h"]
    assert not stale.ok and "006F" in stale.detail and not later.ready


def reconciled(db: Database, found: list[Discrepancy]) -> int:
    """A finished reconciliation run that found `found`."""
    run_id = reconciliation.start_run(db, "test", utcnow())
    assert run_id is not None
    with db.transaction() as conn:
        reconciliation.finish_run(conn, run_id, found, {d.kind.value: 1 for d in found}, 3, None,
                                  utcnow())
    return run_id


def test_the_close_waits_for_a_reconciliation_with_nothing_unacknowledged(db) -> None:
    def check() -> object:
        result = month_end(db, f"{utcnow():%Y-%m}", utcnow(), timedelta(days=3), timedelta(hours=1))
        return {c.name: c for c in result.checks}["reconciliation clean or acknowledged"]

    assert not check().ok and "run `handoff reconcile`" in check().detail
    orphan = Discrepancy("006X", Kind.ORPHAN_PROJECT, "USD", {"project_value": Decimal("10.00")},
                         "the ERP project HO-P-006X is worth 10.00 USD but no CRM deal 006X exists",
                         "close the project")
    reconciled(db, [orphan])
    assert not check().ok and "006X orphan_project" in check().detail
    acknowledge(db, "006X", "orphan_project", "controller", "a pilot, closed in December", utcnow())
    assert check().ok, check().detail
    reconciled(db, [])  # gone: the acknowledgement is cleared with it
    with db.reading() as conn:
        assert reconciliation.findings(conn, reconciliation.latest_run(conn).id) == []
        assert conn.execute(sa.select(sa.func.count()).select_from(reconciliation.reconcile_acks)
                            .where(reconciliation.reconcile_acks.c.cleared_at.is_(None))).scalar() == 0
