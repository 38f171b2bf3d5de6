"""The throttling benchmark at tiny size: the real connectors against twins enforcing a limit
in their own processes. Its figures are not judged here, only what must hold at any size."""

from pathlib import Path

import pytest
from benchmarks.report import Results, summary
from benchmarks.throttling import measure_throttling

PHASES = ["steady", "just after the drop", "settled after the drop"]


@pytest.mark.slow
def test_a_tiny_throttling_run_measures_both_systems_and_never_overruns_a_limit(tmp_path: Path) -> None:
    runs = measure_throttling(tmp_path / "tls", seconds=1.0)
    assert [(r.system, r.phase) for r in runs] == [("NetSuite", p) for p in PHASES] + [
        ("HubSpot", p) for p in PHASES]
    assert all(r.calls > 0 for r in runs)
    steady = [r for r in runs if r.phase == "steady"]
    settled = [r for r in runs if r.phase == "settled after the drop"]
    assert all(r.used <= r.allowed * 1.01 for r in steady + settled)  # the twins enforce
    assert [r.throttled for r in steady] == [0, 0]  # within the budget: no 429, ever
    after_drop = {system: sum(r.throttled for r in runs if r.system == system and r.phase != "steady")
                  for system in ("NetSuite", "HubSpot")}
    assert all(after_drop.values()), after_drop  # the lowered limit is learnt from 429s (in a short
    # run some land in the settled span, so both spans after the drop count)
    printed = summary(Results(throttling=runs))
    assert "## Throttling to a budget" in printed and "NetSuite | settled after the drop" in printed
    assert "budget" in printed.split("## Throttling")[0]  # the Targets section judges it
