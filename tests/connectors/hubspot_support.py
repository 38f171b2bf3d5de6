"""What the HubSpot tests share: clients aimed at the twin (the session fixture
`hubspot_twin` is in tests/conftest.py), and twin control calls."""

from __future__ import annotations

from typing import Any

import httpx
from hubspot import HubSpot

from handoff.connectors.hubspot import HubSpotConnector, HubSpotSettings
from handoff.connectors.hubspot.twin import SANDBOX_TOKEN
from handoff.connectors.twin_process import TwinProcess
from tests.connectors.twin_support import control, fresh, set_faults, set_twin  # noqa: F401 (re-exported)


def twin_records(twin: TwinProcess, object_type: str) -> list[dict[str, Any]]:
    return control(twin, "GET", f"/_twin/records/{object_type}")


def requests_seen(twin: TwinProcess) -> int:
    return control(twin, "GET", "/_twin/stats").get("requests", 0)


def api(twin: TwinProcess, token: str = SANDBOX_TOKEN) -> httpx.Client:
    """A raw HTTP client with the twin's bearer token: HubSpot's wire format, unwrapped."""
    return httpx.Client(base_url=twin.base_url, timeout=10.0,
                        headers={"Authorization": f"Bearer {token}"})


def sdk(twin: TwinProcess, token: str = SANDBOX_TOKEN) -> HubSpot:
    """hubspot-api-client aimed at the twin, as the connector aims it."""
    return HubSpot(access_token=token, host=twin.base_url)


def settings_for(twin: TwinProcess, **overrides: Any) -> HubSpotSettings:
    """Pacing far above the twin's test limits unless a test asks otherwise."""
    values: dict[str, Any] = {"access_token": SANDBOX_TOKEN, "base_url": twin.base_url,
                              "timeout": 10.0, "requests_per_window": 10_000,
                              "search_requests_per_second": 1000.0}
    return HubSpotSettings(**(values | overrides))


def connector(twin: TwinProcess, **overrides: Any) -> HubSpotConnector:
    return HubSpotConnector(settings_for(twin, **overrides))
