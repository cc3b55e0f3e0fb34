"""Offboarding against a strict moto: DeleteUser is refused while anything is left, as AWS does."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import boto3
import pandas as pd
import pytest
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError
from botocore.stub import Stubber
from keys import self_signed_certificate, ssh_public_key

from iamrunbook.aws import clients as aws_edge
from iamrunbook.aws import cloudtrail, credentials, deletion
from iamrunbook.base.errors import AwsActionError, SafetyError, SpecError
from iamrunbook.flows import offboard
from iamrunbook.flows.offboard import Step

PASSWORD = "Corr3ct-Horse-Battery!"
POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}
)


@pytest.fixture
def loaded(iam):
    """alice holds one of everything DeleteUser conflicts on; bob shares her group and a policy."""
    iam.create_group(GroupName="engineers")
    arns = [
        iam.create_policy(PolicyName=name, PolicyDocument=POLICY)["Policy"]["Arn"]
        for name in ("ReadBuckets", "ReadMore")
    ]
    iam.create_user(UserName="alice", Tags=[{"Key": "Team", "Value": "platform"}])
    keys = [iam.create_access_key(UserName="alice")["AccessKey"] for _ in range(2)]
    iam.create_login_profile(UserName="alice", Password=PASSWORD)
    device = iam.create_virtual_mfa_device(VirtualMFADeviceName="alice-phone")["VirtualMFADevice"]
    iam.enable_mfa_device(
        UserName="alice",
        SerialNumber=device["SerialNumber"],
        AuthenticationCode1="123456",
        AuthenticationCode2="654321",
    )
    ssh_body = ssh_public_key()
    ssh_id = iam.upload_ssh_public_key(UserName="alice", SSHPublicKeyBody=ssh_body)["SSHPublicKey"]["SSHPublicKeyId"]
    cert_body = self_signed_certificate("alice-signing")
    cert_id = iam.upload_signing_certificate(UserName="alice", CertificateBody=cert_body)["Certificate"][
        "CertificateId"
    ]
    iam.add_user_to_group(GroupName="engineers", UserName="alice")
    iam.put_user_policy(UserName="alice", PolicyName="scratch", PolicyDocument=POLICY)
    for arn in arns:
        iam.attach_user_policy(UserName="alice", PolicyArn=arn)

    iam.create_user(UserName="bob")
    bob_key = iam.create_access_key(UserName="bob")["AccessKey"]
    iam.add_user_to_group(GroupName="engineers", UserName="bob")
    iam.attach_user_policy(UserName="bob", PolicyArn=arns[0])
    iam.create_login_profile(UserName="bob", Password=PASSWORD)
    return {
        "keys": keys,
        "mfa": device,
        "ssh_id": ssh_id,
        "ssh_body": ssh_body,
        "cert_id": cert_id,
        "cert_body": cert_body,
        "policy_arns": arns,
        "bob_key": bob_key,
    }


def _user_exists(iam, name: str) -> bool:
    try:
        iam.get_user(UserName=name)
    except ClientError as exc:
        assert aws_edge.error_code(exc) == "NoSuchEntity"
        return False
    return True


def _assert_bob_untouched(iam, loaded) -> None:
    keys = iam.list_access_keys(UserName="bob")["AccessKeyMetadata"]
    assert [(k["AccessKeyId"], k["Status"]) for k in keys] == [(loaded["bob_key"]["AccessKeyId"], "Active")]
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="bob")["Groups"]] == ["engineers"]
    attached = iam.list_attached_user_policies(UserName="bob")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [loaded["policy_arns"][0]]
    assert iam.get_login_profile(UserName="bob")["LoginProfile"]["UserName"] == "bob"


# --- inventory ---------------------------------------------------------------------------------------


def test_inventory_lists_everything_and_no_secret(iam, loaded):
    inv = offboard.credential_inventory(iam, "alice")
    text = json.dumps(inv)  # JSON-serializable as it stands

    assert inv["exists"] is True
    assert sorted(k["access_key_id"] for k in inv["access_keys"]) == sorted(
        aws_edge.mask_key_id(k["AccessKeyId"]) for k in loaded["keys"]
    )
    assert {k["status"] for k in inv["access_keys"]} == {"Active"}
    assert all(k["created"] and k["last_used_service"] for k in inv["access_keys"])
    assert inv["login_profile"]["exists"] is True
    assert inv["login_profile"]["created"].endswith("+00:00")
    assert inv["mfa_devices"] == [
        {"serial": loaded["mfa"]["SerialNumber"], "virtual": True, "enabled": inv["mfa_devices"][0]["enabled"]}
    ]
    assert [k["ssh_public_key_id"] for k in inv["ssh_public_keys"]] == [loaded["ssh_id"]]
    assert [c["certificate_id"] for c in inv["signing_certificates"]] == [loaded["cert_id"]]
    assert inv["ssh_public_keys"][0]["uploaded"] and inv["signing_certificates"][0]["uploaded"]
    assert inv["service_specific_credentials"]["items"] == []
    assert inv["service_specific_credentials"]["status"].startswith("unsupported by this endpoint")
    assert inv["groups"] == ["engineers"]
    assert inv["inline_policies"] == ["scratch"]
    assert [(p["name"], p["arn"]) for p in inv["attached_policies"]] == [
        ("ReadBuckets", loaded["policy_arns"][0]),
        ("ReadMore", loaded["policy_arns"][1]),
    ]
    assert inv["tags"] == {"Team": "platform"}

    for key in loaded["keys"]:
        assert key["SecretAccessKey"] not in text
        assert key["AccessKeyId"] not in text
    assert PASSWORD not in text
    assert loaded["ssh_body"].split()[1] not in text
    assert "BEGIN CERTIFICATE" not in text
    assert loaded["mfa"]["Base32StringSeed"].decode() not in text


def test_inventory_tables_are_small_frames(iam, loaded):
    tables = offboard.inventory_tables(offboard.credential_inventory(iam, "alice"))
    assert all(isinstance(t, pd.DataFrame) for t in tables.values())
    summary = tables["summary"].set_index("what")["count"]
    assert summary["access keys"] == 2
    assert summary["console password"] == 1
    assert summary["MFA devices"] == 1
    assert summary["attached policies"] == 2
    assert len(tables["access_keys"]) == 2
    assert set(tables["policies"]["kind"]) == {"inline", "attached"}
    assert tables["service_specific_credentials"].empty
    assert list(tables["tags"].itertuples(index=False, name=None)) == [("Team", "platform")]


def test_inventory_of_missing_user_is_an_empty_record(iam):
    inv = offboard.credential_inventory(iam, "ghost")
    assert inv["exists"] is False
    assert inv["access_keys"] == [] and inv["groups"] == []
    assert offboard.inventory_tables(inv)["summary"]["count"].sum() == 0


# --- deletion ----------------------------------------------------------------------------------------


def test_delete_user_removes_everything_in_order(iam, loaded):
    steps = offboard.delete_user(iam, "alice")

    assert all(isinstance(s, Step) for s in steps)
    assert steps[-1] == Step("DeleteUser", "user alice", "done")
    assert not _user_exists(iam, "alice")
    actions = [s.action for s in steps]
    # groups, inline, attached, keys, ssh, virtual MFA, (no other MFA), login profile, certs, ssc, user
    assert actions == [
        "RemoveUserFromGroup",
        "DeleteUserPolicy",
        "DetachUserPolicy",
        "DetachUserPolicy",
        "DeleteAccessKey",
        "DeleteAccessKey",
        "DeleteSSHPublicKey",
        "DeactivateMFADevice",
        "DeleteVirtualMFADevice",
        "DeactivateMFADevice",
        "DeleteLoginProfile",
        "DeleteSigningCertificate",
        "DeleteServiceSpecificCredential",
        "DeleteUser",
    ]
    outcomes = {(s.action, s.target): s.outcome for s in steps}
    assert outcomes[("DeactivateMFADevice", "user alice")] == "skipped: nothing to remove"
    assert outcomes[("DeleteServiceSpecificCredential", "user alice")].startswith(
        "skipped: unsupported by this endpoint"
    )
    key_targets = [s.target for s in steps if s.action == "DeleteAccessKey"]
    assert sorted(key_targets) == sorted(aws_edge.mask_key_id(k["AccessKeyId"]) for k in loaded["keys"])
    assert all(s.outcome == "done" for s in steps if not s.outcome.startswith("skipped"))

    # the virtual device itself is gone, the shared group and policies are not
    serials = [d["SerialNumber"] for d in iam.list_virtual_mfa_devices()["VirtualMFADevices"]]
    assert loaded["mfa"]["SerialNumber"] not in serials
    assert iam.get_group(GroupName="engineers")["Group"]["GroupName"] == "engineers"
    for arn in loaded["policy_arns"]:
        assert iam.get_policy(PolicyArn=arn)["Policy"]["Arn"] == arn
    _assert_bob_untouched(iam, loaded)

    table = offboard.steps_table(steps)
    assert list(table.columns) == ["action", "target", "outcome"] and len(table) == len(steps)


def test_delete_user_again_is_already_gone(iam, loaded):
    offboard.delete_user(iam, "alice")
    assert offboard.delete_user(iam, "alice") == [Step("DeleteUser", "user alice", "already gone")]
    _assert_bob_untouched(iam, loaded)


def test_strict_server_refuses_a_premature_delete_user(iam, loaded):
    """The guard that makes the order test meaningful: deleting alice directly is a DeleteConflict."""
    with pytest.raises(ClientError) as info:
        iam.delete_user(UserName="alice")
    assert aws_edge.error_code(info.value) == "DeleteConflict"


def test_failure_midway_stops_and_a_rerun_completes(aws, iam, loaded):
    aws.inject_fault(action="DeleteSSHPublicKey", code="InternalFailure", times=None)
    with pytest.raises(offboard.OffboardStopped) as info:
        offboard.delete_user(iam, "alice")
    stopped = info.value
    assert isinstance(stopped, AwsActionError)
    assert stopped.step == f"DeleteSSHPublicKey {loaded['ssh_id']}"
    assert aws_edge.error_code(stopped.cause) == "InternalFailure"
    assert [s.action for s in stopped.steps][-2:] == ["DeleteAccessKey", "DeleteAccessKey"]
    assert _user_exists(iam, "alice")
    assert iam.list_groups_for_user(UserName="alice")["Groups"] == []
    assert iam.list_ssh_public_keys(UserName="alice")["SSHPublicKeys"]

    aws.clear_faults()
    steps = offboard.delete_user(iam, "alice")
    outcomes = {(s.action, s.target): s.outcome for s in steps}
    assert outcomes[("RemoveUserFromGroup", "user alice")] == "skipped: nothing to remove"
    assert outcomes[("DeleteAccessKey", "user alice")] == "skipped: nothing to remove"
    assert outcomes[("DeleteSSHPublicKey", loaded["ssh_id"])] == "done"
    assert steps[-1] == Step("DeleteUser", "user alice", "done")
    assert not _user_exists(iam, "alice")
    _assert_bob_untouched(iam, loaded)


def test_access_denied_on_service_specific_credentials_still_fails(aws, iam, loaded):
    aws.inject_fault(action="ListServiceSpecificCredentials", code="AccessDenied", times=None)
    with pytest.raises(offboard.OffboardStopped) as info:
        offboard.delete_user(iam, "alice")
    assert info.value.step == "ListServiceSpecificCredentials user alice"
    assert aws_edge.error_code(info.value.cause) == "AccessDenied"
    assert _user_exists(iam, "alice")


def test_each_step_is_a_no_op_once_the_user_is_gone(iam):
    iam.create_user(UserName="carol")
    iam.delete_user(UserName="carol")
    for name, step in offboard.ORDERED_STEPS:
        outcomes = {s.outcome for s in step(iam, "carol")}
        assert outcomes <= {"already gone"} or all(o.startswith("skipped: unsupported") for o in outcomes), name


def test_hardware_mfa_is_deactivated_not_deleted(iam):
    iam.create_user(UserName="dave")
    iam.enable_mfa_device(
        UserName="dave", SerialNumber="GAHT12345678", AuthenticationCode1="123456", AuthenticationCode2="654321"
    )
    inv = offboard.credential_inventory(iam, "dave")
    assert inv["mfa_devices"][0]["virtual"] is False
    steps = offboard.delete_user(iam, "dave")
    assert Step("DeactivateMFADevice", "GAHT12345678", "done") in steps
    assert not any(s.action == "DeleteVirtualMFADevice" and s.outcome == "done" for s in steps)
    assert not _user_exists(iam, "dave")


def test_unsupported_reason_tells_missing_api_from_refusal():
    def client_error(code: str, status: int) -> ClientError:
        return ClientError(
            {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op"
        )

    assert offboard.unsupported_reason(NotImplementedError("no")) is not None
    assert offboard.unsupported_reason(ResponseParserError("<html>")) is not None
    assert offboard.unsupported_reason(client_error("InvalidAction", 400)) is not None
    assert offboard.unsupported_reason(client_error("500", 500)) is not None
    assert offboard.unsupported_reason(client_error("AccessDenied", 403)) is None
    assert offboard.unsupported_reason(client_error("InternalFailure", 500)) is None
    assert offboard.unsupported_reason(client_error("Throttling", 400)) is None


# --- quick revocation --------------------------------------------------------------------------------


def test_revoke_access_deactivates_keys_and_removes_password(iam, loaded):
    steps = offboard.revoke_access(iam, "alice")
    keys = iam.list_access_keys(UserName="alice")["AccessKeyMetadata"]
    assert len(keys) == 2 and {k["Status"] for k in keys} == {"Inactive"}
    with pytest.raises(ClientError) as info:
        iam.get_login_profile(UserName="alice")
    assert aws_edge.error_code(info.value) == "NoSuchEntity"
    assert [s.outcome for s in steps] == ["done", "done", "done"]
    assert {s.target for s in steps if s.action == "UpdateAccessKey"} == {
        aws_edge.mask_key_id(k["AccessKeyId"]) for k in loaded["keys"]
    }

    again = offboard.revoke_access(iam, "alice")
    assert [s.outcome for s in again] == ["skipped: already inactive"] * 2 + ["already gone"]
    _assert_bob_untouched(iam, loaded)


def test_revoke_access_of_missing_user(iam):
    assert {s.outcome for s in offboard.revoke_access(iam, "ghost")} == {"already gone"}


def test_revoke_role_sessions_writes_the_console_deny_policy(iam):
    iam.create_role(RoleName="AdminRole", AssumeRolePolicyDocument=POLICY)
    cutoff = dt.datetime(2026, 3, 1, 14, 30, 5, tzinfo=dt.timezone(dt.timedelta(hours=2)))

    steps = offboard.revoke_role_sessions(iam, ["AdminRole", "NoSuchRole"], cutoff)

    assert steps == [
        Step("PutRolePolicy", "role AdminRole", "done"),
        Step("PutRolePolicy", "role NoSuchRole", "skipped: no such role"),
    ]
    got = iam.get_role_policy(RoleName="AdminRole", PolicyName="AWSRevokeOlderSessions")["PolicyDocument"]
    doc = json.loads(got) if isinstance(got, str) else got
    assert doc["Statement"] == [
        {
            "Effect": "Deny",
            "Action": ["*"],
            "Resource": ["*"],
            "Condition": {"DateLessThan": {"aws:TokenIssueTime": "2026-03-01T12:30:05Z"}},
        }
    ]
    # re-running moves the cut-off, still one policy
    later = dt.datetime(2026, 3, 2, tzinfo=dt.timezone.utc)
    offboard.revoke_role_sessions(iam, ["AdminRole"], later)
    assert iam.list_role_policies(RoleName="AdminRole")["PolicyNames"] == ["AWSRevokeOlderSessions"]
    got = iam.get_role_policy(RoleName="AdminRole", PolicyName="AWSRevokeOlderSessions")["PolicyDocument"]
    doc = json.loads(got) if isinstance(got, str) else got
    assert doc["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"] == "2026-03-02T00:00:00Z"


def test_revoke_role_sessions_refuses_a_naive_time(iam):
    with pytest.raises(SpecError, match="time zone"):
        offboard.revoke_role_sessions(iam, ["AdminRole"], dt.datetime(2026, 3, 1))


# --- safety ------------------------------------------------------------------------------------------


def test_check_offboard_refuses_a_user_still_in_the_spec():
    with pytest.raises(SafetyError, match="alice is still in iam_users: the next run would recreate them"):
        offboard.check_offboard("alice", {"alice", "bob"}, "arn:aws:iam::123456789012:user/admin")
    with pytest.raises(SafetyError, match="still in iam_users"):
        offboard.check_offboard("Alice", {"alice"}, "arn:aws:iam::123456789012:user/admin")


@pytest.mark.parametrize(
    "caller",
    [
        "arn:aws:iam::123456789012:user/alice",
        "arn:aws:iam::123456789012:user/staff/ops/alice",
        "arn:aws-us-gov:iam::123456789012:user/alice",
    ],
)
def test_check_offboard_refuses_the_caller_itself(caller):
    with pytest.raises(SafetyError, match="identity running this runbook"):
        offboard.check_offboard("alice", {"bob"}, caller)


@pytest.mark.parametrize(
    "caller",
    [
        "arn:aws:iam::123456789012:user/alice2",
        "arn:aws:sts::123456789012:assumed-role/alice/alice",
        "arn:aws:iam::123456789012:root",
    ],
)
def test_check_offboard_allows_another_caller(caller):
    assert offboard.check_offboard("alice", {"bob"}, caller) is None


# --- CloudTrail --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"), [("NotImplemented", 501), ("AccessDeniedException", 400), ("InternalFailure", 500)]
)
def test_recent_events_reports_an_endpoint_without_cloudtrail(aws, session, code, status):
    aws.inject_fault(action="LookupEvents", code=code, status=status, times=None)
    text, table = offboard.recent_events(session, "alice")
    assert text.startswith(f"CloudTrail not available from this endpoint: {code}")
    assert table.empty and "event_name" in table.columns


def test_recent_events_from_the_embedded_trail(iam, session):
    """The embedded server answers LookupEvents from its call log; every call there is by `moto`."""
    iam.create_user(UserName="erin")
    iam.list_users()
    iam.tag_user(UserName="erin", Tags=[{"Key": "Team", "Value": "data"}])
    iam.get_user(UserName="erin")

    text, table = offboard.recent_events(session, "moto", days=1)

    assert text == "2 write events by moto in the last 1 day (4 events scanned)"
    assert list(table["event_name"]) == ["TagUser", "CreateUser"]
    assert list(table["resources"]) == ["erin", "erin"]
    assert offboard.recent_events(session, "erin")[0].startswith("0 write events by erin")
    limited_text, limited = offboard.recent_events(session, "moto", max_events=1)
    assert list(limited["event_name"]) == ["TagUser"] and "events scanned" in limited_text


def test_recent_events_keeps_write_events_and_masks_keys(session, monkeypatch):
    cloudtrail = session.client("cloudtrail", region_name="us-east-1")
    stub = Stubber(cloudtrail)
    when = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.timezone.utc)

    def event(name: str, read_only: str, key: str) -> dict:
        detail = {"readOnly": read_only == "true", "sourceIPAddress": "198.51.100.7", "eventSource": "iam"}
        return {
            "EventId": name,
            "EventName": name,
            "ReadOnly": read_only,
            "AccessKeyId": key,
            "EventTime": when,
            "EventSource": "iam.amazonaws.com",
            "Username": "alice",
            "Resources": [{"ResourceType": "AWS::IAM::User", "ResourceName": "bob"}],
            "CloudTrailEvent": json.dumps(detail),
        }

    stub.add_response(
        "lookup_events",
        {
            "Events": [
                event("CreateAccessKey", "false", "AKIAIOSFODNN7EXAMPLE"),
                event("ListUsers", "true", "AKIAIOSFODNN7EXAMPLE"),
                event("AttachUserPolicy", "false", "ASIAIOSFODNN8EXAMPLE"),
            ]
        },
    )
    stub.activate()
    monkeypatch.setattr(aws_edge, "client", lambda _session, service: cloudtrail)

    status, table = offboard.recent_events(session, "alice", days=30)

    stub.assert_no_pending_responses()
    assert status == "2 write events by alice in the last 30 days (3 events scanned)"
    assert list(table["event_name"]) == ["CreateAccessKey", "AttachUserPolicy"]
    assert list(table["access_key"]) == ["AKIA************MPLE", "ASIA************MPLE"]
    assert "AKIAIOSFODNN7EXAMPLE" not in table.to_string()
    assert table["source_ip"].tolist() == ["198.51.100.7"] * 2
    assert table["time"].iloc[0] == "2026-01-05T09:00:00+00:00"


def test_least_privilege_lists_name_exactly_the_actions_called():
    """The offboarding's modules (offboard, credentials, deletion, cloudtrail) declare exactly what they call."""
    modules = (offboard, credentials, deletion, cloudtrail)
    source = "\n".join(Path(m.__file__).read_text() for m in modules)
    iam_methods = set(re.findall(r"\biam\.([a-z_]+)\(", source)) - {"get_paginator"}
    iam_methods |= set(re.findall(r'"((?:list|get)_[a-z_]+)"', source)) - {"list_service_specific_credentials"}
    iam_methods |= {"list_service_specific_credentials"}  # paged by hand: no paginator
    iam_methods |= set(re.findall(r'^\s*\("\w+", "\w+", "([a-z_]+)",', source, re.M))  # deletion._REMOVALS
    to_api = boto3.client("iam", region_name="us-east-1").meta.method_to_api_mapping
    called = {f"iam:{to_api[m]}" for m in iam_methods if m in to_api} | {"cloudtrail:LookupEvents"}
    assert 'get_paginator("lookup_events")' in source
    reads = set().union(*(m.READ_ACTIONS for m in modules))
    writes = set().union(*(m.WRITE_ACTIONS for m in modules))
    assert reads | writes == called
    assert not reads & writes
    assert {"cloudtrail:LookupEvents", "iam:ListServiceSpecificCredentials"} <= reads
    assert all(a.split(":")[1].startswith(("Get", "List", "Lookup")) for a in reads)
