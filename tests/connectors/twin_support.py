"""What every connector's tests do with its twin: empty it, set faults and twin-only settings,
call its control endpoints. The twins themselves are session fixtures in tests/conftest.py."""

from __future__ import annotations

from typing import Any

from handoff.connectors import exact_json
from handoff.connectors.twin_process import TwinProcess


def fresh(twin: TwinProcess, **settings: Any) -> TwinProcess:
    """The twin emptied, with no faults and default settings but those given."""
    with twin.control() as client:
        client.post("/_twin/reset").raise_for_status()
        client.put("/_twin/faults", json={}).raise_for_status()
        if settings:
            client.put("/_twin/settings", json=settings).raise_for_status()
    return twin


def control(twin: TwinProcess, method: str, path: str, body: Any = None) -> Any:
    """One control call; bodies travel as exact JSON (amounts as Decimal, never float)."""
    with twin.control() as client:
        response = client.request(method, path, content=None if body is None else exact_json.dumps(body),
                                  headers={"Content-Type": "application/json"})
        response.raise_for_status()
        return exact_json.loads(response.content) if response.content else None


def set_faults(twin: TwinProcess, **plan: Any) -> None:
    control(twin, "PUT", "/_twin/faults", plan)


def set_twin(twin: TwinProcess, **settings: Any) -> None:
    """Twin-only behaviours (its rate window, …); `fresh` undoes them."""
    control(twin, "PUT", "/_twin/settings", settings)


def summary(twin: TwinProcess) -> dict[str, Any]:
    return control(twin, "GET", "/_twin/summary")


def requests_log(twin: TwinProcess) -> list[dict[str, Any]]:
    return control(twin, "GET", "/_twin/requests")
