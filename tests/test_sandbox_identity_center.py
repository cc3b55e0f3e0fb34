"""The embedded AWS's Identity Center behaves like AWS where moto 5.2.5 does not, through boto3."""

from __future__ import annotations

import json
import re

import pytest
from botocore.exceptions import ClientError

from iamrunbook.core.identity_center_trust import reserved_role_arn
from iamrunbook.sandbox.calls import ACCOUNT_ID
from iamrunbook.sandbox.identity_center import RESERVED_PATH, sign_in

MEMBER = "210987654321"
POLICY = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                              "Resource": "*"}]})  # fmt: skip
ROLE_NAME = re.compile(r"AWSReservedSSO_AssumeAdminRole_[0-9a-f]{16}")


@pytest.fixture
def sso(aws):
    return aws.client("sso-admin")


@pytest.fixture
def instance(sso):
    return sso.list_instances()["Instances"][0]["InstanceArn"]


def _permission_set(sso, instance: str, *, reference: bool = True, **extra) -> str:
    arn = sso.create_permission_set(InstanceArn=instance, Name="AssumeAdminRole", SessionDuration="PT2H", **extra)[
        "PermissionSet"
    ]["PermissionSetArn"]
    if reference:
        sso.attach_customer_managed_policy_reference_to_permission_set(
            InstanceArn=instance, PermissionSetArn=arn,
            CustomerManagedPolicyReference={"Name": "AssumeAdminPolicy", "Path": "/iamrunbook/"},
        )  # fmt: skip
    return arn


def _policy(aws, account: str = ACCOUNT_ID) -> str:
    iam = aws.client("iam", account_id=account)
    return iam.create_policy(PolicyName="AssumeAdminPolicy", Path="/iamrunbook/", PolicyDocument=POLICY)["Policy"][
        "Arn"
    ]


def _assign(sso, instance: str, ps: str, account: str = ACCOUNT_ID, group: str = "g-1") -> dict:
    return sso.create_account_assignment(
        InstanceArn=instance, TargetId=account, TargetType="AWS_ACCOUNT", PermissionSetArn=ps,
        PrincipalType="GROUP", PrincipalId=group,
    )["AccountAssignmentCreationStatus"]  # fmt: skip


def _unassign(sso, instance: str, ps: str, account: str = ACCOUNT_ID, group: str = "g-1") -> dict:
    return sso.delete_account_assignment(
        InstanceArn=instance, TargetId=account, TargetType="AWS_ACCOUNT", PermissionSetArn=ps,
        PrincipalType="GROUP", PrincipalId=group,
    )["AccountAssignmentDeletionStatus"]  # fmt: skip


def _created(sso, instance: str, request: dict) -> dict:
    return sso.describe_account_assignment_creation_status(
        InstanceArn=instance, AccountAssignmentCreationRequestId=request["RequestId"]
    )["AccountAssignmentCreationStatus"]


def _reserved(aws, account: str = ACCOUNT_ID):
    roles = aws.client("iam", account_id=account).list_roles(PathPrefix=RESERVED_PATH)["Roles"]
    return [role for role in roles if role["RoleName"].startswith("AWSReservedSSO_")]


def test_an_assignment_creates_the_reserved_role_with_the_referenced_policy(aws, sso, instance):
    policy_arn = _policy(aws, MEMBER)
    ps = _permission_set(sso, instance)
    request = _assign(sso, instance, ps, MEMBER)
    assert request["Status"] == "IN_PROGRESS"
    assert _created(sso, instance, request)["Status"] == "SUCCEEDED"
    [role] = _reserved(aws, MEMBER)
    assert ROLE_NAME.fullmatch(role["RoleName"]) and role["Path"] == RESERVED_PATH
    iam = aws.client("iam", account_id=MEMBER)
    attached = iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [policy_arn]
    assert iam.get_role(RoleName=role["RoleName"])["Role"]["MaxSessionDuration"] == 7200
    assert _reserved(aws) == []  # only the target account gets the role


