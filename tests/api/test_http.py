"""The HTTP service through a real ASGI stack (httpx transport), on a real database."""

import json

import httpx
import pytest

from handoff.api import create_app
from tests.factories import event, opportunity_data

VIEWER = {"authorization": "Bearer viewer-token-0123456789"}


@pytest.fixture
def client(db):
    transport = httpx.ASGITransport(app=create_app(db, tokens={"viewer-token-0123456789": "vera"}))
    return httpx.AsyncClient(transport=transport, base_url="http://handoff")


async def post(client, body, **headers) -> httpx.Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await client.post("/events", content=raw,
                             headers={"content-type": "application/cloudevents+json", **headers})


@pytest.mark.anyio
async def test_accepted_then_duplicate_then_traced(client) -> None:
    body = event(opportunity_data("006T"))
    first = await post(client, body)
    assert first.status_code == 202 and first.json()["outcome"] == "applied"
    again = await post(client, body)
    assert again.status_code == 200 and again.json()["outcome"] == "duplicate"
    assert (await client.get("/trace/006T")).status_code == 401
    lineage = (await client.get("/trace/006T", headers=VIEWER)).json()
    assert [e["outcome"] for e in lineage["events"]] == ["applied"]
    assert lineage["queued"][0]["attempts"] == 0 and lineage["status"] == "received"


@pytest.mark.anyio
async def test_binary_mode_is_accepted(client) -> None:
    data = opportunity_data("006BIN")
    response = await client.post("/events", content=json.dumps(data).encode(), headers={
        "content-type": "application/json", "ce-specversion": "1.0", "ce-id": "b-1",
        "ce-source": "/crm", "ce-type": "handoff.opportunity.changed"})
    assert response.status_code == 202, response.text


@pytest.mark.anyio
@pytest.mark.parametrize("body, status, field", [
    (b"{", 400, None),
    ({"specversion": "1.0", "id": "x", "source": "/s"}, 400, "type"),
    (event(opportunity_data(), kind="nope"), 422, "type"),
    (event(opportunity_data(currency="EURO")), 422, "data.currency"),
    (event(opportunity_data(amount="-1")), 422, "data.amount"),
])
async def test_bad_input_gets_one_error_body(client, body, status, field) -> None:
    response = await post(client, body)
    assert response.status_code == status
    error = response.json()["error"]
    assert error["status"] == status and error["field"] == field and error["message"]
    assert (await client.get("/healthz")).json()["queue_depth"] == 0


@pytest.mark.anyio
async def test_unknown_trace_is_a_404_with_the_error_body(client) -> None:
    response = await client.get("/trace/nothing", headers=VIEWER)
    assert response.status_code == 404
    assert "no deal known by 'nothing'" in response.json()["error"]["message"]


@pytest.mark.anyio
async def test_openapi_describes_the_intake(client) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "application/cloudevents+json" in spec["paths"]["/events"]["post"]["requestBody"]["content"]
