"""The Salesforce twin as a sales team uses it in the end-to-end tests on Tryton: one customer,
won deals, and the events their changes become — and a Tryton of the test module's own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from handoff.connectors.salesforce import SalesforceConnector
from handoff.connectors.salesforce.mapping import opportunity_event_data, wire_amount
from handoff.connectors.tryton.sandbox import TrytonProcess
from handoff.engine.clock import utcnow
from handoff.engine.cloudevents import change_event
from handoff.engine.inbox import accept
from handoff.engine.payloads import CUSTOMER_CHANGED, OPPORTUNITY_CHANGED
from handoff.store.db import Database
from tests.conftest import tryton_cache


def own_tryton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TrytonProcess]:
    """A Tryton of one test module's own (as a module fixture): the Salesforce twin numbers deals
    from the start after a reset, so another module's projects must not be in it."""
    with TrytonProcess("sqlite", tmp_path_factory.mktemp("tryton"), cache=tryton_cache()) as server:
        yield server


class Crm:
    """The Salesforce twin as the sales team uses it, and the events its changes become."""

    def __init__(self, sf: SalesforceConnector, db: Database, client: str = "Lifecycle Client Ltd") -> None:
        self.sf, self.db = sf, db
        self.account = sf.create_account({
            "Name": client, "CurrencyIsoCode": "USD", "Tax_Jurisdiction__c": "US-CA",
            "Legal_Entity__c": "US01", "Validation_Status__c": "Valid"})
        [data] = [a for a in sf.changed_accounts(utcnow() - dt.timedelta(hours=1))
                  if a["id"] == self.account]
        accept(db, change_event(CUSTOMER_CHANGED, data, "/crm/salesforce", utcnow()), utcnow())

    def won(self, name: str, amount: str, method: str) -> str:
        return self.sf.create_opportunity({
            "Name": name, "AccountId": self.account, "StageName": "Closed Won",
            "Amount": wire_amount(Decimal(amount)), "CurrencyIsoCode": "USD", "CloseDate": "2026-11-02",
            "Billing_Method__c": method, "Contract_Status__c": "Approved",
            "SOW_Status__c": "Approved", "Legal_Entity__c": "US01"})

    def send(self, opp_id: str, schedule: list[tuple[str, str, str]] | None = None,
             **changes: Any) -> None:
        """Change the deal in Salesforce (if asked) and deliver what Salesforce now holds,
        with the billing schedule its CPQ lines carry (the twin has no CPQ)."""
        if changes:
            self.sf.update_opportunity(opp_id, changes)
        data = opportunity_event_data(self.sf.get_opportunity(opp_id))
        if schedule:
            data["milestones"] = [{"id": i, "name": n, "amount": a} for i, n, a in schedule]
        accept(self.db, change_event(OPPORTUNITY_CHANGED, data, "/crm/salesforce", utcnow()),
               utcnow())

    def shown(self, opp_id: str) -> dict[str, Any]:
        return self.sf.get_opportunity(opp_id)