def test_a_missing_referenced_policy_fails_the_assignment_with_aws_reason(aws, sso, instance):
    ps = _permission_set(sso, instance)
    status = _created(sso, instance, _assign(sso, instance, ps))
    assert status["Status"] == "FAILED"
    wanted = f"arn:aws:iam::{ACCOUNT_ID}:policy/iamrunbook/AssumeAdminPolicy"
    assert status["FailureReason"] == f"Received a 404 status error: Not supported policy {wanted}."
    assert _reserved(aws) == []
    assert (
        sso.list_account_assignments(InstanceArn=instance, AccountId=ACCOUNT_ID, PermissionSetArn=ps)[
            "AccountAssignments"
        ]
        == []
    )


def test_iam_refuses_edits_to_a_reserved_role(aws, sso, instance, iam):
    _policy(aws)
    ps = _permission_set(sso, instance)
    _assign(sso, instance, ps)
    name = _reserved(aws)[0]["RoleName"]
    edits = [
        lambda: iam.delete_role(RoleName=name),
        lambda: iam.update_assume_role_policy(RoleName=name, PolicyDocument=POLICY),
        lambda: iam.put_role_policy(RoleName=name, PolicyName="x", PolicyDocument=POLICY),
        lambda: iam.attach_role_policy(RoleName=name, PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess"),
        lambda: iam.tag_role(RoleName=name, Tags=[{"Key": "k", "Value": "v"}]),
    ]
    for edit in edits:
        with pytest.raises(ClientError) as refused:
            edit()
        assert refused.value.response["Error"]["Code"] == "UnmodifiableEntity"
        assert name in refused.value.response["Error"]["Message"]
    assert iam.get_role(RoleName=name)["Role"]["Path"] == RESERVED_PATH  # still there, unchanged
    iam.create_role(RoleName="Ordinary", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17",
                    "Statement": []}))  # fmt: skip
    iam.tag_role(RoleName="Ordinary", Tags=[{"Key": "k", "Value": "v"}])  # other roles stay editable


def test_the_last_assignment_gone_deletes_the_role_and_a_new_one_gets_a_new_suffix(aws, sso, instance):
    _policy(aws)
    ps = _permission_set(sso, instance)
    _assign(sso, instance, ps, group="g-1")
    _assign(sso, instance, ps, group="g-2")
    [first] = _reserved(aws)
    deleted = _unassign(sso, instance, ps, group="g-1")
    assert [r["RoleName"] for r in _reserved(aws)] == [first["RoleName"]]  # g-2 still holds it
    status = sso.describe_account_assignment_deletion_status(
        InstanceArn=instance, AccountAssignmentDeletionRequestId=deleted["RequestId"]
    )["AccountAssignmentDeletionStatus"]
    assert status["Status"] == "SUCCEEDED"
    _unassign(sso, instance, ps, group="g-2")
    assert _reserved(aws) == []
    _assign(sso, instance, ps, group="g-1")
    [second] = _reserved(aws)
    assert ROLE_NAME.fullmatch(second["RoleName"]) and second["RoleName"] != first["RoleName"]


