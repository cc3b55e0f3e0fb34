"""The embedded AWS authorises Identity Center requests on every resource they name, as AWS does, so a runner
holding only the printed grant_via: identity_center policy can be run against it."""

from __future__ import annotations

import dataclasses

import pytest
from botocore.exceptions import ClientError

from iamrunbook.base.names import MANAGED_BY_KEY, MANAGED_BY_VALUE
from iamrunbook.cli import permissions
from iamrunbook.cli.runner_scope_center import CenterScope
from iamrunbook.sandbox import authorize
from iamrunbook.sandbox.authorize_center import center_resources, permission_set_arn
from iamrunbook.sandbox.calls import ACCOUNT_ID

INSTANCE = "arn:aws:sso:::instance/ssoins-1234567890abcdef"
MOTO_PS = f"{INSTANCE}/ps-0123456789abcdef"
PS = "arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-0123456789abcdef"
TAG = [{"Key": MANAGED_BY_KEY, "Value": MANAGED_BY_VALUE}]


def test_an_assignment_names_the_instance_the_tagged_permission_set_and_the_account():
    params = {"InstanceArn": INSTANCE, "PermissionSetArn": MOTO_PS, "TargetId": "210987654321",
              "TargetType": "AWS_ACCOUNT", "PrincipalType": "GROUP", "PrincipalId": "g-1"}  # fmt: skip
    found = center_resources(
        "aws", ACCOUNT_ID, "sso", "CreateAccountAssignment", params, lambda arn: {"ManagedBy": "x"}
    )
    assert found == [
        (INSTANCE, {}),
        (PS, {"aws:resourcetag/managedby": "x"}),
        ("arn:aws:sso:::account/210987654321", {}),
    ]
    assert permission_set_arn(PS) == PS  # already AWS's form


def test_creating_and_tagging_carry_the_request_tags_and_listing_instances_names_nothing():
    create = center_resources("aws", ACCOUNT_ID, "sso", "CreatePermissionSet", {"InstanceArn": INSTANCE, "Tags": TAG})
    tags = {"aws:tagkeys": [MANAGED_BY_KEY], f"aws:requesttag/{MANAGED_BY_KEY.lower()}": MANAGED_BY_VALUE}
    assert create == [(INSTANCE, tags), ("arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/*", tags)]
    tag = center_resources("aws", ACCOUNT_ID, "sso", "TagResource", {"InstanceArn": INSTANCE, "ResourceArn": MOTO_PS,
                                                                      "Tags": TAG})  # fmt: skip
    assert tag[1] == (PS, tags)
    assert center_resources("aws", ACCOUNT_ID, "sso", "ListInstances", {}) == [("*", {})]


def test_identity_store_requests_name_the_store_and_their_entities():
    store = f"arn:aws:identitystore::{ACCOUNT_ID}:identitystore/d-1234567890"
    member = {"IdentityStoreId": "d-1234567890", "GroupId": "g-1", "MemberId": {"UserId": "u-1"}}
    assert center_resources("aws", ACCOUNT_ID, "identitystore", "CreateGroupMembership", member) == [
        (store, {}), ("arn:aws:identitystore:::group/g-1", {}), ("arn:aws:identitystore:::user/u-1", {})]  # fmt: skip
    assert center_resources("aws", ACCOUNT_ID, "identitystore", "GetUserId", {"IdentityStoreId": "d-1234567890"}) == [
        (store, {}), ("arn:aws:identitystore:::user/*", {})]  # fmt: skip
    assert center_resources("aws-us-gov", "1", "identitystore", "CreateUser", {})[0][0] == (
        "arn:aws-us-gov:identitystore::1:identitystore/*")  # fmt: skip


@pytest.fixture
def runner(aws):
    """An IAM user holding only the printed grant_via: identity_center apply policy, its key enforced."""
    admin, sso = aws.client("iam", internal=True), aws.client("sso-admin", internal=True)
    instance = sso.list_instances()["Instances"][0]
    scope = permissions.scope_for({"grant_via": "identity_center"}, account_id=ACCOUNT_ID)
    # moto's store ids are not hex (AWS's are d-<10 hex>, which the parameter checks): the scope is set directly
    scope = dataclasses.replace(scope, center=CenterScope(instance["InstanceArn"], instance["IdentityStoreId"]))
    document = permissions.runner_policy_json(True, scope)
    arn = admin.create_policy(PolicyName="IamrunbookRunner", PolicyDocument=document)["Policy"]["Arn"]
    admin.create_user(UserName="runner")
    admin.attach_user_policy(UserName="runner", PolicyArn=arn)
    key = admin.create_access_key(UserName="runner")["AccessKey"]
    authorize.enforce(key["AccessKeyId"])
    try:
        yield {"aws": aws, "key": key, "instance": instance, "sso": sso}
    finally:
        authorize.release(key["AccessKeyId"])


