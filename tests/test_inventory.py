"""Inventory: one authorization-details sweep plus one STS call, never one call per user."""

from __future__ import annotations

import json
import urllib.parse
from datetime import datetime, timezone

import boto3
import pytest
from botocore.stub import Stubber

from iamrunbook.aws.sweep import (
    AWS_MANAGED_FILTER,
    ENTITY_FILTER,
    READ_ACTIONS,
    read_credential_report,
    read_inventory,
)
from iamrunbook.base.names import MANAGED_BY_KEY, MANAGED_BY_VALUE, caller_user_name
from iamrunbook.core.inventory import Inventory, decode_document, default_document
from iamrunbook.flows import reports
from iamrunbook.sandbox import seed

ACCOUNT = "123456789012"
CALLER = f"arn:aws:sts::{ACCOUNT}:user/moto"
READ_ONLY = "arn:aws:iam::aws:policy/ReadOnlyAccess"


def sweep_calls(aws):
    return [(c.service, c.action) for c in aws.calls]


# --- one sweep -----------------------------------------------------------------------------------------


def test_one_sweep_and_one_sts_call(aws, iam, sts, legacy_account):
    for name in ("alice@example.com", "bob@example.com", "carol"):
        iam.create_user(UserName=name, Tags=[{"Key": "Team", "Value": "data"}])
        iam.attach_user_policy(UserName=name, PolicyArn=legacy_account["policy_arn"])
    iam.create_group(GroupName="ops")
    iam.add_user_to_group(GroupName="ops", UserName="carol")
    aws.clear_calls()

    inv = read_inventory(iam, sts)

    assert sweep_calls(aws) == [("sts", "GetCallerIdentity"), ("iam", "GetAccountAuthorizationDetails")]
    sweep = aws.calls[1].params
    assert sweep["MaxItems"] == 1000
    assert sweep["Filter"] == ENTITY_FILTER  # no AWS-managed policy is in use: none fetched
    assert aws.mutating_calls() == []
    assert inv.account_id == ACCOUNT
    assert inv.caller_arn == CALLER
    assert inv.caller_user == "moto"
    assert set(inv.users) == {"your-username", "alice@example.com", "bob@example.com", "carol"}
    assert set(inv.roles) == {"AdminRole", "DataEngineerRole", "InfrastructureAdminRole"}
    assert set(inv.groups) == {"ops"}
    assert list(inv.policies) == [legacy_account["policy_arn"]]
    carol = inv.users["carol"]
    assert carol["GroupList"] == ["ops"]
    assert Inventory.tags(carol) == {"Team": "data"}
    assert Inventory.attached_arns(carol) == {legacy_account["policy_arn"]}


def test_eleven_hundred_users_in_one_sweep(aws, iam, sts):
    """Measured: 1,100 CreateUser calls over HTTP take ~9 s, so the users are put into moto's backend
    directly (~0.03 s). moto answers the sweep in one page (it does not paginate this call), so this
    proves the call count does not grow with users; test_sweep_follows_every_page proves pagination."""
    backend = aws.iam_backend()
    for i in range(1100):
        backend.create_user("us-east-1", f"user{i:04d}@example.com", tags=[{"Key": "Team", "Value": "t"}])
    aws.clear_calls()
    inv = read_inventory(iam, sts)
    assert len(inv.users) == 1100
    assert sweep_calls(aws) == [("sts", "GetCallerIdentity"), ("iam", "GetAccountAuthorizationDetails")]
    assert Inventory.tags(inv.users["user1099@example.com"]) == {"Team": "t"}


def _offline_client(service: str):
    """A client that never reaches the network: every answer below comes from the Stubber."""
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="offline", aws_secret_access_key="offline")


def _user_detail(name: str) -> dict:
    return {
        "UserName": name,
        "UserId": "AIDA" + name.upper().ljust(17, "X")[:17],
        "Arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
        "Path": "/",
        "CreateDate": datetime(2024, 1, 1, tzinfo=timezone.utc),
        "AttachedManagedPolicies": [],
    }


