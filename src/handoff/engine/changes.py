"""Changes: what a reconcile wants written. The settler (engine/settler.py) commits them in
the same transaction as the key's outcome (done, retry later, or given up), together with
other keys' — never one transaction per step. A crash loses at most the bookkeeping of
calls that were idempotent anyway, and they are made again."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.engine import Connection

from handoff.engine import queue
from handoff.store import audit
from handoff.store.audit import AuditEntry
from handoff.store.billing import InvoiceRecord, save_invoices
from handoff.store.provisioning import Hop, record_hops, save_states
from handoff.store.terms import Amendment, PlanVersion, save_amendments, save_plan_versions


@dataclass
class Changes:
    hops: list[Hop] = field(default_factory=list)
    states: dict[str, dict[str, object]] = field(default_factory=dict)
    enqueue: list[str] = field(default_factory=list)
    invoices: list[InvoiceRecord] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)  # financial changes, hash-chained
    plans: list[PlanVersion] = field(default_factory=list)
    amendments: list[Amendment] = field(default_factory=list)  # opened, or superseded

    def set_state(self, opportunity_id: str, **fields: object) -> None:
        self.states.setdefault(opportunity_id, {}).update(fields)

    def absorb(self, other: Changes) -> None:
        """Take over another key's changes (fields of one deal merge, later ones win)."""
        self.hops += other.hops
        for opportunity_id, fields in other.states.items():
            self.set_state(opportunity_id, **fields)
        self.enqueue += other.enqueue
        self.invoices += other.invoices
        self.audit += other.audit
        self.plans += other.plans
        self.amendments += other.amendments

    def apply(self, conn: Connection, now: datetime) -> None:
        record_hops(conn, self.hops)
        save_states(conn, self.states, now)
        save_invoices(conn, self.invoices, now)
        save_plan_versions(conn, self.plans, now)
        save_amendments(conn, self.amendments)
        audit.append(conn, self.audit, now)
        queue.enqueue_many(conn, self.enqueue, now)
