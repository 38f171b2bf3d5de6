"""Three-way reconciliation at scale: N contracts across the CRM, ERP and billing snapshots,
1 % of them given one planted discrepancy each (the classes in turn), saved as Parquet, then
reconciled in a fresh child process so its time and peak memory (DuckDB's native memory
included, which tracemalloc cannot see) are the reconciliation's alone. Every planted
discrepancy must be found with its class, and nothing else, or the figures are void."""

from __future__ import annotations

import multiprocessing
import resource
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import duckdb

from benchmarks.progress import say
from benchmarks.sandbox import BenchmarkFailed
from handoff.reconcile import Kind, Snapshot, reconcile

KINDS = "[" + ", ".join(f"'{kind.value}'" for kind in Kind) + "]"

# One row per contract, amounts in integer cents; a planted deal (every hundredth) gets the
# classes in turn. Clean contracts vary: nothing to a full invoice, partly or fully paid,
# a credit note now and then, and 1 in 20 deals not approved (no project, nothing billed).
CONTRACTS = f"""
CREATE TABLE contract AS
WITH deal AS (
    SELECT i, 'D' || lpad(i::VARCHAR, 7, '0') AS deal_id,
           CASE WHEN i % 100 = 50 THEN {KINDS}[1 + (i // 100) % {len(Kind)}] END AS kind,
           ['USD', 'EUR', 'GBP'][1 + i % 3] AS currency,
           i % 20 = 7 AS unapproved,
           100000 + i * 7919 % 49900000 AS sold
    FROM range($size) AS t(i)
), billed AS (
    SELECT *, CASE WHEN unapproved OR kind = 'missing_project' THEN 0
                   WHEN kind IS NOT NULL THEN sold * (1 + (i // 100) % 3) // 4  -- some, never all
                   ELSE sold * ((i // 7) % 5) // 4 END AS invoiced
    FROM deal
), paid AS (
    SELECT *, CASE WHEN kind IS NULL AND i % 3 = 0 THEN invoiced ELSE invoiced // 2 END AS paid,
           CASE WHEN invoiced > 0 AND i % 7 = 0 THEN 1000 ELSE 0 END AS credited
    FROM billed
)
SELECT *, CASE WHEN invoiced = 0 THEN 'none' WHEN paid = invoiced THEN 'paid' ELSE 'posted' END AS status,
       CASE WHEN kind = 'currency_mismatch' THEN (CASE currency WHEN 'USD' THEN 'EUR' ELSE 'USD' END)
            ELSE currency END AS erp_currency
FROM paid
"""
PLANTED = "planted.parquet"  # which deal got which class, beside the snapshot
MONEY = "CAST(CAST({} AS DECIMAL(18,0)) * 0.01 AS DECIMAL(18,3))"  # cents → exact amount, no float
SYSTEMS = {
    "crm_deals": f"""SELECT deal_id, currency, {MONEY.format('sold')} AS sold_value,
        NOT unapproved AS approved, {MONEY.format('invoiced')} AS invoiced,
        {MONEY.format("paid - CASE WHEN kind = 'stale_invoice_status' THEN 1 ELSE 0 END")} AS paid,
        CASE WHEN kind = 'status_mismatch' THEN 'paid' ELSE status END AS invoice_status
        FROM contract WHERE kind IS DISTINCT FROM 'orphan_project'""",
    "erp_projects": f"""SELECT deal_id, erp_currency AS currency,
        {MONEY.format("sold + CASE WHEN kind = 'value_mismatch' THEN 100 ELSE 0 END")} AS project_value,
        {MONEY.format('''sold - invoiced + CASE kind WHEN 'value_mismatch' THEN 100
            WHEN 'over_billed' THEN 1 WHEN 'under_scheduled' THEN -1 ELSE 0 END''')} AS planned_remaining
        FROM contract WHERE NOT unapproved AND kind IS DISTINCT FROM 'missing_project'""",
    "billing": f"""SELECT deal_id, erp_currency AS currency, {MONEY.format('invoiced')} AS invoiced,
        {MONEY.format('invoiced')} AS untaxed,
        {MONEY.format('credited')} AS credited, {MONEY.format('paid')} AS paid, status AS invoice_status
        FROM contract WHERE invoiced > 0""",
}


@dataclass(frozen=True)
class ReconcileRun:
    contracts: int
    planted: int
    found: int
    missed: int       # planted but not found with its class
    unexpected: int   # found but not planted
    generate_seconds: float  # generating and saving the snapshot, for context
    seconds: float           # loading the saved snapshot and reconciling it
    peak_mib: float          # the reconciling process's peak resident memory
    counts: dict[str, int]


def measure_reconcile(size: int) -> ReconcileRun:
    with duckdb.connect() as db, tempfile.TemporaryDirectory(prefix="handoff-reconcile-") as scratch:
        directory = Path(scratch)
        started = time.monotonic()
        generate(db, size, directory)
        generated = time.monotonic() - started
        say(f"  {size:,} contracts saved as Parquet in {generated:.1f} s; reconciling in a child process")
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as child:
            run = child.submit(reconcile_saved, directory, size, generated).result()
    if run.missed or run.unexpected or run.found != run.planted:
        raise BenchmarkFailed(f"reconciliation found {run.found} of {run.planted} planted discrepancies: "
                              f"{run.missed} missed, {run.unexpected} not planted")
    say(f"  {run.found:,} found of {run.planted:,} planted in {run.seconds:.2f} s, "
        f"peak {run.peak_mib:.0f} MiB")
    return run


def generate(db: duckdb.DuckDBPyConnection, size: int, directory: Path) -> None:
    db.execute(CONTRACTS, {"size": size})
    for table, select in SYSTEMS.items():
        db.execute(f"CREATE TABLE {table} AS {select}")
    Snapshot(db).save(directory)
    db.execute("COPY (SELECT deal_id, kind FROM contract WHERE kind IS NOT NULL) "
               f"TO '{directory / PLANTED}'")


def reconcile_saved(directory: Path, size: int, generated: float) -> ReconcileRun:
    """In the child: reconcile the saved snapshot, then compare with what was planted."""
    started = time.monotonic()
    result = reconcile(Snapshot.load(directory))
    seconds = time.monotonic() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    with duckdb.connect() as db:
        planted = set(db.execute(f"FROM '{directory / PLANTED}'").fetchall())
    found = {(d.deal_id, d.kind.value) for d in result.discrepancies}
    return ReconcileRun(size, len(planted), result.total, len(planted - found), len(found - planted),
                        generated, seconds, peak_kib / 1024, {k.value: n for k, n in result.counts.items()})

