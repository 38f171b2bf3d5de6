"""The `handoff` command as a person meets it: one clear line and exit code 2 on any error."""

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
])
def test_errors_are_one_line(tmp_path: Path, config: str | None, args: list[str],
                             message: str) -> None:
    if config is not None:
        (tmp_path / "handoff.toml").write_text(config)
    result = handoff(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("handoff: ")
    assert message in result.stderr


def test_replay_with_nothing_to_replay(tmp_path: Path) -> None:
    result = handoff("replay", "--database", f"sqlite:///{tmp_path / 'h.db'}", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == "re-queued 0 key(s)"
