"""Inventory: one sweep of the account with get_account_authorization_details.

One paginated call returns users with their attached and inline policies, groups and tags, roles, and
policies with every version: never one call per user. The raw dicts stay as AWS returned them; the
DataFrames are views for people.
"""

from __future__ import annotations

import csv
import io
import json
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from .names import (
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    caller_user_name,
    find_named,
    is_aws_managed,
    name_from_arn,
    partition_of,
    same_name,
)
from .progress import progress as show_progress

#: The credential report (read_inventory(with_credential_report=True)) is part of a plan-only run too.
REPORT_ACTIONS = ("iam:GenerateCredentialReport", "iam:GetCredentialReport")
READ_ACTIONS = (
    "iam:GetAccountAuthorizationDetails",
    "sts:GetCallerIdentity",
    *REPORT_ACTIONS,
)
WRITE_ACTIONS: tuple[str, ...] = ()

#: Everything a full sweep can return (access.fetch_details uses it).
SWEEP_FILTER = ["User", "Role", "Group", "LocalManagedPolicy", "AWSManagedPolicy"]
#: The inventory sweeps entities and customer-managed policies first ...
ENTITY_FILTER = ["User", "Role", "Group", "LocalManagedPolicy"]
#: ... and AWS-managed policies only when something in the account uses one: there are well over a
#: thousand of them, and a sweep that carries them all is slow where they are all returned (moto).
AWS_MANAGED_FILTER = ["AWSManagedPolicy"]
MAX_ITEMS = 1000


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


def _sweep(iam, filters: list[str], progress: bool = False) -> dict[str, list]:
    """One paginated get_account_authorization_details sweep (MaxItems=1000), pages merged."""
    merged: dict[str, list] = {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [], "Policies": []}
    pages = iam.get_paginator("get_account_authorization_details").paginate(
        Filter=list(filters), PaginationConfig={"PageSize": MAX_ITEMS}
    )
    if progress:
        pages = show_progress(pages, desc="inventory pages", unit="page")
    for page in pages:
        for key in merged:
            merged[key].extend(page.get(key, []))
    return merged


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


def fetch_details(iam, progress: bool = False) -> dict:
    """The account as one get_account_authorization_details-shaped dict.

    Entities and customer-managed policies in one sweep; the AWS-managed policies in use (whose
    documents access analysis needs) in a second sweep only when there are any.
    """
    merged = _sweep(iam, ENTITY_FILTER, progress)
    in_use = aws_managed_in_use(merged)
    if in_use:
        aws_policies = _sweep(iam, AWS_MANAGED_FILTER)["Policies"]
        merged["Policies"] += [p for p in aws_policies if p["Arn"] in in_use]
    return merged


def read_inventory(iam, sts, *, with_credential_report: bool = False, progress: bool = False) -> Inventory:
    """Caller identity plus one authorization-details sweep (plus the credential report if asked)."""
    ident = sts.get_caller_identity()
    details = fetch_details(iam, progress=progress)
    users = {u["UserName"]: u for u in details["UserDetailList"]}
    groups = {g["GroupName"]: g for g in details["GroupDetailList"]}
    roles = {r["RoleName"]: r for r in details["RoleDetailList"]}
    policies = {p["Arn"]: p for p in details["Policies"]}
    inv = Inventory(ident["Account"], ident["Arn"], users, groups, roles, policies)
    if with_credential_report:
        inv.credential_report = read_credential_report(iam)
    return inv


def read_credential_report(iam, wait_seconds: float = 30.0) -> list[dict]:
    """Credential status for every user at once: generate, wait until complete, read the CSV."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.1  # a report is often ready within a second; poll quickly, then back off
    while iam.generate_credential_report()["State"] != "COMPLETE":
        if time.monotonic() > deadline:
            raise TimeoutError("the IAM credential report was not ready in time; run the step again")
        time.sleep(delay)
        delay = min(delay * 2, 2.0)
    content = iam.get_credential_report()["Content"]
    text = content.decode("utf-8") if isinstance(content, bytes) else content
    return list(csv.DictReader(io.StringIO(text)))
