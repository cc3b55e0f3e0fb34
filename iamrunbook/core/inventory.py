"""Inventory: the account as one get_account_authorization_details sweep returned it (aws/sweep.py reads it).

The raw dicts stay as AWS returned them; this model only answers questions about them, so plan, access and the
simulator can work on a real sweep or on a simulated one alike.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from iamrunbook.base.names import (
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    caller_user_name,
    find_named,
    is_aws_managed,
    name_from_arn,
    partition_of,
    same_name,
)


def decode_document(doc: Any) -> dict:
    """Policy documents arrive as dicts (boto3 decodes them) or URL-encoded JSON strings."""
    if isinstance(doc, dict):
        return doc
    if isinstance(doc, str):
        return json.loads(urllib.parse.unquote(doc))
    return {}


@dataclass
class Inventory:
    account_id: str
    caller_arn: str
    users: dict[str, dict]
    groups: dict[str, dict]
    roles: dict[str, dict]
    #: policy ARN -> ManagedPolicyDetail: every customer-managed policy, plus AWS-managed ones in use.
    policies: dict[str, dict]
    credential_report: list[dict] | None = field(default=None, repr=False)

    # --- lookups the planner and notebooks need -----------------------------------------------
    @property
    def caller_user(self) -> str | None:
        return caller_user_name(self.caller_arn)

    def details(self) -> dict:
        """The sweep as one get_account_authorization_details-shaped dict (for access analysis)."""
        return {
            "UserDetailList": list(self.users.values()),
            "GroupDetailList": list(self.groups.values()),
            "RoleDetailList": list(self.roles.values()),
            "Policies": list(self.policies.values()),
        }

    @property
    def partition(self) -> str:
        return partition_of(self.caller_arn)

    def local_policy(self, name: str) -> dict | None:
        """The customer-managed policy called `name` (policy names are case-sensitive), or None."""
        for arn, policy in self.policies.items():
            if not is_aws_managed(arn) and name_from_arn(arn) == name:
                return policy
        return None

    def user_named(self, name: str) -> dict | None:
        """IAM user names are case-insensitive: 'Alice' and 'alice' are one user."""
        found = find_named(self.users, name)
        return self.users[found] if found is not None else None

    def group_named(self, name: str) -> dict | None:
        found = find_named(self.groups, name)
        return self.groups[found] if found is not None else None

    def group_members(self, group: str) -> list[str]:
        """The users in `group` (the sweep lists each user's groups, not each group's users)."""
        return sorted(n for n, u in self.users.items() if any(same_name(g, group) for g in u.get("GroupList", [])))

    @staticmethod
    def tags(entity: dict) -> dict[str, str]:
        return {t["Key"]: t["Value"] for t in entity.get("Tags", [])}

    def is_managed(self, user: dict) -> bool:
        return self.tags(user).get(MANAGED_BY_KEY) == MANAGED_BY_VALUE

    @staticmethod
    def attached_arns(entity: dict) -> set[str]:
        return {p["PolicyArn"] for p in entity.get("AttachedManagedPolicies", [])}

    def holders(self, policy_arn: str) -> list[tuple[str, str]]:
        """(kind, name) of every user, group and role the policy is attached to."""
        found = []
        for kind, entities in (("user", self.users), ("group", self.groups), ("role", self.roles)):
            for name, entity in entities.items():
                if policy_arn in self.attached_arns(entity):
                    found.append((kind, name))
        return found


def default_document(policy: dict) -> dict:
    for version in policy.get("PolicyVersionList", []):
        if version.get("IsDefaultVersion"):
            return decode_document(version.get("Document"))
    return {}


def aws_managed_in_use(details: dict) -> set[str]:
    """ARNs of AWS-managed policies attached to, or bounding, any user, group or role in the sweep."""
    in_use: set[str] = set()
    for key in ("UserDetailList", "GroupDetailList", "RoleDetailList"):
        for entity in details.get(key, []):
            in_use |= Inventory.attached_arns(entity)
            boundary = (entity.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
            if boundary:
                in_use.add(boundary)
    return {arn for arn in in_use if is_aws_managed(arn)}
