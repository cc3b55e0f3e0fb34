"""Seed an (embedded) account with the state the runbook meets in real life.

The *legacy* account is the starting point the runbook migrates from: three roles and one person holding
a hand-made `AssumeRolesPolicy` that may assume all three. The *demo* account adds what a real account
accumulates: console password, MFA and an access key on that person, a user created by hand in the
console, and a bot user with an inline policy of its own.

Every function takes the IAM client first and returns names and ARNs only. Passwords are random per
run, sent once to AWS and never returned or logged; a new access key's secret is dropped on arrival.
"""

from __future__ import annotations

import json
import secrets
import string
from collections.abc import Mapping, Sequence

import boto3

from iamrunbook.aws.clients import mask_key_id
from iamrunbook.base.names import DEFAULT_ROLES
from iamrunbook.sandbox.history import ago, seed_assume_role_history, set_credential_history

READ_ACTIONS = ("sts:GetCallerIdentity",)
WRITE_ACTIONS = (
    "iam:CreateRole",
    "iam:CreatePolicy",
    "iam:CreateUser",
    "iam:AttachUserPolicy",
    "iam:CreateLoginProfile",
    "iam:CreateVirtualMFADevice",
    "iam:EnableMFADevice",
    "iam:CreateAccessKey",
    "iam:PutUserPolicy",
    "iam:CreatePolicyVersion",
)

#: Role key in the spec -> role name in the account.
ROLE_NAMES: Mapping[str, str] = DEFAULT_ROLES
LEGACY_USER = "your-username"
LEGACY_POLICY = "AssumeRolesPolicy"
HAND_MADE_USER = "alice@example.com"
BOT_USER = "ci-bot"
BOT_POLICY = "ci-bot-artifacts"
BOT_BUCKET = "example-ci-artifacts"


def _document(statements: list[dict]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def account_id_for(iam) -> str:
    """The account behind `iam`: STS GetCallerIdentity on the same endpoint, default credential chain.

    A non-AWS endpoint (the embedded server) serves STS too, so it is reused; otherwise boto3 picks
    the STS endpoint itself.
    """
    endpoint = iam.meta.endpoint_url
    kwargs = {"region_name": iam.meta.region_name}
    if "amazonaws.com" not in endpoint:
        kwargs["endpoint_url"] = endpoint
    return boto3.client("sts", **kwargs).get_caller_identity()["Account"]


def new_password(length: int = 24) -> str:
    """A random console password meeting any sane password policy (all four character classes)."""
    classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits, "!@#$%^&*()-_=+")
    alphabet = "".join(classes)
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(char in chars for char in password) for chars in classes):
            return password


def seed_roles(iam, role_names: Mapping[str, str] = ROLE_NAMES, *, account_id: str | None = None) -> dict:
    """Create the roles, each trusting the account root (who may assume it is up to IAM policies).

    Returns {role key: role ARN}.
    """
    account_id = account_id or account_id_for(iam)
    trust = _document(
        [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                "Action": "sts:AssumeRole",
            }
        ]
    )
    return {
        key: iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        for key, name in role_names.items()
    }


