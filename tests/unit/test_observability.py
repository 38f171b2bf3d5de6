"""The correlation id as W3C trace id, the lifecycle context, JSON log lines, OTel spans."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from handoff.config import load_settings
from handoff.engine.cloudevents import parse_event
from handoff.engine.keys import deal_of
from handoff.errors import ConfigError
from handoff.observability import (
    CORRELATION_HEADER,
    JsonFormatter,
    LifecycleFilter,
    TextFormatter,
    configure_tracing,
    current,
    is_trace_id,
    lifecycle,
    outbound,
    parse_traceparent,
    span,
    trace_id_of,
    traceparent,
)
from handoff.observability.logs import configure_logging

CORRELATION = "4bf92f3577b34da6a3ce929d0e0e4736"


# --- traceparent ---------------------------------------------------------------------------

def test_traceparent_carries_the_correlation_id_and_a_fresh_span_id_per_call() -> None:
    with lifecycle(CORRELATION, "006A"):
        first, second = traceparent(), traceparent()
    for header in (first, second):
        parsed = parse_traceparent(header)
        assert parsed is not None and parsed.trace_id == CORRELATION
        assert parsed.version == "00" and parsed.sampled
        assert len(parsed.parent_id) == 16 and parsed.parent_id != "0" * 16
    assert parse_traceparent(first).parent_id != parse_traceparent(second).parent_id  # type: ignore[union-attr]


def test_traceparent_outside_a_lifecycle_starts_a_trace_of_its_own() -> None:
    assert current() is None
    first, second = parse_traceparent(traceparent()), parse_traceparent(traceparent())
    assert first and second and first.trace_id != second.trace_id


def test_an_invalid_correlation_id_is_never_sent_as_a_trace_id() -> None:
    with lifecycle("not-a-trace-id", "006A"):
        parsed = parse_traceparent(traceparent())
    assert parsed is not None and parsed.trace_id != "not-a-trace-id"


@pytest.mark.parametrize("header", [
    f"00-{CORRELATION}-00f067aa0ba902b7-01",
    f"00-{CORRELATION}-00f067aa0ba902b7-00",
    f"01-{CORRELATION}-00f067aa0ba902b7-01-future-fields",  # a later version may add fields
    f"  00-{CORRELATION}-00f067aa0ba902b7-01 ",
])
def test_valid_traceparents_parse(header: str) -> None:
    parsed = parse_traceparent(header)
    assert parsed is not None and parsed.trace_id == CORRELATION
    assert parsed.parent_id == "00f067aa0ba902b7"
    assert str(parsed) == header.strip()[:55]


@pytest.mark.parametrize("header", [
    None, "", "garbage",
    f"00-{'0' * 32}-00f067aa0ba902b7-01",           # all-zero trace id
    f"00-{CORRELATION}-{'0' * 16}-01",              # all-zero parent id
    f"ff-{CORRELATION}-00f067aa0ba902b7-01",        # version ff is invalid
    f"00-{CORRELATION.upper()}-00f067aa0ba902b7-01",  # upper case
    f"00-{CORRELATION}-00f067aa0ba902b7-01-extra",  # version 00 has exactly four fields
    f"00-{CORRELATION[:-1]}-00f067aa0ba902b7-01",   # short trace id
])
def test_invalid_traceparents_do_not_parse(header: str | None) -> None:
    assert parse_traceparent(header) is None
    assert trace_id_of(header) is None


def test_trace_ids() -> None:
    assert is_trace_id(CORRELATION)
    assert not is_trace_id(None) and not is_trace_id("0" * 32) and not is_trace_id(CORRELATION[1:])


def test_a_cloudevent_traceparent_becomes_the_new_deals_correlation_id() -> None:
    body = {"specversion": "1.0", "id": "e1", "source": "crm", "type": "t", "data": {},
            "traceparent": f"00-{CORRELATION}-00f067aa0ba902b7-01"}
    assert parse_event(body).trace_id == CORRELATION
    assert parse_event({**body, "traceparent": f"00-{'0' * 32}-00f067aa0ba902b7-01"}).trace_id is None
    assert parse_event({**body, "traceparent": 42}).trace_id is None


def test_outbound_headers_name_the_deal() -> None:
    with lifecycle(CORRELATION, "006A"), outbound("GET", "https://crm.example/x") as headers:
        assert headers[CORRELATION_HEADER] == CORRELATION
        assert trace_id_of(headers["traceparent"]) == CORRELATION
    with outbound("GET", "https://crm.example/x") as headers:
        assert CORRELATION_HEADER not in headers and trace_id_of(headers["traceparent"])


# --- the lifecycle context -----------------------------------------------------------------

def test_lifecycles_nest_and_come_back() -> None:
    with lifecycle(CORRELATION, "006A") as outer:
        assert current() == outer
        with lifecycle("b" * 32, "006B"):
            assert current().opportunity_id == "006B"  # type: ignore[union-attr]
        assert current() == outer
    assert current() is None


def test_a_lifecycle_is_per_thread() -> None:
    seen: list[object] = []
    with lifecycle(CORRELATION, "006A"):
        other = threading.Thread(target=lambda: seen.append(current()))
        other.start()
        other.join()
    assert seen == [None]


def test_deal_keys_name_their_opportunity() -> None:
    assert deal_of("opportunity:006A") == "006A"
    assert deal_of("crm:006A") == "006A" and deal_of("billing:006A") == "006A"
    assert deal_of("bench:1") is None and deal_of("opportunity") is None


# --- log lines -----------------------------------------------------------------------------

@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON lines to a buffer, through the filter that stamps lifecycles."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LifecycleFilter())
    logger = logging.getLogger("handoff.test.observability")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, out
    logger.removeHandler(handler)


def lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_json_line_names_the_deal_and_keeps_extra_fields(json_log) -> None:
    logger, out = json_log
    with lifecycle(CORRELATION, "006A"):
        logger.info("upsert_project in %s: %s", "netsuite", "1234",
                    extra={"system": "netsuite", "attempt": 2, "amount": Decimal("1.50")})
    [line] = lines(out)
    assert line["message"] == "upsert_project in netsuite: 1234"
    assert line["level"] == "INFO" and line["logger"] == "handoff.test.observability"
    assert line["correlation_id"] == CORRELATION and line["opportunity_id"] == "006A"
    assert line["system"] == "netsuite" and line["attempt"] == 2 and line["amount"] == "1.50"
    assert str(line["time"]).endswith("Z") and "T" in str(line["time"])
    assert "thread" in line and "exception" not in line


def test_a_json_line_outside_a_lifecycle_names_no_deal(json_log) -> None:
    logger, out = json_log
    logger.warning("no deal here")
    [line] = lines(out)
    assert "correlation_id" not in line and "opportunity_id" not in line
    assert line["level"] == "WARNING"


def test_ids_given_as_extras_win_over_the_lifecycle(json_log) -> None:
    logger, out = json_log
    with lifecycle(CORRELATION, "006A"):
        logger.info("another deal", extra={"opportunity_id": "006B", "correlation_id": "c" * 32})
    [line] = lines(out)
    assert line["opportunity_id"] == "006B" and line["correlation_id"] == "c" * 32


def test_a_json_line_keeps_the_traceback_on_one_line(json_log) -> None:
    logger, out = json_log
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed")
    [line] = lines(out)
    assert "ValueError: boom" in str(line["exception"])
    assert len(out.getvalue().splitlines()) == 1


def test_records_kept_for_later_are_stamped_where_they_were_logged() -> None:
    """A record formatted after its lifecycle ended (a queue, pytest's caplog) still names it."""
    kept: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = kept.append  # type: ignore[method-assign]
    handler.addFilter(LifecycleFilter())
    logger = logging.getLogger("handoff.test.kept")
    logger.addHandler(handler)
    try:
        with lifecycle(CORRELATION, "006A"):
            logger.warning("later")
    finally:
        logger.removeHandler(handler)
    line = json.loads(JsonFormatter().format(kept[0]))
    assert line["correlation_id"] == CORRELATION and line["opportunity_id"] == "006A"


def test_a_text_line_ends_with_the_ids_when_known() -> None:
    record = logging.LogRecord("handoff.worker", logging.INFO, __file__, 1, "reconciled", (), None)
    with lifecycle(CORRELATION, "006A"):
        text = TextFormatter().format(record)
    assert text.endswith(f"handoff.worker: reconciled [correlation_id={CORRELATION} opportunity_id=006A]")
    assert TextFormatter().format(record).endswith("handoff.worker: reconciled")


def test_configure_logging_installs_one_handler_unless_another_is_there() -> None:
    root = logging.getLogger()
    saved, level = root.handlers[:], root.level
    root.handlers.clear()
    try:
        out = io.StringIO()
        handler = configure_logging("json", logging.INFO, stream=out)
        assert handler is not None and root.handlers == [handler]
        assert configure_logging("json", logging.INFO, stream=out) is not None  # replaces its own
        assert len(root.handlers) == 1
        with lifecycle(CORRELATION, "006A"):
            logging.getLogger("handoff.test").info("hello")
        assert json.loads(out.getvalue())["correlation_id"] == CORRELATION
        root.handlers[:] = [logging.NullHandler()]
        assert configure_logging("json", logging.INFO) is None  # someone else's: left alone
    finally:
        for handler in root.handlers:
            if getattr(handler, "_handoff", False):
                handler.close()
        root.handlers[:] = saved
        root.setLevel(level)


# --- configuration -------------------------------------------------------------------------

def test_logging_and_tracing_are_configured_by_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "handoff.toml"
    path.write_text('[logging]\nformat = "json"\n\n[tracing]\nexporter = "console"\n')
    settings = load_settings(path, env={})
    assert settings.logging.format == "json" and settings.tracing.exporter == "console"
    assert settings.tracing.service_name == "handoff"
    settings = load_settings(path, env={"HANDOFF_LOGGING_FORMAT": "text",
                                        "HANDOFF_TRACING_EXPORTER": "otlp"})
    assert settings.logging.format == "text" and settings.tracing.exporter == "otlp"
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    defaults = load_settings(empty, env={})
    assert defaults.logging.format == "text" and defaults.tracing.exporter == "none"


@pytest.mark.parametrize(("toml", "message"), [
    ('[logging]\nformat = "xml"\n', "[logging] format"),
    ('[tracing]\nexporter = "jaeger"\n', "[tracing] exporter"),
    ('[logging]\nlevel = "debug"\n', "unknown key"),
])
def test_bad_observability_settings_are_refused(tmp_path: Path, toml: str, message: str) -> None:
    path = tmp_path / "handoff.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_settings(path, env={})


# --- spans ---------------------------------------------------------------------------------

@pytest.fixture
def spans() -> Iterator[list]:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    configure_tracing("none", span_exporter=exporter)
    try:
        yield exporter.get_finished_spans  # type: ignore[misc]
    finally:
        configure_tracing("none")


def test_spans_in_a_lifecycle_have_the_correlation_id_as_trace_id(spans) -> None:
    with lifecycle(CORRELATION, "006A"), span("reconcile opportunity", {"handoff.key": "opportunity:006A"}), \
            span("upsert_project"), outbound("PUT", "https://erp.example/job") as headers:
        sent = parse_traceparent(headers["traceparent"])
    finished = {s.name: s for s in spans()}
    assert set(finished) == {"reconcile opportunity", "upsert_project", "PUT"}
    assert {f"{s.context.trace_id:032x}" for s in finished.values()} == {CORRELATION}
    root, step, call = finished["reconcile opportunity"], finished["upsert_project"], finished["PUT"]
    assert root.parent is None and step.parent.span_id == root.context.span_id
    assert call.parent.span_id == step.context.span_id
    assert sent is not None and sent.parent_id == f"{call.context.span_id:016x}"  # the call's span
    assert root.attributes["handoff.correlation_id"] == CORRELATION
    assert root.attributes["handoff.opportunity_id"] == "006A"
    assert call.attributes["url.full"] == "https://erp.example/job"


def test_a_new_lifecycle_inside_another_trace_starts_its_own(spans) -> None:
    with lifecycle(CORRELATION), span("outer"), lifecycle("b" * 32), span("inner"):
        pass
    finished = {s.name: s for s in spans()}
    assert f"{finished['inner'].context.trace_id:032x}" == "b" * 32
    assert finished["inner"].parent is None


def test_a_failed_step_is_recorded_on_its_span(spans) -> None:
    with pytest.raises(RuntimeError), lifecycle(CORRELATION), span("upsert_customer"):
        raise RuntimeError("ERP down")
    [failed] = spans()
    assert not failed.status.is_ok and failed.events[0].name == "exception"


def test_a_batch_span_links_to_every_deal(spans) -> None:
    with span("reconcile crm", links=[CORRELATION, "b" * 32, CORRELATION]):
        pass
    [batch] = spans()
    assert [f"{link.context.trace_id:032x}" for link in batch.links] == [CORRELATION, "b" * 32]


def test_with_tracing_off_spans_cost_nothing_and_headers_still_flow() -> None:
    configure_tracing("none")
    with lifecycle(CORRELATION), span("step") as step, outbound("GET", "https://x") as headers:
        step.set_attribute("handoff.anything", 1)
        assert not step.is_recording()
    assert trace_id_of(headers["traceparent"]) == CORRELATION


def test_unknown_exporters_are_refused() -> None:
    with pytest.raises(ValueError, match="jaeger"):
        configure_tracing("jaeger")
