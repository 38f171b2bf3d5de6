"""`handoff reconcile` as an operator runs it, against the twins: a report in each format,
exit 1 while a finding is not acknowledged, the snapshot of a past day compared again, and
one-line errors for what cannot be done."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from handoff.demo.run import secrets_for, write_config
from handoff.store.db import Database
from tests.cli.test_cli import handoff
from tests.reconcile.twin_lifecycle import provisioned


@pytest.fixture
def operator(database_url: str, db: Database, salesforce_twin: Any, netsuite_twin: Any,
             tmp_path: Path) -> Any:
    """A deal whose currency the CRM changed, and `handoff` run with the sandbox config."""
    lifecycle = provisioned(db, salesforce_twin, netsuite_twin, tmp_path, 2)
    lifecycle.crm.update_opportunity(lifecycle.deals[1], {"CurrencyIsoCode": "GBP"})
    config = write_config(tmp_path, database_url, salesforce_twin, netsuite_twin)
    env = {**__import__("os").environ, **secrets_for(netsuite_twin)}

    def run(*args: str) -> Any:
        return handoff(*args, "--config", str(config), cwd=tmp_path, env=env)

    yield run, lifecycle.deals[1]
    lifecycle.close()


@pytest.mark.slow
def test_reports_in_every_format_and_exit_1_until_acknowledged(operator: Any, tmp_path: Path) -> None:
    run, deal = operator
    table = run("reconcile")
    assert table.returncode == 1, table.stderr
    assert "reconcile: read 2 CRM deals" in table.stderr and "compared 2 contracts" in table.stderr
    assert re.search(r"currency_mismatch +1\n", table.stdout) and deal in table.stdout
    report = json.loads(run("reconcile", "show", "--format", "json").stdout)
    assert report["run"]["counts"]["currency_mismatch"] == 1
    assert report["findings"][0]["explanation"].startswith("the CRM deal is in GBP")
    rows = list(csv.DictReader(io.StringIO(run("reconcile", "show", "--format", "csv").stdout)))
    assert [(r["deal_id"], r["kind"]) for r in rows] == [(deal, "currency_mismatch")]
    page = tmp_path / "report.html"
    assert run("reconcile", "show", "--format", "html", "--output", str(page)).returncode == 1
    assert "<h1>Reconciliation run 1</h1>" in page.read_text()

    no_reason = run("reconcile", "ack", deal, "currency_mismatch", "--as", "fin.ops")
    assert no_reason.returncode == 2 and no_reason.stderr.strip() == \
        "handoff: an acknowledgement needs a reason"
    assert run("reconcile", "ack", deal, "currency_mismatch", "--as", "fin.ops",
               "--reason", "rebooked in GBP").returncode == 0
    assert run("reconcile", "show").returncode == 0
    again = run("reconcile", "--as-of", date.today().isoformat())
    assert again.returncode == 0 and "snapshot as of" in again.stdout, again.stderr
    runs = run("reconcile", "runs")
    assert runs.returncode == 0 and runs.stdout.count("done") == 2


@pytest.mark.slow
def test_what_cannot_be_done_is_one_line(operator: Any) -> None:
    run, deal = operator
    cases = [
        (("reconcile", "show"), "handoff: no reconciliation has run yet: run `handoff reconcile`"),
        (("reconcile", "--as-of", (date.today() - timedelta(days=400)).isoformat()),
         "handoff: no reconciliation snapshot kept from"),
        (("reconcile", "repair", deal, "currency_mismatch", "--as", "x"),
         "handoff: no reconciliation has run yet"),
        (("reconcile", "ack", deal), "handoff: reconcile ack needs DEAL CLASS"),
    ]
    for args, message in cases:
        done = run(*args)
        assert done.returncode == 2 and done.stderr.startswith(message), (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1
    assert run("reconcile").returncode == 1
    manual = run("reconcile", "repair", deal, "currency_mismatch", "--as", "x")
    assert manual.returncode == 2 and "cannot repair currency_mismatch itself" in manual.stderr
    wrong = run("reconcile", "repair", deal, "typo", "--as", "x")
    assert "'typo' is not a discrepancy class" in wrong.stderr