def _refused(call) -> bool:
    try:
        call()
    except ClientError as e:
        return e.response["Error"]["Code"] == "AccessDenied"
    return False


@pytest.mark.e2e
def test_the_runner_makes_its_own_path_and_is_refused_on_everything_else(runner):
    aws, instance, admin_sso = runner["aws"], runner["instance"]["InstanceArn"], runner["sso"]
    sso, store = aws.client("sso-admin", credentials=runner["key"]), aws.client("identitystore",
                                                                                credentials=runner["key"])  # fmt: skip
    store_id = runner["instance"]["IdentityStoreId"]
    assert sso.list_instances()["Instances"][0]["InstanceArn"] == instance
    assert _refused(lambda: sso.create_permission_set(InstanceArn=instance, Name="AssumeNoTag"))
    own = sso.create_permission_set(InstanceArn=instance, Name="AssumeAdminRole", Tags=TAG, SessionDuration="PT1H")[
        "PermissionSet"
    ]
    foreign = admin_sso.create_permission_set(InstanceArn=instance, Name="AdministratorAccess")["PermissionSet"]
    group = store.create_group(IdentityStoreId=store_id, DisplayName="AdminRoleUsers")["GroupId"]
    user = store.create_user(IdentityStoreId=store_id, UserName="alice@example.com", DisplayName="Alice",
                             Name={"GivenName": "Alice", "FamilyName": "Example"})["UserId"]  # fmt: skip
    store.create_group_membership(IdentityStoreId=store_id, GroupId=group, MemberId={"UserId": user})
    assert store.get_user_id(IdentityStoreId=store_id, AlternateIdentifier={"UniqueAttribute": {
        "AttributePath": "userName", "AttributeValue": "alice@example.com"}})["UserId"] == user  # fmt: skip

    def assign(ps: str, account: str = ACCOUNT_ID):
        return sso.create_account_assignment(InstanceArn=instance, TargetId=account, TargetType="AWS_ACCOUNT",
                                             PermissionSetArn=ps, PrincipalType="GROUP", PrincipalId=group)  # fmt: skip

    assert _refused(lambda: assign(foreign["PermissionSetArn"]))
    request = assign(own["PermissionSetArn"])["AccountAssignmentCreationStatus"]["RequestId"]
    status = sso.describe_account_assignment_creation_status(
        InstanceArn=instance, AccountAssignmentCreationRequestId=request)  # fmt: skip
    assert status["AccountAssignmentCreationStatus"]["Status"] == "SUCCEEDED"
    assert _refused(lambda: assign(own["PermissionSetArn"], "999999999999"))
    reference = {"Name": "AssumeAdminRolePolicy", "Path": "/"}
    assert _refused(
        lambda: sso.attach_customer_managed_policy_reference_to_permission_set(
            InstanceArn=instance, PermissionSetArn=foreign["PermissionSetArn"], CustomerManagedPolicyReference=reference
        )
    )
    sso.attach_customer_managed_policy_reference_to_permission_set(
        InstanceArn=instance, PermissionSetArn=own["PermissionSetArn"], CustomerManagedPolicyReference=reference
    )
    admin_sso.tag_resource(InstanceArn=instance, ResourceArn=foreign["PermissionSetArn"],
                           Tags=[{"Key": MANAGED_BY_KEY, "Value": "terraform"}])  # fmt: skip
    assert _refused(lambda: sso.tag_resource(InstanceArn=instance, ResourceArn=foreign["PermissionSetArn"], Tags=TAG))
    assert _refused(lambda: store.create_user(IdentityStoreId="d-9999999999", UserName="mallory", DisplayName="M",
                                              Name={"GivenName": "M", "FamilyName": "M"}))  # fmt: skip
    listed = sso.list_account_assignments(InstanceArn=instance, AccountId=ACCOUNT_ID,
                                          PermissionSetArn=foreign["PermissionSetArn"])  # fmt: skip
    assert listed["AccountAssignments"] == []  # reading foreign permission sets is allowed: the sweep must
