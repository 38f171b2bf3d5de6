"""What the Dynamics tests share: the twin in its own process (a session fixture), clients
aimed at it, and twin control calls.

The twin is started here with uvicorn's own command line, because twin_process.TWINS does not
list it yet; once it does, `TwinProcess("dynamics", tls_dir)` replaces `DynamicsTwinProcess`.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from handoff.connectors.children import dies_with_parent
from handoff.connectors.dynamics import DynamicsConnector, DynamicsSettings
from handoff.connectors.dynamics.twin import API, SANDBOX_TOKEN
from handoff.connectors.twin_process import TwinProcess, free_port

APP = "handoff.connectors.dynamics.twin:create_app"


class DynamicsTwinProcess(TwinProcess):
    """The Dynamics twin in a child process (plain HTTP), with TwinProcess's readiness wait,
    control client and clean-up."""

    def __init__(self, port: int | None = None) -> None:  # TwinProcess's own checks TWINS
        self.system = "dynamics"
        self.port = port or free_port()
        self.tls = None
        self.tls_dir = Path(".")
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> DynamicsTwinProcess:
        cmd = [sys.executable, "-m", "uvicorn", APP, "--factory", "--host", "127.0.0.1",
               "--port", str(self.port), "--log-level", "critical", "--no-access-log"]
        self.process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, preexec_fn=dies_with_parent())
        self._wait_ready(timeout)
        return self


def dynamics_twin_fixture() -> Iterator[DynamicsTwinProcess]:
    """Body of the session-scoped `dynamics_twin` fixture each test module defines."""
    with DynamicsTwinProcess() as twin:
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


def twin_records(twin: TwinProcess, entity_set: str) -> list[dict[str, Any]]:
    """Every row of the set, oldest first, all columns."""
    return control(twin, "GET", f"/_twin/records/{entity_set}")


def requests_seen(twin: TwinProcess) -> int:
    return control(twin, "GET", "/_twin/stats").get("requests", 0)


def requests_log(twin: TwinProcess) -> list[dict[str, Any]]:
    return control(twin, "GET", "/_twin/requests")


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
