"""SAP S/4HANA (OData v2: business partner, enterprise project, billing document, journal entry
items): connector, mapping, error translation, and a sandbox twin (`twin.create_app`) that speaks
the same wire format."""

from handoff.connectors.sap.client import SapConnector
from handoff.connectors.sap.settings import Organization, SapSettings

__all__ = ["Organization", "SapConnector", "SapSettings"]
