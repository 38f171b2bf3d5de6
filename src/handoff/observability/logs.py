"""Log lines that name the deal: the current lifecycle's correlation id and opportunity id.

`format = "json"`: one JSON object per line — time (UTC, ISO 8601), level, logger, message,
correlation_id and opportunity_id when known, thread, every `extra={...}` field, and the
exception's traceback when there is one. `format = "text"`: the usual line, ending in
`[correlation_id=… opportunity_id=…]` when they are known.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from handoff.observability.context import current

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LIFECYCLE_FIELDS = ("correlation_id", "opportunity_id")
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message", "asctime", "taskName", *LIFECYCLE_FIELDS}


class LifecycleFilter(logging.Filter):
    """Stamps each record with the lifecycle current where it was logged (a handler's
    filter runs in the logging thread, before the record is queued or kept). A field given
    with `extra=` wins."""

    def filter(self, record: logging.LogRecord) -> bool:
        life = current()
        if life is not None:
            for name, value in life.fields().items():
                if getattr(record, name, None) is None:
                    setattr(record, name, value)
        return True


def lifecycle_fields(record: logging.LogRecord) -> dict[str, str]:
    """The record's correlation and opportunity ids: stamped, given as extras, or current."""
    found = {name: getattr(record, name) for name in LIFECYCLE_FIELDS
             if getattr(record, name, None) is not None}
    if len(found) < len(LIFECYCLE_FIELDS):
        life = current()
        if life is not None:
            found = life.fields() | found
    return found


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        line |= lifecycle_fields(record)
        line |= {k: v for k, v in extra_fields(record).items() if k not in line}
        line["thread"] = record.threadName
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


class TextFormatter(logging.Formatter):
    def __init__(self, fmt: str = TEXT_FORMAT) -> None:
        super().__init__(fmt)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        known = lifecycle_fields(record)
        if not known:
            return text
        head, newline, rest = text.partition("\n")  # a traceback stays below the line
        tag = " ".join(f"{name}={value}" for name, value in known.items())
        return f"{head} [{tag}]{newline}{rest}"


def formatter(log_format: str) -> logging.Formatter:
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r} is not one of: {', '.join(FORMATS)}")
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(log_format: str = "text", level: int = logging.WARNING,
                      stream: TextIO | None = None) -> logging.Handler | None:
    """Like logging.basicConfig: one handler on the root logger, unless another one is
    already there (an embedding application's, pytest's) — then nothing changes. A handler
    this function installed before is replaced."""
    root = logging.getLogger()
    ours = [h for h in root.handlers if getattr(h, "_handoff", False)]
    for handler in ours:
        root.removeHandler(handler)
        handler.close()
    if root.handlers:
        return None
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(LifecycleFilter())
    handler._handoff = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    return handler
