"""`python -m tests.connectors.tryton.prebuild BACKEND [CACHE_DIR] [POSTGRES_URL]`: build the
cached Tryton template a test run copies, so the first test that needs it does not wait a
minute for it (tests/conftest.py starts one per backend beside the tests that need neither)."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from handoff.connectors.tryton.sandbox_cache import PostgresTemplates, SqliteTemplates


def main(backend: str, cache: str = "", postgres_url: str = "") -> None:
    # stopped by SIGTERM when the run ends first: unwind, so the build directory is removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    directory = Path(cache) if cache else None
    templates = (SqliteTemplates(directory) if backend == "sqlite"
                 else PostgresTemplates(postgres_url, directory))
    templates.ensure()


if __name__ == "__main__":
    main(*sys.argv[1:])
