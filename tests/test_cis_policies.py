"""CIS 1.16 over every principal: each admin grant named with where it is attached and who gets it.

One module-scoped account on the strict embedded AWS holds every shape at once: an admin policy on a role
only, on a group nobody is in, inline on a role, as `*:*`, with `Resource` as a list, with `NotResource`,
and the near-admin `NotAction` shapes (a customer policy and AWS's PowerUserAccess).
"""

from __future__ import annotations

import json

import boto3
import pytest
import strategies
from aws_env import pointed_at
from hypothesis import given, settings

from iamrunbook.aws import clients
from iamrunbook.aws.sweep import read_inventory
from iamrunbook.core import cis, cis_account, cis_policies
from iamrunbook.core.cis import ADMIN, FAIL, NEAR_ADMIN, PASS, WARN

ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
POWER_ARN = "arn:aws:iam::aws:policy/PowerUserAccess"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {
    "Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})  # fmt: skip


def doc(**statement) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", **statement}]})


@pytest.fixture(scope="module")
def policies(embedded_aws):
    """policy label -> its row in cis_policies.csv, the per-user rows, and the account rows."""
    with pointed_at(embedded_aws):
        iam = embedded_aws.client("iam", internal=True)
        account = embedded_aws.client("sts", internal=True).get_caller_identity()["Account"]

        def managed(name: str, **statement) -> str:
            iam.create_policy(PolicyName=name, PolicyDocument=doc(**statement))
            return f"arn:aws:iam::{account}:policy/{name}"

        for role in ("AdminOnlyRole", "InlineRole", "PowerRole"):
            iam.create_role(RoleName=role, AssumeRolePolicyDocument=TRUST)
        iam.attach_role_policy(RoleName="AdminOnlyRole", PolicyArn=ADMIN_ARN)
        everything = doc(Action="*", Resource="*")
        iam.put_role_policy(RoleName="InlineRole", PolicyName="everything", PolicyDocument=everything)
        iam.attach_role_policy(RoleName="PowerRole", PolicyArn=POWER_ARN)
        iam.create_group(GroupName="EmptyAdmins")
        iam.attach_group_policy(GroupName="EmptyAdmins", PolicyArn=managed("StarStar", Action="*:*", Resource="*"))
        iam.create_group(GroupName="admins")
        iam.attach_group_policy(GroupName="admins", PolicyArn=managed(
            "ListAdmin", Action=["s3:GetObject", "*"], Resource=["arn:aws:s3:::b", "*"]))  # fmt: skip
        for user in ("alice", "bob", "carol", "dave"):
            iam.create_user(UserName=user)
        iam.add_user_to_group(GroupName="admins", UserName="alice")
        iam.attach_user_policy(UserName="bob", PolicyArn=managed("AllButBucket", Action="*",
                                                                 NotResource="arn:aws:s3:::bucket"))  # fmt: skip
        iam.attach_user_policy(UserName="carol", PolicyArn=managed("NearAdmin", NotAction="iam:*", Resource="*"))
        iam.attach_user_policy(UserName="dave", PolicyArn=managed("S3All", Action="s3:*", Resource="*"))
        managed("Unattached", Action="*", Resource="*")
        session = boto3.Session(region_name="us-east-1")
        inv = read_inventory(clients.client(session, "iam"), clients.client(session, "sts"))
    found = cis_policies.policy_findings(inv)
    rows = {f"{r['kind']} {r['policy']}": r for r in cis_policies.frame(found).to_dict("records")}
    users = {(r["user"], r["cis"].split()[0]): r for r in cis.findings(inv)}
    return rows, users, cis_account.admin_rows(found)


@pytest.mark.parametrize(
    ("label", "attached_to", "users", "roles"),
    [
        ("aws-managed AdministratorAccess", "role AdminOnlyRole", "", "AdminOnlyRole"),
        ("customer-managed StarStar", "group EmptyAdmins", "", ""),
        ("inline everything", "role InlineRole", "", "InlineRole"),
        ("customer-managed ListAdmin", "group admins", "alice", ""),
        ("customer-managed AllButBucket", "user bob", "bob", ""),
    ],
)
def test_1_16_every_full_admin_policy_fails_named_with_where_it_is_attached(policies, label, attached_to, users,
                                                                             roles):  # fmt: skip
    rows, _, account = policies
    row = rows[label]
    assert (row["status"], row["cis"], row["attached_to"], row["users"], row["roles"]) == (
        FAIL, "1.16 (v5: 1.15)", attached_to, users, roles)  # fmt: skip
    assert row["statement"].startswith("statement 1: {") and row["fix"] == cis.CHECKS["no_admin"].fix
    assert any(a["status"] == FAIL and a["finding"] == f"attached to {attached_to}" for a in account)


def test_near_admin_notaction_is_a_warning_with_its_own_id_not_a_cis_failure(policies):
    rows, users, _ = policies
    near = (("customer-managed NearAdmin", "user carol"), ("aws-managed PowerUserAccess", "role PowerRole"))
    for label, holder in near:
        row = rows[label]
        assert (row["status"], row["cis"], row["attached_to"]) == (WARN, cis_policies.NEAR_ADMIN_ID, holder)
        assert row["fix"] == cis_policies.NEAR_ADMIN_FIX
    assert users[("carol", "1.16")]["status"] == PASS


def test_narrow_and_unattached_policies_are_not_failures(policies):
    rows, users, _ = policies
    assert rows["customer-managed S3All"]["status"] == PASS
    assert "customer-managed Unattached" not in rows  # the benchmark audits attached policies
    assert users[("dave", "1.16")]["status"] == PASS


def test_the_user_view_sees_notresource_admin_too_and_the_account_lists_every_principal(policies):
    rows, users, account = policies
    assert users[("bob", "1.16")]["finding"] == "allows *:* via attached AllButBucket"
    assert users[("alice", "1.16")]["finding"] == "allows *:* via group admins: attached ListAdmin"
    assert sorted(a["resource"] for a in account) == [
        "aws-managed AdministratorAccess", "customer-managed AllButBucket", "customer-managed ListAdmin",
        "customer-managed StarStar", "inline everything on role InlineRole",
    ]  # fmt: skip
    assert list(rows)[:5] == sorted(list(rows)[:5], key=lambda k: (rows[k]["kind"], rows[k]["policy"].lower()))


@pytest.mark.parametrize(
    ("statement", "verdict"),
    [
        ({"Action": "*", "NotResource": "arn:aws:s3:::bucket"}, ADMIN),  # every action on everything else
        ({"Action": "*", "NotResource": "arn:aws:iam::*:role/*"}, None),  # leaves IAM out: not judged admin
        ({"NotAction": "iam:*", "Resource": "*"}, NEAR_ADMIN),
        ({"NotAction": ["iam:*", "organizations:*", "account:*"], "Resource": "*"}, NEAR_ADMIN),  # PowerUser
        ({"NotAction": "s3:*", "Resource": "*"}, ADMIN),  # leaves iam:* in: admin in effect
        ({"NotAction": "iam:CreateUser", "Resource": "*"}, ADMIN),  # AttachUserPolicy still allowed
        ({"NotAction": "*", "Resource": "*"}, None),
        ({"NotAction": "iam:*", "Resource": "arn:aws:s3:::b"}, None),
        ({"Action": "*:*", "Resource": "*", "Effect": "Deny"}, None),
    ],
)
def test_statements_are_judged_by_effect(statement, verdict):
    assert cis.statement_verdict({"Effect": "Allow", **statement}) == verdict


@settings(max_examples=25)
@given(strategies.accounts())
def test_the_user_view_and_the_policy_view_agree_on_every_random_account(account):
    """A user fails 1.16 exactly when some full-admin policy reaches them (directly or through a group), and
    every full-admin policy attached anywhere is a FAIL row of its own, wherever it sits."""
    inv = account.inventory()
    found = cis_policies.policy_findings(inv)
    reached = {user for f in found if f.status == FAIL for user in f.users}
    failing_users = {r["user"] for r in cis.findings(inv) if r["cis"].startswith("1.16 ") and r["status"] == FAIL}
    assert failing_users == reached
    for f in found:
        assert (f.status == FAIL) == any(v == ADMIN for _, _, v in f.statements)
        assert f.attached_to and set(f.users) <= set(inv.users) and set(f.roles) <= set(inv.roles)
