"""Where pruned rows go before they are deleted: one file per table and pruning run,
`<dir>/<table>/<UTC time>-<pid>.jsonl.gz`, one JSON object per row (the row's columns; times
in RFC 3339). Each chunk is a gzip member of its own, written and synced to disk before its
rows are deleted, so a crash leaves whole members only and gzip, zcat and DuckDB's
`read_json` read the file as one stream."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson


class Archive:
    """The archive file of one table in one pruning run; made when the first rows come."""

    def __init__(self, directory: Path, table: str, now: datetime) -> None:
        self.path = directory / table / f"{now:%Y%m%dT%H%M%SZ}-{os.getpid()}.jsonl.gz"
        self.rows = 0

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append the rows and sync them to disk: only then may they be deleted."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = b"".join(orjson.dumps(row) + b"\n" for row in rows)
        with self.path.open("ab") as out:
            out.write(gzip.compress(lines, compresslevel=3))
            out.flush()
            os.fsync(out.fileno())
        self.rows += len(rows)


def read_archive(path: Path) -> Iterator[dict[str, Any]]:
    """The rows of an archive file, in the order they were written."""
    with gzip.open(path, "rb") as lines:
        for line in lines:
            yield orjson.loads(line)
