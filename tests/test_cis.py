"""CIS AWS Foundations user checks, each against an account built to fail it (and one built to pass it).

Accounts live in the strict embedded AWS; their past (a key 100 days old, a password unused for 50 days)
is back-dated with the sandbox's history helpers, and the inventory is read as 01 and 06 read it: one
sweep plus the credential report.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from iamrunbook.aws.sweep import read_inventory
from iamrunbook.core import cis
from iamrunbook.sandbox.history import set_credential_history
from iamrunbook.sandbox.seed import new_password

CHECK_IDS = {"mfa": "1.10", "initial_keys": "1.11", "unused": "1.12", "one_key": "1.13", "rotated": "1.14",
             "groups_only": "1.15", "no_admin": "1.16"}  # fmt: skip


def policy(action, resource="*", key="Action") -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", key: action, "Resource": resource}]})


def results(iam, sts, **options) -> dict[tuple[str, str], dict]:
    """(user, CIS v3.0 id) -> row, from a fresh sweep and credential report."""
    inv = read_inventory(iam, sts, with_credential_report=True)
    return {(row["user"], row["cis"].split()[0]): row for row in cis.findings(inv, **options)}


def status(found, user: str, check: str) -> str:
    return found[(user, CHECK_IDS[check])]["status"]


def console_user(iam, name: str) -> None:
    iam.create_user(UserName=name)
    iam.create_login_profile(UserName=name, Password=new_password())


def test_numbering_is_v3_with_v5_named_and_every_check_has_a_fix():
    assert [c.id for c in cis.CHECKS.values()] == ["1.10", "1.11", "1.12", "1.13", "1.14", "1.15", "1.16"]
    assert [c.v5 for c in cis.CHECKS.values()] == ["1.9", "1.10", "1.11", "1.12", "1.13", "1.14", "1.15"]
    assert cis.CHECKS["no_admin"].cis == "1.16 (v5: 1.15)"
    assert all(c.fix and c.title for c in cis.CHECKS.values())


def test_1_10_a_console_user_without_mfa_fails_one_with_mfa_passes(aws, iam, sts):
    console_user(iam, "no-mfa")
    console_user(iam, "with-mfa")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="with-mfa")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(UserName="with-mfa", SerialNumber=serial, AuthenticationCode1="123456",
                          AuthenticationCode2="654321")  # fmt: skip
    iam.create_user(UserName="api-only")
    found = results(iam, sts)
    row = found[("no-mfa", "1.10")]
    assert (row["status"], row["finding"]) == (cis.FAIL, "console password without MFA")
    assert row["fix"] == cis.CHECKS["mfa"].fix
    assert status(found, "with-mfa", "mfa") == status(found, "api-only", "mfa") == cis.PASS


def test_1_11_a_never_used_key_beside_a_console_password_fails(aws, iam, sts):
    console_user(iam, "set-up-with-key")
    iam.create_access_key(UserName="set-up-with-key")
    console_user(iam, "uses-its-key")
    iam.create_access_key(UserName="uses-its-key")
    set_credential_history(aws, "uses-its-key", key_last_used_days_ago=1)
    iam.create_user(UserName="key-only")
    iam.create_access_key(UserName="key-only")  # no console: not what 1.11 is about
    found = results(iam, sts)
    assert found[("set-up-with-key", "1.11")]["finding"] == "access key 1 never used, beside a console password"
    assert status(found, "uses-its-key", "initial_keys") == status(found, "key-only", "initial_keys") == cis.PASS


def test_1_12_credentials_unused_for_45_days_fail(aws, iam, sts):
    console_user(iam, "stale-password")
    set_credential_history(aws, "stale-password", password_last_used_days_ago=50, password_changed_days_ago=100)
    iam.create_user(UserName="stale-key")
    iam.create_access_key(UserName="stale-key")
    set_credential_history(aws, "stale-key", key_created_days_ago=200, key_last_used_days_ago=46)
    iam.create_user(UserName="never-used-key")
    iam.create_access_key(UserName="never-used-key")
    set_credential_history(aws, "never-used-key", key_created_days_ago=50)
    console_user(iam, "active")
    set_credential_history(aws, "active", password_last_used_days_ago=10, password_changed_days_ago=100)
    iam.create_access_key(UserName="active")
    set_credential_history(aws, "active", key_created_days_ago=30, key_last_used_days_ago=2)
    iam.create_user(UserName="fresh")
    iam.create_access_key(UserName="fresh")  # unused, but only a moment old
    found = results(iam, sts)
    assert found[("stale-password", "1.12")]["finding"].startswith("console password unused since ")
    assert found[("stale-key", "1.12")]["finding"].startswith("access key 1 unused since ")
    assert found[("never-used-key", "1.12")]["status"] == cis.FAIL  # never used counts from its creation
    assert status(found, "active", "unused") == status(found, "fresh", "unused") == cis.PASS


def test_1_13_two_active_keys_fail_one_active_and_one_inactive_pass(aws, iam, sts):
    iam.create_user(UserName="two-keys")
    for _ in range(2):
        iam.create_access_key(UserName="two-keys")
    iam.create_user(UserName="rotating")
    old, _ = (iam.create_access_key(UserName="rotating")["AccessKey"]["AccessKeyId"] for _ in range(2))
    iam.update_access_key(UserName="rotating", AccessKeyId=old, Status="Inactive")
    found = results(iam, sts)
    assert found[("two-keys", "1.13")]["finding"] == "2 active access keys"
    assert status(found, "rotating", "one_key") == cis.PASS


def test_1_14_a_100_day_old_key_fails_and_90_days_is_the_limit(aws, iam, sts):
    for name, days in (("old-key", 100), ("young-key", 30)):
        iam.create_user(UserName=name)
        iam.create_access_key(UserName=name)
        set_credential_history(aws, name, key_created_days_ago=days, key_last_used_days_ago=1)
    iam.create_user(UserName="old-inactive")
    key = iam.create_access_key(UserName="old-inactive")["AccessKey"]["AccessKeyId"]
    set_credential_history(aws, "old-inactive", key_created_days_ago=300)
    iam.update_access_key(UserName="old-inactive", AccessKeyId=key, Status="Inactive")
    inv = read_inventory(iam, sts, with_credential_report=True)
    found = {(r["user"], r["cis"].split()[0]): r for r in cis.findings(inv)}
    assert found[("old-key", "1.14")]["finding"].startswith("access key 1 created ")
    assert status(found, "young-key", "rotated") == status(found, "old-inactive", "rotated") == cis.PASS
    # "rotated every 90 days or less": exactly 90 days old passes, a second more fails
    row = next(r for r in inv.credential_report if r["user"] == "old-key")
    created = cis.parse_date(row["access_key_1_last_rotated"])

    def rotation(now):
        return next(r for r in cis.findings(inv, now=now) if r["user"] == "old-key" and r["cis"].startswith("1.14"))

    assert rotation(created + timedelta(days=90))["status"] == cis.PASS
    assert rotation(created + timedelta(days=90, seconds=1))["status"] == cis.FAIL


def test_1_15_direct_policies_fail_groups_pass(aws, iam, sts):
    iam.create_user(UserName="direct")
    iam.put_user_policy(UserName="direct", PolicyName="mine", PolicyDocument=policy("s3:ListBucket"))
    iam.create_group(GroupName="readers")
    iam.put_group_policy(GroupName="readers", PolicyName="read", PolicyDocument=policy("s3:ListBucket"))
    iam.create_user(UserName="grouped")
    iam.add_user_to_group(GroupName="readers", UserName="grouped")
    found = results(iam, sts)
    assert found[("direct", "1.15")]["finding"] == "directly on the user: inline mine"
    assert status(found, "grouped", "groups_only") == cis.PASS


@pytest.mark.parametrize(
    ("document", "admin"),
    [
        (policy("*:*"), True),
        (policy("*"), True),
        (policy(["s3:GetObject", "*"]), True),
        (policy("*", ["arn:aws:s3:::bucket", "*"]), True),
        (policy("s3:*"), False),
        (policy("*", "arn:aws:s3:::bucket/*"), False),
        (policy(["iam:*", "organizations:*"], key="NotAction"), False),  # PowerUserAccess's shape
        (json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}),
         False),
    ],
)
def test_1_16_full_admin_is_action_star_on_resource_star(document, admin):
    assert cis.full_admin(json.loads(document)) is admin


def test_1_16_a_user_with_star_star_fails_directly_by_group_and_by_administrator_access(aws, iam, sts):
    iam.create_user(UserName="star-star")
    iam.put_user_policy(UserName="star-star", PolicyName="everything", PolicyDocument=policy("*:*"))
    iam.create_group(GroupName="admins")
    iam.put_group_policy(GroupName="admins", PolicyName="all", PolicyDocument=policy("*"))
    iam.create_user(UserName="via-group")
    iam.add_user_to_group(GroupName="admins", UserName="via-group")
    iam.create_user(UserName="aws-admin")
    iam.attach_user_policy(UserName="aws-admin", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    iam.create_user(UserName="power-user")
    iam.attach_user_policy(UserName="power-user", PolicyArn="arn:aws:iam::aws:policy/PowerUserAccess")
    found = results(iam, sts)
    assert found[("star-star", "1.16")]["finding"] == "allows *:* via inline everything"
    assert found[("via-group", "1.16")]["finding"] == "allows *:* via group admins: inline all"
    assert found[("aws-admin", "1.16")]["finding"] == "allows *:* via attached AdministratorAccess"
    assert status(found, "power-user", "no_admin") == cis.PASS  # broad, but not *:*


def test_without_a_credential_report_row_the_report_checks_are_unknown_not_pass(aws, iam, sts):
    console_user(iam, "no-mfa")
    inv = read_inventory(iam, sts)  # no credential report read
    rows = cis.findings(inv)
    by_check = {r["cis"].split()[0]: r for r in rows}
    assert {c: by_check[c]["status"] for c in ("1.10", "1.11", "1.12", "1.13", "1.14")} == dict.fromkeys(
        ("1.10", "1.11", "1.12", "1.13", "1.14"), cis.UNKNOWN
    )
    assert by_check["1.10"]["finding"] == "no credential report was read" and by_check["1.10"]["fix"] == ""
    assert by_check["1.15"]["status"] == by_check["1.16"]["status"] == cis.PASS  # the sweep can say
    inv.credential_report = [{"user": "someone-else"}]
    unknown = {r["finding"] for r in cis.findings(inv) if r["status"] == cis.UNKNOWN}
    assert unknown == {"not in the credential report yet"}
    summary = cis.summary(rows)
    assert list(summary.columns) == ["cis", "check", cis.PASS, cis.FAIL, cis.UNKNOWN]
    assert summary.set_index("cis").loc["1.10 (v5: 1.9)", cis.UNKNOWN] == 1
