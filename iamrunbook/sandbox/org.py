"""Seed an organization: the management account and three member accounts, each messy in its own way.

Everything goes through the server, with moto's own Organizations: `create_organization`, OUs,
`create_account` (which makes each member's `OrganizationAccountAccessRole`, trusting the management
account; AWS also gives it AdministratorAccess, and so does this seed), account tags. The members:

- `legacy` (OU Production): the runbook's starting point, as `seed_legacy_account` builds it;
- `data` (OU Production): a user holding a broad hand-made `AssumeDataEngineerRolePolicy` (`Resource: "*"`);
- `playground` (OU Development): a stranger with an inline `sts:AssumeRole` on `*`, and a user tagged
  `ManagedBy=iamrunbook` that no spec lists.

Each member has the three roles (`names.DEFAULT_ROLES`) trusting its own account root. Seeding uses
internal clients (unlogged): the organization is the test's starting state, not something the runbook did.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from iamrunbook.base.names import MANAGED_BY_KEY, MANAGED_BY_VALUE
from iamrunbook.sandbox.calls import ACCOUNT_ID
from iamrunbook.sandbox.seed import ROLE_NAMES, seed_legacy_account, seed_roles

ACCESS_ROLE = "OrganizationAccountAccessRole"
ADMIN_POLICY_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
BROAD_POLICY = "AssumeDataEngineerRolePolicy"
BROAD_USER = "dana"
STRANGER = "stranger"
STRANGER_POLICY = "assume-anything"
UNLISTED_USER = "ghost"
OUS = ("Production", "Development")


def _assume_anything() -> str:
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}
    )


def _legacy(iam, account_id: str) -> dict:
    made = seed_legacy_account(iam, account_id=account_id)
    return {"users": made["users"], "policy_arn": made["policy_arn"]}


def _broad(iam, account_id: str) -> dict:
    seed_roles(iam, account_id=account_id)
    arn = iam.create_policy(PolicyName=BROAD_POLICY, PolicyDocument=_assume_anything())["Policy"]["Arn"]
    iam.create_user(UserName=BROAD_USER)
    iam.attach_user_policy(UserName=BROAD_USER, PolicyArn=arn)
    return {"users": [BROAD_USER], "policy_arn": arn}


def _stranger(iam, account_id: str) -> dict:
    seed_roles(iam, account_id=account_id)
    iam.create_user(UserName=STRANGER)
    iam.put_user_policy(UserName=STRANGER, PolicyName=STRANGER_POLICY, PolicyDocument=_assume_anything())
    iam.create_user(UserName=UNLISTED_USER, Tags=[{"Key": MANAGED_BY_KEY, "Value": MANAGED_BY_VALUE}])
    return {"users": [STRANGER, UNLISTED_USER], "policy_arn": None}


#: member name -> (OU, account tags, what its IAM looks like)
MEMBERS: dict[str, tuple[str, dict[str, str], Callable[[Any, str], dict]]] = {
    "legacy": ("Production", {"Environment": "prod", "Team": "platform"}, _legacy),
    "data": ("Production", {"Environment": "prod", "Team": "data"}, _broad),
    "playground": ("Development", {"Environment": "dev", "Team": "platform"}, _stranger),
}


def _create_account(org, name: str, tags: dict[str, str]) -> str:
    status = org.create_account(
        AccountName=name,
        Email=f"aws+{name}@example.com",
        Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
    )["CreateAccountStatus"]
    if status["State"] != "SUCCEEDED":  # moto answers at once; AWS would need polling
        raise RuntimeError(f"create_account {name}: {status['State']}")
    return status["AccountId"]


def seed_organization(aws) -> dict:
    """The organization, its OUs and three member accounts (see the module doc). Returns ids and names:

    {"management_account_id", "organization_id", "root_id", "ous": {name: id},
     "accounts": {name: {"id", "name", "ou", "ou_id", "tags", "access_role_arn", "roles": {key: arn},
                          "users": [...], "policy_arn"}}}
    """
    org = aws.client("organizations", internal=True)
    organization = org.create_organization(FeatureSet="ALL")["Organization"]
    root_id = org.list_roots()["Roots"][0]["Id"]
    ous = {
        name: org.create_organizational_unit(ParentId=root_id, Name=name)["OrganizationalUnit"]["Id"] for name in OUS
    }
    accounts = {}
    for name, (ou, tags, build) in MEMBERS.items():
        account_id = _create_account(org, name, tags)
        org.move_account(AccountId=account_id, SourceParentId=root_id, DestinationParentId=ous[ou])
        iam = aws.client("iam", account_id=account_id, internal=True)
        iam.attach_role_policy(RoleName=ACCESS_ROLE, PolicyArn=ADMIN_POLICY_ARN)
        made = build(iam, account_id)
        accounts[name] = {
            "id": account_id,
            "name": name,
            "ou": ou,
            "ou_id": ous[ou],
            "tags": tags,
            "access_role_arn": f"arn:aws:iam::{account_id}:role/{ACCESS_ROLE}",
            "roles": {key: f"arn:aws:iam::{account_id}:role/{role}" for key, role in ROLE_NAMES.items()},
            **made,
        }
    return {
        "management_account_id": organization.get("MasterAccountId", ACCOUNT_ID),
        "organization_id": organization["Id"],
        "root_id": root_id,
        "ous": ous,
        "accounts": accounts,
    }
