"""OpenTelemetry spans whose trace id is the deal's correlation id.

Off by default (`[tracing] exporter = "none"`): no SDK is set up, `span()` costs nothing and
outbound calls still carry a `traceparent` with the correlation id. `console` writes each
finished span as one JSON line to standard error; `otlp` sends them in batches over
OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; the other
standard OTEL_* variables apply too).

A span started within a lifecycle whose trace is not already the current one is a root span,
and its trace id comes from `CorrelationIdGenerator`: the correlation id. Spans: one per key
the worker works ("reconcile opportunity:" …), per controller step (an ERP write, an invoice,
a write-back), per outbound HTTP call (a CLIENT span, its id the call's traceparent parent
id), and one per accepted event ("intake").
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from handoff.observability.context import Lifecycle, current
from handoff.observability.traceparent import is_trace_id, new_span_id, traceparent

EXPORTERS = ("none", "console", "otlp")
CORRELATION_HEADER = "X-Correlation-Id"
AttributeValue = str | bool | int | float | Sequence[str]

_tracer: Any = None    # opentelemetry.trace.Tracer once tracing is on; OTel is imported then
_provider: Any = None  # the SDK TracerProvider handoff set up, if any
_lock = threading.Lock()


class _NoSpan:
    """What `span()` gives while tracing is off: takes attributes and events, keeps none."""

    def set_attribute(self, key: str, value: object) -> None: ...
    def set_attributes(self, attributes: Mapping[str, object]) -> None: ...
    def add_event(self, name: str, attributes: Mapping[str, object] | None = None) -> None: ...
    def is_recording(self) -> bool:
        return False


NO_SPAN = _NoSpan()


def _correlation_int(life: Lifecycle | None) -> int | None:
    if life is None or not is_trace_id(life.correlation_id):
        return None
    return int(life.correlation_id, 16)  # type: ignore[arg-type]


def configure_tracing(exporter: str = "none", service_name: str = "handoff",
                      span_exporter: Any = None) -> Any:
    """Set up (or, with "none", tear down) handoff's tracer. `span_exporter` replaces the
    named exporter (tests pass an in-memory one) and is given each span as it ends. Returns
    the SDK TracerProvider, or None."""
    global _tracer, _provider
    if exporter not in EXPORTERS:
        raise ValueError(f"tracing exporter {exporter!r} is not one of: {', '.join(EXPORTERS)}")
    with _lock:
        if _provider is not None:
            _provider.shutdown()
        _tracer = _provider = None
        if exporter == "none" and span_exporter is None:
            return None
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": service_name}),
                                  id_generator=correlation_id_generator(), shutdown_on_exit=True)
        if span_exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(span_exporter))
        elif exporter == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            console = ConsoleSpanExporter(out=sys.stderr,
                                          formatter=lambda s: s.to_json(indent=None) + "\n")
            provider.add_span_processor(SimpleSpanProcessor(console))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        _provider, _tracer = provider, provider.get_tracer("handoff")
        return provider


def correlation_id_generator() -> Any:
    """An OTel IdGenerator whose root spans take the current lifecycle's correlation id as
    their trace id (random outside a lifecycle); span ids are random."""
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class CorrelationIdGenerator(RandomIdGenerator):
        def generate_trace_id(self) -> int:
            return _correlation_int(current()) or super().generate_trace_id()

        def is_trace_id_random(self) -> bool:
            return False  # a correlation id may come from a CRM's traceparent

    return CorrelationIdGenerator()


def tracing_enabled() -> bool:
    return _tracer is not None


def lifecycle_attributes(life: Lifecycle | None) -> dict[str, str]:
    return {f"handoff.{k}": v for k, v in life.fields().items()} if life else {}


class _NoSpanBlock:
    """The block `span()` opens while tracing is off: nothing to start, nothing to end."""

    __slots__ = ()

    def __enter__(self) -> _NoSpan:
        return NO_SPAN

    def __exit__(self, *exc: object) -> None:
        return None


NO_SPAN_BLOCK = _NoSpanBlock()


def span(name: str, attributes: Mapping[str, AttributeValue] | None = None, *,
         kind: str = "internal", links: Sequence[str] = (),
         start_time: int | None = None) -> AbstractContextManager[Any]:
    """A span for one step, current while the block runs; an exception leaving the block is
    recorded on it. Within a lifecycle it belongs to the lifecycle's trace (a new root span
    when the current span is another trace's). `kind`: internal, client, server, producer or
    consumer; `links`: correlation ids of other deals' traces this span serves too. While
    tracing is off it is one shared do-nothing block: no generator, no context switch."""
    tracer = _tracer
    if tracer is None:
        return NO_SPAN_BLOCK
    return _span(tracer, name, attributes, kind, links, start_time)


@contextmanager
def _span(tracer: Any, name: str, attributes: Mapping[str, AttributeValue] | None, kind: str,
          links: Sequence[str], start_time: int | None) -> Iterator[Any]:
    from opentelemetry import context as otel_context
    from opentelemetry import trace as otel_trace

    life = current()
    trace_id, parent = _correlation_int(life), None
    if trace_id is not None:
        active = otel_trace.get_current_span().get_span_context()
        if not (active.is_valid and active.trace_id == trace_id):
            parent = otel_context.Context()  # empty: a root span, its trace id from the generator
    with tracer.start_as_current_span(name, context=parent, kind=otel_trace.SpanKind[kind.upper()],
                                      links=_links(links),
                                      attributes={**lifecycle_attributes(life), **(attributes or {})},
                                      start_time=start_time) as started:
        yield started


def _links(correlation_ids: Sequence[str]) -> list[Any]:
    """Links to each deal's trace, from a span that serves many (a batched write-back)."""
    from opentelemetry import trace as otel_trace

    sampled = otel_trace.TraceFlags(otel_trace.TraceFlags.SAMPLED)
    return [otel_trace.Link(otel_trace.SpanContext(int(cid, 16), int(new_span_id(), 16), is_remote=True,
                                                   trace_flags=sampled),
                            {"handoff.correlation_id": cid})
            for cid in dict.fromkeys(correlation_ids) if is_trace_id(cid)]


class outbound:  # noqa: N801 - used like a function: `with outbound(method, url) as headers:`
    """The headers one outbound call adds: `traceparent` (trace id = the correlation id, a
    fresh span id) and, within a lifecycle, X-Correlation-Id. With tracing on the call is a
    CLIENT span, and the traceparent names it. A class, not a generator: it is on every
    call's path."""

    __slots__ = ("method", "url", "_span")

    def __init__(self, method: str, url: str) -> None:
        self.method, self.url, self._span = method, url, None

    def __enter__(self) -> dict[str, str]:
        life = current()
        headers = {CORRELATION_HEADER: life.correlation_id} if life and life.correlation_id else {}
        if life and life.batch:
            headers[CORRELATION_HEADER] = ",".join(life.batch)
        if _tracer is None:
            headers["traceparent"] = traceparent()
            return headers
        self._span = span(self.method, {"http.request.method": self.method, "url.full": self.url},
                          kind="client")
        context = self._span.__enter__().get_span_context()
        headers["traceparent"] = traceparent(f"{context.span_id:016x}", f"{context.trace_id:032x}")
        return headers

    def __exit__(self, *exc: Any) -> None:
        if self._span is not None:
            opened, self._span = self._span, None
            opened.__exit__(*exc)


def record_status(status: int) -> None:
    """The HTTP status of the outbound call in progress, on its span."""
    if _tracer is not None:
        from opentelemetry import trace as otel_trace

        otel_trace.get_current_span().set_attribute("http.response.status_code", status)
