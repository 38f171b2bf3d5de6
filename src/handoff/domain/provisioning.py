"""Where one opportunity stands on its way to a project, and the moves it may make."""

from __future__ import annotations

import enum


class ProvisioningStatus(enum.StrEnum):
    WAITING = "waiting"            # not won yet: nothing to provision
    BLOCKED = "blocked"            # won, but a release gate fails; re-evaluated on change
    PROVISIONING = "provisioning"  # released; target systems being brought in line
    PROVISIONED = "provisioned"    # customer and project exist, CRM shows the project id
    PARKED = "parked"              # a target refused on a business rule; a person decides
    QUARANTINED = "quarantined"    # the data is wrong (field named); fix it, then replay
    DEAD_LETTER = "dead_letter"    # cannot succeed without a fix; replay after it

    @property
    def needs_person(self) -> bool:
        return self in NEEDS_PERSON


NEEDS_PERSON = frozenset(
    {ProvisioningStatus.PARKED, ProvisioningStatus.QUARANTINED, ProvisioningStatus.DEAD_LETTER}
)

# Level-triggered: any state may be re-evaluated into any other when the data changes,
# except that a provisioned deal never returns to waiting/blocked (the project exists).
ALLOWED: dict[ProvisioningStatus, frozenset[ProvisioningStatus]] = {
    s: frozenset(ProvisioningStatus) for s in ProvisioningStatus
}
ALLOWED[ProvisioningStatus.PROVISIONED] = frozenset(ProvisioningStatus) - {
    ProvisioningStatus.WAITING,
    ProvisioningStatus.BLOCKED,
}


def can_move(current: ProvisioningStatus, new: ProvisioningStatus) -> bool:
    return new in ALLOWED[current]
