"""Three-way reconciliation: a snapshot of the CRM, the ERP/PSA and billing compared per
contract, set-based in DuckDB, into discrepancies a person can act on."""

from handoff.reconcile.classes import CLASSES, Kind
from handoff.reconcile.engine import Discrepancy, Result, reconcile
from handoff.reconcile.snapshot import BillingSummary, CrmDeal, ErpProject, Snapshot

__all__ = ["CLASSES", "BillingSummary", "CrmDeal", "Discrepancy", "ErpProject", "Kind", "Result",
           "Snapshot", "reconcile"]