def seed_legacy_account(
    iam,
    role_names: Mapping[str, str] = ROLE_NAMES,
    *,
    user_name: str = LEGACY_USER,
    account_id: str | None = None,
) -> dict:
    """The roles, plus `user_name` holding the customer-managed `AssumeRolesPolicy` for all of them.

    Returns {"account_id", "roles": {key: ARN}, "user_name", "policy_arn", "users": [names]}.
    """
    account_id = account_id or account_id_for(iam)
    roles = seed_roles(iam, role_names, account_id=account_id)
    document = _document([{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": sorted(roles.values())}])
    policy_arn = iam.create_policy(PolicyName=LEGACY_POLICY, PolicyDocument=document)["Policy"]["Arn"]
    iam.create_user(UserName=user_name)
    iam.attach_user_policy(UserName=user_name, PolicyArn=policy_arn)
    return {
        "account_id": account_id,
        "roles": roles,
        "user_name": user_name,
        "policy_arn": policy_arn,
        "users": [user_name],
    }


def seed_demo_account(iam, *, account_id: str | None = None, history=None) -> dict:
    """The legacy account as people leave it: credentials on the legacy user, plus two unmanaged users.

    - the legacy user: console password (login profile), an enabled virtual MFA device, an access key;
    - `alice@example.com`, created by hand earlier: no policies, no tags;
    - `ci-bot`, unmanaged, with an inline policy of its own (s3:GetObject on one bucket).

    `history`, the EmbeddedAws serving `iam`: also a past for the access review (`seed_demo_history`).
    Returns the legacy dict plus "mfa_serial", "access_key_id" (masked) and all three user names.
    """
    made = seed_legacy_account(iam, account_id=account_id)
    user = made["user_name"]
    iam.create_login_profile(UserName=user, Password=new_password(), PasswordResetRequired=False)
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName=user)["VirtualMFADevice"]["SerialNumber"]
    codes = [f"{secrets.randbelow(10**6):06d}" for _ in range(2)]  # moto accepts any two codes
    iam.enable_mfa_device(
        UserName=user, SerialNumber=serial, AuthenticationCode1=codes[0], AuthenticationCode2=codes[1]
    )
    key_id = iam.create_access_key(UserName=user)["AccessKey"]["AccessKeyId"]  # the secret is dropped here

    iam.create_user(UserName=HAND_MADE_USER)
    iam.create_user(UserName=BOT_USER)
    bot_document = _document(
        [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{BOT_BUCKET}/*"}]
    )
    iam.put_user_policy(UserName=BOT_USER, PolicyName=BOT_POLICY, PolicyDocument=bot_document)
    if history is not None:
        seed_demo_history(history, iam, account_id=account_id)
    return {
        **made,
        "users": [user, HAND_MADE_USER, BOT_USER],
        "mfa_serial": serial,
        "access_key_id": mask_key_id(key_id),
    }


#: (user, role, days ago): the demo's AssumeRole history; 120 days is past CloudTrail's 90, so a review
#: sees alice's DataEngineerRole and the owner's InfrastructureAdminRole as unused.
DEMO_ASSUME_ROLE_HISTORY = (
    (LEGACY_USER, ROLE_NAMES["admin"], 3),
    (LEGACY_USER, ROLE_NAMES["data_engineer"], 20),
    (LEGACY_USER, ROLE_NAMES["infrastructure_admin"], 120),
    (HAND_MADE_USER, ROLE_NAMES["infrastructure_admin"], 5),
    (HAND_MADE_USER, ROLE_NAMES["data_engineer"], 120),
)


def seed_demo_history(aws, iam, *, account_id: str | None = None) -> None:
    """A past for the demo account, written into the sandbox's state (no call): the users were made a
    year ago; the owner's access key is 100 days old (CIS 1.14) and was used yesterday; alice signs in to
    the console, without MFA (CIS 1.10); and the AssumeRole events of DEMO_ASSUME_ROLE_HISTORY."""
    for name, days in ((LEGACY_USER, 400), (HAND_MADE_USER, 300), (BOT_USER, 200)):
        aws.iam_backend(account_id).users[name].create_date = ago(days)
    set_credential_history(aws, LEGACY_USER, password_last_used_days_ago=2, password_changed_days_ago=200,
                           key_created_days_ago=100, key_last_used_days_ago=1, account_id=account_id)  # fmt: skip
    iam.create_login_profile(UserName=HAND_MADE_USER, Password=new_password(), PasswordResetRequired=False)
    set_credential_history(aws, HAND_MADE_USER, password_last_used_days_ago=5, password_changed_days_ago=300,
                           account_id=account_id)  # fmt: skip
    seed_assume_role_history(aws, DEMO_ASSUME_ROLE_HISTORY, account_id=account_id)


def seed_hostile_account(iam, markup: str, formulas: Sequence[str], *, account_id: str | None = None) -> dict:
    """The legacy account with attacker-chosen text wherever the embedded AWS lets it through: `markup` in
    the legacy policy's condition key and value, in an inline policy's Sid, resource and condition, in a role's
    description and trust principal, and (without spaces, as paths allow) in a user's path; `formulas` as user
    names and tag values. Whoever can edit one policy in an account can plant these (issue 25).

    Returns the legacy dict plus "formula_users" and "hostile_role"."""
    made = seed_legacy_account(iam, account_id=account_id)
    condition = {"StringEquals": {f"aws:PrincipalTag/{markup}": markup}}
    legacy = [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": sorted(made["roles"].values()),
               "Condition": condition}]  # fmt: skip
    iam.create_policy_version(PolicyArn=made["policy_arn"], PolicyDocument=_document(legacy), SetAsDefault=True)
    for name in formulas:
        iam.create_user(UserName=name, Tags=[{"Key": "Description", "Value": name}, {"Key": "Team", "Value": name}])
    inline = [{"Sid": markup, "Effect": "Allow", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{markup}",
               "Condition": condition}]  # fmt: skip
    iam.put_user_policy(UserName=formulas[0], PolicyName="hostile-inline", PolicyDocument=_document(inline))
    iam.create_user(UserName="pathed", Path="/" + markup.replace(" ", "/") + "/")
    trust = [{"Effect": "Allow", "Principal": {"AWS": markup}, "Action": "sts:AssumeRole"}]
    iam.create_role(RoleName="hostile-role", Description=markup, AssumeRolePolicyDocument=_document(trust))
    return {**made, "formula_users": list(formulas), "hostile_role": "hostile-role"}
