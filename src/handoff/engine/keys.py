"""Reconcile-queue keys: a prefix names the controller, the rest the business key."""

from __future__ import annotations

OPPORTUNITY = "opportunity:"   # provisioning of one deal
CRM = "crm:"                   # what the CRM record of one deal should show
BILLING = "billing:"           # invoicing one deal's billable milestones


def opportunity_key(opportunity_id: str) -> str:
    return OPPORTUNITY + opportunity_id


def crm_key(opportunity_id: str) -> str:
    return CRM + opportunity_id


def billing_key(opportunity_id: str) -> str:
    return BILLING + opportunity_id


DEAL_PREFIXES = (OPPORTUNITY, CRM, BILLING)  # every key named so far is about one deal


def deal_of(key: str) -> str | None:
    """The opportunity id a key is about, or None for a key of another kind."""
    prefix, sep, rest = key.partition(":")
    return rest if sep and prefix + sep in DEAL_PREFIXES else None
