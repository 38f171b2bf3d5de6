"""`/amendments` over a real ASGI stack on a real database: only a known token's user with
the approver role decides, never on their own request; a decision reaches the ERP."""

import httpx
import pytest

from handoff.api import create_app
from handoff.api.auth import api_tokens
from handoff.bootstrap import build_worker
from handoff.config import Settings
from handoff.connectors.memory import MemoryCrm, MemoryErp
from handoff.engine.clock import utcnow
from handoff.engine.inbox import accept
from handoff.errors import ConfigError
from handoff.policy.roles import Roles
from tests.factories import customer_data, customer_event, event, opportunity_data

TOKENS = {"alice-token-0123456789": "alice", "carol-token-0123456789": "carol",
          "victor-token-0123456789": "victor"}  # victor has no role beyond reading


@pytest.fixture
def erp(db) -> MemoryErp:
    """A live deal whose value the CRM (alice) raised: one amendment pending."""
    erp = MemoryErp()
    accept(db, customer_event(customer_data("001H")), utcnow())
    accept(db, event(opportunity_data("006H", "001H")), utcnow())
    build_worker(Settings(), db, MemoryCrm(), erp).run(until_idle=True)
    accept(db, event(opportunity_data("006H", "001H", minutes=5, amount="150000.00",
                                      modified_by="alice")), utcnow())
    build_worker(Settings(), db, MemoryCrm(), erp).run(until_idle=True)
    return erp


@pytest.fixture
def client(db):
    app = create_app(db, Roles(frozenset({"alice", "carol"})), TOKENS)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://handoff")


def bearer(user: str) -> dict[str, str]:
    return {"authorization": f"Bearer {user}-token-0123456789"}


@pytest.mark.anyio
async def test_an_approver_decides_over_http_and_the_erp_gets_the_approved_value(
        db, erp, client) -> None:
    [pending] = (await client.get("/amendments", headers=bearer("victor"))).json()
    by_amendment = (await client.get("/trace/AM-006H-1", headers=bearer("victor"))).json()
    assert by_amendment["opportunity_id"] == "006H"  # a deal is found by its contract's amendment
    assert pending["id"] == "AM-006H-1" and pending["requester"] == "alice"
    assert pending["changes"]["value"] == {"before": "120000.00", "after": "150000.00"}
    anonymous = await client.post("/amendments/AM-006H-1/approve")
    assert anonymous.status_code == 401
    assert "Bearer" in anonymous.json()["error"]["message"]
    own = await client.post("/amendments/AM-006H-1/approve", headers=bearer("alice"))
    assert own.status_code == 403 and "segregation of duties" in own.json()["error"]["message"]
    done = await client.post("/amendments/AM-006H-1/approve", headers=bearer("carol"),
                             json={"reason": "CO-12"})
    assert done.status_code == 200 and done.json()["decided_by"] == "carol"
    again = await client.post("/amendments/AM-006H-1/reject", headers=bearer("carol"))
    assert again.status_code == 409
    build_worker(Settings(), db, MemoryCrm(), erp).run(until_idle=True)
    assert erp.projects["HO-P-006H"]["value"].amount == 150000


@pytest.mark.anyio
async def test_an_unknown_amendment_or_token_is_a_clear_4xx(db, erp, client) -> None:
    missing = await client.get("/amendments/AM-nope", headers=bearer("victor"))
    assert missing.status_code == 404 and missing.json()["error"]["message"] == "no amendment 'AM-nope'"
    forged = await client.post("/amendments/AM-006H-1/reject",
                               headers={"authorization": "Bearer guess"})
    assert forged.status_code == 401
    viewer = await client.post("/amendments/AM-006H-1/approve", headers=bearer("victor"))
    assert viewer.status_code == 403 and "needs the approver role" in viewer.json()["error"]["message"]
    assert (await client.get("/amendments/AM-006H-1", headers=bearer("victor"))).json()["status"] == "pending"


def test_tokens_come_from_the_environment_as_user_token_pairs() -> None:
    env = {"HANDOFF_API_TOKENS": "carol=abcdefghijklmnop, dave=0123456789abcdef"}
    assert api_tokens(env) == {"abcdefghijklmnop": "carol", "0123456789abcdef": "dave"}
    with pytest.raises(ConfigError, match="16\\+ characters"):
        api_tokens({"HANDOFF_API_TOKENS": "carol=short"})
