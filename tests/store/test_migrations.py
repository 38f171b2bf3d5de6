"""The Alembic migrations build exactly the schema the code declares, on both databases."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from handoff.store import open_database
from handoff.store.tables import metadata


def test_migrations_match_the_declared_tables(database_url: str) -> None:
    db = open_database(database_url)
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    db.dispose()
    assert diff == []


def test_upgrading_twice_is_harmless(database_url: str) -> None:
    open_database(database_url).dispose()
    open_database(database_url).dispose()
