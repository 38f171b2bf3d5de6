"""Opening the database: SQLite (WAL) by default, PostgreSQL when the URL says so."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from handoff.errors import StoreError
from handoff.store.statistics import GrowthAnalyzer

DEFAULT_URL = "sqlite:///.handoff/handoff.db"
MIGRATIONS = Path(__file__).parent / "migrations"
# JSON columns through orjson: several times faster than the json module both ways, and every
# value handoff stores in one is plain JSON already (amounts as strings, times as ISO text).
JSON_CODEC: dict[str, Any] = {"json_serializer": lambda value: orjson.dumps(value).decode(),
                              "json_deserializer": orjson.loads}


class Database:
    """An engine plus the one way handoff opens transactions on it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        # SQLite has one writer at a time. Threads of one process queue on this lock, which
        # wakes the next at once, instead of sleeping in SQLite's busy handler.
        self._write_lock = threading.Lock() if engine.dialect.name == "sqlite" else None
        self.statistics = GrowthAnalyzer(engine)  # a new PostgreSQL plans well from its first events

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction; on SQLite it takes the write lock at BEGIN (no upgrade deadlocks)."""
        if self._write_lock is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._write_lock, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """A read-only transaction: a consistent snapshot that takes no write lock."""
        with self.engine.connect().execution_options(read_only=True) as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()


def open_database(url: str = DEFAULT_URL, *, migrate: bool = True) -> Database:
    """Open (and by default migrate) the database; StoreError says why it cannot be."""
    try:
        engine = _sqlite_engine(url) if url.startswith("sqlite") else _postgres_engine(url)
        db = Database(engine)
        if migrate:
            upgrade(db)
    except (sa.exc.SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise StoreError(f"cannot open the database {_safe(url)}: {reason}") from exc
    return db


def _safe(url: str) -> str:
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return repr(url)


def _sqlite_engine(url: str) -> Engine:
    path = sa.engine.make_url(url).database
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, pool_size=20, max_overflow=20, **JSON_CODEC,
                              connect_args={"timeout": 60, "check_same_thread": False})

    @sa.event.listens_for(engine, "connect")
    def _pragmas(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")  # durable across process crashes in WAL
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        read_only = conn.get_execution_options().get("read_only", False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: str) -> Engine:
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return sa.create_engine(url, pool_size=20, max_overflow=20, pool_pre_ping=True, **JSON_CODEC)


def upgrade(db: Database) -> None:
    """Bring the schema to the newest migration (Alembic), whatever the starting point."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with db.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


def schema_head() -> str:
    """The newest migration's revision: what a current database's alembic_version holds."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return str(ScriptDirectory.from_config(config).get_current_head())
