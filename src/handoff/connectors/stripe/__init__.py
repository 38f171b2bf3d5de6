"""Stripe Billing as handoff's billing system (for firms whose ERP does not invoice): the
connector (stripe-python), mapping, error translation, customers, and a sandbox twin
(`twin.create_app`) that speaks Stripe's wire format."""

from handoff.connectors.stripe.client import StripeConnector
from handoff.connectors.stripe.settings import StripeSettings

__all__ = ["StripeConnector", "StripeSettings"]
