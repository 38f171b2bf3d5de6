"""`python -m benchmarks --quick` measures every phase end to end and prints its summary."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEADINGS = ("Summary", "## Twins' bare capacity", "## Intake", "## Provisioning", "## Baseline")


@pytest.mark.slow
def test_a_quick_benchmark_run_measures_every_phase_and_prints_the_summary() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--no-write", "--sqlite-only"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    for heading in HEADINGS:
        assert heading in result.stdout, f"{heading!r} missing from:\n{result.stdout}"
