"""The CloudEvents batched content mode on `POST /events`: each event of the array is taken or
refused on its own — duplicates within and across batches counted once, a malformed one
refused and recorded without holding back the others — and the answer says which is which."""

from __future__ import annotations

import json

import httpx
import pytest
import sqlalchemy as sa

from handoff.api import create_app
from handoff.engine.batch import MAX_EVENTS
from handoff.store.db import Database
from handoff.store.tables import inbox_events, intake_rejections, reconcile_queue
from tests.factories import customer_data, customer_event, event, opportunity_data

BATCH = {"content-type": "application/cloudevents-batch+json"}


def client_for(db: Database) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(db, tokens={})),
                             base_url="http://handoff")


def count(db: Database, table: sa.Table) -> int:
    with db.reading() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


@pytest.mark.anyio
async def test_each_event_of_a_batch_is_taken_or_refused_on_its_own(db: Database) -> None:
    deal = event(opportunity_data("006B1", "001B1", minutes=5))
    older = event(opportunity_data("006B1", "001B1", amount="1.00"))
    bad = event(opportunity_data("006B2", "001B2", currency="EURO"))
    batch = [customer_event(customer_data("001B1")), deal, deal, older, bad, {"id": "no-source"}]
    async with client_for(db) as client:
        answer = await client.post("/events", content=json.dumps(batch).encode(), headers=BATCH)
    assert answer.status_code == 200, answer.text
    outcomes = [e["outcome"] for e in answer.json()["events"]]
    assert outcomes == ["applied", "applied", "duplicate", "stale", "refused", "refused"]
    refusal = answer.json()["events"][4]
    assert (refusal["status"], refusal["field"]) == (422, "data.currency")
    assert answer.json()["outcomes"] == {"applied": 2, "duplicate": 1, "stale": 1, "refused": 2}
    assert count(db, inbox_events) == 3 and count(db, intake_rejections) == 2
    assert count(db, reconcile_queue) == 1  # the deal's key, once

    async with client_for(db) as client:
        again = await client.post("/events", content=json.dumps([deal]).encode(), headers=BATCH)
    assert [e["outcome"] for e in again.json()["events"]] == ["duplicate"]


@pytest.mark.anyio
async def test_a_batch_that_is_no_array_or_too_big_is_refused_whole(db: Database) -> None:
    async with client_for(db) as client:
        not_array = await client.post("/events", content=b'{"id": "x"}', headers=BATCH)
        too_big = await client.post("/events", headers=BATCH, content=json.dumps(
            [event(opportunity_data(f"006X{n}")) for n in range(MAX_EVENTS + 1)]).encode())
    assert not_array.status_code == 400 and "JSON array" in not_array.json()["error"]["message"]
    assert too_big.status_code == 413
    assert count(db, inbox_events) == 0
