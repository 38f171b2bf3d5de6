"""500 won deals, each delivered three times, shuffled, with stale versions, against an
ERP twin that answers 20% of calls with 429/503 and loses 5% of responses after committing:
exactly one customer and one project per deal, and every CRM deal shows its project."""

import random
import threading

import pytest

from handoff.bootstrap import build_worker
from handoff.config import Settings, WorkerSettings
from handoff.engine.clock import utcnow
from handoff.engine.inbox import accept
from handoff.engine.retry import RetryPolicy
from tests.e2e.harness import (
    ERP_FAULTS,
    assert_exactly_once,
    connect,
    queue_depth,
    set_faults,
    wait_until,
    won_deals_as_events,
)

SETTINGS = Settings(worker=WorkerSettings(concurrency=8),
                    retry=RetryPolicy(base_seconds=0.05, cap_seconds=2, max_attempts=15))


@pytest.mark.slow
def test_500_deals_redelivered_against_a_faulty_erp(db, salesforce_twin, netsuite_twin) -> None:
    crm, erp = connect(salesforce_twin, netsuite_twin)
    events = won_deals_as_events(crm, 500, random.Random(42))
    set_faults(netsuite_twin, ERP_FAULTS)
    worker = build_worker(SETTINGS, db, crm, erp)
    stop = threading.Event()
    working = threading.Thread(target=worker.run, args=(stop,))
    working.start()
    try:
        for body in events:  # intake runs while the worker reconciles
            accept(db, body, utcnow())
        wait_until(lambda: queue_depth(db) == 0, 240, "the queue to drain")
    finally:
        stop.set()
        working.join()
    with netsuite_twin.control() as control:
        faults = control.get("/_twin/stats").json()
    assert faults["throttle"] and faults["unavailable"] and faults["lose_response"]
    assert_exactly_once(db, salesforce_twin, netsuite_twin, 500)
    crm.close()
    erp.close()
