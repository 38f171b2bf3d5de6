"""The one place where handoff is wired together. Nothing is built at import time."""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta

from handoff.config import Settings
from handoff.connectors.ports import CrmChangeFeed, CrmConnector, ErpConnector
from handoff.connectors.registry import connect_crm, connect_erp
from handoff.engine.worker import Schedule, Worker, in_transaction
from handoff.flows.billing import BillingController, enqueue_unpaid
from handoff.flows.polling import CrmPoll
from handoff.flows.provisioning import ProvisioningController
from handoff.flows.write_back import WriteBackController
from handoff.store.db import Database


def build_worker(settings: Settings, db: Database, crm: CrmConnector, erp: ErpConnector,
                 owner: str | None = None) -> Worker:
    controllers = [ProvisioningController(db, erp, settings.release, ownership=settings.ownership),
                   BillingController(db, erp, settings.billing), WriteBackController(db, crm)]
    refresh = Schedule("invoices awaiting payment", timedelta(minutes=settings.billing.refresh_minutes),
                       in_transaction(enqueue_unpaid))
    return Worker(db, controllers, settings.retry, concurrency=settings.worker.concurrency,
                  lease=settings.worker.lease, poll_seconds=settings.worker.poll_seconds,
                  owner=owner, schedules=[refresh, *crm_poll(settings, crm)])


def crm_poll(settings: Settings, crm: CrmConnector) -> list[Schedule]:
    """The CRM poll, when it is wanted and the CRM can list its changes."""
    if not settings.poll.crm_minutes or not isinstance(crm, CrmChangeFeed):
        return []
    poll = CrmPoll(crm)
    return [Schedule(f"{crm.system} poll", timedelta(minutes=settings.poll.crm_minutes),
                     lambda db, now: poll.run(db, now).applied)]


def connect_systems(settings: Settings, env: Mapping[str, str] = os.environ,
                    ) -> tuple[CrmConnector, ErpConnector]:
    return connect_crm(settings.systems, env), connect_erp(settings.systems, env)
