"""The Identity Center part of bench/terraform_check.py's "identity center" scenario: an account and instance
that hold everything the spec asks for, made with boto3 directly as the mode's plan would make it (not with
the runbook's handlers, so Terraform is checked against AWS's shapes, not the runbook's). The scenario reads
it back with aws/center_sweep.py's read_center_state.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base.names import MANAGED_BY_KEY, MANAGED_BY_VALUE, policy_description, policy_name
from iamrunbook.core.identity_center import IdentityCenterSettings, group_description, permission_set_name, store_user
from iamrunbook.core.identity_center_state import GROUP, POLICY_PATH
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.plan import make_plan
from iamrunbook.core.spec import GrantSettings, Spec
from iamrunbook.flows.apply import apply_plan
from iamrunbook.sandbox import seed


def _all(client, operation: str, key: str, **params) -> list:
    pages = client.get_paginator(operation).paginate(**params) if client.can_paginate(operation) else [
        getattr(client, operation)(**params)]  # fmt: skip
    return [item for page in pages for item in page.get(key, [])]


def instance_of(sso) -> tuple[str, str]:
    """(instance ARN, identity store id) of the one instance the embedded AWS has in its region."""
    instance = sso.list_instances()["Instances"][0]
    return instance["InstanceArn"], instance["IdentityStoreId"]


def prepare_policies(iam, sts, spec: Spec) -> Inventory:
    """The roles, and each role's Assume<Role>Policy as the runbook makes it (its user-mode plan, no users)."""
    seed.seed_roles(iam, spec.roles)
    policies_only = replace(spec, users={}, settings=GrantSettings())
    apply_plan(iam, make_plan(policies_only, read_inventory(iam, sts)), allow_without_mfa_device=True)
    return read_inventory(iam, sts)


def _wait(sso, instance: str, request: dict) -> None:
    for _ in range(100):
        status = sso.describe_account_assignment_creation_status(
            InstanceArn=instance, AccountAssignmentCreationRequestId=request["RequestId"]
        )["AccountAssignmentCreationStatus"]
        if status["Status"] != "IN_PROGRESS":
            if status["Status"] != "SUCCEEDED":
                raise RuntimeError(f"assignment failed: {status}")
            return
        time.sleep(0.1)
    raise RuntimeError(f"assignment still in progress: {request}")


def prepare_center(sso, store, spec: Spec, accounts: Sequence[str]) -> None:
    """Every identity-store user, group and membership, permission set, reference and assignment of `spec`."""
    instance, store_id = instance_of(sso)
    settings = spec.settings.identity_center or IdentityCenterSettings()
    user_ids = {u.name: store.create_user(IdentityStoreId=store_id, **store_user(u.name, u.description))["UserId"]
                for u in spec.users.values()}  # fmt: skip
    for key, role in spec.roles.items():
        group = store.create_group(IdentityStoreId=store_id, DisplayName=spec.settings.group_name(key, role),
                                   Description=group_description(role))["GroupId"]  # fmt: skip
        for user in (u.name for u in spec.users.values() if key in u.roles):
            store.create_group_membership(IdentityStoreId=store_id, GroupId=group, MemberId={"UserId": user_ids[user]})
        ps = sso.create_permission_set(InstanceArn=instance, Name=permission_set_name(role),
                                       Description=policy_description(role), SessionDuration=settings.session_duration,
                                       Tags=[{"Key": MANAGED_BY_KEY, "Value": MANAGED_BY_VALUE}])  # fmt: skip
        ps_arn = ps["PermissionSet"]["PermissionSetArn"]
        sso.attach_customer_managed_policy_reference_to_permission_set(
            InstanceArn=instance, PermissionSetArn=ps_arn,
            CustomerManagedPolicyReference={"Name": policy_name(role), "Path": POLICY_PATH})  # fmt: skip
        for account in accounts:
            request = sso.create_account_assignment(InstanceArn=instance, TargetId=account, TargetType="AWS_ACCOUNT",
                                                    PermissionSetArn=ps_arn, PrincipalType=GROUP, PrincipalId=group)
            _wait(sso, instance, request["AccountAssignmentCreationStatus"])
