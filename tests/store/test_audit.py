"""The audit log: a hash chain any change to which `verify` (and `handoff audit verify`)
detects, naming the first entry that no longer matches."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from handoff.engine.clock import utcnow
from handoff.store import audit
from handoff.store.audit import AuditEntry
from handoff.store.db import Database
from handoff.store.tables import audit_head, audit_log


def entry(n: int, key: str = "006A") -> AuditEntry:
    return AuditEntry("handoff", "invoice.posted", key, "c0ffee",
                      None, {"number": f"INV/{n}", "total": f"{n}000.00", "currency": "USD"})


def append(db: Database, *entries: AuditEntry) -> None:
    with db.transaction() as conn:
        audit.append(conn, list(entries), utcnow())


def verdict(db: Database) -> audit.Verdict:
    with db.reading() as conn:
        return audit.verify(conn)


def tamper(db: Database, statement: sa.Executable) -> None:
    with db.transaction() as conn:
        conn.execute(statement)


def test_an_untouched_chain_verifies(db) -> None:
    append(db, entry(1), entry(2))
    append(db, entry(3))
    assert verdict(db) == audit.Verdict(3)


@pytest.mark.parametrize(("change", "reason"), [
    (sa.update(audit_log).where(audit_log.c.seq == 2).values(after='{"total": "1.00"}'),
     "its content does not match its hash"),
    (sa.update(audit_log).where(audit_log.c.seq == 2).values(actor="mallory"),
     "its content does not match its hash"),
    (sa.delete(audit_log).where(audit_log.c.seq == 2), "entry 2 is missing"),
])
def test_changing_or_removing_an_entry_is_found_at_that_entry(db, change, reason) -> None:
    append(db, entry(1), entry(2), entry(3), entry(4))
    tamper(db, change)
    found = verdict(db)
    assert not found.intact and found.broken_at == 2 and reason in found.reason


def test_a_rewritten_entry_with_a_fresh_hash_breaks_the_next_link(db) -> None:
    append(db, entry(1), entry(2), entry(3))
    with db.reading() as conn:
        row = dict(conn.execute(sa.select(audit_log).where(audit_log.c.seq == 2)).one()._mapping)
    row["after"] = '{"total": "1.00"}'
    forged = audit.entry_hash(row, row["prev_hash"])
    tamper(db, sa.update(audit_log).where(audit_log.c.seq == 2)
           .values(after=row["after"], hash=forged))
    found = verdict(db)
    assert found.broken_at == 3 and "link" in found.reason


def test_removing_the_last_entries_is_found_by_the_head(db) -> None:
    append(db, entry(1), entry(2), entry(3))
    tamper(db, sa.delete(audit_log).where(audit_log.c.seq == 3))
    found = verdict(db)
    assert found.broken_at == 3 and "head is at 3" in found.reason


def test_concurrent_appends_extend_one_chain(db) -> None:
    def writer(n: int) -> None:
        for i in range(10):
            append(db, entry(100 * n + i, key=f"006{n}"))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert verdict(db) == audit.Verdict(40)
    with db.reading() as conn:
        assert conn.execute(sa.select(audit_head.c.seq)).scalar_one() == 40


def test_the_command_says_intact_or_names_the_broken_entry(db, database_url, tmp_path: Path) -> None:
    append(db, entry(1), entry(2))
    command = [sys.executable, "-m", "handoff.cli", "audit", "verify", "--database", database_url]
    ok = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert ok.returncode == 0 and ok.stdout.strip() == "audit chain intact: 2 entries"
    tamper(db, sa.update(audit_log).where(audit_log.c.seq == 1).values(action="invoice.void"))
    broken = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert broken.returncode == 2
    assert broken.stderr.strip() == ("handoff: audit entry 1 is broken: its content does not "
                                     "match its hash")
