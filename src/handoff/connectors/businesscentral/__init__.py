"""Microsoft Dynamics 365 Business Central (standard API v2.0): connector, mapping, error
translation, and a sandbox twin (`twin.create_app`) that speaks the same wire format."""

from handoff.connectors.businesscentral.client import BusinessCentralConnector
from handoff.connectors.businesscentral.settings import BusinessCentralSettings

__all__ = ["BusinessCentralConnector", "BusinessCentralSettings"]
