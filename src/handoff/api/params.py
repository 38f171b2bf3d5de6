"""Parameter limits shared by the routes: a record id is a positive integer that JSON carries
exactly (below 2**53), so a request naming another gets a 422 that says so, never a 500."""

from fastapi import Path

MAX_ID = 2**53 - 1


def record_id() -> object:
    """A path parameter's declaration (a fresh one per parameter: FastAPI names it)."""
    return Path(ge=1, le=MAX_ID)
