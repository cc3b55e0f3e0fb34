"""What an access review reads, answered as AWS answers it: CloudTrail AssumeRole events, the credential
report, login profiles and access-key last use, with back-dated history seeded straight into the sandbox."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError
from keys import self_signed_certificate

from iamrunbook.aws import clients as aws_edge
from iamrunbook.aws.sweep import read_credential_report
from iamrunbook.sandbox import ACCOUNT_ID
from iamrunbook.sandbox.cloudtrail import RETENTION
from iamrunbook.sandbox.history import seed_assume_role_history, set_credential_history
from iamrunbook.sandbox.org import seed_organization
from iamrunbook.sandbox.seed import new_password, seed_roles

ASSUME_ROLE = [{"AttributeKey": "EventName", "AttributeValue": "AssumeRole"}]


def error_code(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"]


@pytest.fixture
def cloudtrail(session):
    return aws_edge.client(session, "cloudtrail")


@pytest.fixture
def roles(iam):
    return seed_roles(iam, account_id=ACCOUNT_ID)


def user_with_key(iam, name: str, *, may_assume: bool = True) -> dict:
    iam.create_user(UserName=name)
    if may_assume:
        document = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
        }
        iam.put_user_policy(UserName=name, PolicyName="assume", PolicyDocument=json.dumps(document))
    return iam.create_access_key(UserName=name)["AccessKey"]


def ago(days: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=days)


# ----------------------------------------------------------------------------- a user's own key


def test_a_users_own_access_key_works_and_is_attributed_to_the_user(aws, iam):
    key = user_with_key(iam, "bob", may_assume=False)
    identity = aws.client("sts", credentials=key).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/bob"
    call = aws.calls[-1]
    assert (call.action, call.principal, call.account_id) == ("GetCallerIdentity", identity["Arn"], ACCOUNT_ID)
    assert key["SecretAccessKey"] not in repr(aws.calls)


def test_inactive_and_deleted_keys_are_refused_like_aws(aws, iam):
    key = user_with_key(iam, "leaver", may_assume=False)
    as_leaver = aws.client("iam", credentials=key)
    as_leaver.get_user()
    iam.update_access_key(UserName="leaver", AccessKeyId=key["AccessKeyId"], Status="Inactive")
    assert error_code(as_leaver.get_user) == "InvalidClientTokenId"
    iam.delete_access_key(UserName="leaver", AccessKeyId=key["AccessKeyId"])
    assert error_code(aws.client("sts", credentials=key).get_caller_identity) == "InvalidClientTokenId"
    assert error_code(aws.client("s3", credentials=key).list_buckets) == "InvalidAccessKeyId"


# ----------------------------------------------------------------------------- CloudTrail


def test_assume_role_events_name_the_user_the_time_and_the_role(aws, iam, cloudtrail, roles):
    bob = user_with_key(iam, "bob")
    alice = user_with_key(iam, "alice")
    before = datetime.now(timezone.utc).timestamp() - 1
    aws.client("sts", credentials=bob).assume_role(RoleArn=roles["data_engineer"], RoleSessionName="bob-work")
    aws.client("sts", credentials=alice).assume_role(RoleArn=roles["admin"], RoleSessionName="alice")
    aws.client("sts").assume_role(RoleArn=roles["admin"], RoleSessionName="pipeline")
    events = cloudtrail.lookup_events(LookupAttributes=ASSUME_ROLE)["Events"]
    assert [e["Username"] for e in events] == ["moto", "alice", "bob"]  # newest first
    bobs = events[2]
    assert bobs["EventName"] == "AssumeRole" and bobs["EventSource"] == "sts.amazonaws.com"
    assert bobs["EventTime"].timestamp() >= before
    assert {"ResourceType": "AWS::IAM::Role", "ResourceName": roles["data_engineer"]} in bobs["Resources"]
    detail = json.loads(bobs["CloudTrailEvent"])
    assert detail["userIdentity"]["arn"] == f"arn:aws:iam::{ACCOUNT_ID}:user/bob"
    assert detail["requestParameters"]["roleArn"] == roles["data_engineer"]
    by_role = cloudtrail.lookup_events(
        LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": roles["admin"]}]
    )["Events"]
    assert [e["Username"] for e in by_role] == ["moto", "alice"]
    by_user = cloudtrail.lookup_events(LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": "bob"}])
    assert [e["EventName"] for e in by_user["Events"]] == ["AssumeRole"]


def test_pages_of_fifty_newest_first_with_next_token(aws, cloudtrail, roles):
    seed_assume_role_history(aws, [(f"user-{i:03d}", "DataEngineerRole", 1 + i / 10) for i in range(120)])
    first = cloudtrail.lookup_events(LookupAttributes=ASSUME_ROLE)
    assert len(first["Events"]) == 50 and "NextToken" in first
    assert cloudtrail.lookup_events(LookupAttributes=ASSUME_ROLE, MaxResults=60)["Events"].__len__() == 50
    every = aws_edge.paginate(cloudtrail, "lookup_events", "Events", LookupAttributes=ASSUME_ROLE)
    assert [e["Username"] for e in every] == [f"user-{i:03d}" for i in range(120)]
    times = [e["EventTime"] for e in every]
    assert times == sorted(times, reverse=True)
    small = cloudtrail.lookup_events(LookupAttributes=ASSUME_ROLE, MaxResults=7)
    assert len(small["Events"]) == 7
    second = cloudtrail.lookup_events(LookupAttributes=ASSUME_ROLE, MaxResults=7, NextToken=small["NextToken"])
    assert [e["Username"] for e in second["Events"]] == [f"user-{i:03d}" for i in range(7, 14)]


def test_start_and_end_time_and_ninety_days_kept(aws, cloudtrail, roles):
    seed_assume_role_history(aws, [("bob", "DataEngineerRole", 120), ("bob", "AdminRole", 40), ("amy", "AdminRole", 5)])
    kept = cloudtrail.lookup_events(LookupAttributes=ASSUME_ROLE)["Events"]
    assert [(e["Username"], e["Resources"][0]["ResourceName"].rsplit("/", 1)[-1]) for e in kept] == [
        ("amy", "AdminRole"),
        ("bob", "AdminRole"),
    ]  # 120 days ago is past CloudTrail's 90: the review sees no event, as in a real account
    assert timedelta(days=90) == RETENTION
    window = cloudtrail.lookup_events(LookupAttributes=ASSUME_ROLE, StartTime=ago(60), EndTime=ago(10))["Events"]
    assert [e["Username"] for e in window] == ["bob"]
    assert cloudtrail.lookup_events(LookupAttributes=ASSUME_ROLE, StartTime=ago(6))["Events"][0]["Username"] == "amy"
    code = error_code(lambda: cloudtrail.lookup_events(StartTime=ago(1), EndTime=ago(2)))
    assert code == "InvalidTimeRangeException"


def test_seeded_history_moves_role_last_used(aws, iam, roles):
    seed_assume_role_history(aws, [("bob", roles["data_engineer"], 30), ("bob", "DataEngineerRole", 3)])
    last = iam.get_role(RoleName="DataEngineerRole")["Role"]["RoleLastUsed"]
    assert abs(last["LastUsedDate"] - ago(3)) < timedelta(minutes=1)
    assert "LastUsedDate" not in iam.get_role(RoleName="AdminRole")["Role"].get("RoleLastUsed", {})
    assert aws.calls[-1].action == "GetRole"  # seeded events are not calls
    assert len(aws.seeded_events) == 2


def test_only_one_lookup_attribute_as_in_aws(aws, cloudtrail):
    two = ASSUME_ROLE + [{"AttributeKey": "Username", "AttributeValue": "bob"}]
    assert error_code(lambda: cloudtrail.lookup_events(LookupAttributes=two)) == "InvalidLookupAttributesException"


def test_each_account_has_its_own_trail(aws, cloudtrail):
    org = seed_organization(aws)
    legacy = org["accounts"]["legacy"]
    creds = aws.client("sts").assume_role(RoleArn=legacy["access_role_arn"], RoleSessionName="ops")["Credentials"]
    aws.client("iam", credentials=creds).create_user(UserName="made-in-legacy")
    aws.record_event("AssumeRole", user="your-username", params={"RoleArn": legacy["roles"]["admin"]}, days_ago=2,
                     account_id=legacy["id"])  # fmt: skip
    member_trail = aws.client("cloudtrail", credentials=creds).lookup_events()["Events"]
    assert [(e["EventName"], e["Username"]) for e in member_trail] == [
        ("CreateUser", "ops"),  # the role session's name
        ("AssumeRole", "moto"),  # into this account: in both trails
        ("AssumeRole", "your-username"),  # seeded two days ago
    ]
    management = [e["EventName"] for e in cloudtrail.lookup_events()["Events"]]
    assert "CreateUser" not in management and "AssumeRole" in management


# ----------------------------------------------------------------------------- credentials


def report(iam) -> dict[str, dict]:
    return {row["user"]: row for row in read_credential_report(iam)}


def test_credential_report_columns_like_aws(aws, iam):
    iam.create_user(UserName="plain")
    iam.create_user(UserName="busy")
    iam.create_login_profile(UserName="busy", Password=new_password())
    keys = [iam.create_access_key(UserName="busy")["AccessKey"]["AccessKeyId"] for _ in range(2)]
    iam.update_access_key(UserName="busy", AccessKeyId=keys[1], Status="Inactive")
    iam.upload_signing_certificate(UserName="busy", CertificateBody=self_signed_certificate("busy"))
    set_credential_history(aws, "busy", password_last_used_days_ago=50, password_changed_days_ago=200)
    set_credential_history(
        aws, "busy", access_key_id=keys[0], key_created_days_ago=100, key_last_used_days_ago=60, key_service="s3"
    )
    rows = report(iam)
    assert list(rows) == ["<root_account>", "plain", "busy"]
    root = rows["<root_account>"]
    assert root["arn"] == f"arn:aws:iam::{ACCOUNT_ID}:root" and root["password_enabled"] == "not_supported"
    plain = rows["plain"]
    assert [plain[c] for c in ("password_enabled", "password_last_used", "password_last_changed")] == [
        "false",
        "N/A",
        "N/A",
    ]
    assert plain["password_next_rotation"] == "N/A" and plain["mfa_active"] == "false"
    assert [plain[f"access_key_1_{c}"] for c in ("active", "last_rotated", "last_used_date", "last_used_region")] == [
        "false", "N/A", "N/A", "N/A"
    ]  # fmt: skip
    assert (plain["cert_1_active"], plain["cert_1_last_rotated"]) == ("false", "N/A")
    busy = rows["busy"]
    assert busy["password_enabled"] == "true"
    assert busy["password_last_used"].startswith(ago(50).strftime("%Y-%m-%d"))
    assert busy["password_last_changed"].startswith(ago(200).strftime("%Y-%m-%d"))
    assert busy["access_key_1_active"] == "true"
    assert busy["access_key_1_last_rotated"].startswith(ago(100).strftime("%Y-%m-%d"))
    assert busy["access_key_1_last_used_date"].startswith(ago(60).strftime("%Y-%m-%d"))
    assert (busy["access_key_1_last_used_service"], busy["access_key_1_last_used_region"]) == ("s3", "us-east-1")
    assert busy["access_key_2_active"] == "false" and busy["access_key_2_last_used_date"] == "N/A"
    assert busy["cert_1_active"] == "true" and busy["cert_1_last_rotated"].endswith("+00:00")
    assert busy["password_last_used"].endswith("+00:00")


def test_password_next_rotation_follows_the_password_policy(aws, iam):
    iam.create_user(UserName="rotating")
    iam.create_login_profile(UserName="rotating", Password=new_password())
    assert report(iam)["rotating"]["password_last_used"] == "no_information"
    iam.update_account_password_policy(MaxPasswordAge=90, MinimumPasswordLength=14)
    set_credential_history(aws, "rotating", password_changed_days_ago=30)
    assert report(iam)["rotating"]["password_next_rotation"].startswith(ago(-60).strftime("%Y-%m-%d"))


def test_credential_report_csv_is_base64_on_the_wire(aws, iam):
    iam.create_user(UserName="x")
    iam.generate_credential_report()
    content = iam.get_credential_report()["Content"]  # botocore decodes the blob
    header = next(csv.reader(io.StringIO(content.decode())))
    assert header[:5] == ["user", "arn", "user_creation_time", "password_enabled", "password_last_used"]
    assert len(header) == 22


def test_login_profile_and_password_last_used(aws, iam):
    iam.create_user(UserName="console")
    assert error_code(lambda: iam.get_login_profile(UserName="console")) == "NoSuchEntity"
    iam.create_login_profile(UserName="console", Password=new_password(), PasswordResetRequired=True)
    profile = iam.get_login_profile(UserName="console")["LoginProfile"]
    assert profile["UserName"] == "console" and profile["PasswordResetRequired"] is True
    assert abs(profile["CreateDate"] - datetime.now(timezone.utc)) < timedelta(minutes=1)
    set_credential_history(aws, "console", password_last_used_days_ago=61, password_changed_days_ago=10)
    assert abs(iam.get_login_profile(UserName="console")["LoginProfile"]["CreateDate"] - ago(10)) < timedelta(minutes=1)
    assert abs(iam.get_user(UserName="console")["User"]["PasswordLastUsed"] - ago(61)) < timedelta(minutes=1)


def test_access_key_last_used_as_aws_reports_it(aws, iam):
    key = user_with_key(iam, "keyed", may_assume=False)
    unused = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])
    assert unused["UserName"] == "keyed"
    assert unused["AccessKeyLastUsed"]["ServiceName"] == "N/A" and "LastUsedDate" not in unused["AccessKeyLastUsed"]
    key_id = set_credential_history(aws, "keyed", key_created_days_ago=100, key_last_used_days_ago=100)
    assert key_id == key["AccessKeyId"]
    old = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])["AccessKeyLastUsed"]
    assert abs(old["LastUsedDate"] - ago(100)) < timedelta(minutes=1) and old["ServiceName"] == "iam"
    (listed,) = iam.list_access_keys(UserName="keyed")["AccessKeyMetadata"]
    assert abs(listed["CreateDate"] - ago(100)) < timedelta(minutes=1)
    aws.client("sts", credentials=key).get_caller_identity()  # using it makes it "used now"
    fresh = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"])["AccessKeyLastUsed"]
    assert abs(fresh["LastUsedDate"] - datetime.now(timezone.utc)) < timedelta(minutes=1)
    assert fresh["ServiceName"] == "sts"


def test_history_helpers_refuse_unknown_users_and_keys(aws, iam):
    with pytest.raises(KeyError):
        set_credential_history(aws, "nobody", password_last_used_days_ago=1)
    iam.create_user(UserName="keyless")
    assert set_credential_history(aws, "keyless", password_changed_days_ago=1) is None
    with pytest.raises(KeyError):
        set_credential_history(aws, "keyless", key_created_days_ago=1)
