"""The inventory sweep: one paginated get_account_authorization_details call, never one call per user.

It returns users with their attached and inline policies, groups and tags, roles, and policies with every version;
core/inventory.py is the model it fills.
"""

from __future__ import annotations

import csv
import io
import time

from iamrunbook.base.progress import progress as show_progress
from iamrunbook.core.inventory import Inventory, aws_managed_in_use

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
