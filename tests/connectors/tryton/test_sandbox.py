"""The sandbox Tryton: a real server, started from a cached database, that can invoice a
project and post the invoice over JSON-RPC, as the Tryton connector will."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from handoff.connectors.tryton.sandbox import TrytonProcess, TrytonSandboxInfo, server_version
from handoff.connectors.tryton.sandbox_cache import cache_key, drop_stale_files, libpq_url, server_config
from tests.conftest import POSTGRES_ADMIN_URL
from tests.connectors.tryton.rpc_support import TrytonRpc

pytestmark = pytest.mark.slow


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def tryton(request: pytest.FixtureRequest) -> TrytonProcess:
    return request.getfixturevalue("tryton_server" if request.param == "sqlite" else "tryton_server_pg")


@pytest.fixture
def rpc(tryton: TrytonProcess) -> Iterator[TrytonRpc]:
    client = TrytonRpc(tryton.info)
    assert client.login() == tryton.info.user_id
    yield client
    client.close()


def test_server_answers_its_version_and_writes_its_info(tryton: TrytonProcess) -> None:
    assert server_version(tryton.url) == "8.2"
    written = (tryton.workdir / "sandbox.json").read_text()
    assert TrytonSandboxInfo.from_json(written) == tryton.info


def test_the_user_works_for_the_sandbox_company(rpc: TrytonRpc) -> None:
    info = rpc.info
    assert rpc.context["company"] == info.company_id and rpc.context["employee"] == info.employee_id
    company = rpc.read_one("company.company", info.company_id, ["currency"])
    assert company["currency"] == info.currency_id
    currencies = rpc.model("currency.currency", "read", [info.currency_id, info.eur_currency_id], ["code"])
    assert sorted(c["code"] for c in currencies) == ["EUR", "USD"]
    product = rpc.read_one("product.product", info.product_id, ["code", "type", "list_price_used"])
    assert product == {"id": info.product_id, "code": "SERVICE", "type": "service",
                       "list_price_used": Decimal("150.0000")}


def new_customer(rpc: TrytonRpc) -> int:
    """Invoices need an invoice address: a party made over RPC has none unless given one."""
    party, = rpc.model("party.party", "create", [{
        "name": f"Customer {uuid.uuid4().hex[:6]}",
        "addresses": [["create", [{"street": "1 Main Street", "city": "Springfield"}]]]}])
    return party


def new_project(rpc: TrytonRpc, method: str, task: dict[str, object]) -> tuple[int, int]:
    """A project for a new customer with one task; both priced at 150 an hour. Over RPC no
    on_change runs: the list price is given, not taken from the product."""
    info = rpc.info
    priced = {"company": info.company_id, "product": info.product_id, "list_price": Decimal("150")}
    project, = rpc.model("project.work", "create", [{
        "name": "Rollout", "type": "project", "party": new_customer(rpc), "project_invoice_method": method,
        **priced, "children": [["create", [{"name": "Kick-off", "type": "task", **priced, **task}]]]}])
    task_id, = rpc.read_one("project.work", project, ["children"])["children"]
    return project, task_id


def invoice_and_post(rpc: TrytonRpc, project: int) -> dict[str, object]:
    """The project's `invoice` button makes one draft invoice for its customer; post it."""
    rpc.model("project.work", "invoice", [project])
    party = rpc.read_one("project.work", project, ["party"])["party"]
    invoice, = rpc.model("account.invoice", "search", [["party", "=", party]], 0, None, None)
    rpc.model("account.invoice", "post", [invoice])
    return rpc.read_one("account.invoice", invoice, [
        "state", "number", "invoice_date", "company", "currency", "payment_term",
        "untaxed_amount", "tax_amount", "total_amount", "move"])


def assert_posted(invoice: dict[str, object], info: TrytonSandboxInfo, total: Decimal) -> None:
    assert invoice["state"] == "posted" and invoice["number"] and invoice["move"]
    assert invoice["invoice_date"] == dt.date.today()
    assert (invoice["company"], invoice["currency"]) == (info.company_id, info.currency_id)
    assert invoice["payment_term"] == info.payment_term_id
    assert (invoice["untaxed_amount"], invoice["tax_amount"]) == (total, Decimal("0.00"))
    assert invoice["total_amount"] == total and str(total) == str(invoice["total_amount"])


def test_project_on_effort_is_invoiced_and_posted(rpc: TrytonRpc) -> None:
    """On effort: a task is billed once done, its effort hours at the list price."""
    project, task = new_project(rpc, "effort", {"effort_duration": dt.timedelta(hours=3)})
    amounts = ["amount_to_invoice", "invoiced_amount"]
    assert rpc.read_one("project.work", project, amounts)["amount_to_invoice"] == Decimal("0.00")
    rpc.model("project.work", "write", [task], {"progress": 1.0})
    assert rpc.read_one("project.work", project, amounts)["amount_to_invoice"] == Decimal("450.00")

    assert_posted(invoice_and_post(rpc, project), rpc.info, Decimal("450.00"))
    done = rpc.read_one("project.work", project, amounts)
    assert (done["amount_to_invoice"], done["invoiced_amount"]) == (Decimal("0.00"), Decimal("450.00"))


