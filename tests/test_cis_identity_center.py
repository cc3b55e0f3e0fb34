"""CIS 1.10-1.15 under grant_via: identity_center: the runbook's people are identity-store users, not IAM users.

They hold no IAM credentials, so the credential-report checks (1.10-1.14) have nothing to judge for them and
list them nowhere (no UNKNOWN, no FAIL); an IAM user retired by 07 (keys deactivated, password removed)
passes them by having none; and 1.15 judges IAM users only, so access through an Identity Center group and
permission set never fails it. The account here is the demo's end state: only the operator is an IAM user.
"""

from __future__ import annotations

import json

from test_cis import results, status

from iamrunbook.aws.sweep import read_inventory
from iamrunbook.core import cis
from iamrunbook.sandbox.calls import ACCOUNT_ID
from iamrunbook.sandbox.history import set_credential_history
from iamrunbook.sandbox.seed import new_password

REPORT_CHECKS = ("mfa", "initial_keys", "unused", "one_key", "rotated")
ROLE = f"arn:aws:iam::{ACCOUNT_ID}:role/AdminRole"
ASSUME = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                              "Resource": ROLE}]})  # fmt: skip


def center_people(aws, iam) -> list[str]:
    """alice and bob in Identity Center: a group, a permission set referencing AssumeAdminRolePolicy, an
    assignment (which makes the reserved role), and no IAM user for either."""
    iam.create_policy(PolicyName="AssumeAdminRolePolicy", PolicyDocument=ASSUME)
    sso, store = aws.client("sso-admin"), aws.client("identitystore")
    instance = sso.list_instances()["Instances"][0]
    arn, store_id = instance["InstanceArn"], instance["IdentityStoreId"]
    ps = sso.create_permission_set(InstanceArn=arn, Name="AssumeAdminRole", SessionDuration="PT1H")["PermissionSet"]
    sso.attach_customer_managed_policy_reference_to_permission_set(
        InstanceArn=arn, PermissionSetArn=ps["PermissionSetArn"],
        CustomerManagedPolicyReference={"Name": "AssumeAdminRolePolicy", "Path": "/"})  # fmt: skip
    group = store.create_group(IdentityStoreId=store_id, DisplayName="AdminRoleUsers")["GroupId"]
    people = ["alice@example.com", "bob@example.com"]
    for name in people:
        user = store.create_user(IdentityStoreId=store_id, UserName=name, DisplayName=name,
                                 Name={"GivenName": name, "FamilyName": name})["UserId"]  # fmt: skip
        store.create_group_membership(IdentityStoreId=store_id, GroupId=group, MemberId={"UserId": user})
    sso.create_account_assignment(InstanceArn=arn, TargetId=ACCOUNT_ID, TargetType="AWS_ACCOUNT",
                                  PermissionSetArn=ps["PermissionSetArn"], PrincipalType="GROUP",
                                  PrincipalId=group)  # fmt: skip
    return people


def operator(iam) -> None:
    """The operator: one IAM user, its permissions through a group, one recent access key, no password."""
    iam.create_user(UserName="operator")
    iam.create_group(GroupName="Operators")
    iam.attach_group_policy(GroupName="Operators", PolicyArn=f"arn:aws:iam::{ACCOUNT_ID}:policy/AssumeAdminRolePolicy")
    iam.add_user_to_group(GroupName="Operators", UserName="operator")
    iam.create_access_key(UserName="operator")


def test_only_the_operator_is_judged_and_passes_and_the_people_appear_nowhere(aws, iam, sts):
    people = center_people(aws, iam)
    operator(iam)
    assert any(r["RoleName"].startswith("AWSReservedSSO_AssumeAdminRole_") for r in iam.list_roles()["Roles"])
    found = results(iam, sts)
    assert {user for user, _ in found} == {"operator"}
    assert not {row["user"] for row in found.values()} & set(people)
    assert {row["status"] for row in found.values()} == {cis.PASS}, [r for r in found.values() if r["status"] != "PASS"]
    assert status(found, "operator", "groups_only") == cis.PASS
    inv = read_inventory(iam, sts, with_credential_report=True)
    summary = cis.summary(cis.findings(inv))
    assert (summary[cis.FAIL] == 0).all() and (summary[cis.UNKNOWN] == 0).all() and (summary[cis.PASS] == 1).all()


def test_an_iam_user_retired_by_07_passes_1_10_to_1_14_by_having_no_credentials(aws, iam, sts):
    """07's phase 2 deactivates the keys and removes the password; until the grace period ends the user is
    still there, with an old (now inactive) key and a password that was unused: nothing is left to fail."""
    center_people(aws, iam)
    operator(iam)
    iam.create_user(UserName="alice@example.com")
    iam.create_login_profile(UserName="alice@example.com", Password=new_password())
    key = iam.create_access_key(UserName="alice@example.com")["AccessKey"]["AccessKeyId"]
    second = iam.create_access_key(UserName="alice@example.com")["AccessKey"]["AccessKeyId"]
    for key_id in (key, second):
        set_credential_history(aws, "alice@example.com", access_key_id=key_id, key_created_days_ago=120,
                               password_changed_days_ago=120)  # fmt: skip
    before = results(iam, sts)
    assert {status(before, "alice@example.com", c) for c in ("one_key", "rotated", "mfa")} == {cis.FAIL}
    for key_id in (key, second):  # what 07's deactivate_access_keys and delete_login_profile do
        iam.update_access_key(UserName="alice@example.com", AccessKeyId=key_id, Status="Inactive")
    iam.delete_login_profile(UserName="alice@example.com")
    iam.tag_user(UserName="alice@example.com", Tags=[{"Key": "iamrunbook:retired-at", "Value": "2026-12-01T00:00Z"}])
    after = results(iam, sts)
    assert {status(after, "alice@example.com", c) for c in REPORT_CHECKS} == {cis.PASS}
    assert {status(after, "operator", c) for c in REPORT_CHECKS} == {cis.PASS}
