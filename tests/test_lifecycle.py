"""Day-to-day user management is an edit of the spec plus a run: each edit changes exactly what it says."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base.errors import SafetyError
from iamrunbook.core.plan import make_plan
from iamrunbook.core.spec import load_spec
from iamrunbook.flows.apply import apply_plan
from iamrunbook.sandbox import seed

EXAMPLE = yaml.safe_load((Path(__file__).resolve().parent.parent / "parameters" / "example.yaml").read_text())


@pytest.fixture
def users(aws, iam, sts):
    """The example spec, applied to an account holding the three roles; returns an editable copy of it."""
    seed.seed_roles(iam)
    run(iam, sts, EXAMPLE["iam_users"])
    aws.clear_calls()
    return copy.deepcopy(EXAMPLE["iam_users"])


def run(iam, sts, iam_users, **kw):
    plan = make_plan(load_spec(iam_users), read_inventory(iam, sts))
    apply_plan(iam, plan, **kw)
    return plan


def changes(plan):
    return [(c.kind, c.address) for c in plan.changes]


def written(aws):
    return [c.action for c in aws.mutating_calls()]


def tags(iam, user):
    return {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=user)["Tags"]}


def attached(iam, user):
    return sorted(p["PolicyName"] for p in iam.list_attached_user_policies(UserName=user)["AttachedPolicies"])


def test_add_a_user(aws, iam, sts, users):
    users["david@example.com"] = {"description": "David - Analyst", "roles": ["data_engineer"]}
    plan = run(iam, sts, users)
    assert changes(plan) == [
        ("create_user", 'aws_iam_user.users["david@example.com"]'),
        ("attach", 'aws_iam_user_policy_attachment.user_roles["david@example.com/data_engineer"]'),
    ]
    assert written(aws) == ["CreateUser", "AttachUserPolicy"]
    assert tags(iam, "david@example.com") == {
        "Name": "david@example.com",
        "Description": "David - Analyst",
        "Roles": "data_engineer",
        "ManagedBy": "iamrunbook",
    }
    assert attached(iam, "david@example.com") == ["AssumeDataEngineerRolePolicy"]


def test_change_roles_makes_only_the_new_attachment(aws, iam, sts, users):
    users["alice@example.com"]["roles"] = ["admin", "data_engineer", "infrastructure_admin"]
    plan = run(iam, sts, users)
    assert changes(plan) == [
        ("tag_user", 'aws_iam_user.users["alice@example.com"]'),
        ("attach", 'aws_iam_user_policy_attachment.user_roles["alice@example.com/admin"]'),
    ]
    assert written(aws) == ["TagUser", "AttachUserPolicy"]
    assert tags(iam, "alice@example.com")["Roles"] == "admin data_engineer infrastructure_admin"


def test_remove_a_role_detaches_that_policy_only(aws, iam, sts, users):
    users["alice@example.com"]["roles"] = ["data_engineer"]
    plan = run(iam, sts, users)
    assert changes(plan) == [
        ("tag_user", 'aws_iam_user.users["alice@example.com"]'),
        ("detach", 'aws_iam_user_policy_attachment.user_roles["alice@example.com/infrastructure_admin"]'),
    ]
    assert written(aws) == ["TagUser", "DetachUserPolicy"]
    assert attached(iam, "alice@example.com") == ["AssumeDataEngineerRolePolicy"]
    assert attached(iam, "your-username") == [
        "AssumeAdminRolePolicy",
        "AssumeDataEngineerRolePolicy",
        "AssumeInfrastructureAdminRolePolicy",
    ]


def test_change_only_a_description_changes_only_tags(aws, iam, sts, users):
    users["bob@example.com"]["description"] = "Bob - Senior Data Engineer"
    plan = run(iam, sts, users)
    assert changes(plan) == [("tag_user", 'aws_iam_user.users["bob@example.com"]')]
    assert written(aws) == ["TagUser"]
    assert tags(iam, "bob@example.com")["Description"] == "Bob - Senior Data Engineer"


def test_removal_from_the_spec_offboards_with_full_cleanup(aws, iam, sts, users):
    bob = "bob@example.com"
    iam.create_access_key(UserName=bob)
    iam.create_login_profile(UserName=bob, Password=seed.new_password())
    iam.put_user_policy(
        UserName=bob,
        PolicyName="own",
        PolicyDocument='{"Version": "2012-10-17", "Statement": '
        '[{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}',
    )
    iam.create_group(GroupName="analysts")
    iam.add_user_to_group(GroupName="analysts", UserName=bob)
    aws.clear_calls()

    del users[bob]
    plan = run(iam, sts, users)
    assert changes(plan) == [("delete_user", f'aws_iam_user.users["{bob}"]')]
    assert bob not in {u["UserName"] for u in iam.list_users()["Users"]}
    assert written(aws)[-1] == "DeleteUser"  # the strict server refused it until everything was gone
    assert {
        "RemoveUserFromGroup",
        "DeleteUserPolicy",
        "DetachUserPolicy",
        "DeleteAccessKey",
        "DeleteLoginProfile",
    } <= set(written(aws))
    assert iam.get_group(GroupName="analysts")["Users"] == []
    assert attached(iam, "alice@example.com") == ["AssumeDataEngineerRolePolicy", "AssumeInfrastructureAdminRolePolicy"]


def test_more_deletions_than_allowed_are_refused_before_any_change(aws, iam, sts, users):
    for n in range(3):
        users[f"temp{n}@example.com"] = {"description": "Temporary", "roles": []}
    run(iam, sts, users)
    aws.clear_calls()

    remaining = {"your-username": users["your-username"]}
    with pytest.raises(SafetyError, match=r"deletes 5 users .* more than max_deletions=3"):
        run(iam, sts, remaining, max_deletions=3)
    assert aws.mutating_calls() == []
    run(iam, sts, remaining, max_deletions=5)
    assert sorted(u["UserName"] for u in iam.list_users()["Users"]) == ["your-username"]
