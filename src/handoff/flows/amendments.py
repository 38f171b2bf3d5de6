"""Deciding amendments: approve or reject (CLI `handoff amend`, API `/amendments`), and
raising one by hand (finance found an over-billing, a milestone is cancelled).

Segregation of duties: only a user with the approver role decides, and never on an amendment
they requested. An approval records the next plan version in the same transaction, appends
the decision to the audit log and queues the deal, so provisioning sends the approved value
to the ERP and billing invoices (or credits) by the new schedule. A refused decision changes
nothing and is itself kept in the audit log.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.domain import Milestone, Money
from handoff.domain.terms import Amendment, AmendmentStatus, DealTerms
from handoff.engine import queue
from handoff.engine.keys import billing_key, opportunity_key
from handoff.errors import IntakeError
from handoff.policy.roles import Roles
from handoff.store import audit
from handoff.store.audit import AuditEntry
from handoff.store.db import Database
from handoff.store.provisioning import Hop, record_hops
from handoff.store.tables import opportunities
from handoff.store.terms import (
    PlanVersion,
    amendment_audit,
    amendments_by_deal,
    latest_plans,
    load_amendment,
    save_amendments,
    save_plan_versions,
)


@dataclass(frozen=True, slots=True)
class TermsChange:
    """A change asked for by hand: a new contract value, milestone amounts (a new id adds
    one), milestones cancelled."""

    value: Decimal | None = None
    milestones: Mapping[str, Decimal] = dataclasses.field(default_factory=dict)
    cancel: tuple[str, ...] = ()


def approve(db: Database, amendment_id: str, user: str, roles: Roles, reason: str,
            now: datetime) -> Amendment:
    return _decide(db, amendment_id, user, roles, reason, now, AmendmentStatus.APPROVED)


def reject(db: Database, amendment_id: str, user: str, roles: Roles, reason: str,
           now: datetime) -> Amendment:
    return _decide(db, amendment_id, user, roles, reason, now, AmendmentStatus.REJECTED)


def request(db: Database, opportunity_id: str, user: str, reason: str, change: TermsChange,
            now: datetime, origin: str = "cli") -> Amendment:
    """Open an amendment on an active deal's approved terms; someone else approves it."""
    if not reason.strip():
        raise IntakeError("an amendment needs a reason", status=422, field="reason")
    with db.transaction() as conn:
        plan = latest_plans(conn, [opportunity_id]).get(opportunity_id)
        if plan is None:
            raise IntakeError(f"deal {opportunity_id!r} has no approved plan: it is not "
                              "provisioned (before that its terms follow the CRM)", status=409)
        known = amendments_by_deal(conn, [opportunity_id]).get(opportunity_id, ())
        pending = [a for a in known if a.status is AmendmentStatus.PENDING]
        if pending:
            raise IntakeError(f"deal {opportunity_id} has amendment {pending[-1].id} pending; "
                              "decide it first", status=409)
        after = _changed_terms(plan.terms, change)
        correlation = conn.execute(sa.select(opportunities.c.correlation_id).where(
            opportunities.c.id == opportunity_id)).scalar_one()
        amendment = Amendment(
            id=f"AM-{opportunity_id}-{len(known) + 1}", opportunity_id=opportunity_id,
            correlation_id=correlation, status=AmendmentStatus.PENDING, base_version=plan.version,
            before=plan.terms, after=after, requester=user, reason=reason, origin=origin,
            requested_at=now)
        save_amendments(conn, [amendment])
        _log(conn, amendment, user, f"opened by {user}: {reason}", now)
        queue.enqueue(conn, opportunity_key(opportunity_id), now)  # the CRM learns it is pending
    return amendment


