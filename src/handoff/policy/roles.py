"""Who may do what. `[roles] approver = ["carol", …]`: the users who approve or reject
amendments (never their own: flows/amendments.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Roles:
    approvers: frozenset[str] = frozenset()
