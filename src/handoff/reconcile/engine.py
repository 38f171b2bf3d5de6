"""Three-way reconciliation of a snapshot, set-based in DuckDB.

One query joins the three relations into one `contract` row per deal (a CRM deal, an ERP
project or both; billing joins the deal, absent billing counting as nothing invoiced) and
selects the rows each class's rule catches into a temporary table; the counts per class are
a GROUP BY over it. Only the discrepancies come back to Python, where their amounts become
`Decimal` at the currency's minor unit and their explanation is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from handoff.domain.money import MINOR_UNITS
from handoff.reconcile.classes import CLASSES, DiscrepancyClass, Kind
from handoff.reconcile.snapshot import Snapshot

CONTRACT = """
SELECT coalesce(c.deal_id, p.deal_id) AS deal_id,
       c.deal_id IS NOT NULL AS in_crm, p.deal_id IS NOT NULL AS in_erp,
       coalesce(c.approved, false) AS approved,
       coalesce(c.currency, p.currency) AS currency,
       c.currency AS crm_currency, p.currency AS erp_currency, b.currency AS billing_currency,
       coalesce(p.currency = c.currency, true) AND coalesce(b.currency = c.currency, true)
           AS currencies_agree,
       c.sold_value, p.project_value, p.planned_remaining,
       coalesce(b.invoiced, 0) AS invoiced, coalesce(b.credited, 0) AS credited,
       coalesce(b.paid, 0) AS paid,
       coalesce(b.untaxed, 0) AS untaxed,
       coalesce(b.untaxed, 0) + p.planned_remaining - p.project_value AS over_plan,
       p.project_value - coalesce(b.untaxed, 0) - p.planned_remaining AS unscheduled,
       coalesce(c.invoiced, 0) AS crm_invoiced, coalesce(c.paid, 0) AS crm_paid,
       coalesce(c.invoice_status, 'none') AS crm_status,
       coalesce(b.invoice_status, 'none') AS erp_status,
       list_position(['none', 'posted', 'paid'], crm_status) AS crm_rank,
       list_position(['none', 'posted', 'paid'], erp_status) AS erp_rank
FROM crm_deals c
FULL JOIN erp_projects p ON p.deal_id = c.deal_id
LEFT JOIN billing b ON b.deal_id = coalesce(c.deal_id, p.deal_id)
"""
BY_KIND = {c.kind: c for c in CLASSES}
# what a discrepancy row carries, whatever its class
COLUMNS = """deal_id, currency, crm_status, erp_status, sold_value, project_value, planned_remaining,
    invoiced, untaxed, credited, paid, over_plan, unscheduled, crm_invoiced, crm_paid, crm_currency,
    concat_ws(' and ', 'the ERP project is in ' || nullif(erp_currency, crm_currency),
              'its billing is in ' || nullif(billing_currency, crm_currency)) AS other_currencies"""


@dataclass(frozen=True)
class Discrepancy:
    deal_id: str
    kind: Kind
    currency: str                 # the contract currency: the CRM's, or the project's for an orphan
    amounts: dict[str, Decimal]   # the amounts this class is about, in that currency
    explanation: str
    repair: str


@dataclass(frozen=True)
class Result:
    discrepancies: list[Discrepancy]  # ordered by deal, then class
    counts: dict[Kind, int]           # every class, zero included

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def reconcile(snapshot: Snapshot) -> Result:
    db = snapshot.connection
    db.execute(f"CREATE OR REPLACE TEMP TABLE discrepancies AS WITH contract AS ({CONTRACT}) "
               + " UNION ALL ".join(select_class(c) for c in CLASSES))
    counts = dict(db.execute("SELECT kind, count(*) FROM discrepancies GROUP BY kind").fetchall())
    cursor = db.execute("SELECT * FROM discrepancies ORDER BY deal_id, kind")
    names = [column[0] for column in cursor.description]
    found = [discrepancy(dict(zip(names, row, strict=True))) for row in cursor.fetchall()]
    return Result(found, {c.kind: counts.get(c.kind.value, 0) for c in CLASSES})


def select_class(c: DiscrepancyClass) -> str:
    return f"SELECT '{c.kind.value}' AS kind, {COLUMNS} FROM contract WHERE {c.rule}"


def discrepancy(row: dict[str, Any]) -> Discrepancy:
    c = BY_KIND[Kind(row["kind"])]
    currency = row["currency"] or ""  # an ERP may hold no currency for a project
    amounts = {name: in_minor_units(row[name], currency) for name in c.amounts if row[name] is not None}
    words = {**row, **{name: "an amount the system does not hold" for name in c.amounts},
             **{name: f"{amount} {currency}" for name, amount in amounts.items()}}
    return Discrepancy(row["deal_id"], c.kind, currency, amounts, c.explanation.format_map(words),
                       c.repair.format_map(words))


def in_minor_units(amount: Decimal, currency: str) -> Decimal:
    """120000.000 USD → 120000.00: the exact amount with the currency's decimals."""
    return amount.quantize(Decimal(1).scaleb(-MINOR_UNITS.get(currency, 3)))