def test_project_on_timesheet_bills_the_hours_the_employee_spent(rpc: TrytonRpc) -> None:
    project, task = new_project(rpc, "timesheet", {"timesheet_available": True})
    timesheet_work, = rpc.read_one("project.work", task, ["timesheet_works"])["timesheet_works"]
    rpc.model("timesheet.line", "create", [{
        "company": rpc.info.company_id, "employee": rpc.info.employee_id, "work": timesheet_work,
        "date": dt.date.today(), "duration": dt.timedelta(hours=2, minutes=30)}])

    assert_posted(invoice_and_post(rpc, project), rpc.info, Decimal("375.00"))


def test_concurrent_requests_do_not_interleave(rpc: TrytonRpc) -> None:
    """Works created at once each get their own number (SQLite: one request at a time)."""
    def create_work(n: int) -> int:
        work, = rpc.model("project.work", "create", [{
            "name": f"Concurrent {n}", "type": "project", "company": rpc.info.company_id}])
        return work

    with ThreadPoolExecutor(8) as pool:
        works = list(pool.map(create_work, range(24)))
    numbers = [w["number"] for w in rpc.model("project.work", "read", works, ["number"])]
    assert len(set(numbers)) == len(works) and all(numbers)


def test_a_second_start_copies_the_cached_database(tryton_server: TrytonProcess, tmp_path: Path) -> None:
    template = tryton_server.templates.template
    before = template.stat()
    with TrytonProcess("sqlite", tmp_path, cache=tryton_server.templates.directory) as second:
        assert not second.built_template and second.timings["template"] < 1.0
        assert second.info.database == tryton_server.info.database
        copy = (tmp_path / f"{second.info.database}.sqlite").stat()
        assert copy.st_ino not in (before.st_ino, (tryton_server.workdir / "handoff.sqlite").stat().st_ino)
        private_party = _create_party(second, "Seen by the second server only")
    after = template.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (before.st_ino, before.st_mtime_ns,
                                                                before.st_size)
    assert not _find_party(tryton_server, "Seen by the second server only"), private_party


def test_postgres_runs_get_their_own_database_dropped_on_stop(tryton_server_pg: TrytonProcess,
                                                             tmp_path: Path) -> None:
    templates = tryton_server_pg.templates
    with TrytonProcess("postgresql", tmp_path, cache=templates.directory,
                       postgres_url=POSTGRES_ADMIN_URL) as second:
        assert not second.built_template
        database = second.info.database
        assert database != tryton_server_pg.info.database and database.startswith(templates.template)
        assert database in _postgres_databases()
        _create_party(second, "Seen by the second server only")
    assert database not in _postgres_databases()
    assert templates.template in _postgres_databases()
    assert not _find_party(tryton_server_pg, "Seen by the second server only")


def test_the_cache_key_changes_with_the_year() -> None:
    assert cache_key(dt.date(2026, 1, 1)) == cache_key(dt.date(2026, 12, 31))
    assert cache_key(dt.date(2026, 12, 31)) != cache_key(dt.date(2027, 1, 1))


def test_a_new_template_drops_the_files_of_older_keys(tmp_path: Path) -> None:
    names = ["new.sqlite", "new.log", "new.postgresql.log", "new.lock", "old.sqlite", "old.log", "old.lock"]
    for name in names:
        (tmp_path / name).touch()
    drop_stale_files(tmp_path, "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[:4] + ["old.lock"])


def test_a_relative_cache_directory_is_written_absolute_for_trytond(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # trytond turns the path into a file: URI, where "cache/x" would mean "/cache/x"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cache").mkdir()
    config = server_config(Path("cache"), "sqlite://").read_text().splitlines()
    assert f"path = {tmp_path / 'cache'}" in config


def _create_party(server: TrytonProcess, name: str) -> int:
    rpc = TrytonRpc(server.info)
    rpc.login()
    party, = rpc.model("party.party", "create", [{"name": name}])
    rpc.close()
    return party


def _find_party(server: TrytonProcess, name: str) -> list[int]:
    rpc = TrytonRpc(server.info)
    rpc.login()
    found = rpc.model("party.party", "search", [["name", "=", name]], 0, None, None)
    rpc.close()
    return found


def _postgres_databases() -> set[str]:
    with psycopg.connect(libpq_url(POSTGRES_ADMIN_URL), connect_timeout=5) as connection:
        return {row[0] for row in connection.execute("SELECT datname FROM pg_database")}
