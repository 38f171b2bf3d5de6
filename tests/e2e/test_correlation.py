"""One deal, one correlation id: in the intake's answer, in every JSON log line about the deal,
in every request the twins received for it (as the trace id of its `traceparent`), in its
lineage — and, with tracing on, in every OpenTelemetry span."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from handoff.api import create_app
from handoff.bootstrap import build_worker
from handoff.config import PollSettings, Settings, WorkerSettings
from handoff.connectors.twin_process import TwinProcess
from handoff.demo.scenario import Deal, Fate, cloud_event, seed_crm
from handoff.engine.payloads import CUSTOMER_CHANGED, OPPORTUNITY_CHANGED
from handoff.engine.retry import RetryPolicy
from handoff.flows.trace import trace
from handoff.observability import (
    JsonFormatter,
    LifecycleFilter,
    configure_tracing,
    is_trace_id,
    parse_traceparent,
)
from handoff.store.db import Database
from tests.e2e.harness import connect

SETTINGS = Settings(worker=WorkerSettings(concurrency=4),
                    retry=RetryPolicy(base_seconds=0.05, cap_seconds=1, max_attempts=10),
                    poll=PollSettings(crm_minutes=0, erp_minutes=0))  # no calls outside the deal


@pytest.fixture
def json_log_lines() -> Iterator[io.StringIO]:
    """handoff's log lines at INFO, as the JSON formatter writes them."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(LifecycleFilter())
    logger = logging.getLogger("handoff")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture(params=["tracing off", "tracing on"])
def spans(request: pytest.FixtureRequest) -> Iterator[Any]:
    """None with tracing off; with it on, the finished spans (an in-memory exporter)."""
    if request.param == "tracing off":
        configure_tracing("none")
        yield None
        return
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    configure_tracing("none", span_exporter=exporter)
    try:
        yield exporter
    finally:
        configure_tracing("none")


def received(twin: TwinProcess) -> list[dict[str, Any]]:
    with twin.control() as control:
        return control.get("/_twin/requests").json()


def forget_requests(*twins: TwinProcess) -> None:
    for twin in twins:
        with twin.control() as control:
            control.delete("/_twin/requests").raise_for_status()


def post_events(db: Database, events: list[dict[str, Any]]) -> list[httpx.Response]:
    async def post_all() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=create_app(db))
        async with httpx.AsyncClient(transport=transport, base_url="http://handoff") as client:
            return [await client.post("/events", content=json.dumps(event).encode(),
                                      headers={"content-type": "application/cloudevents+json"})
                    for event in events]

    return asyncio.run(post_all())


def work_until_idle(db: Database, crm: Any, erp: Any, timeout: float = 60) -> None:
    worker = build_worker(SETTINGS, db, crm, erp)
    stop = threading.Event()
    working = threading.Thread(target=worker.run, args=(stop, True))
    working.start()
    working.join(timeout)
    idle = not working.is_alive()
    stop.set()
    working.join()
    assert idle, f"the worker was not idle after {timeout:.0f} s"


