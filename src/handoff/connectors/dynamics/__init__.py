"""Microsoft Dynamics 365 Sales: the CRM connector over the Dataverse Web API (httpx), its
mapping to canonical event data, its error translation, the `$batch` wire format, and a
sandbox twin (`twin.create_app`) that speaks the Web API."""

from handoff.connectors.dynamics.client import DynamicsConnector
from handoff.connectors.dynamics.settings import ColumnNames, DynamicsSettings

__all__ = ["ColumnNames", "DynamicsConnector", "DynamicsSettings"]
