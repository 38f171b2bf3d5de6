"""Where one opportunity stands on its way to a project.

Transitions (level-triggered: every change of the deal re-evaluates it):

    WAITING ⇄ BLOCKED → PROVISIONING → PROVISIONED
    PROVISIONING → PARKED | QUARANTINED | DEAD_LETTER → (replay) PROVISIONING

A deal whose project exists never goes back to WAITING or BLOCKED: later changes to a
provisioned deal are amendments, not a new release decision.
"""

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
