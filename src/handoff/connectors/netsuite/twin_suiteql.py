"""The SuiteQL the NetSuite twin answers: enough for look-ups by external id and for
reconciliation's bulk reads.

    SELECT col, col, … FROM customer|job|transaction [WHERE <condition>] ORDER BY id

Columns are the records' field names in lower case (SuiteQL's spelling); a reference is its
internal id. `transaction` holds invoices, credit memos and customer payments with SuiteQL's
`type` (CustInvc, CustCred, CustPymt), `status` as `'CustInvc:A'`, and the amounts in the
transaction currency as `foreigntotal` and `foreignamountremaining`. ⚠ Real SuiteQL keeps a
transaction's project on its lines (`transactionline.entity`); the twin shows the header's
`job`, which is what handoff writes. The WHERE condition is evaluated by SQLite over those
columns (`=`, `LIKE`, `IN`, `AND`, `OR`), so it behaves as SQL does; values come back exactly as
the records hold them (money exact, as a JSON number).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from handoff.connectors.netsuite.twin_schema import TwinFault

QUERY = re.compile(r"SELECT\s+(?P<columns>[\w\s,]+?)\s+FROM\s+(?P<table>\w+)"
                   r"(?:\s+WHERE\s+(?P<where>.+?))?\s+ORDER\s+BY\s+id", re.I | re.S)
TRANSACTION_TYPES = {"invoice": "CustInvc", "creditMemo": "CustCred", "customerPayment": "CustPymt"}
ALIASES = {"foreigntotal": "total", "foreignamountremaining": "amountremaining"}
TABLES = ("customer", "job", "transaction")
Record = dict[str, Any]


def refused(detail: str) -> TwinFault:
    return TwinFault(400, "INVALID_PARAMETER", f"Invalid search query. {detail}")


def run(query: str, records: Mapping[str, list[Record]]) -> list[Record]:
    """The rows of `query` over the twin's records (record type → records)."""
    match = QUERY.fullmatch(query.strip())
    if not match:
        raise refused("The sandbox twin knows only: SELECT col, … FROM customer|job|transaction "
                      "[WHERE …] ORDER BY id")
    table = match["table"].lower()
    if table not in TABLES:
        raise refused(f"Unknown table {match['table']}; the twin has {', '.join(TABLES)}")
    rows = flattened(table, records)
    columns = [c.strip().lower() for c in match["columns"].split(",")]
    known = {"id"}.union(*(row.keys() for row in rows)) | set(ALIASES)
    unknown = [c for c in columns if c not in known]
    if unknown and rows:
        raise refused(f"Unknown field(s) {', '.join(unknown)} in {table}")
    return [{c: row.get(ALIASES.get(c, c)) for c in columns}
            for row in selected(rows, match["where"], known)]


def flattened(table: str, records: Mapping[str, list[Record]]) -> list[Record]:
    if table != "transaction":
        return [flat(record) for record in records[table]]
    rows = []
    for type_name, code in TRANSACTION_TYPES.items():
        for record in records[type_name]:
            row = flat(record)
            rows.append(row | {"type": code, "status": f"{code}:{row.get('status', '')}"})
    return sorted(rows, key=lambda row: int(row["id"]))


def flat(record: Record) -> Record:
    """Scalar fields by their lower-case names; a reference as its id; sublists left out."""
    row = {}
    for name, value in record.items():
        if isinstance(value, dict):
            value = value.get("id")
        if isinstance(value, list):
            continue
        row[name.lower()] = value
    return row


def selected(rows: list[Record], where: str | None, columns: set[str]) -> list[Record]:
    """The rows the condition holds for, in id order (SQLite evaluates the condition)."""
    if not where or not rows:
        return rows
    names = sorted(columns)
    db = sqlite3.connect(":memory:")
    quoted = ", ".join(f'"{name}"' for name in names)
    db.execute(f"CREATE TABLE t (n INTEGER, {quoted})")
    db.executemany(f"INSERT INTO t VALUES (?, {', '.join('?' * len(names))})",
                   [(n, *(sql_value(row.get(ALIASES.get(c, c))) for c in names))
                    for n, row in enumerate(rows)])
    try:
        found = [n for (n,) in db.execute(f"SELECT n FROM t WHERE {where} ORDER BY n")]
    except sqlite3.Error as exc:
        raise refused(str(exc)) from None
    finally:
        db.close()
    return [rows[n] for n in found]


def sql_value(value: Any) -> Any:
    return str(value) if isinstance(value, Decimal) else value
