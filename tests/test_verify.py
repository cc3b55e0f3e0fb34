"""Verify: the problems while the account differs from the spec, none once converged; addresses and outputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from examples import EXAMPLE_ADDRESSES

from iamrunbook.aws.executor import ApplyError
from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import policy_arn
from iamrunbook.core.plan import make_plan
from iamrunbook.core.spec import load_spec
from iamrunbook.core.verify import Problem, Verification, state_addresses, verify
from iamrunbook.flows.apply import apply_plan
from iamrunbook.sandbox import seed

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "123456789012"
ADMIN_ARN = policy_arn(ACCOUNT, "AssumeAdminRolePolicy")

EXPECTED_USER_ARNS = {
    "your-username": f"arn:aws:iam::{ACCOUNT}:user/your-username",
    "alice@example.com": f"arn:aws:iam::{ACCOUNT}:user/alice@example.com",
    "bob@example.com": f"arn:aws:iam::{ACCOUNT}:user/bob@example.com",
}
EXPECTED_POLICY_ARNS = {
    "admin": f"arn:aws:iam::{ACCOUNT}:policy/AssumeAdminRolePolicy",
    "data_engineer": f"arn:aws:iam::{ACCOUNT}:policy/AssumeDataEngineerRolePolicy",
    "infrastructure_admin": f"arn:aws:iam::{ACCOUNT}:policy/AssumeInfrastructureAdminRolePolicy",
}


def example_spec():
    return load_spec(iam_users_file=ROOT / "parameters" / "example.yaml")


def converge(iam, sts, spec):
    apply_plan(iam, make_plan(spec, read_inventory(iam, sts)))
    return read_inventory(iam, sts)


def test_converged_account(aws, iam, sts):
    seed.seed_roles(iam)
    inv = converge(iam, sts, example_spec())
    aws.clear_calls()
    result = verify(example_spec(), inv)
    assert aws.calls == []  # verify reads the inventory it is given; no AWS call of its own
    assert isinstance(result, Verification)
    assert result.ok
    assert result.problems == []
    assert result.problems_frame().empty
    assert list(result.problems_frame().columns) == ["kind", "subject", "message"]
    assert result.addresses == EXAMPLE_ADDRESSES
    assert result.iam_user_arns == EXPECTED_USER_ARNS
    assert result.assume_role_policy_arns == EXPECTED_POLICY_ARNS


def test_problems_listed_when_nothing_is_applied(aws, iam, sts):
    seed.seed_roles(iam)
    inv = read_inventory(iam, sts)
    result = verify(example_spec(), inv)
    assert not result.ok
    plan = make_plan(example_spec(), inv)
    assert result.problems == [Problem(c.kind, c.address, c.reason) for c in plan.changes]
    assert len(result.problems) == 12
    assert result.problems[0] == Problem(
        "create_policy",
        'aws_iam_policy.assume_role["admin"]',
        "create AssumeAdminRolePolicy (sts:AssumeRole on AdminRole)",
    )
    assert result.addresses == []
    assert result.iam_user_arns == {}
    assert result.assume_role_policy_arns == {}
    frame = result.problems_frame()
    assert len(frame) == 12
    assert frame.iloc[3].to_dict() == {
        "kind": "create_user",
        "subject": 'aws_iam_user.users["your-username"]',
        "message": "create user, tagged",
    }


def test_partly_applied_account(aws, iam, sts):
    seed.seed_roles(iam)
    plan = make_plan(example_spec(), read_inventory(iam, sts))
    aws.inject_fault("CreateUser", at=2, code="AccessDenied", status=403)  # alice is not created
    with pytest.raises(ApplyError):
        apply_plan(iam, plan)
    result = verify(example_spec(), read_inventory(iam, sts))
    assert not result.ok
    assert [(p.kind, p.subject) for p in result.problems] == [
        ("create_user", 'aws_iam_user.users["alice@example.com"]'),
        ("create_user", 'aws_iam_user.users["bob@example.com"]'),
        *[("attach", c.address) for c in plan.changes if c.kind == "attach"],
    ]
    assert result.addresses == [
        'aws_iam_policy.assume_role["admin"]',
        'aws_iam_policy.assume_role["data_engineer"]',
        'aws_iam_policy.assume_role["infrastructure_admin"]',
        'aws_iam_user.users["your-username"]',
    ]
    assert result.iam_user_arns == {"your-username": EXPECTED_USER_ARNS["your-username"]}
    assert result.assume_role_policy_arns == EXPECTED_POLICY_ARNS


def test_drift_is_a_problem(aws, iam, sts):
    seed.seed_roles(iam)
    converge(iam, sts, example_spec())
    iam.attach_user_policy(UserName="bob@example.com", PolicyArn=ADMIN_ARN)
    result = verify(example_spec(), read_inventory(iam, sts), check_access=False)
    assert [(p.kind, p.subject) for p in result.problems] == [
        ("detach", 'aws_iam_user_policy_attachment.user_roles["bob@example.com/admin"]')
    ]
    # An attachment the spec does not grant is not one of the addresses Terraform would hold.
    assert result.addresses == EXAMPLE_ADDRESSES


def test_access_by_another_path_is_a_problem(aws, iam, sts):
    seed.seed_roles(iam)
    converge(iam, sts, example_spec())
    admin_role = f"arn:aws:iam::{ACCOUNT}:role/AdminRole"
    iam.put_user_policy(
        UserName="bob@example.com",
        PolicyName="break-glass",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": admin_role}],
            }
        ),
    )
    inv = read_inventory(iam, sts)
    assert make_plan(example_spec(), inv).is_empty  # nothing the plan can fix: inline policies are not ours
    result = verify(example_spec(), inv)
    assert not result.ok
    assert result.problems == [
        Problem(
            "unexpected access",
            "bob@example.com",
            "bob@example.com can assume AdminRole via inline policy break-glass (not granted by the spec)",
        )
    ]
    assert verify(example_spec(), inv, check_access=False).ok
    assert result.addresses == EXAMPLE_ADDRESSES


def test_aws_managed_policy_access_is_seen(aws, iam, sts):
    """AdministratorAccess grants every role: verify needs the AWS-managed document from the sweep."""
    seed.seed_roles(iam)
    converge(iam, sts, example_spec())
    iam.create_user(UserName="ci-bot")
    iam.attach_user_policy(UserName="ci-bot", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    result = verify(example_spec(), read_inventory(iam, sts))
    assert sorted(p.message for p in result.problems) == [
        f"ci-bot can assume {role} via attached policy AdministratorAccess (not granted by the spec)"
        for role in ("AdminRole", "DataEngineerRole", "InfrastructureAdminRole")
    ]


def test_missing_role_is_a_clear_error(aws, iam, sts):
    seed.seed_roles(iam, {"admin": "AdminRole"})
    with pytest.raises(SpecError, match="IAM role 'DataEngineerRole' does not exist"):
        verify(example_spec(), read_inventory(iam, sts))


def test_addresses_use_the_spec_names(aws, iam, sts):
    seed.seed_roles(iam)
    iam.create_user(UserName="Bob@Example.com")
    spec = load_spec({"bob@example.com": {"description": "Bob", "roles": ["data_engineer"]}})
    inv = converge(iam, sts, spec)
    assert state_addresses(spec, inv) == [
        'aws_iam_policy.assume_role["admin"]',
        'aws_iam_policy.assume_role["data_engineer"]',
        'aws_iam_policy.assume_role["infrastructure_admin"]',
        'aws_iam_user.users["bob@example.com"]',
        'aws_iam_user_policy_attachment.user_roles["bob@example.com/data_engineer"]',
    ]
    result = verify(spec, inv)
    assert result.ok
    assert result.iam_user_arns == {"bob@example.com": f"arn:aws:iam::{ACCOUNT}:user/Bob@Example.com"}
