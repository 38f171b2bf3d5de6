"""The dashboard in a real browser (Debian's Chromium, driven by Playwright): sign in, find a
deal and read its lineage, replay a dead letter, approve an amendment — with screenshots of
each step. Skipped, with the reason, where Chromium or Playwright is missing, unless
HANDOFF_REQUIRE_BROWSER=1 (as in CI), where that is a failure."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from handoff.api import create_app
from handoff.bootstrap import build_worker
from handoff.config import PollSettings, Settings
from handoff.connectors.memory import MemoryCrm, MemoryErp
from handoff.engine.clock import utcnow
from handoff.engine.inbox import accept
from handoff.errors import PermanentError
from handoff.policy.roles import Roles
from handoff.store.db import Database
from tests.factories import customer_data, customer_event, event, opportunity_data

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
TOKEN = "olga-token-0123456789"
SETTINGS = Settings(poll=PollSettings(0, 0))


def browser_or_skip() -> object:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        reason = "Playwright is not installed (pip install playwright)"
    else:
        if CHROMIUM:
            return sync_playwright
        reason = "Chromium is not installed (apt-get install chromium)"
    if os.environ.get("HANDOFF_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests required but {reason}")
    pytest.skip(f"browser tests skipped: {reason}")


def seeded(db: Database) -> None:
    """006B provisioned and billed; 006D dead-lettered; 006A with an amendment alice raised."""
    erp = MemoryErp()
    accept(db, customer_event(customer_data("001B")), utcnow())
    for deal in ("006B", "006A"):
        accept(db, event(opportunity_data(deal, "001B")), utcnow())
    build_worker(SETTINGS, db, MemoryCrm(), erp).run(until_idle=True)
    accept(db, event(opportunity_data("006A", "001B", minutes=5, amount="150000.00",
                                      modified_by="alice")), utcnow())
    accept(db, event(opportunity_data("006D", "001B", billing_method="milestone")), utcnow())
    erp.faults.fail_next([PermanentError("the integration role lost its licence")])
    build_worker(SETTINGS, db, MemoryCrm(), erp).run(until_idle=True)


@pytest.fixture
def dashboard(db: Database) -> Iterator[str]:
    seeded(db)
    roles = Roles(approvers=frozenset({"olga"}), integrators=frozenset({"olga"}))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(db, roles, {TOKEN: "olga"}), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HANDOFF_SCREENSHOTS", tmp_path / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.mark.slow
def test_find_a_deal_replay_a_dead_letter_and_approve_an_amendment(dashboard: str, shots: Path) -> None:
    sync_playwright = browser_or_skip()
    with sync_playwright() as p:  # type: ignore[operator]
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_context(timezone_id="America/New_York", locale="en-US").new_page()
        page.goto(f"{dashboard}/dashboard")
        assert "Sign in" in page.title()
        page.get_by_label("API token").fill(TOKEN)
        page.get_by_role("button", name="Sign in").click()
        assert page.get_by_role("heading", name="Overview").is_visible()
        page.screenshot(path=shots / "1-overview.png", full_page=True)

        page.get_by_label("Find a deal").fill("006B")
        page.get_by_role("button", name="Search").click()
        assert page.get_by_role("heading", name="Deal 006B").is_visible()
        hops = page.get_by_role("table", name="Hops")
        assert hops.get_by_text("upsert_project").count() >= 1 and hops.get_by_text("ok").count() >= 2
        first_time = hops.locator("time").first.inner_text()
        assert "UTC" not in first_time, "times are shown in the reader's zone"
        page.screenshot(path=shots / "2-lineage.png", full_page=True)

        page.get_by_role("link", name="Exceptions").click()
        held = page.get_by_role("table", name="Held, oldest first")
        assert held.get_by_text("opportunity:006D").is_visible()
        held.get_by_role("button", name="Replay").click()
        assert page.get_by_role("status").inner_text() == "re-queued opportunity:006D"
        assert "Nothing is held" in page.content()
        page.screenshot(path=shots / "3-replayed.png", full_page=True)

        page.get_by_role("link", name="Amendments").click()
        page.get_by_label("Reason").fill("CO-12 signed")
        page.get_by_role("button", name="Approve").click()
        assert page.get_by_role("status").inner_text() == "AM-006A-1 approved"
        assert "No amendment waits for a decision" in page.content()
        page.screenshot(path=shots / "4-approved.png", full_page=True)
        browser.close()
    assert all((shots / f).stat().st_size > 5000 for f in
               ("1-overview.png", "2-lineage.png", "3-replayed.png", "4-approved.png"))
