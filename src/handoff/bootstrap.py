"""The one place where handoff is wired together. Nothing is built at import time."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from handoff.config import Settings
from handoff.connectors.ports import (
    BillingConnector,
    CrmChangeFeed,
    CrmConnector,
    DeliveryFeed,
    ErpConnector,
)
from handoff.connectors.registry import connect_billing, connect_crm, connect_erp
from handoff.engine.worker import Schedule, Worker, in_transaction
from handoff.flows.billing import BillingController, enqueue_unpaid
from handoff.flows.polling import Poll, crm_poll, delivery_poll
from handoff.flows.provisioning import ProvisioningController
from handoff.flows.write_back import WriteBackController
from handoff.store.db import Database


def build_worker(settings: Settings, db: Database, crm: CrmConnector, erp: ErpConnector,
                 owner: str | None = None, billing: BillingConnector | None = None) -> Worker:
    """`billing`: the system that invoices when it is not the ERP (`[systems] billing`)."""
    controllers = [ProvisioningController(db, erp, settings.release, ownership=settings.ownership),
                   BillingController(db, billing or erp, settings.billing), WriteBackController(db, crm)]
    refresh = Schedule("invoices awaiting payment", timedelta(minutes=settings.billing.refresh_minutes),
                       in_transaction(enqueue_unpaid))
    return Worker(db, controllers, settings.retry, concurrency=settings.worker.concurrency,
                  lease=settings.worker.lease, poll_seconds=settings.worker.poll_seconds,
                  owner=owner, schedules=[refresh, *poll_schedules(settings, crm, erp)])


def poll_schedules(settings: Settings, crm: CrmConnector, erp: ErpConnector) -> list[Schedule]:
    """The scheduled polls of hybrid sync: the CRM's deals, the PSA/ERP's milestones — each
    when it is wanted and the system can list its changes."""
    wanted = ((crm, settings.poll.crm_minutes), (erp, settings.poll.erp_minutes))
    return [Schedule(f"{poll.system} poll", timedelta(minutes=minutes), _applied(poll))
            for system, minutes in wanted if minutes for poll in polls(system)]


def _applied(poll: Poll) -> Callable[[Database, datetime], int]:
    return lambda db, now: poll.run(db, now).applied


def polls(*systems: object) -> list[Poll]:
    """A poll for each system that can list its changes."""
    found = []
    for system in systems:
        if isinstance(system, CrmChangeFeed):
            found.append(crm_poll(system))
        if isinstance(system, DeliveryFeed):
            found.append(delivery_poll(system))
    return found


def connect_systems(settings: Settings, env: Mapping[str, str] = os.environ,
                    ) -> tuple[CrmConnector, ErpConnector]:
    return connect_crm(settings.systems, env), connect_erp(settings.systems, env)


def connect_billing_system(settings: Settings, db: Database,
                           env: Mapping[str, str] = os.environ) -> BillingConnector | None:
    """The billing system of `[systems] billing`, or None when the ERP invoices."""
    return connect_billing(settings.systems, db, env)