def test_provisioning_updates_the_role_and_reports_its_status(aws, sso, instance):
    first = _policy(aws)
    ps = _permission_set(sso, instance)
    _assign(sso, instance, ps)
    name = _reserved(aws)[0]["RoleName"]
    iam = aws.client("iam")
    other = iam.create_policy(PolicyName="Other", PolicyDocument=POLICY)["Policy"]["Arn"]
    sso.attach_customer_managed_policy_reference_to_permission_set(
        InstanceArn=instance, PermissionSetArn=ps, CustomerManagedPolicyReference={"Name": "Other"}
    )
    request = sso.provision_permission_set(
        InstanceArn=instance, PermissionSetArn=ps, TargetType="ALL_PROVISIONED_ACCOUNTS"
    )["PermissionSetProvisioningStatus"]
    assert request["Status"] == "IN_PROGRESS"
    status = sso.describe_permission_set_provisioning_status(
        InstanceArn=instance, ProvisionPermissionSetRequestId=request["RequestId"]
    )["PermissionSetProvisioningStatus"]
    assert status["Status"] == "SUCCEEDED" and status["PermissionSetArn"] == ps
    attached = {p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]}
    assert attached == {first, other}
    sso.attach_customer_managed_policy_reference_to_permission_set(
        InstanceArn=instance, PermissionSetArn=ps, CustomerManagedPolicyReference={"Name": "Absent"}
    )
    failed = sso.provision_permission_set(InstanceArn=instance, PermissionSetArn=ps, TargetId=ACCOUNT_ID,
                                          TargetType="AWS_ACCOUNT")["PermissionSetProvisioningStatus"]  # fmt: skip
    status = sso.describe_permission_set_provisioning_status(
        InstanceArn=instance, ProvisionPermissionSetRequestId=failed["RequestId"]
    )["PermissionSetProvisioningStatus"]
    assert status["Status"] == "FAILED" and "policy/Absent" in status["FailureReason"]
    with pytest.raises(ClientError) as unknown:
        sso.describe_permission_set_provisioning_status(InstanceArn=instance, ProvisionPermissionSetRequestId="0" * 36)
    assert unknown.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_permission_set_tags(sso, instance):
    ps = _permission_set(sso, instance, reference=False, Tags=[{"Key": "managed-by", "Value": "iamrunbook"}])
    assert sso.list_tags_for_resource(InstanceArn=instance, ResourceArn=ps)["Tags"] == [
        {"Key": "managed-by", "Value": "iamrunbook"}
    ]
    sso.tag_resource(InstanceArn=instance, ResourceArn=ps, Tags=[{"Key": "team", "Value": "ops"}])
    sso.untag_resource(InstanceArn=instance, ResourceArn=ps, TagKeys=["managed-by"])
    assert sso.list_tags_for_resource(InstanceArn=instance, ResourceArn=ps)["Tags"] == [{"Key": "team", "Value": "ops"}]


def test_at_most_ten_requests_in_flight(aws, sso, instance, no_backoff):
    _policy(aws)
    ps = _permission_set(sso, instance)
    aws.identity_center.settle_seconds = 60
    requests = [_assign(sso, instance, ps, group=f"g-{i}") for i in range(10)]
    assert {_created(sso, instance, r)["Status"] for r in requests} == {"IN_PROGRESS"}
    with pytest.raises(ClientError) as throttled:
        _assign(sso, instance, ps, group="g-10")
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    aws.identity_center.settle_seconds = 0  # as if a minute had passed
    assert {_created(sso, instance, r)["Status"] for r in requests} == {"SUCCEEDED"}
    assert _created(sso, instance, _assign(sso, instance, ps, group="g-10"))["Status"] == "SUCCEEDED"
    assert len(_reserved(aws)) == 1


def test_a_seeded_sign_in_is_a_user_authentication_event(aws, iam):
    sign_in(aws, "alice@example.com", "u-alice", days_ago=2)
    trail = aws.client("cloudtrail")
    events = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "UserAuthentication"}]
    )["Events"]
    [event] = events
    assert event["EventSource"] == "signin.amazonaws.com"
    detail = json.loads(event["CloudTrailEvent"])
    assert detail["additionalEventData"]["UserName"] == "alice@example.com"
    assert detail["additionalEventData"]["userId"] == "u-alice"
    assert "userName" not in detail["userIdentity"]


def test_reset_forgets_identity_center_state(aws, sso, instance):
    ps = _permission_set(sso, instance, reference=False, Tags=[{"Key": "k", "Value": "v"}])
    aws.identity_center.settle_seconds = 5
    aws.reset()
    assert aws.identity_center.settle_seconds == 0
    assert aws.client("sso-admin").list_tags_for_resource(InstanceArn=instance, ResourceArn=ps)["Tags"] == []


