"""Identity Center as one read returned it (aws/center_sweep.py reads it): the model the mode's plan, proof,
verification and Terraform handoff share.

Everything is keyed by name, never by id: a plan is made before the users, groups and permission sets it
creates have ids, and a reviewed plan must mean the same thing when it is applied. The AWS handlers look ids
up by name when they call (GetUserId, GetGroupId, the instance's permission sets by name).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from iamrunbook.base.names import MANAGED_BY_KEY, MANAGED_BY_VALUE

#: the path of the runbook's Assume*Policy policies, as permission sets reference them
POLICY_PATH = "/"
USER, GROUP = "USER", "GROUP"


@dataclass(frozen=True)
class PermissionSet:
    """One permission set of the instance, as DescribePermissionSet and its policy calls return it."""

    name: str
    arn: str | None = None
    session_duration: str | None = None
    #: customer-managed policy references: (name, path)
    customer_managed: tuple[tuple[str, str], ...] = ()
    #: AWS-managed policy ARNs and whether it has an inline policy: anything beyond a reference
    managed_arns: tuple[str, ...] = ()
    inline: bool = False
    tags: tuple[tuple[str, str], ...] = ()
    #: CreatedDate as ISO 8601 UTC (the time phase 1 made it, for the runbook's own)
    created: str | None = None
    #: accounts where the current version is provisioned (no OUTDATED status)
    provisioned: frozenset[str] = frozenset()

    @property
    def is_managed(self) -> bool:
        return dict(self.tags).get(MANAGED_BY_KEY) == MANAGED_BY_VALUE


@dataclass(frozen=True)
class Assignment:
    """Principal -> permission set in one account, by names."""

    account: str
    permission_set: str
    principal_type: str  # USER | GROUP
    principal: str  # the user's UserName or the group's DisplayName


@dataclass(frozen=True)
class CenterState:
    """The Identity Center instance as the mode sees it, plus the reserved roles of the target accounts."""

    instance_arn: str
    identity_store_id: str
    home_region: str
    #: UserName -> the identity-store user (UserId, UserName, DisplayName, Name, Emails) as DescribeUser returns it
    users: dict[str, dict] = field(default_factory=dict)
    #: DisplayName -> the identity-store group (GroupId, DisplayName, Description)
    groups: dict[str, dict] = field(default_factory=dict)
    #: (group DisplayName, UserName) memberships
    memberships: frozenset[tuple[str, str]] = frozenset()
    #: name -> PermissionSet
    permission_sets: dict[str, PermissionSet] = field(default_factory=dict)
    assignments: frozenset[Assignment] = frozenset()
    #: account -> permission set name -> the reserved role's ARN there (AWSReservedSSO_<name>_<suffix>)
    reserved_roles: dict[str, dict[str, str]] = field(default_factory=dict)
    #: (group DisplayName, UserName) -> MembershipId, for the memberships the read found (Terraform imports by it;
    #: ids, not names: no part of equality; last, so positional construction keeps its meaning)
    membership_ids: dict[tuple[str, str], str] = field(default_factory=dict, compare=False)

    def members(self, group: str) -> set[str]:
        return {user for g, user in self.memberships if g == group}

    def groups_of(self, user: str) -> set[str]:
        return {g for g, u in self.memberships if u == user}

    def user_id(self, name: str) -> str | None:
        return (self.users.get(name) or {}).get("UserId")

    def with_(self, **changes) -> CenterState:
        return replace(self, **changes)


def empty_state(instance_arn: str, identity_store_id: str, home_region: str) -> CenterState:
    return CenterState(instance_arn, identity_store_id, home_region)
