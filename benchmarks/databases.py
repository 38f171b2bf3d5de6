"""The databases a benchmark runs on: a fresh SQLite file, or a throwaway PostgreSQL
database created for one run and dropped after it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

ADMIN_URL = os.environ.get("HANDOFF_BENCH_POSTGRES_URL",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def sqlite_url(directory: Path, name: str) -> str:
    path = directory / f"{name}.db"
    for leftover in directory.glob(f"{name}.db*"):
        leftover.unlink()
    return f"sqlite:///{path}"


def postgres_version() -> str | None:
    """The server's version, or None when it cannot be reached."""
    try:
        engine = sa.create_engine(ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SHOW server_version").scalar_one()
        engine.dispose()
        return str(version).split()[0]
    except sa.exc.SQLAlchemyError:
        return None


@contextmanager
def throwaway_postgres() -> Iterator[str]:
    """The URL of an empty database that exists only inside the `with` block."""
    name = f"handoff_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
