"""`handoff demo`, shortened, as a user runs it: its summary adds up and nothing is left
running afterwards."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from handoff.demo.run import run_demo


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry.name))
    return found


@pytest.mark.slow
def test_demo_plays_the_lifecycle_and_its_summary_adds_up(tmp_path: Path) -> None:
    printed: list[str] = []
    already_running = set(children_of(os.getpid()))  # e.g. twins of other tests' fixtures
    summary = run_demo(deals=24, seed=3, workdir=tmp_path / "demo", out=printed.append)
    assert summary.ok, printed[-1]
    assert summary.statuses["provisioned"] == summary.expected_provisioned == summary.erp_projects
    assert summary.crm_showing_project == summary.erp_projects
    assert summary.erp_duplicate_external_ids == summary.open_dead_letters == 0
    assert summary.blocked_then_released > 0 and summary.blocked_by_gate["tax_jurisdiction_valid"]
    assert summary.counters["duplicates_suppressed"] > 0 and summary.counters["events_stale"] > 0
    assert summary.counters["retries"] > 0
    assert sorted(status for _, status in summary.refused) == [400, 400, 422, 422, 422]
    assert "every guarantee held" in printed[-1] and "handoff trace" in printed[-1]
    assert summary.reconciliation["status"] == "done"
    assert summary.findings == summary.expected_findings and summary.findings["missing_project"] == 1
    assert "reconciliation findings" in printed[-1] and "as planted" in printed[-1]
    assert set(children_of(os.getpid())) <= already_running


@pytest.mark.slow
@pytest.mark.parametrize("crm, erp, billing, shows", [
    ("hubspot", "sap", None, ("HubSpot deals showing a project", "SAP S/4HANA invoices by its own")),
    ("dynamics", "businesscentral", "stripe", ("Dynamics 365 deals showing a project", "Stripe invoices")),
])
def test_the_demo_plays_any_crm_with_any_erp(tmp_path: Path, crm: str, erp: str, billing: str | None,
                                            shows: tuple[str, str]) -> None:
    printed: list[str] = []
    summary = run_demo(deals=16, seed=5, workdir=tmp_path / "demo", out=printed.append,
                       crm_name=crm, erp_name=erp, billing_name=billing)
    assert summary.ok, printed[-1]
    assert summary.crm_showing_project == summary.erp_projects == summary.expected_provisioned > 0
    assert summary.erp_invoices == summary.expected_invoices
    assert "every guarantee held" in printed[-1] and all(words in printed[-1] for words in shows)


@pytest.mark.slow
def test_demo_on_tryton_posts_one_invoice_per_reported_milestone(tmp_path: Path) -> None:
    from handoff.demo.tryton_demo import run_tryton_demo

    printed: list[str] = []
    already_running = set(children_of(os.getpid()))
    summary = run_tryton_demo(deals=12, seed=5, workdir=tmp_path / "demo", out=printed.append)
    assert summary.ok, printed[-1]
    assert summary.tryton_projects == summary.statuses["provisioned"] > 0
    assert summary.tryton_posted == summary.milestones_reported > 0
    assert summary.crm_invoiced == summary.tryton_invoiced > 0
    assert "every guarantee held" in printed[-1]
    assert set(children_of(os.getpid())) <= already_running


def test_demo_command_says_what_it_did_in_one_line_on_bad_arguments(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "handoff.cli", "demo", "--deals", "many"],
                            capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].endswith("invalid int value: 'many'")


def running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_twins_die_with_a_parent_that_is_killed(tmp_path: Path) -> None:
    script = ("from pathlib import Path; import time\n"
              "from handoff.connectors.twin_process import TwinProcess\n"
              f"twin = TwinProcess('netsuite', Path({str(tmp_path)!r})).start()\n"
              "print(twin.process.pid, flush=True); time.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    twin_pid = int(parent.stdout.readline())
    assert running(twin_pid)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while running(twin_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not running(twin_pid), "the twin outlived its killed parent"
