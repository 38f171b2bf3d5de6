"""`handoff plan` and `handoff amend` on a deal whose terms changed after its project went
live: the plan shows the change and changes nothing; the amendment is decided from the CLI
under segregation of duties."""

from pathlib import Path

import sqlalchemy as sa

from handoff.bootstrap import build_worker
from handoff.config import Settings
from handoff.connectors.memory import MemoryCrm, MemoryErp
from handoff.engine.clock import utcnow
from handoff.engine.inbox import accept
from handoff.store.db import Database, open_database
from handoff.store.tables import metadata
from tests.cli.test_cli import handoff
from tests.factories import customer_data, customer_event, event, opportunity_data

CONFIG = "[roles]\napprover = ['alice', 'carol']\n"


def counts(db: Database) -> dict[str, int]:
    with db.reading() as conn:
        return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                for t in metadata.sorted_tables}


def live_deal_with_a_crm_change(tmp_path: Path) -> tuple[str, MemoryErp]:
    url = f"sqlite:///{tmp_path / 'h.db'}"
    db, crm, erp = open_database(url), MemoryCrm(), MemoryErp()
    accept(db, customer_event(customer_data("001C")), utcnow())
    accept(db, event(opportunity_data("006C", "001C")), utcnow())
    build_worker(Settings(), db, crm, erp).run(until_idle=True)
    accept(db, event(opportunity_data("006C", "001C", minutes=5, amount="135000.00",
                                      modified_by="alice", change_reason="phase 2")), utcnow())
    db.dispose()
    (tmp_path / "handoff.toml").write_text(CONFIG + f"[database]\nurl = '{url}'\n")
    return url, erp


def test_plan_lists_the_pending_change_and_changes_nothing(tmp_path: Path) -> None:
    url, erp = live_deal_with_a_crm_change(tmp_path)
    db = open_database(url)
    before, erp_calls = counts(db), erp.calls
    result = handoff("plan", "006C", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "open amendment AM-006C-1 (value 120000.00 → 135000.00)" in result.stdout
    assert "requested by alice: phase 2" in result.stdout
    assert counts(db) == before and erp.calls == erp_calls
    db.dispose()


def test_an_amendment_is_decided_from_the_cli_and_never_by_its_requester(tmp_path: Path) -> None:
    url, erp = live_deal_with_a_crm_change(tmp_path)
    db = open_database(url)
    build_worker(Settings(), db, MemoryCrm(), erp).run(until_idle=True)
    listed = handoff("amend", "list", cwd=tmp_path)
    assert "AM-006C-1" in listed.stdout and "alice" in listed.stdout
    own = handoff("amend", "approve", "AM-006C-1", "--as", "alice", cwd=tmp_path)
    assert own.returncode == 2 and own.stderr.count("\n") == 1
    assert "alice requested amendment AM-006C-1 and cannot approve it" in own.stderr
    nobody = handoff("amend", "approve", "AM-006C-1", "--as", "mallory", cwd=tmp_path)
    assert nobody.returncode == 2 and "does not have the approver role" in nobody.stderr
    approved = handoff("amend", "approve", "AM-006C-1", "--as", "carol", "--reason", "CO-9",
                       cwd=tmp_path)
    assert approved.returncode == 0, approved.stderr
    assert approved.stdout.strip().endswith(": approved")
    shown = handoff("amend", "show", "AM-006C-1", cwd=tmp_path)
    assert "by carol: CO-9" in shown.stdout
    build_worker(Settings(), db, MemoryCrm(), erp).run(until_idle=True)
    assert erp.projects["HO-P-006C"]["value"].amount == 135000
    db.dispose()


def test_a_request_naming_an_unknown_milestone_is_one_clear_line(tmp_path: Path) -> None:
    live_deal_with_a_crm_change(tmp_path)
    result = handoff("amend", "request", "006C", "--as", "dave", "--reason", "x",
                     "--cancel-milestone", "M7", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "no milestone 'M7' to cancel" in result.stderr
