"""Workers killed with SIGKILL mid-run, as real processes: another worker finishes the job,
and the systems hold exactly what they would without the crash."""

import random
from pathlib import Path

import pytest

from handoff.demo.processes import HandoffProcess
from handoff.demo.run import SECRETS, write_config
from handoff.engine.clock import utcnow
from handoff.engine.inbox import accept
from handoff.store import open_database
from tests.e2e.harness import (
    assert_exactly_once,
    connect,
    provisioned,
    set_faults,
    wait_until,
    won_deals_as_events,
)

DEALS = 200


@pytest.fixture
def worker_env(database_url: str, salesforce_twin, netsuite_twin, tmp_path: Path) -> dict[str, str]:
    """200 deals waiting in the queue, and the environment of a `handoff worker`."""
    crm, erp = connect(salesforce_twin, netsuite_twin)
    db = open_database(database_url)
    for body in won_deals_as_events(crm, DEALS, random.Random(11), copies=2):
        accept(db, body, utcnow())
    db.dispose()
    crm.close()
    erp.close()
    set_faults(netsuite_twin, {"lose_response_rate": 0.05, "unavailable_rate": 0.05, "seed": 9})
    config = write_config(tmp_path, database_url, salesforce_twin, netsuite_twin, lease_seconds=2)
    return {**SECRETS, "HANDOFF_CONFIG": str(config), "HANDOFF_DATABASE_URL": database_url}


def finish(worker: HandoffProcess) -> None:
    assert worker.process is not None
    assert worker.process.wait(timeout=180) == 0


@pytest.mark.slow
def test_a_killed_worker_is_taken_over(database_url, worker_env, salesforce_twin,
                                       netsuite_twin) -> None:
    db = open_database(database_url)
    with HandoffProcess(["worker"], worker_env) as first:
        wait_until(lambda: len(provisioned(db)) >= DEALS // 4, 120, "a quarter provisioned")
        first.kill()
    assert len(provisioned(db)) < DEALS, "the kill came too late to prove anything"
    with HandoffProcess(["worker", "--until-idle"], worker_env) as second:
        finish(second)
    assert_exactly_once(db, salesforce_twin, netsuite_twin, DEALS)
    db.dispose()


@pytest.mark.slow
def test_two_workers_at_once_one_killed(database_url, worker_env, salesforce_twin,
                                        netsuite_twin) -> None:
    db = open_database(database_url)
    with HandoffProcess(["worker", "--until-idle"], worker_env) as survivor, \
            HandoffProcess(["worker"], worker_env) as victim:
        wait_until(lambda: len(provisioned(db)) >= DEALS // 4, 120, "a quarter provisioned")
        victim.kill()
        assert len(provisioned(db)) < DEALS, "the kill came too late to prove anything"
        finish(survivor)
    assert_exactly_once(db, salesforce_twin, netsuite_twin, DEALS)
    db.dispose()


@pytest.mark.slow
@pytest.mark.postgres
def test_four_workers_on_postgresql_one_killed_mid_run(postgres_url, salesforce_twin, netsuite_twin,
                                                         tmp_path: Path) -> None:
    """Scale-out as it runs: four worker processes share one PostgreSQL; one is SIGKILLed while
    the others work, its leases run out, and every deal is provisioned exactly once."""
    from contextlib import ExitStack

    from tests.conftest import _empty_postgres

    deals = 600
    _empty_postgres(postgres_url).dispose()
    crm, erp = connect(salesforce_twin, netsuite_twin)
    db = open_database(postgres_url)
    for body in won_deals_as_events(crm, deals, random.Random(13), copies=2):
        accept(db, body, utcnow())
    crm.close()
    erp.close()
    set_faults(netsuite_twin, {"lose_response_rate": 0.05, "unavailable_rate": 0.05, "seed": 10})
    config = write_config(tmp_path, postgres_url, salesforce_twin, netsuite_twin, lease_seconds=2)
    env = {**SECRETS, "HANDOFF_CONFIG": str(config), "HANDOFF_DATABASE_URL": postgres_url}
    with ExitStack() as stack:
        survivors = [stack.enter_context(HandoffProcess(["worker", "--until-idle"], env)) for _ in range(3)]
        victim = stack.enter_context(HandoffProcess(["worker"], env))
        wait_until(lambda: len(provisioned(db)) >= deals // 8, 120, "an eighth provisioned")
        victim.kill()
        assert len(provisioned(db)) < deals, "the kill came too late to prove anything"
        for survivor in survivors:
            finish(survivor)
    assert_exactly_once(db, salesforce_twin, netsuite_twin, deals)
    db.dispose()
