"""Deterministic external ids: the same business key always names the same target record,
so a create repeated after a lost response finds what the first one made."""

from __future__ import annotations


def customer_external_id(account_id: str) -> str:
    return f"HO-C-{account_id}"


PROJECT_PREFIX = "HO-P-"


def project_external_id(opportunity_id: str) -> str:
    return f"{PROJECT_PREFIX}{opportunity_id}"


def deal_of_project(external_id: str) -> str:
    """The deal a project's external id names (the id itself when it is not handoff's)."""
    return external_id.removeprefix(PROJECT_PREFIX)


def invoice_external_id(opportunity_id: str, document_id: str) -> str:
    return f"HO-I-{opportunity_id}-{document_id}"


def credit_note_external_id(opportunity_id: str, document_id: str) -> str:
    return f"HO-CN-{opportunity_id}-{document_id}"


def billing_task_external_id(opportunity_id: str, document_id: str) -> str:
    """The ERP's work item a billing document is made from (Tryton bills tasks)."""
    return f"HO-M-{opportunity_id}-{document_id}"
