"""A real Tryton server for the sandbox, the tests and the demo: `TrytonProcess`.

Each start copies an initialised database (see sandbox_cache) into its own working directory
or PostgreSQL database, so runs never share mutable state, and serves it with trytond (see
server: one request at a time on SQLite) on a free 127.0.0.1 port.

JSON-RPC: `POST /rpc/` for server calls (common.server.version), `POST /<database>/rpc/` for
the rest; log in with common.db.login, then send `Authorization: Session
base64(login:user_id:session)`. What the connector needs to know (ids of the company, product,
...) is `TrytonProcess.info`, also written to sandbox.json beside the server's trytond.conf."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import httpx

from handoff.connectors.children import dies_with_parent
from handoff.connectors.children import stop as stop_child
from handoff.connectors.tryton import bootstrap_db
from handoff.connectors.tryton.sandbox_cache import (
    DEFAULT_POSTGRES_URL,
    PostgresTemplates,
    SandboxError,
    SqliteTemplates,
    last_line,
    server_config,
)
from handoff.connectors.twin_process import free_port

Backend = Literal["sqlite", "postgresql"]


@dataclass(frozen=True)
class TrytonSandboxInfo:
    """Where the sandbox Tryton is, whom to log in as, and the records it was set up with."""

    url: str                   # http://127.0.0.1:PORT/
    database: str
    user: str                  # the integration's login (admin/ADMIN_PASSWORD also works)
    password: str
    backend: str
    company_id: int            # company "Handoff Sandbox Co", in USD
    currency_id: int           # USD, the company currency
    eur_currency_id: int
    product_id: int            # service product SERVICE, by the hour
    payment_term_id: int       # "Direct", every customer's default
    employee_id: int           # the employee of both users
    user_id: int               # the integration user
    admin_user_id: int
    revenue_account_id: int
    receivable_account_id: int

    @property
    def rpc_url(self) -> str:
        return f"{self.url}{self.database}/rpc/"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> TrytonSandboxInfo:
        return cls(**json.loads(text))


class TrytonProcess:
    """One trytond on its own copy of the sandbox database; a context manager that never leaves
    the server running nor, on PostgreSQL, its database behind."""

    def __init__(self, backend: Backend = "sqlite", workdir: Path | None = None, port: int | None = None,
                 cache: Path | None = None, postgres_url: str = DEFAULT_POSTGRES_URL) -> None:
        self.backend = backend
        self.port = port or free_port()
        self.templates = (SqliteTemplates(cache) if backend == "sqlite"
                          else PostgresTemplates(postgres_url, cache))
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="handoff-tryton-"))
        self.process: subprocess.Popen[bytes] | None = None
        self.database: str | None = None
        self.info: TrytonSandboxInfo | None = None
        self.built_template = False  # True when this start had to initialise the template
        self.timings: dict[str, float] = {}  # seconds: template (ensured), copy, server

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def log_file(self) -> Path:
        return self.workdir / "trytond.log"

    def start(self, timeout: float = 60.0) -> TrytonProcess:
        try:
            self.info = self._prepare_database()
            self._start_server(self.info, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare_database(self) -> TrytonSandboxInfo:
        started = time.monotonic()
        self.built_template = self.templates.ensure()
        self.timings["template"] = time.monotonic() - started
        started = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.database, ids = self.templates.copy(self.workdir)
        self.timings["copy"] = time.monotonic() - started
        return TrytonSandboxInfo(
            url=self.url, database=self.database, user=bootstrap_db.API_LOGIN,
            password=bootstrap_db.API_PASSWORD, backend=self.backend, user_id=ids.pop("api_user_id"), **ids)

    def _start_server(self, info: TrytonSandboxInfo, timeout: float) -> None:
        started = time.monotonic()
        config = server_config(self.workdir, self.templates.database_uri, self.port)
        (self.workdir / "sandbox.json").write_text(info.to_json())
        cmd = [sys.executable, "-m", "handoff.connectors.tryton.server",
               "-c", str(config), "-d", info.database]
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, cwd=self.workdir,
                                            preexec_fn=dies_with_parent())
        self._wait_ready(timeout)
        self.timings["server"] = time.monotonic() - started

    def _wait_ready(self, timeout: float) -> None:
        """The server loads the database's pool before it listens: answering means ready."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process and self.process.poll() is not None:
                raise SandboxError(f"trytond exited with {self.process.returncode} on port {self.port}: "
                                   f"{last_line(self.log_file)}")
            try:
                server_version(self.url, timeout=1.0)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise SandboxError(f"trytond did not answer on port {self.port} within {timeout:.0f} s: "
                           f"{last_line(self.log_file)}")

    def stop(self) -> None:
        stop_child(self.process)
        self.process = None
        if self.database:
            self.templates.discard(self.database)
            self.database = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> TrytonProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def server_version(url: str, timeout: float = 5.0) -> str:
    """The series trytond answers on its server endpoint, e.g. "8.2"."""
    response = httpx.post(f"{url}rpc/", json={"id": 0, "method": "common.server.version", "params": []},
                          timeout=timeout)
    response.raise_for_status()
    return response.json()["result"]


def describe(server: TrytonProcess) -> str:
    """What a person needs to connect, for `handoff sandbox --erp tryton`."""
    info = server.info
    assert info is not None, "describe a started server"
    return (f"Tryton ERP       {info.url}  database {info.database} ({info.backend})\n"
            f"                 JSON-RPC {info.rpc_url}; user {info.user} / {info.password} "
            f"(or {bootstrap_db.ADMIN_LOGIN} / {bootstrap_db.ADMIN_PASSWORD})\n"
            f"                 record ids: {server.workdir / 'sandbox.json'}; log: {server.log_file}")
