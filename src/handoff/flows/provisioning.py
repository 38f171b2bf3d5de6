"""The provisioning controller: a won, released deal becomes exactly one customer and one
project in the ERP, and the CRM shows the project id — or why the deal is blocked.

Each step's result is recorded as soon as the target answers, so a crash repeats at most
the step in flight, and every step is idempotent in the target (upsert by external id).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from datetime import datetime

from handoff.connectors.ports import CrmConnector, CrmStatusUpdate, ErpConnector
from handoff.domain import ProvisioningStatus
from handoff.engine.clock import utcnow
from handoff.engine.retry import Action
from handoff.errors import HandoffError
from handoff.flows.plan import (
    ProvisioningPlan,
    Step,
    UpsertCustomer,
    UpsertProject,
    WriteBack,
    plan_provisioning,
    write_back_fingerprint,
)
from handoff.policy.release_gates import ReleasePolicy
from handoff.store.db import Database
from handoff.store.provisioning import (
    Hop,
    ProvisioningState,
    Snapshot,
    load_snapshot,
    record_hop,
    save_state,
)

KEY_PREFIX = "opportunity:"
GAVE_UP_STATUS = {
    Action.PARK: ProvisioningStatus.PARKED,
    Action.QUARANTINE: ProvisioningStatus.QUARANTINED,
    Action.DEAD_LETTER: ProvisioningStatus.DEAD_LETTER,
}


class ProvisioningController:
    def __init__(self, db: Database, crm: CrmConnector, erp: ErpConnector,
                 policy: ReleasePolicy, clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.crm, self.erp, self.policy, self.clock = db, crm, erp, policy, clock

    def plan(self, opportunity_id: str) -> ProvisioningPlan | None:
        with self.db.reading() as conn:
            snap = load_snapshot(conn, opportunity_id)
        if snap is None:
            return None
        return plan_provisioning(snap.opportunity, snap.customer, snap.state, self.policy)

    def reconcile(self, key: str, attempt: int) -> None:
        opportunity_id = key.removeprefix(KEY_PREFIX)
        with self.db.reading() as conn:
            snap = load_snapshot(conn, opportunity_id)
        if snap is None:
            return
        plan = plan_provisioning(snap.opportunity, snap.customer, snap.state, self.policy)
        if _decision(plan.status, plan.detail) != _decision(snap.state.status, snap.state.detail):
            self._decide(snap, plan, attempt)
        state = snap.state
        for step in plan.steps:
            state = self._apply(step, snap, state, attempt)
        provisioned = ProvisioningStatus.PROVISIONED
        if plan.status is provisioned and snap.state.status is not provisioned:
            now = self.clock()
            with self.db.transaction() as conn:
                save_state(conn, opportunity_id, now, status=provisioned.value, detail="",
                           provisioned_at=now)

    def gave_up(self, key: str, action: Action, error: BaseException, attempt: int) -> None:
        """The engine stopped retrying: record why and tell the CRM (best effort)."""
        kind = GAVE_UP_STATUS[action]
        opportunity_id = key.removeprefix(KEY_PREFIX)
        with self.db.reading() as conn:
            snap = load_snapshot(conn, opportunity_id)
        if snap is None:
            return
        with self.db.transaction() as conn:
            save_state(conn, opportunity_id, self.clock(), status=kind.value, detail=str(error))
        # A failed write-back is recorded as a failed hop; the exception is what a person acts on.
        with contextlib.suppress(HandoffError):
            self._apply(WriteBack(kind, str(error)), snap, snap.state, attempt)

    def _decide(self, snap: Snapshot, plan: ProvisioningPlan, attempt: int) -> None:
        """Record the release decision (waiting, blocked with reasons, released) once."""
        now = self.clock()
        released = plan.status is ProvisioningStatus.PROVISIONED
        fields: dict[str, object] = {
            "status": (ProvisioningStatus.PROVISIONING if released else plan.status).value,
            "detail": plan.detail}
        if released:
            fields["released_at"] = now
        outcome, _ = _decision(plan.status, plan.detail)
        with self.db.transaction() as conn:
            save_state(conn, snap.opportunity.id, now, **fields)
            record_hop(conn, Hop(snap.opportunity.id, snap.correlation_id, "release", "handoff",
                                 outcome, attempt, now, now, detail=plan.detail))

    def _apply(self, step: Step, snap: Snapshot, state: ProvisioningState,
               attempt: int) -> ProvisioningState:
        started = self.clock()
        system, name = self._describe(step)
        try:
            fields = self._call(step, snap, state)
        except HandoffError as exc:
            self._record(snap, name, system, type(exc).__name__, attempt, started, None, str(exc))
            raise
        target = fields.get("project_target_id") or fields.get("customer_target_id")
        self._record(snap, name, system, "ok", attempt, started, target, step.describe(),
                     fields)
        return _merge(state, fields)

    def _describe(self, step: Step) -> tuple[str, str]:
        if isinstance(step, UpsertCustomer):
            return self.erp.system, "upsert_customer"
        if isinstance(step, UpsertProject):
            return self.erp.system, "upsert_project"
        return self.crm.system, "write_back"

    def _call(self, step: Step, snap: Snapshot, state: ProvisioningState) -> dict[str, object]:
        if isinstance(step, UpsertCustomer):
            result = self.erp.upsert_customer(step.external_id, step.customer)
            return {"customer_external_id": step.external_id,
                    "customer_target_id": result.target_id,
                    "customer_synced_version": step.customer.version}
        if isinstance(step, UpsertProject):
            if state.customer_target_id is None:
                raise HandoffError("project planned before its customer exists")
            result = self.erp.upsert_project(step.project, state.customer_target_id)
            return {"project_external_id": step.project.external_id,
                    "project_target_id": result.target_id}
        self.crm.write_back(CrmStatusUpdate(snap.opportunity.id, step.status, step.detail,
                                            state.project_target_id))
        return {"written_back": write_back_fingerprint(step.status, step.detail,
                                                       state.project_target_id)}

    def _record(self, snap: Snapshot, step: str, system: str, outcome: str, attempt: int,
                started: datetime, target: object, detail: str,
                fields: dict[str, object] | None = None) -> None:
        finished = self.clock()
        with self.db.transaction() as conn:
            if fields:
                save_state(conn, snap.opportunity.id, finished, **fields)
            record_hop(conn, Hop(snap.opportunity.id, snap.correlation_id, step, system,
                                 outcome, attempt, started, finished,
                                 str(target) if target else None, detail))


def _decision(status: ProvisioningStatus, detail: str) -> tuple[str, str]:
    """What the release gates said; every status past them counts as "released"."""
    if status in (ProvisioningStatus.WAITING, ProvisioningStatus.BLOCKED):
        return status.value, detail
    return "released", ""


def _merge(state: ProvisioningState, fields: dict[str, object]) -> ProvisioningState:
    known = {k: v for k, v in fields.items() if k in ProvisioningState.__dataclass_fields__}
    return dataclasses.replace(state, **known)
