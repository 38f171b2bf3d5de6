"""NetSuite's concurrency governance: the twin refuses requests over its cap as NetSuite
does, and the connector's adaptive limiter keeps within the configured budget."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from handoff.connectors.netsuite import NetSuiteConnector, NetSuiteSettings
from handoff.connectors.twin_process import TwinProcess
from tests.conftest import reset_twin
from tests.connectors.netsuite_support import RECORD_PATH, TOKEN, a_customer, set_twin_settings


@pytest.fixture
def twin(netsuite_twin: TwinProcess) -> Iterator[TwinProcess]:
    reset_twin(netsuite_twin)
    yield netsuite_twin
    reset_twin(netsuite_twin)


def concurrency(twin: TwinProcess) -> dict[str, Any]:
    with twin.control() as control:
        return control.get("/_twin/concurrency").raise_for_status().json()


def upserts_at_once(twin: TwinProcess, count: int) -> list[httpx.Response]:
    """`count` customer upserts sent together, one connection each."""
    def upsert(n: int) -> httpx.Response:
        with httpx.Client(base_url=f"{twin.base_url}{RECORD_PATH}/", timeout=10,
                          headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            return client.put(f"customer/eid:C-{n}", json={"companyName": f"Acme {n}"})

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(upsert, range(count)))


def test_the_twin_refuses_requests_over_its_concurrency_as_netsuite_does(twin: TwinProcess) -> None:
    set_twin_settings(twin, max_concurrency=2, hold_ms=400)
    answers = upserts_at_once(twin, 4)
    refused = [a for a in answers if a.status_code == 429]
    assert len(refused) == 2 and sorted(a.status_code for a in answers) == [204, 204, 429, 429]
    detail = refused[0].json()["o:errorDetails"][0]
    assert detail == {"detail": "Concurrent request limit exceeded. Request blocked.",
                      "o:errorCode": "CONCURRENCY_LIMIT_EXCEEDED"}
    assert "Retry-After" not in refused[0].headers  # NetSuite documents none
    assert concurrency(twin) | {"busy_seconds": 0} == {
        "in_flight": 0, "peak_in_flight": 2, "refused": 2, "busy_seconds": 0}


def test_without_a_cap_nothing_is_refused_and_400_can_play_the_other_status(twin: TwinProcess) -> None:
    set_twin_settings(twin, hold_ms=100)
    assert {a.status_code for a in upserts_at_once(twin, 6)} == {204}
    set_twin_settings(twin, max_concurrency=1, concurrency_status=400)
    statuses = sorted(a.status_code for a in upserts_at_once(twin, 3))
    assert statuses == [204, 400, 400]


def test_bad_twin_settings_are_refused(twin: TwinProcess) -> None:
    with twin.control() as control:
        for body in ({"max_concurrency": 0}, {"concurrency_status": 503}, {"hold": 5}, [1]):
            assert control.put("/_twin/settings", json=body).status_code == 400
        assert control.get("/_twin/settings").json()["max_concurrency"] is None


def test_the_connector_keeps_within_its_configured_concurrency(twin: TwinProcess) -> None:
    set_twin_settings(twin, max_concurrency=3, hold_ms=20)
    settings = NetSuiteSettings(f"{twin.base_url}/services/rest", TOKEN, budget={"concurrency": 3})
    with NetSuiteConnector(settings) as erp, ThreadPoolExecutor(12) as pool:
        assert erp.budget.concurrency == 3 and erp.budget.source.startswith("configured: concurrency = 3")
        list(pool.map(lambda n: erp.upsert_customer(f"HO-C-{n}", a_customer()), range(48)))
    counts = concurrency(twin)
    assert counts["refused"] == 0 and counts["peak_in_flight"] == 3
