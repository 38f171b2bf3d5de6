"""Initialised Tryton databases, made once and copied for every run.

Initialising takes about a minute; copying a few seconds at most. A template is keyed by what
shapes it: the Tryton packages' versions, the modules, the bootstrap code and the year (its
fiscal years are the current and the next one). SQLite templates are files in the cache
directory (default .handoff/cache/tryton, or HANDOFF_TRYTON_CACHE); PostgreSQL templates are
databases named handoff_tryton_<key>, copied with CREATE DATABASE ... TEMPLATE."""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import importlib.metadata
import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

import psycopg

from handoff.connectors.children import dies_with_parent
from handoff.connectors.tryton import bootstrap_db
from handoff.errors import HandoffError

DEFAULT_CACHE_DIR = Path(".handoff/cache/tryton")
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
SQLITE_DATABASE = "handoff"
TEMPLATE_PREFIX = "handoff_tryton_"


class SandboxError(HandoffError):
    """The sandbox Tryton cannot be initialised or started; the message names its log."""


def cache_dir() -> Path:
    return Path(os.environ.get("HANDOFF_TRYTON_CACHE") or DEFAULT_CACHE_DIR)


def cache_key(today: dt.date | None = None) -> str:
    """Changes whenever a template built now would differ from one built before."""
    parts = [f"year={(today or dt.date.today()).year}", f"setup={bootstrap_db.SETUP_VERSION}",
             "modules=" + ",".join(bootstrap_db.MODULES),
             hashlib.sha256(Path(bootstrap_db.__file__).read_bytes()).hexdigest()]
    parts += sorted(f"{name}={version}" for name, version in _tryton_distributions())
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _tryton_distributions() -> Iterator[tuple[str, str]]:
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("-", "_")
        if name.startswith("trytond") or name == "proteus":
            yield name, dist.version


def server_config(directory: Path, database_uri: str, port: int | None = None) -> Path:
    """A trytond.conf for a database in `directory` (SQLite) or on a PostgreSQL server."""
    # absolute: trytond makes the SQLite path a file: URI, where a relative path means from /
    lines = ["[database]", f"uri = {database_uri}", f"path = {directory.resolve()}",
             "list = False", "language = en",
             "[session]", "authentications = password",
             # One server process per database: no bus, and the cache is cleared by polling
             "[bus]", "allow_subscribe = False"]
    if port is not None:
        lines += ["[web]", f"listen = 127.0.0.1:{port}"]
    path = directory / "trytond.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def read_ids(connection: sqlite3.Connection | psycopg.Connection) -> dict[str, int]:
    """The record ids the bootstrap kept in the database."""
    cursor = connection.cursor()
    cursor.execute(f"SELECT name, record_id FROM {bootstrap_db.IDS_TABLE}")
    return {name: int(record_id) for name, record_id in cursor.fetchall()}


def run_bootstrap(config_file: Path, database: str, log_file: Path) -> None:
    cmd = [sys.executable, "-m", "handoff.connectors.tryton.bootstrap_db",
           "--config", str(config_file), "--database", database]
    with log_file.open("wb") as log:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                              preexec_fn=dies_with_parent(), check=False)
    if done.returncode != 0:
        raise SandboxError(f"initialising Tryton database {database!r} failed: {last_line(log_file)} "
                           f"(log: {log_file})")


def last_line(log_file: Path) -> str:
    """Usually the exception that ended the process."""
    lines = log_file.read_text(errors="replace").strip().splitlines() if log_file.exists() else []
    return lines[-1] if lines else "no output"


@contextmanager
def _locked(directory: Path, key: str) -> Iterator[None]:
    """One builder per key on this machine; the others wait, then find the template made."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def _build_dir(directory: Path, name: str) -> Iterator[Path]:
    """Where a build's trytond.conf (and SQLite file) live until it is done or has failed."""
    build = directory / f"build-{name}-{os.getpid()}"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    try:
        yield build
    finally:
        shutil.rmtree(build, ignore_errors=True)


def drop_stale_files(directory: Path, key: str) -> None:
    """Templates and logs of older keys (other versions, last year) are never used again."""
    for path in [*directory.glob("*.sqlite"), *directory.glob("*.log")]:
        if not path.name.startswith(key):
            path.unlink(missing_ok=True)