@pytest.mark.slow
def test_one_deal_carries_one_correlation_id_everywhere(db, salesforce_twin, netsuite_twin,
                                                        json_log_lines, spans) -> None:
    crm, erp = connect(salesforce_twin, netsuite_twin)
    since = datetime.now(UTC) - timedelta(hours=1)
    seed_crm(crm, [Deal(1, Fate.CLEAN)], random.Random(3))
    [customer], [opportunity] = list(crm.changed_accounts(since)), list(crm.changed_opportunities(since))
    deal = opportunity["id"]
    forget_requests(salesforce_twin, netsuite_twin)  # seeding was not the deal's lifecycle

    sale = cloud_event(OPPORTUNITY_CHANGED, opportunity)
    answers = post_events(db, [cloud_event(CUSTOMER_CHANGED, customer), sale, sale])
    assert [a.status_code for a in answers] == [202, 202, 200]  # the last one a redelivery
    correlation = answers[1].json()["correlation_id"]
    assert is_trace_id(correlation)
    assert answers[2].json()["correlation_id"] == correlation
    assert answers[0].json()["correlation_id"] is None  # an account is no deal's lifecycle

    work_until_idle(db, crm, erp)
    lineage = trace(db, deal)
    assert lineage is not None and lineage["correlation_id"] == correlation
    assert lineage["status"] == "provisioned" and not lineage["exceptions"]
    assert {hop["correlation_id"] for hop in lineage["hops"]} == {correlation}
    assert trace(db, correlation)["opportunity_id"] == deal  # type: ignore[index]

    # every log line about the deal names its lifecycle, and nothing else
    lines = [json.loads(line) for line in json_log_lines.getvalue().splitlines()]
    about = [line for line in lines if line.get("opportunity_id") == deal or deal in line["message"]]
    assert {line["correlation_id"] for line in about} == {correlation}
    assert all(line["opportunity_id"] == deal for line in about)
    loggers = {line["logger"] for line in about}
    assert {"handoff.intake", "handoff.worker", "handoff.provisioning", "handoff.write_back"} <= loggers
    assert any(line["message"] == f"opportunity:{deal} reconciled (attempt 1)" for line in about)

    # every request either twin received for it carries it as the traceparent's trace id
    erp_calls, crm_calls = received(netsuite_twin), received(salesforce_twin)
    assert any(r["method"] == "PUT" and "/job/eid:" in r["path"] for r in erp_calls)
    assert any(r["method"] == "PATCH" and r["path"].endswith("/composite/sobjects") for r in crm_calls)
    for request in erp_calls + crm_calls:
        sent = parse_traceparent(request["traceparent"])
        assert sent is not None, request
        assert sent.trace_id == correlation, request
        assert request["correlation_id"] == correlation, request
    parents = [parse_traceparent(r["traceparent"]).parent_id for r in erp_calls + crm_calls]  # type: ignore[union-attr]
    assert len(set(parents)) == len(parents)  # a fresh span id per call

    if spans is not None:  # with tracing on: the deal's spans are one trace, and name the calls
        finished = spans.get_finished_spans()
        mine = [s for s in finished if s.attributes.get("handoff.opportunity_id") == deal]
        assert {f"{s.context.trace_id:032x}" for s in mine} == {correlation}
        names = {s.name for s in mine}
        assert {"intake", "reconcile opportunity", "upsert_customer", "upsert_project",
                "reconcile crm", "write_back", "PUT", "PATCH"} <= names
        client_spans = {f"{s.context.span_id:016x}" for s in mine if s.kind.name == "CLIENT"}
        assert set(parents) <= client_spans  # each traceparent names the call's own span
    crm.close()
    erp.close()


@pytest.mark.slow
def test_several_deals_each_named_on_every_call_made_for_them(db, salesforce_twin,
                                                              netsuite_twin) -> None:
    """As in the demo: several deals at once, so the CRM write-back goes out in batches; a
    batch call names every deal it carries in X-Correlation-Id, a single deal's call names
    its own, and every call either twin received names only the deals' correlation ids."""
    configure_tracing("none")
    crm, erp = connect(salesforce_twin, netsuite_twin)
    since = datetime.now(UTC) - timedelta(hours=1)
    seed_crm(crm, [Deal(n, Fate.CLEAN) for n in range(1, 6)], random.Random(5))
    customers, deals = list(crm.changed_accounts(since)), list(crm.changed_opportunities(since))
    forget_requests(salesforce_twin, netsuite_twin)
    answers = post_events(db, [cloud_event(CUSTOMER_CHANGED, c) for c in customers]
                          + [cloud_event(OPPORTUNITY_CHANGED, d) for d in deals])
    correlations = {a.json()["subject"]: a.json()["correlation_id"] for a in answers[len(customers):]}
    work_until_idle(db, crm, erp)
    named: dict[str, set[str]] = {"netsuite": set(), "salesforce": set()}
    for system, twin in (("netsuite", netsuite_twin), ("salesforce", salesforce_twin)):
        for request in received(twin):
            listed = set(filter(None, (request["correlation_id"] or "").split(",")))
            assert listed and listed <= set(correlations.values()), request
            sent = parse_traceparent(request["traceparent"])
            assert sent is not None and (len(listed) > 1 or sent.trace_id in listed), request
            named[system] |= listed
    assert named["netsuite"] == named["salesforce"] == set(correlations.values())
    crm.close()
    erp.close()