def test_sweep_follows_every_page():
    iam, sts = _offline_client("iam"), _offline_client("sts")
    with Stubber(iam) as iam_stub, Stubber(sts) as sts_stub:
        sts_stub.add_response("get_caller_identity", {"Account": ACCOUNT, "Arn": CALLER, "UserId": "AIDAMOTO"}, {})
        pages = [
            ({"Filter": ENTITY_FILTER, "MaxItems": 1000}, ["u1", "u2"], "page-2"),
            ({"Filter": ENTITY_FILTER, "MaxItems": 1000, "Marker": "page-2"}, ["u3"], "page-3"),
            ({"Filter": ENTITY_FILTER, "MaxItems": 1000, "Marker": "page-3"}, ["u4"], None),
        ]
        for expected, names, marker in pages:
            response = {"UserDetailList": [_user_detail(n) for n in names], "IsTruncated": marker is not None}
            if marker:
                response["Marker"] = marker
            iam_stub.add_response("get_account_authorization_details", response, expected)
        inv = read_inventory(iam, sts)
        iam_stub.assert_no_pending_responses()
        sts_stub.assert_no_pending_responses()
    assert list(inv.users) == ["u1", "u2", "u3", "u4"]


def test_aws_managed_policies_in_use_come_from_a_second_sweep():
    iam, sts = _offline_client("iam"), _offline_client("sts")
    bounded = _user_detail("ci-bot")
    bounded["AttachedManagedPolicies"] = [{"PolicyName": "ReadOnlyAccess", "PolicyArn": READ_ONLY}]
    bounded["PermissionsBoundary"] = {
        "PermissionsBoundaryType": "Policy",
        "PermissionsBoundaryArn": "arn:aws:iam::aws:policy/PowerUserAccess",
    }

    def aws_policy(name: str) -> dict:
        version = {"VersionId": "v1", "IsDefaultVersion": True, "Document": "%7B%7D"}
        return {"Arn": f"arn:aws:iam::aws:policy/{name}", "DefaultVersionId": "v1", "PolicyVersionList": [version]}

    with Stubber(iam) as iam_stub, Stubber(sts) as sts_stub:
        sts_stub.add_response("get_caller_identity", {"Account": ACCOUNT, "Arn": CALLER, "UserId": "X"}, {})
        iam_stub.add_response(
            "get_account_authorization_details",
            {"UserDetailList": [bounded], "IsTruncated": False},
            {"Filter": ENTITY_FILTER, "MaxItems": 1000},
        )
        iam_stub.add_response(
            "get_account_authorization_details",
            {
                "Policies": [aws_policy("ReadOnlyAccess"), aws_policy("PowerUserAccess"), aws_policy("Unused")],
                "IsTruncated": False,
            },
            {"Filter": AWS_MANAGED_FILTER, "MaxItems": 1000},
        )
        inv = read_inventory(iam, sts)
        iam_stub.assert_no_pending_responses()
    assert sorted(inv.policies) == ["arn:aws:iam::aws:policy/PowerUserAccess", READ_ONLY]
    frame = reports.policies_frame(inv)
    assert frame["aws_managed"].tolist() == [True, True]


# --- lookups -------------------------------------------------------------------------------------------


def test_lookups(aws, iam, sts, legacy_account):
    iam.create_user(
        UserName="Alice",
        Tags=[{"Key": MANAGED_BY_KEY, "Value": MANAGED_BY_VALUE}, {"Key": "Name", "Value": "Alice"}],
    )
    iam.create_group(GroupName="ops")
    iam.attach_group_policy(GroupName="ops", PolicyArn=legacy_account["policy_arn"])
    inv = read_inventory(iam, sts)
    assert inv.user_named("alice") is inv.users["Alice"]  # IAM user names ignore case
    assert inv.user_named("ALICE")["UserName"] == "Alice"
    assert inv.user_named("nobody") is None
    assert inv.is_managed(inv.users["Alice"])
    assert not inv.is_managed(inv.users["your-username"])
    assert inv.holders(legacy_account["policy_arn"]) == [("user", "your-username"), ("group", "ops")]
    assert inv.holders("arn:aws:iam::123456789012:policy/Nothing") == []
    assert inv.local_policy("AssumeRolesPolicy")["Arn"] == legacy_account["policy_arn"]
    assert inv.local_policy("Missing") is None
    assert default_document(inv.local_policy("AssumeRolesPolicy"))["Statement"][0]["Resource"] == sorted(
        legacy_account["roles"].values()
    )
    details = inv.details()
    assert {u["UserName"] for u in details["UserDetailList"]} == {"Alice", "your-username"}
    assert [g["GroupName"] for g in details["GroupDetailList"]] == ["ops"]
    assert len(details["RoleDetailList"]) == 3
    assert [p["Arn"] for p in details["Policies"]] == [legacy_account["policy_arn"]]


@pytest.mark.parametrize(
    ("arn", "name"),
    [
        ("arn:aws:sts::123456789012:user/moto", "moto"),
        ("arn:aws:iam::123456789012:user/alice@example.com", "alice@example.com"),
        ("arn:aws:iam::123456789012:user/division/team/bob", "bob"),
        ("arn:aws:sts::123456789012:assumed-role/AdminRole/session", None),
        ("arn:aws:iam::123456789012:root", None),
    ],
)
def test_caller_user_name(arn, name):
    assert caller_user_name(arn) == name


