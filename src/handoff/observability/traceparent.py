"""W3C Trace Context `traceparent`: `00-<trace-id>-<parent-id>-<flags>`.

handoff's correlation id is the trace id: 32 lowercase hex digits, so a deal's lifecycle is one
trace in any tracing backend, and a system that logs the header names the deal. Each outbound
call gets a fresh parent (span) id.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from handoff.observability.context import current_correlation_id

_HEADER = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_TRACE_ID = re.compile(r"[0-9a-f]{32}")
INVALID_TRACE_ID = "0" * 32
INVALID_SPAN_ID = "0" * 16


@dataclass(frozen=True, slots=True)
class TraceParent:
    trace_id: str
    parent_id: str
    flags: str = "01"
    version: str = "00"

    @property
    def sampled(self) -> bool:
        return bool(int(self.flags, 16) & 1)

    def __str__(self) -> str:
        return f"{self.version}-{self.trace_id}-{self.parent_id}-{self.flags}"


def is_trace_id(value: str | None) -> bool:
    """32 lowercase hex digits, not all zero: a valid W3C trace id (and correlation id)."""
    return value is not None and value != INVALID_TRACE_ID and _TRACE_ID.fullmatch(value) is not None


def new_trace_id() -> str:
    while True:
        value = random.getrandbits(128)
        if value:
            return f"{value:032x}"


def new_span_id() -> str:
    while True:
        value = random.getrandbits(64)
        if value:
            return f"{value:016x}"


def traceparent(span_id: str | None = None, trace_id: str | None = None) -> str:
    """The header for one outbound call: the current lifecycle's correlation id as trace id
    (a fresh trace id outside any lifecycle, or when the id is not a valid trace id), and a
    fresh span id unless one is given."""
    trace_id = trace_id or current_correlation_id()
    if not is_trace_id(trace_id):
        trace_id = new_trace_id()
    return f"00-{trace_id}-{span_id or new_span_id()}-01"


def parse_traceparent(value: str | None) -> TraceParent | None:
    """The header's parts, or None when it is not a valid traceparent (version ff, an all-zero
    id, upper case, or — for version 00 — anything after the flags)."""
    match = _HEADER.fullmatch((value or "").strip())
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == INVALID_TRACE_ID or parent_id == INVALID_SPAN_ID:
        return None
    return TraceParent(trace_id, parent_id, flags, version)


def trace_id_of(value: str | None) -> str | None:
    parsed = parse_traceparent(value)
    return parsed.trace_id if parsed else None
