"""One embedded AWS, many accounts: an organization, assumed roles across accounts, per-account rules and logs."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from iamrunbook.aws import clients as aws_edge
from iamrunbook.base.names import DEFAULT_ROLES, MANAGED_BY_KEY, MANAGED_BY_VALUE
from iamrunbook.sandbox import ACCOUNT_ID
from iamrunbook.sandbox.org import ACCESS_ROLE, ADMIN_POLICY_ARN, BROAD_POLICY, OUS


def error_of(call) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def trust(principal: str, **extra) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole", **extra}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def allow_assume(resource: str = "*") -> str:
    statement = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": resource}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture
def org(organization):
    return organization


def assume(aws, role_arn: str, *, credentials=None, **kwargs):
    """Assume a role through the server and return an IAM client acting as that session."""
    sts = aws.client("sts", credentials=credentials)
    creds = sts.assume_role(RoleArn=role_arn, RoleSessionName="test-session", **kwargs)["Credentials"]
    return creds


# ----------------------------------------------------------------------------- the organization


def test_organization_has_management_and_three_members_in_two_ous(aws, org):
    assert org["management_account_id"] == ACCOUNT_ID
    assert set(org["ous"]) == set(OUS) and len(OUS) >= 2
    organizations = aws.client("organizations")
    listed = aws_edge.paginate(organizations, "list_accounts", "Accounts")
    assert sorted(a["Id"] for a in listed) == sorted([ACCOUNT_ID, *(m["id"] for m in org["accounts"].values())])
    assert len(org["accounts"]) == 3
    for name, member in org["accounts"].items():
        parents = organizations.list_parents(ChildId=member["id"])["Parents"]
        assert parents == [{"Id": member["ou_id"], "Type": "ORGANIZATIONAL_UNIT"}], name
    by_ou = {
        ou: sorted(a["Name"] for a in organizations.list_accounts_for_parent(ParentId=ou_id)["Accounts"])
        for ou, ou_id in org["ous"].items()
    }
    assert by_ou == {"Production": ["data", "legacy"], "Development": ["playground"]}
    children = organizations.list_children(ParentId=org["root_id"], ChildType="ORGANIZATIONAL_UNIT")["Children"]
    assert sorted(child["Id"] for child in children) == sorted(org["ous"].values())


def test_accounts_can_be_filtered_by_tag(aws, org):
    organizations = aws.client("organizations")
    tags = {
        member["name"]: {
            t["Key"]: t["Value"] for t in organizations.list_tags_for_resource(ResourceId=member["id"])["Tags"]
        }
        for member in org["accounts"].values()
    }
    assert {name for name, t in tags.items() if t.get("Environment") == "prod"} == {"legacy", "data"}
    assert {name for name, t in tags.items() if t.get("Team") == "platform"} == {"legacy", "playground"}
    assert tags == {name: member["tags"] for name, member in org["accounts"].items()}


def test_each_member_has_the_roles_and_its_own_mess(aws, org):
    for member in org["accounts"].values():
        backend = aws.iam_backend(member["id"])
        roles = {role.name: role for role in backend.roles.values()}
        assert set(roles) == {*DEFAULT_ROLES.values(), ACCESS_ROLE}
        (statement,) = json.loads(roles[ACCESS_ROLE].assume_role_policy_document)["Statement"]
        assert statement["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}
        assert ADMIN_POLICY_ARN in roles[ACCESS_ROLE].managed_policies
        for name in DEFAULT_ROLES.values():
            (statement,) = json.loads(roles[name].assume_role_policy_document)["Statement"]
            assert statement["Principal"] == {"AWS": f"arn:aws:iam::{member['id']}:root"}
    users = {name: sorted(aws.iam_backend(m["id"]).users) for name, m in org["accounts"].items()}
    assert users == {"legacy": ["your-username"], "data": ["dana"], "playground": ["ghost", "stranger"]}
    data = aws.iam_backend(org["accounts"]["data"]["id"])
    (statement,) = json.loads(data.managed_policies[org["accounts"]["data"]["policy_arn"]].versions[0].document)[
        "Statement"
    ]
    assert org["accounts"]["data"]["policy_arn"].endswith(f":policy/{BROAD_POLICY}")
    assert statement["Resource"] == "*"
    playground = aws.iam_backend(org["accounts"]["playground"]["id"])
    tags = aws.client("iam", account_id=org["accounts"]["playground"]["id"]).list_user_tags(UserName="ghost")["Tags"]
    assert tags == [{"Key": MANAGED_BY_KEY, "Value": MANAGED_BY_VALUE}]
    assert "sts:AssumeRole" in next(iter(playground.users["stranger"].policies.values()))
    assert sorted(aws.iam_backend().users) == []  # the management account is untouched


# ----------------------------------------------------------------------------- acting in a member


def test_management_credentials_assume_the_access_role_and_change_only_that_member(aws, org):
    legacy, data = org["accounts"]["legacy"], org["accounts"]["data"]
    creds = assume(aws, legacy["access_role_arn"])
    assert creds["AccessKeyId"].startswith("ASIA")
    member_iam = aws.client("iam", credentials=creds)
    identity = aws.client("sts", credentials=creds).get_caller_identity()
    assert identity["Account"] == legacy["id"]
    assert identity["Arn"] == f"arn:aws:sts::{legacy['id']}:assumed-role/{ACCESS_ROLE}/test-session"
    member_iam.create_user(UserName="new-in-legacy")
    member_iam.tag_user(UserName="new-in-legacy", Tags=[{"Key": "Team", "Value": "x"}])
    assert "new-in-legacy" in aws.iam_backend(legacy["id"]).users
    assert "new-in-legacy" not in aws.iam_backend(data["id"]).users
    assert "new-in-legacy" not in aws.iam_backend().users
    create = next(call for call in aws.calls if call.action == "CreateUser")
    assert create.account_id == legacy["id"]
    assert create.principal == identity["Arn"]
    assume_call = next(call for call in aws.calls if call.action == "AssumeRole")
    assert (assume_call.account_id, assume_call.principal) == (ACCOUNT_ID, f"arn:aws:sts::{ACCOUNT_ID}:user/moto")


def test_strict_rules_use_the_members_own_state(aws, org):
    legacy = org["accounts"]["legacy"]
    member_iam = aws.client("iam", credentials=assume(aws, legacy["access_role_arn"]))
    code, status, _ = error_of(lambda: member_iam.delete_policy(PolicyArn=legacy["policy_arn"]))
    assert (code, status) == ("DeleteConflict", 409)  # attached to your-username in that account
    assert error_of(lambda: member_iam.create_user(UserName="Your-Username"))[0] == "EntityAlreadyExists"
    aws.client("iam").create_user(UserName="Your-Username")  # the management account has no such user


def test_client_for_an_account_acts_as_its_administrator(aws, org):
    playground = org["accounts"]["playground"]
    iam = aws.client("iam", account_id=playground["id"])
    assert sorted(u["UserName"] for u in iam.list_users()["Users"]) == ["ghost", "stranger"]
    iam.attach_user_policy(UserName="ghost", PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")
    (call,) = [c for c in aws.calls if c.action == "AttachUserPolicy"]
    assert call.account_id == playground["id"]
    assert call.principal == f"arn:aws:sts::{playground['id']}:user/moto"
    internal = aws.client("iam", account_id=playground["id"], internal=True)
    assert len(internal.list_users()["Users"]) == 2
    assert [c.action for c in aws.calls] == ["ListUsers", "AttachUserPolicy"]


# ----------------------------------------------------------------------------- who may assume what


def test_an_account_without_the_role_cannot_be_entered(aws, org):
    organizations = aws.client("organizations", internal=True)
    status = organizations.create_account(AccountName="closed", Email="closed@example.com", RoleName="OtherRole")
    closed = status["CreateAccountStatus"]["AccountId"]
    arn = f"arn:aws:iam::{closed}:role/{ACCESS_ROLE}"
    code, status_code, message = error_of(lambda: assume(aws, arn))
    assert (code, status_code) == ("AccessDenied", 403)
    assert message == (
        f"User: arn:aws:sts::{ACCOUNT_ID}:user/moto is not authorized to perform: sts:AssumeRole on resource: {arn}"
    )
    assume(aws, f"arn:aws:iam::{closed}:role/OtherRole")  # the role it does have


def test_a_member_whose_trust_does_not_allow_the_caller_refuses(aws, org):
    data = org["accounts"]["data"]
    admin = aws.client("iam", account_id=data["id"])
    admin.update_assume_role_policy(RoleName=ACCESS_ROLE, PolicyDocument=trust("arn:aws:iam::111122223333:root"))
    assert error_of(lambda: assume(aws, data["access_role_arn"]))[:2] == ("AccessDenied", 403)
    assert data["id"] not in {call.account_id for call in aws.calls if call.action == "CreateUser"}


def test_a_user_needs_an_identity_policy_when_the_trust_names_only_the_account(aws):
    iam = aws.client("iam")
    arn = iam.create_role(
        RoleName="DataEngineerRole", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT_ID}:root")
    )["Role"]["Arn"]
    iam.create_user(UserName="bob")
    key = iam.create_access_key(UserName="bob")["AccessKey"]
    code, _, message = error_of(lambda: assume(aws, arn, credentials=key))
    assert code == "AccessDenied" and f"User: arn:aws:iam::{ACCOUNT_ID}:user/bob is not" in message
    iam.put_user_policy(UserName="bob", PolicyName="assume", PolicyDocument=allow_assume(arn))
    assert assume(aws, arn, credentials=key)["AccessKeyId"].startswith("ASIA")
    deny = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "sts:*", "Resource": "*"}]})
    iam.create_group(GroupName="frozen")
    iam.put_group_policy(GroupName="frozen", PolicyName="deny", PolicyDocument=deny)
    iam.add_user_to_group(GroupName="frozen", UserName="bob")
    assert error_of(lambda: assume(aws, arn, credentials=key))[0] == "AccessDenied"  # an explicit Deny wins


def test_a_trust_naming_the_user_needs_no_identity_policy(aws):
    iam = aws.client("iam")
    iam.create_user(UserName="carol")
    key = iam.create_access_key(UserName="carol")["AccessKey"]
    arn = iam.create_role(RoleName="Direct", AssumeRolePolicyDocument=trust(f"arn:aws:iam::{ACCOUNT_ID}:user/carol"))[
        "Role"
    ]["Arn"]
    assume(aws, arn, credentials=key)
    iam.create_user(UserName="dave")
    other = iam.create_access_key(UserName="dave")["AccessKey"]
    assert error_of(lambda: assume(aws, arn, credentials=other))[0] == "AccessDenied"


def test_cross_account_needs_the_callers_identity_policy_too(aws, org):
    data = org["accounts"]["data"]
    admin = aws.client("iam", account_id=data["id"])
    admin.update_assume_role_policy(RoleName="AdminRole", PolicyDocument=trust(ACCOUNT_ID))
    iam = aws.client("iam")
    iam.create_user(UserName="erin")
    key = iam.create_access_key(UserName="erin")["AccessKey"]
    target = data["roles"]["admin"]
    assert error_of(lambda: assume(aws, target, credentials=key))[0] == "AccessDenied"
    iam.put_user_policy(UserName="erin", PolicyName="cross", PolicyDocument=allow_assume(target))
    creds = assume(aws, target, credentials=key)
    assert aws.client("sts", credentials=creds).get_caller_identity()["Account"] == data["id"]


def test_mfa_condition_needs_the_users_own_device(aws):
    iam = aws.client("iam")
    condition = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    arn = iam.create_role(RoleName="Guarded", AssumeRolePolicyDocument=trust(ACCOUNT_ID, Condition=condition))["Role"][
        "Arn"
    ]
    iam.create_user(UserName="frank")
    iam.put_user_policy(UserName="frank", PolicyName="assume", PolicyDocument=allow_assume())
    key = iam.create_access_key(UserName="frank")["AccessKey"]
    assert error_of(lambda: assume(aws, arn, credentials=key))[0] == "AccessDenied"  # no MFA: the key is absent
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="frank")["VirtualMFADevice"]["SerialNumber"]
    wrong = f"arn:aws:iam::{ACCOUNT_ID}:mfa/someone-else"
    code, _, message = error_of(lambda: assume(aws, arn, credentials=key, SerialNumber=wrong, TokenCode="123456"))
    assert code == "AccessDenied" and "MultiFactorAuthentication failed" in message
    iam.enable_mfa_device(
        UserName="frank", SerialNumber=serial, AuthenticationCode1="111111", AuthenticationCode2="222222"
    )
    assume(aws, arn, credentials=key, SerialNumber=serial, TokenCode="123456")
    assume_calls = [c for c in aws.calls if c.action == "AssumeRole"]
    assert all(c.params.get("TokenCode") in (None, "<redacted>") for c in assume_calls)


def test_session_longer_than_the_roles_maximum_is_refused(aws):
    iam = aws.client("iam")
    arn = iam.create_role(RoleName="Short", AssumeRolePolicyDocument=trust(ACCOUNT_ID))["Role"]["Arn"]
    code, status, message = error_of(lambda: assume(aws, arn, DurationSeconds=7200))
    assert (code, status) == ("ValidationError", 400) and "MaxSessionDuration" in message
    assume(aws, arn, DurationSeconds=3600)


def test_member_accounts_have_aws_managed_policies(aws, org):
    playground = org["accounts"]["playground"]
    iam = aws.client("iam", account_id=playground["id"])
    policy = iam.get_policy(PolicyArn="arn:aws:iam::aws:policy/ReadOnlyAccess")["Policy"]
    assert policy["PolicyName"] == "ReadOnlyAccess"
    assert policy["AttachmentCount"] == 0  # fresh copies per account, not the management account's
