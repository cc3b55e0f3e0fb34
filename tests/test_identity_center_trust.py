"""A role's trust must admit Identity Center's reserved role, whatever its suffix; the runbook explains, never edits."""

from __future__ import annotations

import json

import pytest

from iamrunbook.core.identity_center_trust import reserved_role_arn, trust_admits_reserved_role, unassumable_roles

ACCOUNT = "123456789012"
PS = "AssumeAdminRole"
RESERVED = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/"


def trust(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(principal, condition: dict | None = None, action="sts:AssumeRole", effect="Allow") -> dict:
    stmt = {"Effect": effect, "Principal": principal, "Action": action}
    if condition:
        stmt["Condition"] = condition
    return stmt


ROOT = {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}


@pytest.mark.parametrize(
    "document",
    [
        trust(allow(ROOT)),
        trust(allow({"AWS": ACCOUNT})),
        trust(allow({"AWS": "*"}, {"ArnLike": {"aws:PrincipalArn": f"{RESERVED}*"}})),
        trust(allow(ROOT, {"ArnLike": {"aws:PrincipalArn": f"{RESERVED}AWSReservedSSO_{PS}_*"}})),
        trust(allow(ROOT, {"StringLike": {"aws:PrincipalArn": [f"{RESERVED}*", "arn:aws:iam::1:role/x"]}})),
        trust(allow({"Service": "ec2.amazonaws.com"}), allow(ROOT, action="sts:*")),
    ],
)
def test_trusts_that_admit_the_reserved_role_for_any_suffix(document):
    assert trust_admits_reserved_role(document, ACCOUNT, PS).admits


@pytest.mark.parametrize(
    ("document", "why"),
    [
        (trust(allow({"AWS": f"arn:aws:iam::{ACCOUNT}:user/alice"})), "no statement trusts the account"),
        (trust(allow({"AWS": "arn:aws:iam::999999999999:root"})), "no statement trusts the account"),
        (trust(allow({"AWS": f"{RESERVED}AWSReservedSSO_{PS}_0123456789abcdef"})), "names one reserved role by ARN"),
        (trust(allow(ROOT, {"ArnEquals": {"aws:PrincipalArn": f"{RESERVED}AWSReservedSSO_{PS}_0123456789abcdef"}})),
         "does not match"),
        (trust(allow(ROOT, {"ArnLike": {"aws:PrincipalArn": f"{RESERVED}AWSReservedSSO_OtherSet_*"}})),
         "does not match"),
        (trust(allow(ROOT, {"Bool": {"aws:MultiFactorAuthPresent": "true"}})), "cannot be proven"),
        (trust(allow(ROOT), allow({"AWS": "*"}, {"ArnLike": {"aws:PrincipalArn": f"{RESERVED}*"}}, effect="Deny")),
         "a Deny statement covers the reserved role"),
        (trust(allow(ROOT, action="sts:AssumeRoleWithSAML")), "no statement trusts"),
        ("{}", "no statement trusts"),
    ],
)  # fmt: skip
def test_trusts_that_do_not_and_why(document, why):
    verdict = trust_admits_reserved_role(document, ACCOUNT, PS)
    assert not verdict.admits and why in verdict.why


def test_outside_us_east_1_the_path_has_the_region():
    arn = reserved_role_arn(ACCOUNT, PS, "0123456789abcdef", "eu-west-1")
    assert arn == f"{RESERVED}eu-west-1/AWSReservedSSO_{PS}_0123456789abcdef"
    regional = trust(allow(ROOT, {"ArnLike": {"aws:PrincipalArn": f"{RESERVED}AWSReservedSSO_*"}}))
    assert not trust_admits_reserved_role(regional, ACCOUNT, PS, "eu-west-1").admits
    assert trust_admits_reserved_role(trust(allow(ROOT, {"ArnLike": {"aws:PrincipalArn": f"{RESERVED}*"}})),
                                      ACCOUNT, PS, "eu-west-1").admits  # fmt: skip


def test_a_plan_is_refused_for_each_granted_role_its_users_could_not_assume():
    trusts = {"AdminRole": trust(allow(ROOT)), "DataEngineerRole": trust(allow({"AWS": "arn:aws:iam::1:root"}))}
    granted = {"admin": "AdminRole", "data_engineer": "DataEngineerRole", "infrastructure_admin": "Missing"}
    problems = unassumable_roles(granted, trusts, ACCOUNT)
    assert [p.split(":", 1)[0] for p in problems] == ["roles.data_engineer", "roles.infrastructure_admin"]
    assert "AWSReservedSSO_AssumeDataEngineerRole_*" in problems[0]
    assert "never edits trust policies" in problems[0] and "ArnLike aws:PrincipalArn" in problems[0]
    assert unassumable_roles({"admin": "AdminRole"}, trusts, ACCOUNT) == []