class SqliteTemplates:
    """The template is `<cache>/<key>.sqlite`; a run gets a copy named handoff.sqlite."""

    database_uri = "sqlite://"

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or cache_dir()
        self.key = cache_key()

    @property
    def template(self) -> Path:
        return self.directory / f"{self.key}.sqlite"

    def ensure(self) -> bool:
        """Build the template unless it exists; True when this call built it."""
        with _locked(self.directory, self.key):
            if self.template.exists():
                return False
            with _build_dir(self.directory, self.key) as build:
                (build / f"{SQLITE_DATABASE}.sqlite").touch()  # trytond opens, never creates, it
                run_bootstrap(server_config(build, self.database_uri), SQLITE_DATABASE,
                              self.directory / f"{self.key}.log")
                os.replace(build / f"{SQLITE_DATABASE}.sqlite", self.template)
            drop_stale_files(self.directory, self.key)
            return True

    def copy(self, workdir: Path) -> tuple[str, dict[str, int]]:
        """A private copy in `workdir`: its database name and the record ids it holds."""
        target = workdir / f"{SQLITE_DATABASE}.sqlite"
        shutil.copyfile(self.template, target)
        with closing(sqlite3.connect(target)) as connection:
            return SQLITE_DATABASE, read_ids(connection)

    def discard(self, database: str) -> None:
        """The copy goes with its working directory."""


class PostgresTemplates:
    """The template is database handoff_tryton_<key>; a run gets handoff_tryton_<key>_<random>."""

    def __init__(self, admin_url: str = DEFAULT_POSTGRES_URL, directory: Path | None = None) -> None:
        self.admin_url = libpq_url(admin_url)
        self.directory = directory or cache_dir()
        self.key = cache_key()
        self.template = TEMPLATE_PREFIX + self.key

    @property
    def database_uri(self) -> str:
        """trytond's form: the server without a database; it appends the name itself."""
        return self.admin_url.rsplit("/", 1)[0] + "/"

    def ensure(self) -> bool:
        with self._locked():
            if self.template in self._databases():
                return False
            build = f"{self.template}_build"  # left over only by a build that failed
            self._execute(f'DROP DATABASE IF EXISTS "{build}" WITH (FORCE)', f'CREATE DATABASE "{build}"')
            with _build_dir(self.directory, f"{self.key}-pg") as workdir:
                run_bootstrap(server_config(workdir, self.database_uri), build,
                              self.directory / f"{self.key}.postgresql.log")
            self._drop_stale_templates()
            self._execute(f'ALTER DATABASE "{build}" RENAME TO "{self.template}"',
                          # nobody may connect: a connection would make every copy fail
                          f'ALTER DATABASE "{self.template}" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false')
            return True

    def copy(self, workdir: Path) -> tuple[str, dict[str, int]]:
        name = f"{self.template}_{uuid.uuid4().hex[:8]}"
        self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        with psycopg.connect(self._url_of(name)) as connection:
            ids = read_ids(connection)
        return name, ids

    def discard(self, database: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

    def _drop_stale_templates(self) -> None:
        """Templates of older keys (other versions, last year) are never copied again."""
        for name in self._databases(templates_only=True):
            if name.startswith(TEMPLATE_PREFIX) and name != self.template:
                self._execute(f'ALTER DATABASE "{name}" WITH IS_TEMPLATE false',
                              f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """The template is on a server other checkouts (other cache directories) may share."""
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as connection:
            connection.execute("SELECT pg_advisory_lock(hashtext(%s))", (self.template,))
            yield

    def _databases(self, templates_only: bool = False) -> set[str]:
        query = "SELECT datname FROM pg_database" + (" WHERE datistemplate" if templates_only else "")
        with psycopg.connect(self.admin_url, connect_timeout=5) as connection:
            return {row[0] for row in connection.execute(query)}

    def _execute(self, *statements: str) -> None:
        with psycopg.connect(self.admin_url, autocommit=True, connect_timeout=5) as connection:
            for statement in statements:
                connection.execute(statement)  # type: ignore[arg-type]

    def _url_of(self, database: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + f"/{database}"


def libpq_url(url: str) -> str:
    """postgresql+psycopg://… (SQLAlchemy's form, as the tests configure it) → postgresql://…"""
    scheme, sep, rest = url.partition("://")
    return scheme.split("+", 1)[0] + sep + rest
