"""Who may do what. Four roles:

    viewer      reads: lineage, exceptions, amendments, reconciliation, the dashboard
    integrator  operates: replays and resolves exceptions, re-queues a deal, starts a
                reconciliation, acknowledges or repairs its findings
    approver    decides amendments (never their own: flows/amendments.py)
    admin       manages API tokens, and operates as an integrator does

A user's roles come from the configuration (`[roles] approver = ["carol", …]`, and
`integrator`, `admin`, `viewer` likewise) for tokens given in HANDOFF_API_TOKENS, and from the
token itself for tokens an admin made (`handoff token create`). Everyone with a token reads.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    VIEWER = "viewer"
    INTEGRATOR = "integrator"
    APPROVER = "approver"
    ADMIN = "admin"


class Permission(enum.StrEnum):
    READ = "read"
    OPERATE = "operate"
    APPROVE = "approve"
    ADMINISTER = "administer"


GRANTED_BY: dict[Permission, frozenset[Role]] = {
    Permission.READ: frozenset(Role),
    Permission.OPERATE: frozenset({Role.INTEGRATOR, Role.ADMIN}),
    Permission.APPROVE: frozenset({Role.APPROVER}),
    Permission.ADMINISTER: frozenset({Role.ADMIN}),
}


@dataclass(frozen=True, slots=True)
class Roles:
    """The configuration's users per role."""

    approvers: frozenset[str] = frozenset()
    integrators: frozenset[str] = frozenset()
    admins: frozenset[str] = frozenset()
    viewers: frozenset[str] = frozenset()

    def of(self, user: str) -> frozenset[Role]:
        held = {Role.VIEWER}
        for role, users in ((Role.APPROVER, self.approvers), (Role.INTEGRATOR, self.integrators),
                            (Role.ADMIN, self.admins)):
            if user in users:
                held.add(role)
        return frozenset(held)

    def with_role(self, user: str, roles: frozenset[Role]) -> Roles:
        """These roles plus what a token grants `user` (an admin-made token's roles)."""
        def grant(users: frozenset[str], role: Role) -> frozenset[str]:
            return users | {user} if role in roles else users

        return Roles(grant(self.approvers, Role.APPROVER), grant(self.integrators, Role.INTEGRATOR),
                     grant(self.admins, Role.ADMIN), grant(self.viewers, Role.VIEWER))


def allows(roles: frozenset[Role], permission: Permission) -> bool:
    return bool(roles & GRANTED_BY[permission])


def parse_roles(text: str) -> frozenset[Role]:
    """"integrator,approver" → the roles; an unknown name is refused with the known ones."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [n for n in names if n not in {r.value for r in Role}]
    if unknown or not names:
        raise ValueError(f"unknown role(s) {', '.join(unknown) or '(none given)'}; known: "
                         f"{', '.join(r.value for r in Role)}")
    return frozenset(Role(n) for n in names)
