"""Fixtures shared by every test: sandbox twins in their own processes, databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from handoff.connectors.twin_process import TwinProcess

pytest_plugins = ["tests.connectors.salesforce_helpers"]  # its `twin` and `crm` fixtures


@pytest.fixture(scope="session")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tls")


def twin_fixture(system: str) -> object:
    """A session fixture: the system's twin in its own process, for every test that asks."""
    @pytest.fixture(scope="session", name=f"{system}_twin")
    def twin(tls_dir: Path) -> Iterator[TwinProcess]:
        with TwinProcess(system, tls_dir) as process:
            yield process
    return twin


salesforce_twin = twin_fixture("salesforce")
netsuite_twin = twin_fixture("netsuite")
hubspot_twin = twin_fixture("hubspot")
dynamics_twin = twin_fixture("dynamics")
businesscentral_twin = twin_fixture("businesscentral")
oracle_twin = twin_fixture("oracle")
sap_twin = twin_fixture("sap")
stripe_twin = twin_fixture("stripe")


def reset_twin(twin: TwinProcess) -> None:
    with twin.control() as control:
        control.post("/_twin/reset").raise_for_status()
        control.put("/_twin/faults", json={}).raise_for_status()


# --- databases -------------------------------------------------------------------------
import os  # noqa: E402
import uuid  # noqa: E402

import sqlalchemy as sa  # noqa: E402

from handoff.store import Database, open_database  # noqa: E402
from handoff.store.tables import metadata  # noqa: E402

POSTGRES_ADMIN_URL = os.environ.get(
    "HANDOFF_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def _postgres_unreachable() -> str | None:
    try:
        engine = sa.create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return None
    except Exception as exc:  # any failure to connect means: no server to test against
        return f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {str(exc).splitlines()[0]}"


def _require_postgres() -> None:
    """Skip when no server is reachable, unless CI says one must be (then fail)."""
    reason = _postgres_unreachable()
    if reason:
        if os.environ.get("HANDOFF_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{reason} (HANDOFF_REQUIRE_POSTGRES=1)")
        pytest.skip(f"{reason} — PostgreSQL tests skipped")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    _require_postgres()
    name = f"handoff_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def _empty_postgres(url: str) -> Database:
    db = open_database(url)
    with db.transaction() as conn:
        names = ", ".join(t.name for t in metadata.sorted_tables)
        conn.exec_driver_sql(f"TRUNCATE {names} RESTART IDENTITY")
    return db


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, migrated database URL: SQLite file, then PostgreSQL when reachable."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'handoff.db'}"
    url = request.getfixturevalue("postgres_url")
    _empty_postgres(url).dispose()
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = open_database(database_url)
    yield database
    database.dispose()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# --- Tryton ----------------------------------------------------------------------------
import dataclasses  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

from handoff.connectors.tryton.client import TrytonConnector, TrytonSettings  # noqa: E402
from handoff.connectors.tryton.sandbox import TrytonProcess  # noqa: E402
from tests.connectors.tryton.rpc_support import TrytonRpc  # noqa: E402


def tryton_cache() -> Path | None:
    """The repository's cache, wherever pytest runs from; HANDOFF_TRYTON_CACHE still wins."""
    if os.environ.get("HANDOFF_TRYTON_CACHE"):
        return None
    return Path(__file__).resolve().parents[1] / ".handoff" / "cache" / "tryton"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Each Tryton template takes about a minute of one core to build: when the run needs
    them, build both at its start, beside the tests that need neither."""
    backends = _tryton_backends_needed(session.items)
    if "postgresql" in backends and _postgres_unreachable():
        backends.discard("postgresql")
    cache = tryton_cache()
    for backend in sorted(backends):
        _template_builders.append(subprocess.Popen(
            [sys.executable, "-m", "tests.connectors.tryton.prebuild", backend, str(cache or ""),
             POSTGRES_ADMIN_URL], cwd=Path(__file__).resolve().parents[1],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A run that ended before a template was built stops its builder (a later run resumes)."""
    for builder in _template_builders:
        if builder.poll() is None:
            os.killpg(builder.pid, signal.SIGTERM)
            builder.wait(timeout=30)


def _tryton_backends_needed(items: list[pytest.Item]) -> set[str]:
    needed: set[str] = set()
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if "tryton_server_pg" in fixtures:
            needed.add("postgresql")
        if "tryton_server" in fixtures or ("tryton" in item.nodeid.lower()
                                           and item.get_closest_marker("slow")):
            needed.add("postgresql" if "postgres" in item.nodeid else "sqlite")
    return needed


_template_builders: list[subprocess.Popen[bytes]] = []


@pytest.fixture(scope="session")
def tryton_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonProcess]:
    """A real Tryton on its own copy of the cached SQLite sandbox database."""
    with TrytonProcess("sqlite", tmp_path_factory.mktemp("tryton"), cache=tryton_cache()) as server:
        yield server


@pytest.fixture(scope="session")
def tryton_server_pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonProcess]:
    """The same on PostgreSQL: a database made from the cached template, dropped afterwards."""
    _require_postgres()
    with TrytonProcess("postgresql", tmp_path_factory.mktemp("tryton-pg"), cache=tryton_cache(),
                       postgres_url=POSTGRES_ADMIN_URL) as server:
        yield server


@pytest.fixture
def tryton(tryton_server: TrytonProcess) -> Iterator[TrytonConnector]:
    """handoff's connector, signed in as the sandbox's integration user."""
    info = tryton_server.info
    assert info is not None
    with TrytonConnector(TrytonSettings(info.url, info.database, info.user, info.password)) as c:
        yield c


@pytest.fixture
def tryton_admin(tryton_server: TrytonProcess) -> Iterator[TrytonRpc]:
    """The sandbox's administrator: what people do in Tryton (pay, finish a task)."""
    assert tryton_server.info is not None
    rpc = TrytonRpc(dataclasses.replace(tryton_server.info, user="admin",
                                        password="sandbox-admin-pw"))
    rpc.login()
    yield rpc
    rpc.close()
