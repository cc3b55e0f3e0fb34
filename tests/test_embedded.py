"""The embedded AWS refuses what AWS refuses, logs without secrets, injects faults and runs hooks."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from urllib.parse import urlencode

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from keys import self_signed_certificate

from iamrunbook.aws import clients as aws_edge
from iamrunbook.sandbox import REDACTED, EmbeddedAws, is_mutating
from iamrunbook.sandbox.seed import new_password

ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
DOC = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}
)


def error_of(call) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


def no_retry(session, service="iam", validate=True):
    config = Config(retries={"mode": "standard", "total_max_attempts": 1}, parameter_validation=validate)
    return session.client(service, config=config)


def actions(calls) -> list[str]:
    return [call.action for call in calls]


# ----------------------------------------------------------------------------- the server itself


def test_binds_loopback_only_and_env_points_at_it(aws):
    host, port = aws.address
    assert host == "127.0.0.1"
    assert aws.endpoint == f"http://127.0.0.1:{port}"
    env = aws.env()
    assert env["AWS_ENDPOINT_URL"] == aws.endpoint
    assert env["AWS_DEFAULT_REGION"] == env["AWS_REGION"] == "us-east-1"
    assert not env["AWS_ACCESS_KEY_ID"].startswith(("AKIA", "ASIA"))
    # The server socket is bound to loopback, not to every interface.
    with socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_env_reaches_boto3_through_the_fixtures(aws, session):
    ident = aws_edge.caller_identity(session)
    assert ident["Account"] == "123456789012"
    assert actions(aws.calls) == ["GetCallerIdentity"]
    assert aws.calls[0].service == "sts"


def test_reset_empties_account_log_faults_and_hooks(aws, iam):
    iam.create_user(UserName="before-reset")
    aws.inject_fault("CreateUser", times=None)
    seen = []
    aws.on_mutation(seen.append)
    aws.reset()
    assert aws.calls == []
    iam.create_user(UserName="after-reset")  # no fault any more
    assert [u["UserName"] for u in aws_edge.paginate(iam, "list_users", "Users")] == ["after-reset"]
    assert seen == []


def test_aws_managed_policies_are_attachable(aws, iam):
    assert iam.get_policy(PolicyArn=ADMIN_ARN)["Policy"]["PolicyName"] == "AdministratorAccess"
    iam.create_user(UserName="admin-user")
    iam.attach_user_policy(UserName="admin-user", PolicyArn=ADMIN_ARN)
    attached = iam.list_attached_user_policies(UserName="admin-user")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [ADMIN_ARN]


def test_start_stop_as_context_manager():
    with EmbeddedAws(load_aws_managed_policies=False) as server:
        endpoint = server.endpoint
        iam = server.client("iam")
        iam.create_user(UserName="short-lived")
        assert actions(server.calls) == ["CreateUser"]
        with pytest.raises(ClientError):
            iam.get_policy(PolicyArn=ADMIN_ARN)
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(endpoint, timeout=2)


def test_moto_api_requests_are_not_logged(aws):
    request = urllib.request.Request(f"{aws.endpoint}/moto-api/reset", data=b"", method="POST")
    urllib.request.urlopen(request, timeout=5).read()
    assert aws.calls == []


# ----------------------------------------------------------------------------- strict parameters


def test_bad_user_name_is_refused_like_aws(aws, iam):
    code, status, message = error_of(lambda: iam.create_user(UserName="bad name!"))
    assert (code, status) == ("ValidationError", 400)
    assert "'bad name!' at 'userName'" in message
    assert r"[\w+=,.@-]+" in message
    assert error_of(lambda: iam.get_user(UserName="bad"))[0] == "NoSuchEntity"  # never reached moto
    refused = aws.calls[0]
    assert (refused.action, refused.status, refused.error_code) == ("CreateUser", 400, "ValidationError")


def test_java_word_class_is_ascii_only(aws, iam):
    assert error_of(lambda: iam.create_user(UserName="jösé"))[0] == "ValidationError"
    iam.create_user(UserName="alice@example.com")
    iam.create_user(UserName="first.last+ops=1,x_y-z")


@pytest.mark.parametrize(
    "value",
    ["admin, data_engineer", "Alice - Platform Engineer (promoted)", "a(b", "a)b"],
)
def test_tag_values_with_commas_or_parentheses_are_refused(aws, iam, value):
    tags = [{"Key": "Owner", "Value": "platform"}, {"Key": "Roles", "Value": value}]
    code, status, message = error_of(lambda: iam.create_user(UserName="tagged", Tags=tags))
    assert (code, status) == ("ValidationError", 400)
    assert "at 'tags.2.member.value'" in message
    iam.create_user(UserName="tagged")
    code, _, message = error_of(lambda: iam.tag_user(UserName="tagged", Tags=tags))
    assert code == "ValidationError"
    assert "tags.2.member.value" in message
    assert iam.list_user_tags(UserName="tagged")["Tags"] == []


def test_valid_tags_pass_including_unicode_letters_and_empty_value(aws, iam):
    tags = [
        {"Key": "Roles", "Value": "admin data_engineer"},
        {"Key": "Description", "Value": "Zoë - Platform Engineer: promoted/2024 @home +1 =ok"},
        {"Key": "Empty", "Value": ""},
    ]
    iam.create_user(UserName="zoe", Tags=tags)
    assert {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName="zoe")["Tags"]} == {
        t["Key"]: t["Value"] for t in tags
    }


def test_too_long_description_is_refused_by_the_server(aws, session):
    loose = no_retry(session, validate=False)  # botocore's own length check would stop it first
    code, status, message = error_of(
        lambda: loose.create_policy(PolicyName="Long", PolicyDocument=DOC, Description="x" * 1001)
    )
    assert (code, status) == ("ValidationError", 400)
    assert "at 'description'" in message and "less than or equal to 1000" in message
    loose.create_policy(PolicyName="Long", PolicyDocument=DOC, Description="x" * 1000)


def test_too_long_user_name_and_bad_enum_are_refused(aws, session):
    loose = no_retry(session, validate=False)
    code, _, message = error_of(lambda: loose.create_user(UserName="u" * 65))
    assert code == "ValidationError" and "length less than or equal to 64" in message
    loose.create_user(UserName="u" * 64)
    key = loose.create_access_key(UserName="u" * 64)["AccessKey"]["AccessKeyId"]
    code, _, message = error_of(lambda: loose.update_access_key(UserName="u" * 64, AccessKeyId=key, Status="Disabled"))
    assert code == "ValidationError" and "enum value set: [Active, Inactive" in message


def test_several_problems_are_reported_together(aws, iam):
    tags = [{"Key": "bad,key", "Value": "bad(value)"}]
    _, _, message = error_of(lambda: iam.create_user(UserName="bad name", Tags=tags))
    assert message.startswith("3 validation errors detected:")
    for where in ("'userName'", "'tags.1.member.key'", "'tags.1.member.value'"):
        assert where in message


def test_names_are_unique_regardless_of_case(aws, iam):
    iam.create_user(UserName="bob")
    code, status, _ = error_of(lambda: iam.create_user(UserName="Bob"))
    assert (code, status) == ("EntityAlreadyExists", 409)
    iam.create_role(RoleName="AdminRole", AssumeRolePolicyDocument=DOC)
    assert error_of(lambda: iam.create_role(RoleName="adminrole", AssumeRolePolicyDocument=DOC))[0] == (
        "EntityAlreadyExists"
    )


# ----------------------------------------------------------------------------- deleting policies


@pytest.mark.parametrize("holder", ["user", "group", "role"])
def test_delete_policy_refused_while_attached(aws, iam, holder):
    arn = iam.create_policy(PolicyName="Attached", PolicyDocument=DOC)["Policy"]["Arn"]
    attach, detach = {
        "user": (
            lambda: (iam.create_user(UserName="h"), iam.attach_user_policy(UserName="h", PolicyArn=arn)),
            lambda: iam.detach_user_policy(UserName="h", PolicyArn=arn),
        ),
        "group": (
            lambda: (iam.create_group(GroupName="h"), iam.attach_group_policy(GroupName="h", PolicyArn=arn)),
            lambda: iam.detach_group_policy(GroupName="h", PolicyArn=arn),
        ),
        "role": (
            lambda: (
                iam.create_role(RoleName="h", AssumeRolePolicyDocument=DOC),
                iam.attach_role_policy(RoleName="h", PolicyArn=arn),
            ),
            lambda: iam.detach_role_policy(RoleName="h", PolicyArn=arn),
        ),
    }[holder]
    attach()
    code, status, message = error_of(lambda: iam.delete_policy(PolicyArn=arn))
    assert (code, status) == ("DeleteConflict", 409)
    assert "attached" in message
    assert iam.get_policy(PolicyArn=arn)["Policy"]["Arn"] == arn  # still there
    detach()
    iam.delete_policy(PolicyArn=arn)
    assert error_of(lambda: iam.get_policy(PolicyArn=arn))[0] == "NoSuchEntity"


def test_delete_policy_refused_while_it_has_other_versions(aws, iam):
    arn = iam.create_policy(PolicyName="Versioned", PolicyDocument=DOC)["Policy"]["Arn"]
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=DOC, SetAsDefault=True)
    code, status, message = error_of(lambda: iam.delete_policy(PolicyArn=arn))
    assert (code, status) == ("DeleteConflict", 409)
    assert "version" in message
    assert error_of(lambda: iam.delete_policy_version(PolicyArn=arn, VersionId="v2"))[0] == "DeleteConflict"
    iam.delete_policy_version(PolicyArn=arn, VersionId="v1")
    iam.delete_policy(PolicyArn=arn)


def test_create_policy_version_limit_is_five(aws, iam):
    arn = iam.create_policy(PolicyName="Busy", PolicyDocument=DOC)["Policy"]["Arn"]
    for _ in range(4):
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=DOC, SetAsDefault=True)
    code, status, _ = error_of(lambda: iam.create_policy_version(PolicyArn=arn, PolicyDocument=DOC))
    assert (code, status) == ("LimitExceeded", 409)
    iam.delete_policy_version(PolicyArn=arn, VersionId="v1")
    iam.create_policy_version(PolicyArn=arn, PolicyDocument=DOC, SetAsDefault=True)


# ----------------------------------------------------------------------------- deleting users


def _mfa_on(iam, user):
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=user)["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(
        UserName=user, SerialNumber=serial, AuthenticationCode1="246810", AuthenticationCode2="135791"
    )
    return serial


#: credential kind -> (add it to user "leaver" and return a handle, remove it again)
CREDENTIALS = {
    "group membership": (
        lambda iam: (iam.create_group(GroupName="g"), iam.add_user_to_group(GroupName="g", UserName="leaver")),
        lambda iam, _: iam.remove_user_from_group(GroupName="g", UserName="leaver"),
    ),
    "inline policy": (
        lambda iam: iam.put_user_policy(UserName="leaver", PolicyName="own", PolicyDocument=DOC),
        lambda iam, _: iam.delete_user_policy(UserName="leaver", PolicyName="own"),
    ),
    "attached policy": (
        lambda iam: iam.attach_user_policy(UserName="leaver", PolicyArn=ADMIN_ARN),
        lambda iam, _: iam.detach_user_policy(UserName="leaver", PolicyArn=ADMIN_ARN),
    ),
    "access key": (
        lambda iam: iam.create_access_key(UserName="leaver")["AccessKey"]["AccessKeyId"],
        lambda iam, key_id: iam.delete_access_key(UserName="leaver", AccessKeyId=key_id),
    ),
    "SSH public key": (
        lambda iam: iam.upload_ssh_public_key(
            UserName="leaver", SSHPublicKeyBody="ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEmbeddedTestKeyOnly leaver"
        )["SSHPublicKey"]["SSHPublicKeyId"],
        lambda iam, key_id: iam.delete_ssh_public_key(UserName="leaver", SSHPublicKeyId=key_id),
    ),
    "MFA device": (
        lambda iam: _mfa_on(iam, "leaver"),
        lambda iam, serial: iam.deactivate_mfa_device(UserName="leaver", SerialNumber=serial),
    ),
    "login profile": (
        lambda iam: iam.create_login_profile(UserName="leaver", Password=new_password()),
        lambda iam, _: iam.delete_login_profile(UserName="leaver"),
    ),
    "signing certificate": (
        lambda iam: iam.upload_signing_certificate(
            UserName="leaver", CertificateBody=self_signed_certificate("embedded-test")
        )["Certificate"]["CertificateId"],
        lambda iam, cert_id: iam.delete_signing_certificate(UserName="leaver", CertificateId=cert_id),
    ),
}


@pytest.mark.parametrize("kind", list(CREDENTIALS))
def test_delete_user_refused_while_anything_remains(aws, iam, kind):
    add, remove = CREDENTIALS[kind]
    iam.create_user(UserName="leaver")
    handle = add(iam)
    code, status, message = error_of(lambda: iam.delete_user(UserName="leaver"))
    assert (code, status) == ("DeleteConflict", 409)
    assert message.startswith("Cannot delete entity, must ")
    iam.get_user(UserName="leaver")  # still there
    remove(iam, handle)
    iam.delete_user(UserName="leaver")
    assert error_of(lambda: iam.get_user(UserName="leaver"))[0] == "NoSuchEntity"


def test_virtual_mfa_device_must_be_deactivated_before_deletion(aws, iam):
    iam.create_user(UserName="mfa-user")
    serial = _mfa_on(iam, "mfa-user")
    assert error_of(lambda: iam.delete_virtual_mfa_device(SerialNumber=serial))[0] == "DeleteConflict"
    iam.deactivate_mfa_device(UserName="mfa-user", SerialNumber=serial)
    iam.delete_virtual_mfa_device(SerialNumber=serial)
    iam.delete_user(UserName="mfa-user")


def test_delete_group_refused_while_it_has_members_or_policies(aws, iam):
    iam.create_group(GroupName="team")
    iam.create_user(UserName="member")
    iam.add_user_to_group(GroupName="team", UserName="member")
    iam.attach_group_policy(GroupName="team", PolicyArn=ADMIN_ARN)
    assert error_of(lambda: iam.delete_group(GroupName="team"))[0] == "DeleteConflict"
    iam.remove_user_from_group(GroupName="team", UserName="member")
    assert error_of(lambda: iam.delete_group(GroupName="team"))[0] == "DeleteConflict"
    iam.detach_group_policy(GroupName="team", PolicyArn=ADMIN_ARN)
    iam.delete_group(GroupName="team")


# ----------------------------------------------------------------------------- faults and retries


def test_throttling_once_is_retried_by_botocore_standard_mode(aws, iam):
    fault = aws.inject_fault("CreateUser", code="Throttling", status=400)
    response = iam.create_user(UserName="patient")
    assert response["ResponseMetadata"]["RetryAttempts"] == 1
    attempts = [call for call in aws.calls if call.action == "CreateUser"]
    assert [(c.status, c.error_code, c.injected) for c in attempts] == [
        (400, "Throttling", True),
        (200, None, False),
    ]
    assert fault.fired == 1
    iam.get_user(UserName="patient")


def test_internal_failure_once_is_retried(aws, iam):
    aws.inject_fault("iam:CreateUser", code="InternalFailure", status=500)
    iam.create_user(UserName="lucky")
    assert [c.status for c in aws.calls if c.action == "CreateUser"] == [500, 200]


def test_persistent_internal_failure_raises_after_max_attempts(aws, iam):
    aws.inject_fault("CreateUser", times=None)
    code, status, _ = error_of(lambda: iam.create_user(UserName="doomed"))
    assert (code, status) == ("InternalFailure", 500)
    attempts = [c for c in aws.calls if c.action == "CreateUser"]
    assert len(attempts) == iam.meta.config.retries["total_max_attempts"] > 1
    assert all(c.injected for c in attempts)
    aws.clear_faults()
    assert error_of(lambda: iam.get_user(UserName="doomed"))[0] == "NoSuchEntity"  # faults never reach moto
    iam.create_user(UserName="doomed")


def test_fault_without_action_hits_the_nth_mutating_call_only(aws, session):
    iam = no_retry(session)
    aws.inject_fault(at=2, times=2, code="ServiceUnavailable", status=503)
    iam.create_user(UserName="one")  # mutating call 1
    iam.list_users()  # reads are not counted
    iam.get_user(UserName="one")
    assert error_of(lambda: iam.create_user(UserName="two"))[:2] == ("ServiceUnavailable", 503)  # call 2
    assert error_of(lambda: iam.tag_user(UserName="one", Tags=[{"Key": "k", "Value": "v"}]))[0] == (
        "ServiceUnavailable"
    )  # call 3
    iam.create_user(UserName="two")  # call 4: the fault is spent
    assert [c.injected for c in aws.mutating_calls()] == [False, True, True, False]


def test_faults_are_shaped_for_each_protocol(aws, session):
    aws.inject_fault("GetCallerIdentity", code="Throttling", status=400)
    aws.inject_fault("LookupEvents", code="ThrottlingException", status=400)
    sts, cloudtrail = no_retry(session, "sts"), no_retry(session, "cloudtrail")
    assert error_of(sts.get_caller_identity)[:2] == ("Throttling", 400)
    assert error_of(cloudtrail.lookup_events)[:2] == ("ThrottlingException", 400)
    assert sts.get_caller_identity()["Account"] == "123456789012"


def test_inject_fault_rejects_nonsense(aws):
    with pytest.raises(ValueError):
        aws.inject_fault("CreateUser", at=0)


def test_moto_gaps_answer_not_implemented_without_retries(aws, iam):
    code, status, _ = error_of(lambda: iam.list_service_specific_credentials(UserName="nobody"))
    assert (code, status) == ("NotImplemented", 501)
    assert actions(aws.calls) == ["ListServiceSpecificCredentials"]


# ----------------------------------------------------------------------------- the call log


def test_call_log_keeps_params_like_boto3_kwargs(aws, iam):
    tags = [{"Key": "Team", "Value": "data"}]
    iam.create_user(UserName="logged", Path="/people/", Tags=tags)
    iam.list_users(MaxItems=10)
    create, listing = aws.calls
    assert (create.service, create.action, create.ok) == ("iam", "CreateUser", True)
    assert create.params == {"UserName": "logged", "Path": "/people/", "Tags": tags}
    assert listing.params == {"MaxItems": 10}
    assert create.mutating and not listing.mutating
    assert aws.mutating_calls() == [create]
    aws.clear_calls()
    assert aws.calls == []


def test_call_log_has_no_secret_values(aws, iam):
    password, other_password = new_password(), new_password()  # random: no password literal in the repo
    iam.create_user(UserName="secretive")
    iam.create_login_profile(UserName="secretive", Password=password, PasswordResetRequired=True)
    iam.update_login_profile(UserName="secretive", Password=other_password)
    secret = iam.create_access_key(UserName="secretive")["AccessKey"]["SecretAccessKey"]
    serial = _mfa_on(iam, "secretive")
    recorded = repr(aws.calls)
    for value in (password, other_password, secret, "246810", "135791"):
        assert value not in recorded
    by_action = {call.action: call for call in aws.calls}
    assert by_action["CreateLoginProfile"].params == {
        "UserName": "secretive",
        "Password": REDACTED,
        "PasswordResetRequired": True,  # not a secret, kept
    }
    assert by_action["UpdateLoginProfile"].params["Password"] == REDACTED
    assert by_action["EnableMFADevice"].params["SerialNumber"] == serial
    assert by_action["EnableMFADevice"].params["AuthenticationCode1"] == REDACTED


def test_unknown_actions_are_logged_flat_and_still_without_secrets(aws):
    password = new_password()
    body = urlencode({"Action": "FrobnicateUser", "Version": "2010-05-08", "UserName": "x", "NewPassword": password})
    body += "&Force=true"
    request = urllib.request.Request(
        aws.endpoint,
        data=body.encode(),
        headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
            "Authorization": "AWS4-HMAC-SHA256 Credential=fake/20240101/us-east-1/iam/aws4_request, Signature=0",
        },
    )
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(request, timeout=5)
    (call,) = aws.calls
    assert (call.service, call.action, call.ok) == ("iam", "FrobnicateUser", False)
    assert call.params == {"UserName": "x", "NewPassword": REDACTED, "Force": "true"}
    assert password not in repr(call)


def test_other_services_are_logged_with_their_action_names(aws, session):
    aws_edge.client(session, "sts").get_caller_identity()
    aws_edge.client(session, "cloudtrail").lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateUser"}]
    )
    sts_call, trail_call = aws.calls
    assert (sts_call.service, sts_call.action, sts_call.mutating) == ("sts", "GetCallerIdentity", False)
    assert (trail_call.service, trail_call.action, trail_call.mutating) == ("cloudtrail", "LookupEvents", False)
    assert trail_call.params["LookupAttributes"][0]["AttributeValue"] == "CreateUser"
    assert aws.mutating_calls() == []


@pytest.mark.parametrize(
    ("service", "action", "expected"),
    [
        ("iam", "CreateUser", True),
        ("iam", "DeleteUser", True),
        ("iam", "TagUser", True),
        ("iam", "ListUsers", False),
        ("iam", "GetAccountAuthorizationDetails", False),
        ("iam", "GenerateCredentialReport", False),
        ("iam", "SimulatePrincipalPolicy", False),
        ("sts", "GetCallerIdentity", False),
        ("sts", "AssumeRole", False),
        ("cloudtrail", "LookupEvents", False),
    ],
)
def test_what_counts_as_mutating(service, action, expected):
    assert is_mutating(service, action) is expected


def test_lookup_events_answers_from_the_log(aws, session, iam):
    iam.create_user(UserName="tracked")
    iam.tag_user(UserName="tracked", Tags=[{"Key": "Team", "Value": "data"}])
    iam.create_user(UserName="other")
    cloudtrail = aws_edge.client(session, "cloudtrail")
    events = cloudtrail.lookup_events(LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": "tracked"}])[
        "Events"
    ]
    assert [e["EventName"] for e in events] == ["TagUser", "CreateUser"]  # newest first
    assert events[0]["EventSource"] == "iam.amazonaws.com"
    assert json.loads(events[1]["CloudTrailEvent"])["requestParameters"] == {"userName": "tracked"}
    paged = aws_edge.paginate(cloudtrail, "lookup_events", "Events", PaginationConfig={"PageSize": 1})
    assert [e["EventName"] for e in paged if e["ReadOnly"] == "false"] == ["CreateUser", "TagUser", "CreateUser"]


# ----------------------------------------------------------------------------- hooks


def test_on_mutation_runs_after_each_successful_mutating_call(aws, iam):
    seen = []

    def check(call):
        # From the hook: an internal client (unlogged) and the backend both see the state just made.
        names = [u["UserName"] for u in aws.client("iam", internal=True).list_users()["Users"]]
        seen.append((call.action, call.params.get("UserName"), sorted(names), sorted(aws.iam_backend().users)))

    remove = aws.on_mutation(check)
    iam.create_user(UserName="a")
    iam.list_users()  # a read: no hook
    error_of(lambda: iam.create_user(UserName="bad name"))  # refused: no hook
    iam.create_user(UserName="b")
    assert seen == [("CreateUser", "a", ["a"], ["a"]), ("CreateUser", "b", ["a", "b"], ["a", "b"])]
    assert actions(aws.calls) == ["CreateUser", "ListUsers", "CreateUser", "CreateUser"]  # hook calls unlogged
    remove()
    iam.create_user(UserName="c")
    assert len(seen) == 2


def test_hook_may_use_a_plain_client_on_the_same_server(aws, iam):
    counts = []
    aws.on_mutation(lambda call: counts.append(len(iam.list_users()["Users"])))
    iam.create_user(UserName="x")
    iam.create_user(UserName="y")
    assert counts == [1, 2]
    assert actions(aws.mutating_calls()) == ["CreateUser", "CreateUser"]


def test_hook_failure_is_kept_and_reraised(aws, iam):
    def invariant(call):
        assert call.params["UserName"] != "forbidden", "invariant broken"

    aws.on_mutation(invariant)
    iam.create_user(UserName="fine")
    iam.create_user(UserName="forbidden")  # the client still gets its answer
    assert len(aws.hook_errors) == 1
    with pytest.raises(AssertionError, match="invariant broken"):
        aws.raise_hook_errors()
    assert aws.hook_errors == []
