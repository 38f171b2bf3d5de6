"""HubSpot: the CRM connector on hubspot-api-client, its mapping to canonical event data,
its error translation, and a sandbox twin (`twin.create_app`) that speaks HubSpot's CRM API."""

from handoff.connectors.hubspot.client import HubSpotConnector
from handoff.connectors.hubspot.settings import HubSpotSettings, PropertyNames

__all__ = ["HubSpotConnector", "HubSpotSettings", "PropertyNames"]
