"""Resident memory of processes, read from /proc: a process's VmRSS plus that of all its
descendants, sampled every second by a thread while a benchmark runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import TracebackType


def rss_mib(pid: int) -> float:
    """The process and its descendants, in MiB; 0 once it is gone."""
    return sum(_vmrss_kib(p) for p in [pid, *descendants(pid)]) / 1024


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for children in Path(f"/proc/{todo.pop()}/task").glob("*/children"):
            try:
                kids = [int(child) for child in children.read_text().split()]
            except OSError:  # the thread or the process ended meanwhile
                continue
            found += kids
            todo += kids
    return found


def _vmrss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0  # gone, or a zombie (no VmRSS line)


class RssSampler:
    """Every `every` seconds, the memory of each watched role (a role's process may be
    replaced, e.g. a server restarted); the peak of each, and of all of them at one sample."""

    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        self.pids: dict[str, int] = {}
        self.peaks: dict[str, float] = {}
        self.peak_total = 0.0
        self.history: list[tuple[float, float]] = []  # (perf_counter, all roles' MiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss sampler", daemon=True)

    def watch(self, role: str, pid: int) -> None:
        self.pids[role] = pid
        self.sample()

    def sample(self) -> dict[str, float]:
        now = {role: rss_mib(pid) for role, pid in list(self.pids.items())}
        for role, mib in now.items():
            self.peaks[role] = max(self.peaks.get(role, 0.0), mib)
        self.peak_total = max(self.peak_total, sum(now.values()))
        self.history.append((time.perf_counter(), sum(now.values())))
        return now

    def latest(self) -> float:
        """All roles' memory at the last sample."""
        return self.history[-1][1] if self.history else 0.0

    def at(self, moment: float) -> float | None:
        """All roles' memory at the last sample taken by `moment`."""
        before = [mib for taken, mib in self.history if taken <= moment]
        return before[-1] if before else None

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.sample()

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
