"""Persistence: SQLAlchemy Core tables, the engine factory and Alembic migrations."""

from handoff.store.db import Database, open_database

__all__ = ["Database", "open_database"]