def test_decode_document():
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
    assert decode_document(doc) is doc
    assert decode_document(urllib.parse.quote(json.dumps(doc))) == doc
    assert decode_document(json.dumps(doc)) == doc
    assert decode_document(None) == {}


# --- tables for people ---------------------------------------------------------------------------------


def test_frames(aws, iam, sts):
    made = seed.seed_demo_account(iam)
    iam.create_group(GroupName="ops")
    iam.add_user_to_group(GroupName="ops", UserName="ci-bot")
    iam.attach_group_policy(GroupName="ops", PolicyArn=made["policy_arn"])
    iam.tag_user(
        UserName="alice@example.com",
        Tags=[{"Key": "ManagedBy", "Value": "iamrunbook"}, {"Key": "Description", "Value": "Alice - Ops"}],
    )
    inv = read_inventory(iam, sts)

    users = reports.users_frame(inv)
    assert list(users.columns) == [
        "user", "managed", "description", "attached_policies", "inline_policies", "groups", "tags", "created",
    ]  # fmt: skip
    assert users["user"].tolist() == ["alice@example.com", "ci-bot", "your-username"]
    rows = users.set_index("user")
    assert rows.loc["alice@example.com", "managed"]
    assert rows.loc["alice@example.com", "description"] == "Alice - Ops"
    assert rows.loc["alice@example.com", "tags"] == "Description=Alice - Ops; ManagedBy=iamrunbook"
    assert not rows.loc["your-username", "managed"]
    assert rows.loc["your-username", "attached_policies"] == "AssumeRolesPolicy"
    assert rows.loc["ci-bot", "inline_policies"] == "ci-bot-artifacts"
    assert rows.loc["ci-bot", "groups"] == "ops"

    attachments = reports.attachments_frame(inv)
    assert attachments[["kind", "entity", "policy"]].values.tolist() == [
        ["user", "your-username", "AssumeRolesPolicy"],
        ["group", "ops", "AssumeRolesPolicy"],
    ]
    assert attachments["policy_arn"].tolist() == [made["policy_arn"]] * 2

    policies = reports.policies_frame(inv)
    assert policies.to_dict("records") == [
        {
            "policy": "AssumeRolesPolicy",
            "arn": made["policy_arn"],
            "aws_managed": False,
            "default_version": "v1",
            "versions": 1,
            "attachments": 2,
        }
    ]


def test_credential_report(aws, iam, sts):
    made = seed.seed_demo_account(iam)
    aws.clear_calls()
    inv = read_inventory(iam, sts, with_credential_report=True)
    actions = [c.action for c in aws.calls]
    assert actions[:2] == ["GetCallerIdentity", "GetAccountAuthorizationDetails"]
    assert set(actions[2:]) == {"GenerateCredentialReport", "GetCredentialReport"}
    assert actions[-1] == "GetCredentialReport"
    assert aws.mutating_calls() == []
    creds = reports.credentials_frame(inv).set_index("user")
    assert set(creds.index) == set(made["users"])
    owner = creds.loc["your-username"]
    assert owner["password_enabled"] == "true"
    assert owner["mfa_active"] == "true"
    assert owner["access_key_1_active"] == "true"
    assert creds.loc["ci-bot", "password_enabled"] == "false"
    assert creds.loc["alice@example.com", "access_key_1_active"] == "false"
    # The report holds credential status, never a secret or a key id.
    assert "access_key_1_id" not in creds.columns
    assert all("Secret" not in str(v) for v in inv.credential_report)


def test_no_credential_report_unless_asked(aws, iam, sts):
    inv = read_inventory(iam, sts)
    assert inv.credential_report is None
    assert reports.credentials_frame(inv).empty
    assert "GenerateCredentialReport" not in [c.action for c in aws.calls]


def test_credential_report_that_never_completes_times_out():
    iam = _offline_client("iam")
    with Stubber(iam) as stub:
        stub.add_response("generate_credential_report", {"State": "STARTED"}, {})
        with pytest.raises(TimeoutError, match="not ready in time"):
            read_credential_report(iam, wait_seconds=0)


def test_report_actions_are_declared():
    assert {"iam:GenerateCredentialReport", "iam:GetCredentialReport"} <= set(READ_ACTIONS)
    assert {"iam:GetAccountAuthorizationDetails", "sts:GetCallerIdentity"} <= set(READ_ACTIONS)
