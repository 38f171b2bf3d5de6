"""The audit log: every financial change, appended to a hash chain.

Each entry's hash covers its own content and the previous entry's hash, so changing,
removing or reordering any entry breaks every hash after it; `verify` recomputes the chain
and names the first entry that does not match. The application only ever appends: the head
row (the last sequence number and hash) is locked while an entry is added, so concurrent
workers extend one chain instead of forking it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from handoff.store.tables import audit_head, audit_log

GENESIS = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditEntry:
    actor: str           # who made the change: a user, or "handoff" for a controller
    action: str          # e.g. "invoice.posted"
    business_key: str    # the deal (opportunity id)
    correlation_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Verdict:
    entries: int                  # entries that verified, from the first
    broken_at: int | None = None  # sequence number of the first entry that does not match
    reason: str = ""

    @property
    def intact(self) -> bool:
        return self.broken_at is None


HEAD = sa.select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)


def append(conn: Connection, entries: Sequence[AuditEntry], now: datetime) -> None:
    if not entries:
        return
    _ensure_head(conn)  # a row to lock, even before the first entry
    head = conn.execute(HEAD.with_for_update()).one()
    seq, previous = head.seq, head.hash
    rows = []
    for entry in entries:
        seq += 1
        row = _row(seq, entry, now) | {"prev_hash": previous}
        row["hash"] = previous = entry_hash(row, previous)
        rows.append(row)
    conn.execute(sa.insert(audit_log), rows)
    conn.execute(sa.update(audit_head).where(audit_head.c.id == 1).values(seq=seq, hash=previous))


def _ensure_head(conn: Connection) -> None:
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(dialect.insert(audit_head).values(id=1, seq=0, hash=GENESIS)
                 .on_conflict_do_nothing(index_elements=["id"]))


def verify(conn: Connection) -> Verdict:
    """Walk the chain from the start; the first entry whose hash, link or number does not
    match is where it was tampered with."""
    previous, count = GENESIS, 0
    for count, row in enumerate(_rows(conn), start=1):
        if row["seq"] != count:
            return Verdict(count - 1, count, f"entry {count} is missing (next is {row['seq']})")
        if row["prev_hash"] != previous:
            return Verdict(count - 1, count, "its link to the previous entry does not match")
        if entry_hash(row, previous) != row["hash"]:
            return Verdict(count - 1, count, "its content does not match its hash")
        previous = row["hash"]
    head = conn.execute(HEAD).first()
    if head and (head.seq, head.hash) != (count, previous):
        return Verdict(count, count + 1, f"entries after {count} are missing (head is at {head.seq})")
    return Verdict(count)


def entry_hash(row: dict[str, Any], previous: str) -> str:
    content = {k: row[k] for k in ("seq", "recorded_at", "actor", "action", "business_key",
                                   "correlation_id", "before", "after")}
    payload = orjson.dumps(content, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(previous.encode() + payload).hexdigest()


def _row(seq: int, entry: AuditEntry, now: datetime) -> dict[str, Any]:
    return {"seq": seq, "recorded_at": now.isoformat(), "actor": entry.actor,
            "action": entry.action, "business_key": entry.business_key,
            "correlation_id": entry.correlation_id,
            "before": _canonical(entry.before), "after": _canonical(entry.after)}


def _canonical(value: dict[str, Any] | None) -> str | None:
    """JSON text with sorted keys: what is hashed is exactly what is stored."""
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS,
                                                   default=str).decode()


def _rows(conn: Connection) -> Iterator[dict[str, Any]]:
    for row in conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)):
        yield dict(row._mapping)
