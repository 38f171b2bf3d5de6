"""A snapshot: what the CRM, the ERP/PSA and billing each said about every contract at one
moment, as three columnar relations in DuckDB. A run compares one consistent picture, and
saved as Parquet the same picture can be reconciled again.

Amounts are DECIMAL(18,3) in DuckDB and `Decimal` in Python, never float: three decimals
hold every currency handoff accepts exactly (KWD and BHD have three). Invoice statuses are
'none' (nothing invoiced), 'posted' (invoiced, not all paid) or 'paid' (all paid).

crm_deals — one row per CRM deal
  deal_id          the CRM's opportunity id
  currency         ISO 4217 code: the contract currency
  sold_value       what the CRM says was sold
  approved         won and approved for delivery, so a project must exist
  invoiced         invoiced to date as the CRM record shows it (net of credits)
  paid             paid to date as the CRM record shows it
  invoice_status   the invoice status the CRM record shows

erp_projects — one row per ERP/PSA project handoff made (external id HO-P-<deal_id>)
  deal_id, currency, project_value   (NULL where the ERP keeps no value: not compared)
  planned_remaining  what the project's invoice plan has still to invoice

billing — one row per deal that has billing documents in the ERP
  deal_id, currency
  invoiced         invoiced to date, net of credit notes, tax included (as the CRM shows it)
  untaxed          the same before tax: what the project's value and plan are compared to
  credited         credit notes to date (already deducted from invoiced)
  paid             paid to date
  invoice_status   the ERP's summary of the deal's invoices
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import astuple, dataclass, fields
from decimal import Decimal
from pathlib import Path

import duckdb

AMOUNT = "DECIMAL(18,3)"


@dataclass(frozen=True)
class CrmDeal:
    deal_id: str
    currency: str
    sold_value: Decimal
    approved: bool
    invoiced: Decimal = Decimal(0)
    paid: Decimal = Decimal(0)
    invoice_status: str = "none"


@dataclass(frozen=True)
class ErpProject:
    deal_id: str
    currency: str
    project_value: Decimal
    planned_remaining: Decimal


@dataclass(frozen=True)
class BillingSummary:
    deal_id: str
    currency: str
    invoiced: Decimal
    untaxed: Decimal
    credited: Decimal
    paid: Decimal
    invoice_status: str


ROW_TYPES: dict[str, type] = {"crm_deals": CrmDeal, "erp_projects": ErpProject, "billing": BillingSummary}
COLUMNS = {
    "crm_deals": f"deal_id VARCHAR, currency VARCHAR, sold_value {AMOUNT}, approved BOOLEAN, "
                 f"invoiced {AMOUNT}, paid {AMOUNT}, invoice_status VARCHAR",
    "erp_projects": f"deal_id VARCHAR, currency VARCHAR, project_value {AMOUNT}, planned_remaining {AMOUNT}",
    "billing": f"deal_id VARCHAR, currency VARCHAR, invoiced {AMOUNT}, untaxed {AMOUNT}, "
               f"credited {AMOUNT}, paid {AMOUNT}, invoice_status VARCHAR",
}


@dataclass
class Snapshot:
    """The three relations, as tables or views named after them in `connection`."""

    connection: duckdb.DuckDBPyConnection

    @classmethod
    def of(cls, crm: Iterable[CrmDeal], erp: Iterable[ErpProject],
           billing: Iterable[BillingSummary]) -> Snapshot:
        """A snapshot built from rows in Python: small ones, for tests and examples."""
        connection = duckdb.connect()
        for table, rows in zip(ROW_TYPES, (crm, erp, billing), strict=True):
            connection.execute(f"CREATE TABLE {table} ({COLUMNS[table]})")
            insert_rows(connection, table, [astuple(row) for row in rows])
        return cls(connection)

    @classmethod
    def load(cls, directory: Path) -> Snapshot:
        """Views over the Parquet files `save` wrote: DuckDB reads them as the query runs."""
        connection = duckdb.connect()
        for table in ROW_TYPES:
            connection.execute(f"CREATE VIEW {table} AS FROM read_parquet({parquet(directory, table)})")
        return cls(connection)

    def contracts(self) -> int:
        """Contracts compared: deals and projects, each deal counted once."""
        return self.connection.execute("SELECT count(*) FROM (SELECT deal_id FROM crm_deals "
                                       "UNION SELECT deal_id FROM erp_projects)").fetchone()[0]

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for table in ROW_TYPES:
            self.connection.execute(f"COPY {table} TO {parquet(directory, table)} (FORMAT parquet)")


def insert_rows(connection: duckdb.DuckDBPyConnection, table: str, values: list[tuple]) -> None:
    names = [f.name for f in fields(ROW_TYPES[table])]
    if values:
        connection.executemany(f"INSERT INTO {table} ({', '.join(names)}) "
                               f"VALUES ({', '.join('?' * len(names))})", values)


def parquet(directory: Path, table: str) -> str:
    """The file of one relation, as a quoted SQL string literal."""
    path = str(directory / f"{table}.parquet").replace("'", "''")
    return f"'{path}'"
