"""CPU time, from the kernel's own accounting, of a process, of this process's children and
of the whole machine: where the cores went during a measurement."""

from __future__ import annotations

import os
import resource
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
BUSY_FIELDS = (0, 1, 2, 5, 6)  # user, nice, system, irq, softirq in /proc/stat (not steal)


def process_seconds(pid: int) -> float:
    """utime + stime of a running process (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def reaped_children_seconds() -> float:
    """User + system time of every child this process has waited for, so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent doing anything since boot (the `cpu` line of /proc/stat)."""
    totals = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return sum(int(totals[i]) for i in BUSY_FIELDS) / TICK


def command_seconds(command: str) -> float:
    """CPU of every process named `command` (e.g. the PostgreSQL server's processes),
    with that of the children they reaped, so connections closed meanwhile still count."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, _, rest = stat.read_text().rpartition(")")
        except OSError:  # it exited while we looked
            continue
        if head.split("(", 1)[1] == command:
            total += sum(int(field) for field in rest.split()[11:15])
    return total / TICK
