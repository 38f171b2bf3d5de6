"""The provisioning controller: a won, released deal becomes exactly one customer and one
project in the ERP — or stays blocked with its reasons. What the CRM should show is then
handed to the write-back controller (flows/write_back.py), which sends it in batches.

Every call is idempotent in the target (upsert by external id), so the controller only
collects what it learned in `Changes`; the worker commits them with the key's outcome.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime

from handoff.connectors.ports import ErpConnector
from handoff.domain import BillingMethod, ProvisioningStatus
from handoff.domain.terms import AmendmentStatus, terms_data, terms_of
from handoff.engine.changes import Changes
from handoff.engine.clock import utcnow
from handoff.engine.keys import OPPORTUNITY, billing_key, crm_key
from handoff.engine.retry import Action
from handoff.errors import HandoffError
from handoff.flows.amendment_plan import OpenAmendment, SupersedeAmendment
from handoff.flows.plan import (
    ProvisioningPlan,
    RecordPlan,
    UpsertCustomer,
    UpsertProject,
    WriteBack,
    plan_provisioning,
)
from handoff.observability import span
from handoff.policy.ownership import DEFAULT_OWNERSHIP, OwnershipPolicy
from handoff.policy.release_gates import ReleasePolicy
from handoff.store.db import Database
from handoff.store.provisioning import (
    Hop,
    ProvisioningState,
    Snapshot,
    load_snapshot,
    load_snapshots,
    project_data,
)
from handoff.store.terms import amendment_audit

log = logging.getLogger("handoff.provisioning")
GAVE_UP_STATUS = {
    Action.PARK: ProvisioningStatus.PARKED,
    Action.QUARANTINE: ProvisioningStatus.QUARANTINED,
    Action.DEAD_LETTER: ProvisioningStatus.DEAD_LETTER,
}
ErpStep = UpsertCustomer | UpsertProject


class ProvisioningController:
    prefix = OPPORTUNITY

    def __init__(self, db: Database, erp: ErpConnector, policy: ReleasePolicy,
                 clock: Callable[[], datetime] = utcnow,
                 ownership: OwnershipPolicy = DEFAULT_OWNERSHIP) -> None:
        self.db, self.erp, self.policy, self.clock = db, erp, policy, clock
        self.ownership = ownership
        self._prefetched: dict[str, Snapshot] = {}
        self._lock = threading.Lock()

    def prepare(self, keys: Sequence[str]) -> None:
        """Read the deals of freshly claimed keys in one query. A deal changed after this
        read bumps its key's generation, so it is reconciled again with the newer state."""
        with self.db.reading() as conn:
            snapshots = load_snapshots(conn, [key.removeprefix(self.prefix) for key in keys])
        with self._lock:
            self._prefetched.update(snapshots)

    def reconcile(self, key: str, attempt: int, changes: Changes) -> None:
        snap = self._snapshot(key.removeprefix(self.prefix))
        if snap is None:
            return
        plan = plan_provisioning(snap, self.policy, self.ownership, self.clock())
        if _decision(plan.status, plan.detail) != _decision(snap.state.status, snap.state.detail):
            self._decide(snap, plan, attempt, changes)
        state = snap.state
        for step in plan.steps:
            if isinstance(step, UpsertCustomer | UpsertProject):
                state = self._apply(step, snap, state, attempt, changes)
            elif not isinstance(step, WriteBack):
                self._record(step, snap, changes)
        self._conclude(snap, plan, changes)

    def _snapshot(self, opportunity_id: str) -> Snapshot | None:
        with self._lock:
            snap = self._prefetched.pop(opportunity_id, None)
        if snap is None:
            with self.db.reading() as conn:
                snap = load_snapshot(conn, opportunity_id)
        return snap

    def gave_up(self, key: str, action: Action, error: BaseException, attempt: int,
                changes: Changes) -> None:
        """The engine stopped retrying: the deal's status says why, and the CRM is told."""
        opportunity_id = key.removeprefix(self.prefix)
        changes.set_state(opportunity_id, status=GAVE_UP_STATUS[action].value, detail=str(error))
        changes.enqueue.append(crm_key(opportunity_id))

    def _decide(self, snap: Snapshot, plan: ProvisioningPlan, attempt: int,
                changes: Changes) -> None:
        """Record the release decision (waiting, blocked with reasons, released) once."""
        now = self.clock()
        released = plan.status is ProvisioningStatus.PROVISIONED
        status = ProvisioningStatus.PROVISIONING if released else plan.status
        changes.set_state(snap.opportunity.id, status=status.value, detail=plan.detail)
        if released:
            changes.set_state(snap.opportunity.id, released_at=now)
        outcome, _ = _decision(plan.status, plan.detail)
        changes.hops.append(Hop(snap.opportunity.id, snap.correlation_id, "release", "handoff",
                                outcome, attempt, now, now, detail=plan.detail))

    def _record(self, step: RecordPlan | OpenAmendment | SupersedeAmendment, snap: Snapshot,
                changes: Changes) -> None:
        """Plan versions and amendments, kept and shown in the lineage. Amendments are
        financial changes, so they are hash-chained in the audit log too; v1 is what was sold,
        kept append-only in plan_versions (logging it would make every provisioning commit
        wait for the audit chain's head)."""
        now, opp = self.clock(), snap.opportunity
        changes.hops.append(Hop(opp.id, snap.correlation_id,
                                "plan" if isinstance(step, RecordPlan) else "amendment",
                                "handoff", "ok", 0, now, now, detail=step.describe()))
        if isinstance(step, RecordPlan):
            changes.plans.append(step.plan)
            return
        amendment = step.amendment
        if isinstance(step, SupersedeAmendment):
            amendment = dataclasses.replace(amendment, status=AmendmentStatus.SUPERSEDED,
                                            decided_by="handoff", decided_at=now,
                                            decision_reason=step.why)
        changes.amendments.append(amendment)
        changes.audit.append(amendment_audit(
            amendment, amendment.requester if isinstance(step, OpenAmendment) else "handoff"))

    def _conclude(self, snap: Snapshot, plan: ProvisioningPlan, changes: Changes) -> None:
        """Mark the deal provisioned, keep what the CRM's terms were, and ask for a write-back
        if the CRM must learn of it."""
        provisioned, opp = ProvisioningStatus.PROVISIONED, snap.opportunity
        if plan.status is not provisioned:
            if any(isinstance(step, WriteBack) for step in plan.steps):
                changes.enqueue.append(crm_key(opp.id))
            return
        first = snap.state.status is not provisioned
        if first:
            changes.set_state(opp.id, status=provisioned.value, detail=plan.detail,
                              provisioned_at=self.clock())
        elif plan.detail != snap.state.detail:
            changes.set_state(opp.id, detail=plan.detail)
        if terms_of(opp) != snap.state.crm_terms:
            changes.set_state(opp.id, crm_terms=terms_data(terms_of(opp)))
        if _billing_to_look_at(snap, plan, first):
            changes.enqueue.append(billing_key(opp.id))
        if any(isinstance(step, WriteBack) for step in plan.steps):
            changes.enqueue.append(crm_key(opp.id))

    def _apply(self, step: ErpStep, snap: Snapshot, state: ProvisioningState, attempt: int,
               changes: Changes) -> ProvisioningState:
        started, system = self.clock(), self.erp.system
        name = "upsert_customer" if isinstance(step, UpsertCustomer) else "upsert_project"
        try:
            with span(name, {"handoff.system": system, "handoff.attempt": attempt}) as step_span:
                fields = self._call(step, state)
                target = str(fields.get("project_target_id") or fields.get("customer_target_id"))
                step_span.set_attribute("handoff.target_id", target)
        except HandoffError as exc:
            changes.hops.append(Hop(snap.opportunity.id, snap.correlation_id, name, system,
                                    type(exc).__name__, attempt, started, self.clock(),
                                    detail=str(exc)))
            if log.isEnabledFor(logging.INFO):
                log.info("%s in %s failed: %s", name, system, exc,
                         extra={"step": name, "system": system, "error": type(exc).__name__})
            raise
        if log.isEnabledFor(logging.INFO):
            log.info("%s in %s: %s", name, system, target,
                     extra={"step": name, "system": system, "target_id": target})
        changes.hops.append(Hop(snap.opportunity.id, snap.correlation_id, name, system, "ok",
                                attempt, started, self.clock(), target, step.describe()))
        changes.set_state(snap.opportunity.id, **fields)
        return dataclasses.replace(state, **fields)

    def _call(self, step: ErpStep, state: ProvisioningState) -> dict[str, object]:
        if isinstance(step, UpsertCustomer):
            result = self.erp.upsert_customer(step.external_id, step.customer)
            return {"customer_external_id": step.external_id,
                    "customer_target_id": result.target_id,
                    "customer_synced_version": step.customer.version}
        if state.customer_target_id is None:
            raise HandoffError("project planned before its customer exists")
        result = self.erp.upsert_project(step.project, state.customer_target_id)
        return {"project_external_id": step.project.external_id,
                "project_target_id": result.target_id, "project_sent": project_data(step.project)}


def _billing_to_look_at(snap: Snapshot, plan: ProvisioningPlan, first: bool) -> bool:
    """A fixed fee bills once its project is live; delivery's news (it may have come before
    the project) is looked at by billing on every provisioning reconcile, which is cheap and
    closes the race with news arriving while the project is being made; a plan adopted for a
    deal provisioned before plan versions is billed by it."""
    fee = first and snap.opportunity.billing_method is BillingMethod.FIXED_FEE
    adopted = snap.state.project_target_id is not None and any(
        isinstance(step, RecordPlan) for step in plan.steps)
    return fee or snap.delivered or adopted


def _decision(status: ProvisioningStatus, detail: str) -> tuple[str, str]:
    """What the release gates said; every status past them counts as "released"."""
    if status in (ProvisioningStatus.WAITING, ProvisioningStatus.BLOCKED):
        return status.value, detail
    return "released", ""