def test_the_reserved_role_arn_is_the_one_trusts_are_checked_against(aws, sso, instance):
    _policy(aws)
    _assign(sso, instance, _permission_set(sso, instance))
    [role] = _reserved(aws)
    suffix = role["RoleName"].rsplit("_", 1)[1]
    assert role["Arn"] == reserved_role_arn(ACCOUNT_ID, "AssumeAdminRole", suffix)


@pytest.fixture
def store(aws, sso):
    return aws.client("identitystore"), sso.list_instances()["Instances"][0]["IdentityStoreId"]


def _user(client, store_id: str, name: str, email: str | None = None) -> str:
    extra = {"Emails": [{"Value": email, "Type": "work", "Primary": True}]} if email else {}
    return client.create_user(IdentityStoreId=store_id, UserName=name, DisplayName=name,
                              Name={"GivenName": name, "FamilyName": name}, **extra)["UserId"]  # fmt: skip


def test_a_second_membership_of_the_same_user_is_refused(store):
    client, store_id = store
    user = _user(client, store_id, "alice@example.com")
    group = client.create_group(IdentityStoreId=store_id, DisplayName="AdminRoleUsers")["GroupId"]
    client.create_group_membership(IdentityStoreId=store_id, GroupId=group, MemberId={"UserId": user})
    with pytest.raises(ClientError) as refused:
        client.create_group_membership(IdentityStoreId=store_id, GroupId=group, MemberId={"UserId": user})
    assert refused.value.response["Error"]["Code"] == "ConflictException"
    assert len(client.list_group_memberships(IdentityStoreId=store_id, GroupId=group)["GroupMemberships"]) == 1


def test_deleting_a_user_removes_its_memberships(store):
    client, store_id = store
    user, other = _user(client, store_id, "alice"), _user(client, store_id, "bob")
    group = client.create_group(IdentityStoreId=store_id, DisplayName="AdminRoleUsers")["GroupId"]
    for member in (user, other):
        client.create_group_membership(IdentityStoreId=store_id, GroupId=group, MemberId={"UserId": member})
    client.delete_user(IdentityStoreId=store_id, UserId=user)
    memberships = client.list_group_memberships(IdentityStoreId=store_id, GroupId=group)["GroupMemberships"]
    assert [m["MemberId"]["UserId"] for m in memberships] == [other]


def test_get_user_id_by_email_when_some_users_have_none(store):
    client, store_id = store
    _user(client, store_id, "your-username")
    alice = _user(client, store_id, "alice@example.com", "alice@example.com")

    def by(path: str, value: str) -> str:
        return client.get_user_id(IdentityStoreId=store_id, AlternateIdentifier={
            "UniqueAttribute": {"AttributePath": path, "AttributeValue": value}})["UserId"]  # fmt: skip

    assert by("emails.value", "alice@example.com") == alice == by("userName", "alice@example.com")
    with pytest.raises(ClientError) as missing:
        by("emails.value", "nobody@example.com")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_a_permission_set_without_a_session_duration_provisions_with_an_hour(aws, sso, instance):
    _policy(aws)
    arn = sso.create_permission_set(InstanceArn=instance, Name="AssumeAdminRole")["PermissionSet"]["PermissionSetArn"]
    sso.attach_customer_managed_policy_reference_to_permission_set(
        InstanceArn=instance, PermissionSetArn=arn,
        CustomerManagedPolicyReference={"Name": "AssumeAdminPolicy", "Path": "/iamrunbook/"},
    )  # fmt: skip
    assert _created(sso, instance, _assign(sso, instance, arn))["Status"] == "SUCCEEDED"
    [role] = _reserved(aws)
    assert role["MaxSessionDuration"] == 3600
