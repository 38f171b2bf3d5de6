"""`handoff prune [--dry-run]`: one line per table; a dry run changes nothing; a bad
`[retention]` value is one line naming the key."""

from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from handoff.config import RetentionSettings, load_settings
from handoff.engine.clock import utcnow
from handoff.engine.inbox import accept
from handoff.errors import ConfigError, IntakeError
from handoff.store import open_database
from handoff.store.tables import inbox_events, intake_rejections, reconcile_queue
from tests.cli.test_cli import handoff
from tests.factories import event, opportunity_data

OLD = utcnow() - timedelta(days=40)


def old_records(url: str) -> None:
    db = open_database(url)
    accept(db, event(opportunity_data("006P1")), OLD)
    accept(db, event(opportunity_data("006P2")), OLD)
    with pytest.raises(IntakeError):
        accept(db, {"id": "x"}, OLD)
    with db.transaction() as conn:
        conn.execute(sa.delete(reconcile_queue))
    db.dispose()


def held(url: str) -> tuple[int, int]:
    db = open_database(url)
    with db.reading() as conn:
        found = tuple(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one()
                      for t in (inbox_events, intake_rejections))
    db.dispose()
    return found  # type: ignore[return-value]


def test_a_dry_run_says_what_would_go_and_changes_nothing(database_url: str, tmp_path: Path) -> None:
    old_records(database_url)
    archive = tmp_path / "archive"
    config = tmp_path / "handoff.toml"
    config.write_text(f'[retention]\ninbox_days = 30\nrejections_days = 30\narchive_dir = "{archive}"\n')
    common = ("--config", str(config), "--database", database_url, "prune")

    dry = handoff(*common, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("inbox_events: would remove 2 row(s) received before ")
    assert lines[1].startswith("intake_rejections: would remove 1 row(s) received before ")
    assert held(database_url) == (2, 1)
    assert not archive.exists()

    done = handoff(*common, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "inbox_events: removed 2 row(s)" in done.stdout
    assert f"archived in {archive / 'inbox_events'}" in done.stdout
    assert held(database_url) == (0, 0)
    assert [p.name for p in archive.iterdir()] and len(list(archive.glob("*/*.jsonl.gz"))) == 2


@pytest.mark.parametrize("text, message", [
    ('every = "often"', "[retention] every: 'often' is not a duration (a number and s, m, h or d"),
    ("every = 3600", "[retention] every: '3600' is not a duration"),
    ("inbox_days = -1", "[retention] inbox_days: -1.0 must be 0 (keep for ever) or more"),
    ('rejections_days = "soon"', "[retention] rejections_days: 'soon' is not a valid float"),
    ('archive_dir = "handoff.toml"', "[retention] archive_dir: 'handoff.toml' is a file, not a directory"),
    ("keep = 3", "[retention]: unknown key(s) keep; known: archive_dir, every, inbox_days, "
                 "rejections_days"),
])
def test_a_bad_retention_value_is_one_line_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "handoff.toml").write_text(f"[retention]\n{text}\n")
    run = handoff("prune", "--dry-run", "--database", f"sqlite:///{tmp_path / 'h.db'}", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stderr.startswith(f"handoff: {message}"), run.stderr
    assert run.stderr.count("\n") == 1


def test_settings_come_from_the_file_and_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "handoff.toml"
    config.write_text('[retention]\ninbox_days = 7\nevery = "15m"\n')
    settings = load_settings(config, env={"HANDOFF_RETENTION_REJECTIONS_DAYS": "0.5"}).retention
    assert (settings.inbox_days, settings.rejections_days, settings.archive_dir) == (7.0, 0.5, "")
    assert settings.interval == timedelta(minutes=15)
    assert RetentionSettings().interval == timedelta(hours=1)
    assert load_settings(config, env={"HANDOFF_RETENTION_EVERY": "0"}).retention.interval is None
    with pytest.raises(ConfigError, match=r"^\[retention\] every: '1 week'"):
        load_settings(config, env={"HANDOFF_RETENTION_EVERY": "1 week"})
