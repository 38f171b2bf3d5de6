"""The connector contract: what a connector of each role must do, in one place.

    CRM source            read changed deals and accounts since a moment (paged), read one
                          record, list every deal's figures in bulk, write provisioning and
                          billing status back to the deal (batched where the API allows)
    ERP / PSA target      upsert a customer and a project by handoff's external ids (a call
                          repeated after a lost response leaves one record), list handoff's
                          projects and billing documents in bulk
    billing source        issue an invoice or credit note once per business key, read its
                          status and what is paid
    every connector       map the vendor's errors to handoff's taxonomy at the boundary
                          (TransientError / ThrottledError with its wait, DataError naming the
                          field, PermanentError with a clear message) and say its rate-limit
                          budget

The protocols below are runtime-checkable; tests/contract/ runs the same behavioural tests
against every connector with its twin (or the real Tryton).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from handoff.connectors.ports import (
    BillingConnector,
    CrmChangeFeed,
    CrmConnector,
    CrmRecordReader,
    CrmSnapshotSource,
    ErpConnector,
    ErpSnapshotSource,
    RateBudget,
)


@runtime_checkable
class Budgeted(Protocol):
    system: str
    budget: RateBudget


@runtime_checkable
class CrmSource(CrmConnector, CrmChangeFeed, CrmRecordReader, CrmSnapshotSource, Budgeted, Protocol):
    """Everything a CRM connector does."""


@runtime_checkable
class ErpTarget(ErpConnector, ErpSnapshotSource, Budgeted, Protocol):
    """Everything an ERP/PSA connector does (BillingConnector too where the ERP invoices)."""


@runtime_checkable
class BillingSource(BillingConnector, Budgeted, Protocol):
    """Everything a billing system's connector does."""
