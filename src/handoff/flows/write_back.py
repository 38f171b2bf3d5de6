"""The write-back controller: each deal's CRM record shows what handoff knows — project id,
provisioning status and why, and once invoices exist what is invoiced and paid — sent in
batches (one sObject Collections call for up to 200 deals on Salesforce). Level-triggered:
it writes what the deal's state says now, and only when that differs from what the CRM was
last told."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

import sqlalchemy as sa

from handoff.connectors.ports import BillingSummary, CrmConnector, CrmStatusUpdate
from handoff.domain import ProvisioningStatus
from handoff.engine.changes import Changes
from handoff.engine.clock import utcnow
from handoff.engine.keys import CRM
from handoff.engine.queue import Claim
from handoff.engine.retry import Action
from handoff.errors import HandoffError
from handoff.flows.billing_summary import billing_fingerprint, billing_summaries
from handoff.flows.plan import write_back_fingerprint
from handoff.observability import lifecycle, span
from handoff.observability.context import batch_of
from handoff.store.db import Database
from handoff.store.provisioning import Hop
from handoff.store.sql import one_of
from handoff.store.tables import opportunities, provisioning

log = logging.getLogger("handoff.write_back")
DESIRED = (
    sa.select(provisioning.c.opportunity_id, provisioning.c.status, provisioning.c.detail,
              provisioning.c.project_target_id, provisioning.c.written_back,
              provisioning.c.billing_written_back, provisioning.c.billing_note,
              opportunities.c.correlation_id)
    .join(opportunities, opportunities.c.id == provisioning.c.opportunity_id)
    .where(one_of(provisioning.c.opportunity_id, "b_ids"))
)


class WriteBackController:
    prefix = CRM
    batch_size = 200

    def __init__(self, db: Database, crm: CrmConnector,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.crm, self.clock = db, crm, clock

    def reconcile_batch(self, claims: Sequence[Claim],
                        changes: Changes) -> dict[str, BaseException | None]:
        """Write every claimed deal whose CRM view is out of date; one outcome per key."""
        ids = {claim.key.removeprefix(self.prefix): claim for claim in claims}
        with self.db.reading() as conn:
            desired = list(conn.execute(DESIRED, {"b_ids": list(ids)}))
            billing = billing_summaries(conn, desired, self.clock().date())
        stale = _stale(desired, billing)
        outcomes: dict[str, BaseException | None] = {claim.key: None for claim in claims}
        if not stale:
            return outcomes
        rows = [r for r, _, _ in stale]
        started = self.clock()
        try:
            with batch_of([(r.correlation_id, r.opportunity_id) for r in rows]), \
                    span("write_back", {"handoff.system": self.crm.system, "handoff.deals": len(rows)}):
                results: list[BaseException | None] = list(self.crm.write_back_many(
                    [_update(r, billing.get(r.opportunity_id)) for r in rows]))
        except HandoffError as exc:  # the whole call failed: each deal's lineage says so
            results = [exc] * len(rows)
        for (row, status, billed), error in zip(stale, results, strict=True):
            claim = ids[row.opportunity_id]
            if log.isEnabledFor(logging.INFO):
                self._log(row, error)
            changes.hops.append(self._hop(row, claim, error, started,
                                          billing.get(row.opportunity_id)))
            if error is None:
                changes.set_state(row.opportunity_id, written_back=status, billing_written_back=billed)
            outcomes[claim.key] = error
        return outcomes

    def _log(self, row: sa.Row, error: BaseException | None) -> None:
        with lifecycle(row.correlation_id, row.opportunity_id):
            log.info("write_back to %s: %s", self.crm.system,
                     "ok" if error is None else f"{type(error).__name__}: {error}",
                     extra={"step": "write_back", "system": self.crm.system,
                            "outcome": "ok" if error is None else type(error).__name__})

    def gave_up(self, key: str, action: Action, error: BaseException, attempt: int,
                changes: Changes) -> None:
        """Nothing more to do: the exception is recorded and shown in the deal's trace."""

    def _hop(self, row: sa.Row, claim: Claim, error: BaseException | None,
             started: datetime, billing: BillingSummary | None) -> Hop:
        outcome = "ok" if error is None else type(error).__name__
        detail = str(error) if error else f"CRM shows '{row.status}'" + (
            f": {row.detail}" if row.detail else "") + (
            f"; {billing.describe()}" if billing else "")
        return Hop(row.opportunity_id, row.correlation_id, "write_back", self.crm.system, outcome,
                   claim.attempts + 1, started, self.clock(), row.project_target_id, detail)


def _stale(desired: list[sa.Row], billing: dict[str, BillingSummary],
           ) -> list[tuple[sa.Row, str, str | None]]:
    """The deals whose CRM view is out of date, with the fingerprints of what it should show."""
    found = []
    for row in desired:
        status, billed = _fingerprint(row), billing_fingerprint(billing.get(row.opportunity_id))
        if status != row.written_back or billed != row.billing_written_back:
            found.append((row, status, billed))
    return found


def _update(row: sa.Row, billing: BillingSummary | None) -> CrmStatusUpdate:
    return CrmStatusUpdate(row.opportunity_id, ProvisioningStatus(row.status), row.detail,
                           row.project_target_id, billing)


def _fingerprint(row: sa.Row) -> str:
    return write_back_fingerprint(ProvisioningStatus(row.status), row.detail, row.project_target_id)
