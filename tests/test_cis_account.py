"""CIS v3.0 account-level IAM items (1.4-1.9, 1.16 over every principal, 1.17, 1.19, 1.20) and every limit
exactly on its boundary, on the strict embedded AWS with back-dated credentials.

Boundaries: the account is back-dated once (a key last used 45 days ago, one created 90 days ago, the root
user's password used 90 days ago), read once with the credential report, and judged at `now` set to the
report's own date plus 44.9, 45.0 and 45.1 (89.9, 90.0, 90.1) days: the same back-dated rows, judged a
tenth of a day either side and exactly on the limit.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import boto3
import pytest
from aws_env import pointed_at
from keys import server_certificate

from iamrunbook.aws import clients
from iamrunbook.aws.cis_reads import read_account_facts
from iamrunbook.aws.sweep import read_inventory
from iamrunbook.core import cis, cis_account, cis_policies
from iamrunbook.core.cis import FAIL, PASS
from iamrunbook.sandbox.account_state import add_analyzer
from iamrunbook.sandbox.history import set_credential_history, set_root_history
from iamrunbook.sandbox.seed import new_password

SUPPORT = "arn:aws:iam::aws:policy/AWSSupportAccess"
TRUST = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},' \
        '"Action":"sts:AssumeRole"}]}'  # fmt: skip


def account_rows(session, now: datetime | None = None) -> dict[str, list[dict]]:
    """CIS v3.0 id -> the account-level rows, from a fresh read as 01 and 06 make it."""
    iam, sts = clients.client(session, "iam"), clients.client(session, "sts")
    inv = read_inventory(iam, sts, with_credential_report=True)
    facts = read_account_facts(session, iam)
    rows = cis_account.findings(cis_account.root_row(inv.credential_report), facts, inv.roles,
                                cis_policies.policy_findings(inv), now)  # fmt: skip
    found: dict[str, list[dict]] = {}
    for row in rows:
        found.setdefault(row["cis"].split()[0], []).append(row)
    return found


def status(found, cis_id: str) -> str:
    (row,) = found[cis_id]
    return row["status"]


def test_numbering_is_v3_with_v5_beside_and_the_limits_are_one_table():
    assert [(c.id, c.v5) for c in cis_account.CHECKS.values()] == [
        ("1.4", "1.3"), ("1.5", "1.4"), ("1.6", "1.5"), ("1.7", "1.6"), ("1.8", "1.7"), ("1.9", "1.8"),
        ("1.16", "1.15"), ("1.17", "1.16"), ("1.19", "1.18"), ("1.20", "1.19"),
    ]  # fmt: skip
    assert {k: (v.value, v.unit) for k, v in cis.LIMITS.items()} == {
        "unused": (45, "days"), "rotated": (90, "days"), "root_use": (90, "days"),
        "password_length": (14, "characters"), "password_reuse": (24, "passwords"),
    }  # fmt: skip
    assert (cis.UNUSED_DAYS, cis.ROTATE_DAYS) == (45, 90)
    for quoted in ("45 days or greater", "90 days or less", "14 or greater", "prevents password reuse"):
        assert quoted in cis.LIMITS_DOC


def test_a_fresh_account_fails_root_mfa_password_policy_support_role_and_analyzer(aws, session):
    found = account_rows(session)
    assert status(found, "1.4") == PASS  # no root keys
    assert status(found, "1.5") == FAIL and status(found, "1.6") == FAIL
    assert found["1.6"][0]["finding"] == "the root user has no MFA at all"
    assert status(found, "1.7") == PASS  # never used
    assert [r["finding"] for r in found["1.8"] + found["1.9"]] == ["no password policy: AWS's default applies"] * 2
    assert status(found, "1.16") == PASS and status(found, "1.17") == FAIL
    assert found["1.19"][0] == {**found["1.19"][0], "status": PASS, "finding": "no server certificates"}
    assert (status(found, "1.20"), found["1.20"][0]["resource"]) == (FAIL, "region us-east-1")
    assert all(r["fix"] for rows in found.values() for r in rows if r["status"] == FAIL)


@pytest.mark.parametrize(
    ("root", "expected"),
    [
        ({"mfa": "virtual"}, {"1.4": PASS, "1.5": PASS, "1.6": FAIL}),
        ({"mfa": "hardware"}, {"1.4": PASS, "1.5": PASS, "1.6": PASS}),
        ({"mfa": "hardware", "access_key": True}, {"1.4": FAIL, "1.5": PASS, "1.6": PASS}),
    ],
)
def test_1_4_to_1_6_root_keys_root_mfa_and_hardware_mfa(aws, session, root, expected):
    set_root_history(aws, **root)
    found = account_rows(session)
    assert {cis_id: status(found, cis_id) for cis_id in expected} == expected
    if root.get("access_key"):
        assert found["1.4"][0]["finding"] == ("access key 1 active (credential report); AccountAccessKeysPresent: 1 "
                                              "(account summary)")  # fmt: skip
    if root["mfa"] == "virtual":
        assert found["1.6"][0]["finding"].endswith(":mfa/root-account-mfa-device")


def test_1_8_and_1_9_pass_at_14_characters_and_24_passwords_and_fail_one_below(aws, session, iam):
    iam.update_account_password_policy(MinimumPasswordLength=13, PasswordReusePrevention=23)
    found = account_rows(session)
    assert (status(found, "1.8"), found["1.8"][0]["finding"]) == (FAIL, "minimum length 13")
    assert (status(found, "1.9"), found["1.9"][0]["finding"]) == (FAIL, "remembers 23 passwords")
    iam.update_account_password_policy(MinimumPasswordLength=14, PasswordReusePrevention=24)
    found = account_rows(session)
    assert status(found, "1.8") == status(found, "1.9") == PASS


def test_1_17_a_role_with_aws_support_access_passes(aws, session, iam):
    iam.create_role(RoleName="Support", AssumeRolePolicyDocument=TRUST)
    iam.attach_role_policy(RoleName="Support", PolicyArn=SUPPORT)
    found = account_rows(session)
    assert (status(found, "1.17"), found["1.17"][0]["resource"]) == (PASS, "role Support")


def test_1_19_an_expired_server_certificate_fails_a_valid_one_passes(aws, session, iam):
    for name, days in (("old-site", -1), ("new-site", 30)):
        body, key = server_certificate(name, days)
        iam.upload_server_certificate(ServerCertificateName=name, CertificateBody=body, PrivateKey=key)
    found = {r["resource"]: r for r in account_rows(session)["1.19"]}
    assert found["server certificate old-site"]["status"] == FAIL
    assert found["server certificate old-site"]["finding"].startswith("expired ")
    assert found["server certificate new-site"]["status"] == PASS
    expires = datetime.now(timezone.utc) + timedelta(days=1)
    rows = {when: cis_account.certificate_rows([{"ServerCertificateName": "c", "Expiration": expires}], when)
            for when in (expires - timedelta(seconds=1), expires)}  # fmt: skip
    assert [r[0]["status"] for r in rows.values()] == [PASS, FAIL]  # expired from its Expiration on


def test_1_20_an_active_analyzer_passes(aws, session):
    add_analyzer(aws.iam_backend(), "account-analyzer")
    found = account_rows(session)
    assert (status(found, "1.20"), found["1.20"][0]["finding"]) == (PASS, "active: account-analyzer")


def test_a_read_that_is_refused_is_not_checked_never_pass(aws, session):
    aws.inject_fault("iam:GetAccountPasswordPolicy", code="AccessDenied", status=403, times=None)
    aws.inject_fault("iam:ListVirtualMFADevices", code="AccessDenied", status=403, times=None)
    aws.inject_fault("access-analyzer:ListAnalyzers", code="AccessDeniedException", status=403, times=None)
    set_root_history(aws, mfa="hardware")
    try:
        found = account_rows(session)
    finally:
        aws.clear_faults()
    for cis_id in ("1.6", "1.8", "1.9", "1.20"):
        assert status(found, cis_id).startswith("not checked: "), cis_id
    assert status(found, "1.8") == "not checked: GetAccountPasswordPolicy: AccessDenied"
    assert status(found, "1.20") == "not checked: access-analyzer ListAnalyzers: AccessDeniedException"


# --------------------------------------------------------------------------- the limits, exactly


@pytest.fixture(scope="module")
def backdated(embedded_aws):
    """One account, back-dated once and read once: (inventory, the moment each credential was dated)."""
    with pointed_at(embedded_aws):
        iam = embedded_aws.client("iam", internal=True)
        iam.create_user(UserName="key-used-45")
        iam.create_access_key(UserName="key-used-45")
        set_credential_history(embedded_aws, "key-used-45", key_created_days_ago=60, key_last_used_days_ago=45)
        iam.create_user(UserName="password-used-45")
        iam.create_login_profile(UserName="password-used-45", Password=new_password())
        set_credential_history(embedded_aws, "password-used-45", password_last_used_days_ago=45,
                               password_changed_days_ago=60)  # fmt: skip
        iam.create_user(UserName="key-never-used-45")
        iam.create_access_key(UserName="key-never-used-45")
        set_credential_history(embedded_aws, "key-never-used-45", key_created_days_ago=45)
        iam.create_user(UserName="key-made-90")
        iam.create_access_key(UserName="key-made-90")
        set_credential_history(embedded_aws, "key-made-90", key_created_days_ago=90, key_last_used_days_ago=1)
        set_root_history(embedded_aws, mfa="hardware", password_last_used_days_ago=90)
        session = boto3.Session(region_name="us-east-1")
        iam = clients.client(session, "iam")
        inv = read_inventory(iam, clients.client(session, "sts"), with_credential_report=True)
        facts = read_account_facts(session, iam)
    report = {r["user"]: r for r in inv.credential_report}
    dated = {
        "key-used-45": report["key-used-45"]["access_key_1_last_used_date"],
        "password-used-45": report["password-used-45"]["password_last_used"],
        "key-never-used-45": report["key-never-used-45"]["access_key_1_last_rotated"],
        "key-made-90": report["key-made-90"]["access_key_1_last_rotated"],
        "<root_account>": report["<root_account>"]["password_last_used"],
    }
    return inv, facts, {who: cis.parse_date(when) for who, when in dated.items()}


def _user_status(inv, user: str, cis_id: str, now: datetime) -> str:
    return next(r["status"] for r in cis.findings(inv, now) if r["user"] == user and r["cis"].startswith(cis_id + " "))


@pytest.mark.parametrize(("days", "expected"), [(44.9, PASS), (45.0, FAIL), (45.1, FAIL)])
@pytest.mark.parametrize("user", ["key-used-45", "password-used-45", "key-never-used-45"])
def test_1_12_unused_for_45_days_or_greater_fails_at_exactly_45(backdated, user, days, expected):
    inv, _, dated = backdated
    assert _user_status(inv, user, "1.12", dated[user] + timedelta(days=days)) == expected


@pytest.mark.parametrize(("days", "expected"), [(89.9, PASS), (90.0, PASS), (90.1, FAIL)])
def test_1_14_rotated_every_90_days_or_less_passes_at_exactly_90(backdated, days, expected):
    inv, _, dated = backdated
    assert _user_status(inv, "key-made-90", "1.14", dated["key-made-90"] + timedelta(days=days)) == expected


@pytest.mark.parametrize(("days", "expected"), [(89.9, FAIL), (90.0, PASS), (90.1, PASS)])
def test_1_7_root_use_within_90_days_fails_and_exactly_90_days_ago_passes(backdated, days, expected):
    inv, facts, dated = backdated
    root = cis_account.root_row(inv.credential_report)
    rows = cis_account.root_rows(root, facts, dated["<root_account>"] + timedelta(days=days))
    (row,) = [r for r in rows if r["cis"].startswith("1.7 ")]
    assert row["status"] == expected
    assert ("password_last_used" in row["finding"]) == (expected == FAIL)


def test_with_nothing_read_every_account_item_but_the_sweeps_is_not_checked():
    rows = cis_account.findings(None, cis_account.AccountFacts(region="eu-west-1"), {}, [])
    by_id = {r["cis"].split()[0]: r for r in rows}
    assert {k for k, r in by_id.items() if not r["status"].startswith("not checked: ")} == {"1.16", "1.17"}
    assert all(r["fix"] == "" for r in rows if r["status"].startswith("not checked"))
    assert by_id["1.20"]["resource"] == "region eu-west-1"
