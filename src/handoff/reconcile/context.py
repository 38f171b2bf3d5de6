"""What handoff itself knows about a finding, added to its explanation: an approved deal with
no project is usually one handoff holds (a release gate, a parked error) or never heard of,
and the person reading the finding should not have to look that up."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa

from handoff.reconcile.classes import Kind
from handoff.reconcile.engine import Discrepancy
from handoff.store.db import Database
from handoff.store.tables import provisioning

STATES = sa.select(provisioning.c.opportunity_id, provisioning.c.status, provisioning.c.detail).where(
    provisioning.c.opportunity_id.in_(sa.bindparam("b_ids", expanding=True)))


def with_handoff_context(db: Database, found: list[Discrepancy]) -> list[Discrepancy]:
    missing = [d.deal_id for d in found if d.kind is Kind.MISSING_PROJECT]
    if not missing:
        return found
    with db.reading() as conn:
        states = {row.opportunity_id: row for row in conn.execute(STATES, {"b_ids": missing})}
    return [replace(d, explanation=d.explanation + note(states.get(d.deal_id)))
            if d.kind is Kind.MISSING_PROJECT else d for d in found]


def note(state: sa.Row | None) -> str:
    if state is None:
        return "; handoff never received this deal (run `handoff poll`)"
    if state.status == "provisioned":
        return "; handoff provisioned it, so the project was removed in the ERP"
    return f"; handoff holds it ({state.status}): {state.detail}" if state.detail else \
        f"; handoff holds it ({state.status})"
