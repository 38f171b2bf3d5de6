"""The `handoff` command as a person meets it: one clear line and exit code 2 on any error."""

import os
import subprocess
import sys
from pathlib import Path

import pytest


def handoff(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "handoff.cli", *args], capture_output=True,
                          text=True, timeout=60, cwd=cwd, env=env)


@pytest.mark.parametrize("config, args, message", [
    (None, ["worker"], "salesforce is not configured: set [systems.salesforce] instance_url"),
    ("[worker]\nconcurency = 3\n", ["trace", "x"], "[worker]: unknown key(s) concurency"),
    ("[worker\n", ["trace", "x"], "Expected ']'"),
    ("[retry]\nmax_attempts = 'many'\n", ["trace", "x"], "[retry] max_attempts: 'many' is not a valid int"),
    ("[policy.release]\ngates = ['psychic']\n", ["trace", "x"], "unknown gate(s) psychic"),
    ("[systems.salesforce]\ninstance_url = 'https://sf.test'\nsession_id = 'x'\n", ["worker"],
     "must not hold secrets (session_id); set HANDOFF_SALESFORCE_SESSION_ID instead"),
    (None, ["--database", "postgresql://nobody@127.0.0.1:1/x", "trace", "x"],
     "cannot open the database postgresql://nobody@127.0.0.1:1/x"),
    (None, ["trace", "nothing"], "no deal known by 'nothing'"),
    (None, ["plan", "nothing"], "no opportunity 'nothing'"),
    ("[policy.billing]\ninvoice_when = 'paid'\n", ["trace", "x"],
     "[policy.billing] invoice_when: 'paid' is not one of: achieved, accepted"),
    ("[policy.billing]\npost = 'yes'\n", ["trace", "x"],
     "[policy.billing] post: 'yes' is not true or false"),
    ("[policy.ownership]\ncrm = ['value']\n", ["trace", "x"],
     "[policy.ownership] crm: value is financial; it changes only by an approved amendment"),
    ("[roles]\nauditor = ['x']\n", ["trace", "x"], "[roles]: unknown role(s) auditor"),
    ("[poll]\ncrm_minutes = -5\n", ["trace", "x"], "[poll] crm_minutes: -5.0 must be 0 (off) or more"),
    ("[poll]\ncrm_mins = 5\n", ["trace", "x"], "[poll]: unknown key(s) crm_mins; known: crm_minutes"),
])
def test_errors_are_one_line(tmp_path: Path, config: str | None, args: list[str],
                             message: str) -> None:
    if config is not None:
        (tmp_path / "handoff.toml").write_text(config)
    result = handoff(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("handoff: ")
    assert message in result.stderr


def test_tryton_wants_its_password_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "handoff.toml").write_text(
        "[systems]\nerp = 'tryton'\n[systems.salesforce]\ninstance_url = 'https://sf.test'\n"
        "[systems.tryton]\nurl = 'http://erp.test/'\ndatabase = 'd'\nuser = 'u'\n")
    env = dict(os.environ, HANDOFF_SALESFORCE_SESSION_ID="s")
    result = handoff("worker", cwd=tmp_path, env=env)
    assert result.returncode == 2
    assert "tryton is not configured: set HANDOFF_TRYTON_PASSWORD" in result.stderr


def test_replay_with_nothing_to_replay(tmp_path: Path) -> None:
    result = handoff("replay", "--database", f"sqlite:///{tmp_path / 'h.db'}", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "re-queued 0 key(s)"


def test_plan_shows_billing_steps_and_what_billing_waits_for(tmp_path: Path) -> None:
    from handoff.engine.clock import utcnow
    from handoff.engine.inbox import accept
    from handoff.store.db import open_database
    from tests.factories import (
        SCHEDULE,
        event,
        milestone_data,
        milestone_event,
        opportunity_data,
    )

    url = f"sqlite:///{tmp_path / 'h.db'}"
    db = open_database(url)
    accept(db, event(opportunity_data("006P", milestones=SCHEDULE)), utcnow())
    accept(db, milestone_event(milestone_data("006P", "M2")), utcnow())
    db.dispose()
    result = handoff("plan", "006P", "--database", url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "billing: the project is not provisioned yet" in result.stdout
    assert "invoice milestone" not in result.stdout


def test_poll_reads_the_crm_now_and_prints_its_counts(tmp_path: Path, salesforce_twin) -> None:
    from tests.connectors.salesforce_helpers import connector, fresh

    crm = connector(fresh(salesforce_twin))
    crm.create_account({"Name": "Globex", "CurrencyIsoCode": "EUR"})
    crm.close()
    (tmp_path / "handoff.toml").write_text(
        f"[systems.salesforce]\ninstance_url = '{salesforce_twin.base_url}'\n"
        f"ca_file = '{salesforce_twin.ca_file}'\n")
    env = dict(os.environ, HANDOFF_SALESFORCE_SESSION_ID="SANDBOX_SESSION")
    args = ("poll", "--database", f"sqlite:///{tmp_path / 'h.db'}")
    first, second = handoff(*args, cwd=tmp_path, env=env), handoff(*args, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == "salesforce: 1 read: 1 applied, 0 unchanged, 0 stale, 0 duplicate, 0 rejected\n"
    assert second.stdout == "salesforce: 1 read: 0 applied, 0 unchanged, 0 stale, 1 duplicate, 0 rejected\n"
