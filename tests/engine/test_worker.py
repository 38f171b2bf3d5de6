"""Worker + provisioning controller on a real database with in-memory systems."""

import threading
import time

import sqlalchemy as sa

from handoff.bootstrap import build_worker
from handoff.config import Settings
from handoff.connectors.memory import MemoryCrm, MemoryErp
from handoff.domain import ProvisioningStatus
from handoff.engine.clock import utcnow
from handoff.engine.exceptions import open_exceptions, replay
from handoff.engine.inbox import accept
from handoff.engine.retry import RetryPolicy
from handoff.errors import BusinessRuleError, DataError, ThrottledError, TransientError
from handoff.store.sql import read_counters
from handoff.store.tables import hops, provisioning
from tests.factories import customer_data, customer_event, event, opportunity_data

SETTINGS = Settings(retry=RetryPolicy(base_seconds=0.01, cap_seconds=0.05, max_attempts=5))


def run(db, crm, erp) -> None:
    build_worker(SETTINGS, db, crm, erp).run(until_idle=True)


def status(db, opp_id: str) -> tuple[str, str]:
    with db.reading() as conn:
        row = conn.execute(sa.select(provisioning.c.status, provisioning.c.detail)
                           .where(provisioning.c.opportunity_id == opp_id)).one()
    return row.status, row.detail


def deliver(db, opp_id="006A", account_id="001A", **opp) -> None:
    accept(db, customer_event(customer_data(account_id)), utcnow())
    accept(db, event(opportunity_data(opp_id, account_id, **opp)), utcnow())


def test_released_deal_becomes_one_project_and_the_crm_sees_it(db) -> None:
    crm, erp = MemoryCrm(), MemoryErp()
    deliver(db)
    run(db, crm, erp)
    assert len(erp.customers) == len(erp.projects) == 1
    project_id = erp.projects["HO-P-006A"]["id"]
    assert crm.records["006A"].project_id == project_id
    assert crm.records["006A"].status is ProvisioningStatus.PROVISIONED
    calls = erp.calls + crm.calls
    deliver(db, minutes=1)  # a newer version with nothing new to provision
    run(db, crm, erp)
    assert erp.calls + crm.calls == calls


def test_transient_faults_and_lost_responses_are_retried_without_duplicates(db) -> None:
    crm, erp = MemoryCrm(), MemoryErp()
    erp.faults.fail_next([ThrottledError("429", retry_after=0.01), TransientError("503")])
    erp.faults.fail_next([TransientError("response lost")], after_commit=True)
    crm.faults.fail_next([TransientError("timeout")], after_commit=True)
    deliver(db)
    run(db, crm, erp)
    assert len(erp.projects) == 1 and crm.records["006A"].project_id
    assert status(db, "006A")[0] == "provisioned"
    with db.reading() as conn:
        assert read_counters(conn)["retries"] == 4
        failed = conn.execute(sa.select(hops.c.outcome)
                              .where(hops.c.outcome != "ok", hops.c.step != "release")).scalars()
        assert sorted(failed) == ["ThrottledError"] + ["TransientError"] * 3


def test_blocked_deal_is_written_back_then_released_when_the_data_arrives(db) -> None:
    crm, erp = MemoryCrm(), MemoryErp()
    accept(db, event(opportunity_data("006B", "001B", sow_status="pending")), utcnow())
    run(db, crm, erp)
    state, detail = status(db, "006B")
    assert state == "blocked" and "sow_approved" in detail and "customer_validated" in detail
    assert crm.records["006B"].status is ProvisioningStatus.BLOCKED and not erp.projects
    accept(db, customer_event(customer_data("001B")), utcnow())
    run(db, crm, erp)
    assert status(db, "006B")[0] == "blocked" and not erp.projects
    accept(db, event(opportunity_data("006B", "001B", minutes=3)), utcnow())
    run(db, crm, erp)
    assert status(db, "006B")[0] == "provisioned" and len(erp.projects) == 1


def test_business_rule_parks_data_quarantines_and_replay_recovers(db) -> None:
    crm, erp = MemoryCrm(), MemoryErp()
    erp.faults.fail_next([BusinessRuleError("customer on credit hold")])
    deliver(db, "006P", "001P")
    run(db, crm, erp)
    assert status(db, "006P") == ("parked", "customer on credit hold")
    assert crm.records["006P"].status is ProvisioningStatus.PARKED
    erp.faults.fail_next([DataError("invalid value", field="currency")])
    deliver(db, "006Q", "001Q")
    run(db, crm, erp)
    assert status(db, "006Q")[0] == "quarantined"
    with db.reading() as conn:
        open_ = {(r.business_key, r.kind, r.field) for r in open_exceptions(conn)}
    assert open_ == {("opportunity:006P", "parked", None),
                     ("opportunity:006Q", "quarantined", "currency")}
    assert replay(db, utcnow()) == ["opportunity:006P", "opportunity:006Q"]
    run(db, crm, erp)
    assert status(db, "006P")[0] == status(db, "006Q")[0] == "provisioned"
    with db.reading() as conn:
        assert open_exceptions(conn) == []


def test_transient_errors_without_end_become_a_dead_letter(db) -> None:
    crm, erp = MemoryCrm(), MemoryErp()
    erp.faults.fail_next([TransientError("503")] * 5)
    deliver(db)
    run(db, crm, erp)
    assert status(db, "006A")[0] == "dead_letter"
    with db.reading() as conn:
        assert [r.attempts for r in open_exceptions(conn)] == [5]


class SlowController:
    """Takes longer than a lease; records how many reconciles of a key overlap."""

    prefix = "slow:"

    def __init__(self, seconds: float) -> None:
        self.seconds, self.running, self.overlaps, self.calls = seconds, 0, 0, 0
        self.lock = threading.Lock()

    def reconcile(self, key: str, attempt: int, changes) -> None:
        with self.lock:
            self.running += 1
            self.calls += 1
            self.overlaps = max(self.overlaps, self.running)
        time.sleep(self.seconds)
        with self.lock:
            self.running -= 1

    def gave_up(self, *args) -> None:
        pass


def test_a_reconcile_longer_than_its_lease_keeps_its_key_to_itself(db) -> None:
    """Two workers, a 0.6 s lease and a 2 s reconcile: the lease is renewed, so the second
    worker never takes the key while the first still works on it."""
    from datetime import timedelta

    from handoff.engine import queue
    from handoff.engine.worker import Worker

    slow = SlowController(2.0)
    with db.transaction() as conn:
        queue.enqueue(conn, "slow:1", utcnow())
    workers = [Worker(db, [slow], SETTINGS.retry, concurrency=2, lease=timedelta(seconds=0.6),
                      poll_seconds=0.02) for _ in range(2)]
    threads = [threading.Thread(target=w.run, kwargs={"until_idle": True}) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert slow.calls == 1 and slow.overlaps == 1
