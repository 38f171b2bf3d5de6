"""Child processes of the demo: `handoff serve` and `handoff worker`, always stopped."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping

import httpx

from handoff.connectors.children import dies_with_parent
from handoff.connectors.children import stop as stop_child


class HandoffProcess:
    """`python -m handoff.cli ARGS` with its own environment; a context manager."""

    def __init__(self, args: list[str], env: Mapping[str, str], ready_url: str | None = None):
        self.args, self.env, self.ready_url = args, {**os.environ, **env}, ready_url
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> HandoffProcess:
        self.process = subprocess.Popen([sys.executable, "-m", "handoff.cli", *self.args],
                                        env=self.env, stdin=subprocess.DEVNULL,
                                        preexec_fn=dies_with_parent())
        if self.ready_url:
            self._wait_ready(self.ready_url)
        return self

    def _wait_ready(self, url: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise RuntimeError(f"handoff {self.args[0]} exited with {self.process.returncode}")
            try:
                httpx.get(url, timeout=1.0).raise_for_status()
                return
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError(f"handoff {self.args[0]} did not answer at {url}")

    def kill(self) -> None:
        """SIGKILL: no clean-up, no goodbye — what a crash looks like."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __exit__(self, *exc: object) -> None:
        stop_child(self.process)
