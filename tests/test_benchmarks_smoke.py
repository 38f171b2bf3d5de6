"""`python -m benchmarks --quick` measures every phase end to end and prints its summary. The
throttling and memory phases have their own smoke tests (test_benchmarks_throttling_smoke,
test_memory_bench_smoke), which also render their sections: this run leaves them out."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEADINGS = ("Summary", "## Twins' bare capacity", "## HTTP clients compared", "## Intake",
            "## Provisioning", "## Baseline", "## Tryton through the connector",
            "## Reconciliation")


@pytest.mark.slow
def test_a_quick_benchmark_run_measures_every_phase_and_prints_the_summary() -> None:
    # its own session, so a timeout can stop the twins and handoff processes it started too
    run = subprocess.Popen(
        [sys.executable, "-m", "benchmarks", "--quick", "--no-write", "--sqlite-only",
         "--skip", "throttling", "--skip", "memory"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = run.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        out, err = run.communicate()
        pytest.fail(f"took more than 240 s:\n{out}{err}")
    assert run.returncode == 0, out + err
    for heading in HEADINGS:
        assert heading in out, f"{heading!r} missing from:\n{out}"
