"""What the Dynamics tests share: clients aimed at the twin (its session fixture
`dynamics_twin` is in tests/conftest.py) and twin control calls."""

from __future__ import annotations

from typing import Any

import httpx

from handoff.connectors.dynamics import DynamicsConnector, DynamicsSettings
from handoff.connectors.dynamics.twin import API, SANDBOX_TOKEN
from handoff.connectors.twin_process import TwinProcess
from tests.connectors.twin_support import control, fresh, requests_log, set_faults, set_twin  # noqa: F401 (re-exported)


def twin_records(twin: TwinProcess, entity_set: str) -> list[dict[str, Any]]:
    """Every row of the set, oldest first, all columns."""
    return control(twin, "GET", f"/_twin/records/{entity_set}")


def requests_seen(twin: TwinProcess) -> int:
    return control(twin, "GET", "/_twin/stats").get("requests", 0)



def api(twin: TwinProcess, token: str = SANDBOX_TOKEN) -> httpx.Client:
    """A raw HTTP client on the Web API root with the twin's bearer token: Dataverse's wire
    format, unwrapped."""
    return httpx.Client(base_url=f"{twin.base_url}{API}/", timeout=10.0, headers={
        "Authorization": f"Bearer {token}", "Accept": "application/json",
        "OData-MaxVersion": "4.0", "OData-Version": "4.0"})


def settings_for(twin: TwinProcess, **overrides: Any) -> DynamicsSettings:
    values: dict[str, Any] = {"access_token": SANDBOX_TOKEN, "base_url": twin.base_url, "timeout": 10.0}
    return DynamicsSettings(**(values | overrides))


def connector(twin: TwinProcess, **overrides: Any) -> DynamicsConnector:
    return DynamicsConnector(settings_for(twin, **overrides))
