"""Oracle Fusion Cloud (ERP and Project Management REST): connector, mapping, error
translation, and a sandbox twin (`twin.create_app`) that speaks the same wire format."""

from handoff.connectors.oracle.client import OracleConnector
from handoff.connectors.oracle.settings import OracleSettings

__all__ = ["OracleConnector", "OracleSettings"]
