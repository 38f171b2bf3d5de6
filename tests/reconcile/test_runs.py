"""A reconciliation run that fails on the way (the CRM in a maintenance window) is recorded as
failed, with why, and never left running; a system that cannot list its records is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from handoff.config import ReconcileSettings
from handoff.errors import HandoffError, TransientError
from handoff.reconcile.runs import Systems, run_reconciliation
from handoff.store import reconciliation as store
from handoff.store.db import Database
from tests.e2e.harness import connect


class NoListing:
    system = "listless"


def test_a_run_that_fails_is_recorded_failed_with_why(db: Database, tmp_path: Path, salesforce_twin: Any,
                                                      netsuite_twin: Any) -> None:
    crm, erp = connect(salesforce_twin, netsuite_twin)
    with salesforce_twin.control() as control:
        control.put("/_twin/faults", json={"maintenance_seconds": 30}).raise_for_status()
    try:
        with pytest.raises(TransientError):
            run_reconciliation(db, Systems(crm, erp, ()), ReconcileSettings(snapshots=str(tmp_path)),
                               trigger="test")
    finally:
        with salesforce_twin.control() as control:
            control.put("/_twin/faults", json={}).raise_for_status()
    with db.reading() as conn:
        [run] = store.runs(conn)
    assert run.status == "failed" and run.error and run.error.startswith("TransientError")


def test_a_system_that_cannot_list_its_records_is_named(db: Database, tmp_path: Path) -> None:
    settings = ReconcileSettings(snapshots=str(tmp_path))
    with pytest.raises(HandoffError, match="the listless connector cannot list its deals"):
        run_reconciliation(db, Systems(NoListing(), NoListing(), ()), settings, trigger="test")
