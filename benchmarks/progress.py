"""What the benchmarks print while they run."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

TICK_SECONDS = 10.0


def say(text: str) -> None:
    print(text, flush=True)  # flushed: progress must show even when stdout is a pipe


@contextmanager
def ticking(describe: Callable[[], str], every: float = TICK_SECONDS) -> Iterator[None]:
    """While the block runs, say `describe()` every `every` seconds: a long stretch shows
    that it moves, and how fast."""
    done = threading.Event()

    def tick() -> None:
        while not done.wait(every):
            say(describe())

    ticker = threading.Thread(target=tick, daemon=True, name="benchmark-progress")
    ticker.start()
    try:
        yield
    finally:
        done.set()
        ticker.join()
