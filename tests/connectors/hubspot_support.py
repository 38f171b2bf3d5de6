"""What the HubSpot tests share: the twin in its own process (a session fixture), clients
aimed at it, and twin control calls.

The twin is started here with uvicorn's own command line, because twin_process.TWINS does not
list it yet; once it does, `TwinProcess("hubspot", tls_dir)` replaces `HubSpotTwinProcess`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from hubspot import HubSpot

from handoff.connectors.children import dies_with_parent
from handoff.connectors.hubspot import HubSpotConnector, HubSpotSettings
from handoff.connectors.hubspot.twin import SANDBOX_TOKEN
from handoff.connectors.twin_process import TwinProcess, free_port

APP = "handoff.connectors.hubspot.twin:create_app"


class HubSpotTwinProcess(TwinProcess):
    """The HubSpot twin in a child process (plain HTTP), with TwinProcess's readiness wait,
    control client and clean-up."""

    def __init__(self, port: int | None = None) -> None:  # TwinProcess's own checks TWINS
        self.system = "hubspot"
        self.port = port or free_port()
        self.tls = None
        self.tls_dir = Path(".")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> HubSpotTwinProcess:
        cmd = [sys.executable, "-m", "uvicorn", APP, "--factory", "--host", "127.0.0.1",
               "--port", str(self.port), "--log-level", "critical", "--no-access-log"]
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=dies_with_parent())
        self._wait_ready(timeout)
        return self


def hubspot_twin_fixture() -> Iterator[HubSpotTwinProcess]:
    """Body of the session-scoped `hubspot_twin` fixture each test module defines."""
    with HubSpotTwinProcess() as twin:
        yield twin


def fresh(twin: TwinProcess, **settings: Any) -> TwinProcess:
    """The twin emptied, with no faults and default settings but those given."""
    with twin.control() as control:
        control.post("/_twin/reset").raise_for_status()
        control.put("/_twin/faults", json={}).raise_for_status()
        if settings:
            control.put("/_twin/settings", json=settings).raise_for_status()
    return twin


def control(twin: TwinProcess, method: str, path: str, body: Any = None) -> Any:
    with twin.control() as client:
        response = client.request(method, path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None


def set_faults(twin: TwinProcess, **plan: Any) -> None:
    control(twin, "PUT", "/_twin/faults", plan)


def set_twin(twin: TwinProcess, **settings: Any) -> None:
    control(twin, "PUT", "/_twin/settings", settings)


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