def _decide(db: Database, amendment_id: str, user: str, roles: Roles, reason: str,
            now: datetime, status: AmendmentStatus) -> Amendment:
    try:
        with db.transaction() as conn:
            amendment = load_amendment(conn, amendment_id, for_update=True)
            if amendment is None:
                raise IntakeError(f"no amendment {amendment_id!r}", status=404)
            _check(conn, amendment, user, roles, status)
            decided = dataclasses.replace(amendment, status=status, decided_by=user,
                                          decided_at=now, decision_reason=reason or None)
            save_amendments(conn, [decided])
            if status is AmendmentStatus.APPROVED:
                save_plan_versions(conn, [PlanVersion(amendment.opportunity_id,
                                                      amendment.base_version + 1, amendment.after,
                                                      amendment.id)], now)
            _log(conn, decided, user, f"{status} by {user}" + (f": {reason}" if reason else ""), now)
            queue.enqueue_many(conn, [opportunity_key(amendment.opportunity_id),
                                      billing_key(amendment.opportunity_id)], now)
            return decided
    except IntakeError as exc:
        if exc.status == 403:  # an attempt past the approver's rights is evidence too
            _log_refusal(db, amendment_id, user, status, exc.message, now)
        raise


def _check(conn: Connection, amendment: Amendment, user: str, roles: Roles,
           status: AmendmentStatus) -> None:
    verb = "approve" if status is AmendmentStatus.APPROVED else "reject"
    if amendment.status is not AmendmentStatus.PENDING:
        raise IntakeError(f"amendment {amendment.id} is {amendment.status} already", status=409)
    if user not in roles.approvers:
        raise IntakeError(f"{user} does not have the approver role and cannot {verb} "
                          f"amendment {amendment.id}", status=403)
    if user == amendment.requester:
        raise IntakeError(f"{user} requested amendment {amendment.id} and cannot {verb} it "
                          "(segregation of duties)", status=403)
    plan = latest_plans(conn, [amendment.opportunity_id]).get(amendment.opportunity_id)
    if plan is None or plan.version != amendment.base_version:
        raise IntakeError(f"amendment {amendment.id} amends plan v{amendment.base_version}, but "
                          f"the deal is at v{plan.version if plan else 0}", status=409)


def _changed_terms(terms: DealTerms, change: TermsChange) -> DealTerms:
    currency = terms.currency
    schedule = {m.id: m for m in terms.milestones}
    for milestone_id in change.cancel:
        if schedule.pop(milestone_id, None) is None:
            raise IntakeError(f"no milestone {milestone_id!r} to cancel", status=422,
                              field="cancel")
    for milestone_id, amount in change.milestones.items():
        name = schedule[milestone_id].name if milestone_id in schedule else milestone_id
        schedule[milestone_id] = Milestone(milestone_id, name, _money(amount, currency))
    value = _money(change.value, currency) if change.value is not None else terms.value
    after = dataclasses.replace(terms, value=value, milestones=tuple(schedule.values()))
    if after == terms:
        raise IntakeError("the amendment changes nothing", status=422)
    return after


def _money(amount: Decimal, currency: str) -> Money:
    try:
        money = Money(amount, currency)
    except ValueError as exc:
        raise IntakeError(str(exc), status=422) from None
    if money.is_negative:
        raise IntakeError(f"{amount} is negative", status=422)
    return money


def _log(conn: Connection, amendment: Amendment, actor: str, detail: str, now: datetime) -> None:
    audit.append(conn, [amendment_audit(amendment, actor)], now)
    record_hops(conn, [Hop(amendment.opportunity_id, amendment.correlation_id, "amendment",
                           "handoff", "ok", 0, now, now,
                           detail=f"amendment {amendment.id} {detail}")])


def _log_refusal(db: Database, amendment_id: str, user: str, status: AmendmentStatus,
                 why: str, now: datetime) -> None:
    with db.transaction() as conn:
        amendment = load_amendment(conn, amendment_id)
        if amendment is not None:
            audit.append(conn, [AuditEntry(user, f"amendment.{status}.refused",
                                           amendment.opportunity_id, amendment.correlation_id,
                                           None, {"amendment": amendment.id, "why": why})], now)
