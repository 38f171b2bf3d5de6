"""One correlation id per deal lifecycle, everywhere: the W3C `traceparent` of every outbound
call (its trace id is the correlation id), every log line written while the deal is worked
on, and every OpenTelemetry span.

    with lifecycle(correlation_id, opportunity_id):   # intake and the worker do this
        log.info("…")                                 # carries both ids
        with span("upsert_project"):                  # an OTel span in the deal's trace
            with outbound("PUT", url) as headers:     # traceparent, X-Correlation-Id
                ...

`configure(log_format, level, exporter)` sets logging and tracing up for a process
(`handoff` does it from `[logging]` and `[tracing]`).
"""

from __future__ import annotations

import logging

from handoff.observability.context import Lifecycle, current, current_correlation_id, lifecycle
from handoff.observability.logs import (
    FORMATS,
    JsonFormatter,
    LifecycleFilter,
    TextFormatter,
    configure_logging,
)
from handoff.observability.traceparent import (
    TraceParent,
    is_trace_id,
    new_span_id,
    new_trace_id,
    parse_traceparent,
    trace_id_of,
    traceparent,
)
from handoff.observability.tracing import (
    CORRELATION_HEADER,
    EXPORTERS,
    configure_tracing,
    outbound,
    record_status,
    span,
    tracing_enabled,
)

__all__ = [
    "CORRELATION_HEADER", "EXPORTERS", "FORMATS", "JsonFormatter", "Lifecycle", "LifecycleFilter",
    "TextFormatter", "TraceParent", "configure", "configure_logging", "configure_tracing", "current",
    "current_correlation_id", "is_trace_id", "lifecycle", "new_span_id", "new_trace_id", "outbound",
    "parse_traceparent", "record_status", "span", "trace_id_of", "traceparent", "tracing_enabled",
]


def configure(log_format: str = "text", level: int = logging.WARNING, exporter: str = "none",
              service_name: str = "handoff") -> None:
    configure_logging(log_format, level)
    configure_tracing(exporter, service_name)
