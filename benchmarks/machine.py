"""The machine the figures were measured on."""

from __future__ import annotations

import os
import platform
import sqlite3
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Machine:
    cores: int
    cpu_model: str
    memory_gib: float
    system: str
    python: str
    sqlite: str
    postgres: str


def describe(postgres_version: str | None) -> Machine:
    return Machine(
        cores=len(os.sched_getaffinity(0)), cpu_model=_cpu_model(), memory_gib=_memory_gib(),
        system=f"{platform.system()} {platform.release()}", python=platform.python_version(),
        sqlite=sqlite3.sqlite_version, postgres=postgres_version or "not reachable",
    )


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024**2
    return 0.0
