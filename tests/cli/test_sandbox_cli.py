"""`handoff sandbox --erp tryton`: the Salesforce twin and a real Tryton until Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from handoff.connectors.tryton.sandbox import server_version
from handoff.connectors.twin_process import free_port
from tests.conftest import tryton_cache


@pytest.mark.slow
def test_sandbox_with_tryton_prints_how_to_connect_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    cache = tryton_cache()
    env = {**os.environ, **({"HANDOFF_TRYTON_CACHE": str(cache)} if cache else {})}
    port = free_port()
    cmd = [sys.executable, "-m", "handoff.cli", "sandbox", "--erp", "tryton", "--tryton-port", str(port),
           "--salesforce-port", str(free_port()), "--tls-dir", str(tmp_path / "tls")]
    sandbox = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True,
                               preexec_fn=heeds_ctrl_c)
    try:
        lines = _read_until(sandbox, "Ctrl-C stops them all", timeout=300)
    finally:
        sandbox.send_signal(signal.SIGINT)
        sandbox.wait(timeout=20)
    printed = "\n".join(lines)
    assert f"Tryton ERP       http://127.0.0.1:{port}/  database handoff (sqlite)" in printed
    assert "user handoff / sandbox-api-pw" in printed and "NetSuite" not in printed
    workdir = Path(re.search(r"record ids: (\S+)/sandbox\.json", printed).group(1))
    assert not workdir.exists(), "the server's working copy is removed when it stops"
    with pytest.raises(httpx.ConnectError):
        server_version(f"http://127.0.0.1:{port}/", timeout=1.0)


def heeds_ctrl_c() -> None:
    """A test run started in the background of a shell inherits SIGINT ignored: the child
    must hear Ctrl-C as a person's terminal would deliver it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise AssertionError(f"sandbox exited early: {lines}")
        lines.append(line.rstrip("\n"))
        if marker in line:
            url = re.search(r"Tryton ERP\s+(http://\S+/)", "\n".join(lines)).group(1)
            assert server_version(url) == "8.2"
            return lines
    raise AssertionError(f"no {marker!r} within {timeout} s: {lines}")
