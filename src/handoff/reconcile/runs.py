"""A reconciliation run: take a snapshot of the systems through their connectors (or load the
one an earlier run kept), compare it, store the findings, keep the snapshot as Parquet.

Runs are started by `handoff reconcile`, by the API, or by the cron schedule inside
`handoff serve` (schedule.py); each is a row in reconcile_runs with its findings.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

from handoff.config import ReconcileSettings
from handoff.connectors.ports import CrmSnapshotSource, ErpSnapshotSource
from handoff.engine.clock import utcnow
from handoff.errors import HandoffError, IntakeError
from handoff.reconcile.build import build_snapshot, crm_row
from handoff.reconcile.context import with_handoff_context
from handoff.reconcile.engine import Result, reconcile
from handoff.reconcile.plans import plan_figures
from handoff.reconcile.snapshot import Snapshot
from handoff.store import reconciliation as store
from handoff.store.db import Database

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Systems:
    """What a run reads: the CRM's deals and the ERP's projects and billing documents."""

    crm: object
    erp: object
    approval_gates: tuple[str, ...]
    billing: object | None = None  # the system that invoices when it is not the ERP

    def check(self) -> tuple[CrmSnapshotSource, ErpSnapshotSource]:
        if not isinstance(self.crm, CrmSnapshotSource):
            raise HandoffError(f"the {getattr(self.crm, 'system', 'CRM')} connector cannot list its "
                               "deals, so it cannot be reconciled")
        if not isinstance(self.erp, ErpSnapshotSource):
            raise HandoffError(f"the {getattr(self.erp, 'system', 'ERP')} connector cannot list its "
                               "projects and invoices, so it cannot be reconciled")
        return self.crm, self.erp


def take_snapshot(db: Database, systems: Systems, progress: Progress) -> Snapshot:
    crm, erp = systems.check()

    def staged(stage: str, rows: int) -> None:
        progress(f"read {rows} {STAGE_NAMES[stage]}")

    with db.reading() as conn:
        billed = systems.billing if hasattr(systems.billing, "document_figures") else erp
        return build_snapshot((crm_row(f, systems.approval_gates) for f in crm.deal_figures()),
                              erp.project_figures(), plan_figures(conn), billed.document_figures(),
                              staged)


STAGE_NAMES = {"stage_crm": "CRM deals", "stage_projects": "ERP projects",
               "stage_plans": "approved plans from handoff", "stage_documents": "billing documents"}


def run_reconciliation(db: Database, systems: Systems, settings: ReconcileSettings, *,
                       trigger: str, scheduled_for: datetime | None = None,
                       progress: Progress = lambda _line: None) -> store.Run | None:
    """Snapshot the systems now and reconcile; None when a scheduled run for the same fire
    time was already started (by another `handoff serve`)."""
    run_id = store.start_run(db, trigger, utcnow(), scheduled_for=scheduled_for)
    if run_id is None:
        return None
    return complete_run(db, run_id, systems, settings, progress)


def complete_run(db: Database, run_id: int, systems: Systems, settings: ReconcileSettings,
                 progress: Progress = lambda _line: None) -> store.Run:
    """Carry out a run already recorded as started (the API answers before it ends)."""
    return _finish(db, run_id, settings, progress,
                   lambda: _saved(take_snapshot(db, systems, progress), settings, run_id))


def rerun_as_of(db: Database, as_of: date, settings: ReconcileSettings, *, trigger: str,
                progress: Progress = lambda _line: None) -> store.Run:
    """Reconcile again the snapshot the last run of `as_of` (or before it) kept."""
    end_of_day = datetime.combine(as_of + timedelta(days=1), time(), UTC)
    with db.reading() as conn:
        earlier = store.latest_run(conn, before=end_of_day, with_snapshot=True)
    if earlier is None or not Path(earlier.snapshot or "").is_dir():
        raise IntakeError(f"no reconciliation snapshot kept from {as_of} or before: runs keep "
                          f"their last {settings.keep_snapshots} in {settings.snapshots}", status=404)
    progress(f"comparing the snapshot of run {earlier.id} ({earlier.started_at:%Y-%m-%d %H:%M} UTC)")
    run_id = store.start_run(db, trigger, utcnow(), as_of=as_of)
    assert run_id is not None  # only a scheduled run can collide
    path = Path(earlier.snapshot or "")
    return _finish(db, run_id, settings, progress, lambda: (Snapshot.load(path), str(path)))


def _finish(db: Database, run_id: int, settings: ReconcileSettings, progress: Progress,
            snapshot_of: Callable[[], tuple[Snapshot, str]]) -> store.Run:
    """Compare and store; whatever fails on the way marks the run failed, with why."""
    try:
        snapshot, path = snapshot_of()
        result = reconcile(snapshot)
        contracts = snapshot.contracts()
        progress(f"compared {contracts} contracts: {result.total} discrepancies")
        found = with_handoff_context(db, result.discrepancies)
        with db.transaction() as conn:
            store.finish_run(conn, run_id, found, counts_of(result), contracts, path, utcnow())
            run = store.load_run(conn, run_id)
    except Exception as exc:
        store.fail_run(db, run_id, f"{type(exc).__name__}: {exc}", utcnow())
        raise
    _prune(db, settings)
    assert run is not None
    return run


def counts_of(result: Result) -> dict[str, int]:
    return {kind.value: count for kind, count in result.counts.items()}


def _saved(snapshot: Snapshot, settings: ReconcileSettings, run_id: int) -> tuple[Snapshot, str]:
    directory = Path(settings.snapshots) / f"run-{run_id:06d}"
    snapshot.save(directory)
    return snapshot, str(directory)


def _prune(db: Database, settings: ReconcileSettings) -> None:
    """Keep the newest `keep_snapshots` snapshot directories; older runs keep their findings."""
    with db.transaction() as conn:
        kept = sorted(store.snapshots_in_use(conn))
        old = kept[:-settings.keep_snapshots]
        if old:
            store.forget_snapshots(conn, old)
    for path in old:
        shutil.rmtree(path, ignore_errors=True)
