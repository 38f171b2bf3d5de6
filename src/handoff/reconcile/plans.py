"""handoff's own side of a snapshot: each provisioned deal's approved invoice plan (its latest
plan version) and what handoff has invoiced on it."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from handoff.domain import BillingMethod, InvoiceStatus
from handoff.domain.terms import DealTerms, parse_terms
from handoff.reconcile.build import PlanFigures
from handoff.store.tables import invoices, plan_versions

COUNTED = (InvoiceStatus.POSTED.value, InvoiceStatus.PAID.value)
PLANS = sa.select(plan_versions.c.opportunity_id, plan_versions.c.terms).order_by(
    plan_versions.c.opportunity_id, plan_versions.c.version.desc())
INVOICED = sa.select(invoices.c.opportunity_id, invoices.c.untaxed).where(
    invoices.c.status.in_(COUNTED))
STREAMED = {"yield_per": 2000}


def plan_figures(conn: Connection) -> Iterator[PlanFigures]:
    invoiced: dict[str, Decimal] = {}
    for row in conn.execute(INVOICED.execution_options(**STREAMED)):
        invoiced[row.opportunity_id] = invoiced.get(row.opportunity_id, Decimal(0)) + Decimal(row.untaxed)
    previous = None
    for row in conn.execute(PLANS.execution_options(**STREAMED)):
        if row.opportunity_id == previous:
            continue  # an older version: the first row of a deal is its latest
        previous = row.opportunity_id
        terms = parse_terms(row.terms)
        yield PlanFigures(row.opportunity_id, terms.currency, planned_total(terms),
                          invoiced.get(row.opportunity_id, Decimal(0)))


def planned_total(terms: DealTerms) -> Decimal:
    """What the approved plan will invoice in all: its schedule, else the whole value for a
    fixed fee or a time-and-materials cap (billed by period up to it), else nothing yet."""
    if terms.milestones and terms.billing_method is not BillingMethod.TIME_AND_MATERIALS:
        return sum((m.amount.amount for m in terms.milestones), Decimal(0))
    if terms.billing_method is BillingMethod.MILESTONE:
        return Decimal(0)
    return terms.value.amount
