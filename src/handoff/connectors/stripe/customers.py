"""Which Stripe customer an invoice is for.

An `InvoiceRequest` names the deal and the customer's id in the ERP, not the customer handoff
knows. A `CustomerDirectory` answers with handoff's key of the customer (the one metadata
`handoff_customer` holds in Stripe) and what to show on the invoice:

    StoreCustomers(db)   handoff's own records: the key HO-C-<account> provisioning used and the
                         customer master's name (the wiring to use: bootstrap has the database)
    ErpCustomerKeys()    the fallback without a database: HO-ERP-<the ERP's customer id>, nameless

Pick one before invoicing a real account and keep it: the key is how handoff finds the Stripe
customer again, so changing schemes makes a second customer for the same company.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import sqlalchemy as sa

from handoff.connectors.stripe.errors import SYSTEM
from handoff.domain import InvoiceRequest
from handoff.domain.ids import customer_external_id
from handoff.errors import DataError
from handoff.store.db import Database
from handoff.store.tables import customers, opportunities, provisioning


@dataclass(frozen=True, slots=True)
class CustomerRef:
    key: str                  # handoff's key of the customer; never changes
    name: str | None = None   # shown on the invoice
    email: str | None = None  # where Stripe sends a send_invoice invoice


@runtime_checkable
class CustomerDirectory(Protocol):
    def customer_for(self, request: InvoiceRequest) -> CustomerRef: ...


class ErpCustomerKeys:
    """The customer as the ERP knows it: keyed by the ERP's customer id."""

    def customer_for(self, request: InvoiceRequest) -> CustomerRef:
        if not request.customer_target_id:
            raise DataError(f"deal {request.opportunity_id} has no customer in the ERP yet, so no "
                            "Stripe customer can be found for it", system=SYSTEM,
                            field="customer_target_id")
        return CustomerRef(f"HO-ERP-{request.customer_target_id}")


_c, _o, _p = customers.c, opportunities.c, provisioning.c
_CUSTOMER_OF_DEAL = (sa.select(_o.account_id, _p.customer_external_id, _c.data)
                     .select_from(opportunities)
                     .outerjoin(provisioning, _p.opportunity_id == _o.id)
                     .outerjoin(customers, _c.id == _o.account_id)
                     .where(_o.id == sa.bindparam("b_id")))


class StoreCustomers:
    """The deal's customer from handoff's own records (one small query per invoice)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def customer_for(self, request: InvoiceRequest) -> CustomerRef:
        with self.db.reading() as conn:
            row = conn.execute(_CUSTOMER_OF_DEAL, {"b_id": request.opportunity_id}).first()
        if row is None:
            raise DataError(f"deal {request.opportunity_id} is not known to handoff", system=SYSTEM,
                            field="opportunity_id")
        name = (row.data or {}).get("name") if isinstance(row.data, dict) else None
        return CustomerRef(row.customer_external_id or customer_external_id(row.account_id), name)
