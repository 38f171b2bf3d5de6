"""NetSuite (SuiteTalk REST record service): connector, mapping, error translation, and a
sandbox twin (`twin.create_app`) that speaks the same wire format."""

from handoff.connectors.netsuite.client import NetSuiteConnector
from handoff.connectors.netsuite.settings import NetSuiteSettings

__all__ = ["NetSuiteConnector", "NetSuiteSettings"]
