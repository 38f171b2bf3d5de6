"""Field ownership once a deal's project is active: which descriptive fields the CRM still
sets. The financial terms are never the CRM's to set directly: a change to them becomes an
amendment that an approver decides (domain/terms.py).

    [policy.ownership]
    crm = ["name", "owner", "close_date", "description"]   # the default: all of them
"""

from __future__ import annotations

from dataclasses import dataclass

from handoff.domain.terms import DESCRIPTIVE_FIELDS, FINANCIAL_FIELDS
from handoff.errors import ConfigError


@dataclass(frozen=True, slots=True)
class OwnershipPolicy:
    crm: frozenset[str] = frozenset(DESCRIPTIVE_FIELDS)

    def crm_owns(self, name: str) -> bool:
        return name in self.crm


def ownership_from(values: dict[str, object]) -> OwnershipPolicy:
    unknown = set(values) - {"crm"}
    if unknown:
        raise ConfigError(f"[policy.ownership]: unknown key(s) {', '.join(sorted(unknown))}; "
                          "known: crm")
    fields = values.get("crm", list(DESCRIPTIVE_FIELDS))
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise ConfigError("[policy.ownership] crm: must be a list of field names")
    financial = [f for f in fields if f in FINANCIAL_FIELDS]
    if financial:
        raise ConfigError(f"[policy.ownership] crm: {', '.join(financial)} is financial; it changes "
                          "only by an approved amendment")
    unknown = [f for f in fields if f not in DESCRIPTIVE_FIELDS]
    if unknown:
        raise ConfigError(f"[policy.ownership] crm: unknown field(s) {', '.join(unknown)}; "
                          f"known: {', '.join(DESCRIPTIVE_FIELDS)}")
    return OwnershipPolicy(frozenset(fields))


DEFAULT_OWNERSHIP = OwnershipPolicy()
