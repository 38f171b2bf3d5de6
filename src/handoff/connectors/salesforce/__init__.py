"""Salesforce: the CRM connector on simple-salesforce, its mapping to canonical event data,
its error translation, and a sandbox twin that speaks Salesforce's REST API."""

from handoff.connectors.salesforce.client import SalesforceConnector, SalesforceSettings

__all__ = ["SalesforceConnector", "SalesforceSettings"]
