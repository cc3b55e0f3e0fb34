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

import pandas as pd

from .names import MANAGED_BY_KEY, MANAGED_BY_VALUE, name_from_arn
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
AWS_MANAGED_PREFIX = "arn:aws:iam::aws:policy/"
MAX_ITEMS = 1000


def decode_document(doc: Any) -> dict:
    """Policy documents arrive as dicts (boto3 decodes them) or URL-encoded JSON strings."""
    if isinstance(doc, dict):
        return doc
    if isinstance(doc, str):
        return json.loads(urllib.parse.unquote(doc))
    return {}


def caller_user_name(caller_arn: str) -> str | None:
    """The IAM user name of an `...:user/[path/]name` caller, or None for roles and others."""
    resource = caller_arn.split(":", 5)[-1]
    if resource.startswith("user/"):
        return resource.rsplit("/", 1)[-1]
    return None


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

    def local_policy(self, name: str) -> dict | None:
        for arn, policy in self.policies.items():
            if not arn.startswith(AWS_MANAGED_PREFIX) and name_from_arn(arn) == name:
                return policy
        return None

    def user_named(self, name: str) -> dict | None:
        """IAM user names are case-insensitive: 'Alice' and 'alice' are one user."""
        if name in self.users:
            return self.users[name]
        folded = name.lower()
        return next((u for n, u in self.users.items() if n.lower() == folded), None)

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

    # --- tables for people --------------------------------------------------------------------
    def users_frame(self) -> pd.DataFrame:
        rows = []
        for name, user in sorted(self.users.items()):
            tags = self.tags(user)
            rows.append(
                {
                    "user": name,
                    "managed": self.is_managed(user),
                    "description": tags.get("Description", ""),
                    "attached_policies": ", ".join(sorted(name_from_arn(a) for a in self.attached_arns(user))),
                    "inline_policies": ", ".join(p["PolicyName"] for p in user.get("UserPolicyList", [])),
                    "groups": ", ".join(user.get("GroupList", [])),
                    "tags": "; ".join(f"{k}={v}" for k, v in sorted(tags.items())),
                    "created": str(user.get("CreateDate", "")),
                }
            )
        return pd.DataFrame(
            rows,
            columns=[
                "user",
                "managed",
                "description",
                "attached_policies",
                "inline_policies",
                "groups",
                "tags",
                "created",
            ],
        )

    def attachments_frame(self) -> pd.DataFrame:
        rows = [
            {"kind": kind, "entity": name, "policy": name_from_arn(arn), "policy_arn": arn}
            for kind, entities in (("user", self.users), ("group", self.groups), ("role", self.roles))
            for name, entity in sorted(entities.items())
            for arn in sorted(self.attached_arns(entity))
        ]
        return pd.DataFrame(rows, columns=["kind", "entity", "policy", "policy_arn"])

    def policies_frame(self) -> pd.DataFrame:
        rows = [
            {
                "policy": name_from_arn(arn),
                "arn": arn,
                "aws_managed": arn.startswith(AWS_MANAGED_PREFIX),
                "default_version": p.get("DefaultVersionId"),
                "versions": len(p.get("PolicyVersionList", [])),
                "attachments": len(self.holders(arn)),
            }
            for arn, p in sorted(self.policies.items())
        ]
        return pd.DataFrame(
            rows, columns=["policy", "arn", "aws_managed", "default_version", "versions", "attachments"]
        )

    def credentials_frame(self) -> pd.DataFrame:
        """Credential status per user from the credential report (no secrets are in the report)."""
        cols = [
            "user",
            "password_enabled",
            "password_last_used",
            "mfa_active",
            "access_key_1_active",
            "access_key_1_last_rotated",
            "access_key_1_last_used_date",
            "access_key_2_active",
            "access_key_2_last_rotated",
            "access_key_2_last_used_date",
        ]
        rows = [r for r in (self.credential_report or []) if r.get("user") != "<root_account>"]
        return pd.DataFrame([{c: r.get(c, "") for c in cols} for r in rows], columns=cols)


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
    return {arn for arn in in_use if arn.startswith(AWS_MANAGED_PREFIX)}


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
