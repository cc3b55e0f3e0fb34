"""Seeding builds the accounts the runbook meets: legacy roles and policy, then the demo's loose ends."""

from __future__ import annotations

import json

from iamrunbook.aws import clients as aws_edge
from iamrunbook.sandbox import seed

ACCOUNT = "123456789012"


def attached(iam, user: str) -> list[str]:
    return [
        p["PolicyName"]
        for p in aws_edge.paginate(iam, "list_attached_user_policies", "AttachedPolicies", UserName=user)
    ]


def test_seed_roles_trust_the_account_root(aws, iam):
    arns = seed.seed_roles(iam)
    assert arns == {key: f"arn:aws:iam::{ACCOUNT}:role/{name}" for key, name in seed.ROLE_NAMES.items()}
    for name in seed.ROLE_NAMES.values():
        trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
        trust = json.loads(trust) if isinstance(trust, str) else trust
        (statement,) = trust["Statement"]
        assert statement["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
        assert statement["Action"] == "sts:AssumeRole" and statement["Effect"] == "Allow"


def test_seed_roles_takes_other_names_and_an_account_id(aws, iam):
    arns = seed.seed_roles(iam, {"admin": "Admins"}, account_id=ACCOUNT)
    assert arns == {"admin": f"arn:aws:iam::{ACCOUNT}:role/Admins"}
    assert "GetCallerIdentity" not in [call.action for call in aws.calls]  # the given id was used


def test_legacy_account_has_one_user_holding_assume_roles_policy(aws, iam, legacy_account):
    assert legacy_account["account_id"] == ACCOUNT
    assert legacy_account["user_name"] == "your-username"
    assert legacy_account["users"] == ["your-username"]
    assert attached(iam, "your-username") == ["AssumeRolesPolicy"]
    policy = iam.get_policy(PolicyArn=legacy_account["policy_arn"])["Policy"]
    document = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])["PolicyVersion"][
        "Document"
    ]
    document = json.loads(document) if isinstance(document, str) else document
    (statement,) = document["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
    assert sorted(statement["Resource"]) == sorted(legacy_account["roles"].values())
    assert sorted(r["RoleName"] for r in aws_edge.paginate(iam, "list_roles", "Roles")) == sorted(
        seed.ROLE_NAMES.values()
    )
    assert [u["UserName"] for u in aws_edge.paginate(iam, "list_users", "Users")] == ["your-username"]


def test_demo_account_has_the_loose_ends_of_a_real_account(aws, iam, monkeypatch):
    passwords = []
    real_new_password = seed.new_password

    def recorded_password(length: int = 24) -> str:
        passwords.append(real_new_password(length))
        return passwords[-1]

    monkeypatch.setattr(seed, "new_password", recorded_password)
    made = seed.seed_demo_account(iam)

    assert made["users"] == ["your-username", "alice@example.com", "ci-bot"]
    users = sorted(u["UserName"] for u in aws_edge.paginate(iam, "list_users", "Users"))
    assert users == sorted(made["users"])

    me = "your-username"
    assert attached(iam, me) == ["AssumeRolesPolicy"]
    assert iam.get_login_profile(UserName=me)["LoginProfile"]["UserName"] == me
    assert [d["SerialNumber"] for d in iam.list_mfa_devices(UserName=me)["MFADevices"]] == [made["mfa_serial"]]
    keys = iam.list_access_keys(UserName=me)["AccessKeyMetadata"]
    assert len(keys) == 1 and aws_edge.mask_key_id(keys[0]["AccessKeyId"]) == made["access_key_id"]

    alice = "alice@example.com"
    assert attached(iam, alice) == []
    assert iam.list_user_policies(UserName=alice)["PolicyNames"] == []
    assert iam.list_user_tags(UserName=alice)["Tags"] == []
    assert iam.list_groups_for_user(UserName=alice)["Groups"] == []

    assert attached(iam, "ci-bot") == []
    assert iam.list_user_policies(UserName="ci-bot")["PolicyNames"] == [seed.BOT_POLICY]
    inline = iam.get_user_policy(UserName="ci-bot", PolicyName=seed.BOT_POLICY)["PolicyDocument"]
    inline = json.loads(inline) if isinstance(inline, str) else inline
    assert inline["Statement"][0]["Action"] == "s3:GetObject"

    # The password went to AWS once and nowhere else: not returned, not in the call log.
    (password,) = passwords
    assert password not in json.dumps(made)
    assert password not in repr(aws.calls)
    assert not any("password" in key.lower() or "secret" in key.lower() for key in made)


def test_new_passwords_are_random_and_complex():
    first, second = seed.new_password(), seed.new_password()
    assert first != second
    for password in (first, second):
        assert len(password) == 24
        assert any(c.islower() for c in password) and any(c.isupper() for c in password)
        assert any(c.isdigit() for c in password) and any(not c.isalnum() for c in password)


def test_seed_declares_the_actions_it_calls(aws, iam):
    seed.seed_demo_account(iam)
    called = {f"{call.service}:{call.action}" for call in aws.calls}
    aws.reset()
    seed.seed_hostile_account(iam, "<b>x</b>", ["=1+2"])  # the only seeding that writes a new policy version
    called |= {f"{call.service}:{call.action}" for call in aws.calls}
    assert called == set(seed.READ_ACTIONS) | set(seed.WRITE_ACTIONS)
