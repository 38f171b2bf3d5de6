"""What the benchmarks print while they run."""

from __future__ import annotations


def say(text: str) -> None:
    print(text, flush=True)  # flushed: progress must show even when stdout is a pipe
