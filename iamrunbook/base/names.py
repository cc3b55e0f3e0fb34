"""Names the runbook and its Terraform configuration share: ARNs, policies, groups, tags and addresses.

Keeping them in one place is what lets the Terraform handoff import exactly what the runbook made, and
what gives every module the same reading of an ARN (partition-aware) and of an IAM name (case-insensitive).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

#: role key -> IAM role name; the default mapping when a spec names none.
DEFAULT_ROLES: dict[str, str] = {
    "admin": "AdminRole",
    "data_engineer": "DataEngineerRole",
    "infrastructure_admin": "InfrastructureAdminRole",
}

MANAGED_BY_KEY = "ManagedBy"
MANAGED_BY_VALUE = "iamrunbook"

#: AWS refuses commas in tag values, so role keys are joined with a space.
ROLES_TAG_SEPARATOR = " "

POLICY_VERSION = "2012-10-17"
ASSUME_ROLE = "sts:AssumeRole"
PARTITIONS = ("aws", "aws-us-gov", "aws-cn")
#: The condition AWS recommends for MFA-gated role assumption. `Bool`, not `BoolIfExists`: the latter
#: lets long-term access keys (which carry no MFA context at all) through.
MFA_PRESENT = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}


# --- ARNs ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str

    @property
    def kind(self) -> str:
        """The resource type: `user`, `role`, `assumed-role`, `policy`, `group`, `root`, `mfa`, ..."""
        return self.resource.split("/", 1)[0]

    @property
    def name(self) -> str:
        """The last path segment: a user, role, policy or group name (paths dropped)."""
        return self.resource.rsplit("/", 1)[-1]


def version_number(version: Mapping) -> int:
    """A policy version's number (`v3` -> 3). IAM numbers versions v1, v2, ... and never reuses a number, so it is
    also the version's age: the one rule for "oldest" and "next" (CreateDate can tie within a second)."""
    digits = "".join(ch for ch in version["VersionId"] if ch.isdigit())
    return int(digits or 0)


def parse_arn(arn: str | None) -> Arn | None:
    """`arn:<partition>:<service>:<region>:<account>:<resource>`, or None when `arn` is not one."""
    parts = (arn or "").split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[1] not in PARTITIONS:
        return None
    return Arn(*parts[1:])


def partition_of(arn: str | None) -> str:
    parsed = parse_arn(arn)
    return parsed.partition if parsed else "aws"


def caller_user_name(caller_arn: str | None) -> str | None:
    """The IAM user name of a `user/[path/]name` caller (`iam`, or moto's `sts`), or None for roles."""
    parsed = parse_arn(caller_arn)
    if parsed is None or parsed.service not in ("iam", "sts") or parsed.kind != "user":
        return None
    return parsed.name


def caller_role_name(caller_arn: str | None) -> str | None:
    """The role of an `sts::<acct>:assumed-role/<role>/<session>` caller, or None."""
    parsed = parse_arn(caller_arn)
    if parsed is None or parsed.kind != "assumed-role":
        return None
    parts = parsed.resource.split("/")
    return parts[1] if len(parts) >= 3 else None


def is_aws_managed(policy_arn: str | None) -> bool:
    """AWS-managed policies live in the account named `aws` (`arn:aws:iam::aws:policy/...`)."""
    parsed = parse_arn(policy_arn)
    return parsed is not None and parsed.account == "aws"


def name_from_arn(arn: str) -> str:
    """A policy or user name from its ARN: correct on AWS and on moto (which omits PolicyName)."""
    return arn.rsplit("/", 1)[-1]


def same_name(a: str | None, b: str | None) -> bool:
    """IAM user, group and role names are unique regardless of case: 'Alice' and 'alice' are one."""
    return a is not None and b is not None and a.lower() == b.lower()


def find_named(names: Iterable[str], name: str) -> str | None:
    """The spelling in `names` of the IAM name `name` (exact first, then ignoring case), or None."""
    names = list(names)
    if name in names:
        return name
    return next((n for n in names if same_name(n, name)), None)


def role_arn(account_id: str, role_name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:role/{role_name}"


def policy_arn(account_id: str, name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account_id}:policy/{name}"


# --- what the runbook creates ---------------------------------------------------------------------
def policy_name(role_name: str) -> str:
    return f"Assume{role_name}Policy"


def policy_description(role_name: str) -> str:
    return f"Allows assuming {role_name}"


#: the UTC minute a temporary grant ends, as names carry it: 20261231T1800Z
UNTIL_STAMP = "%Y%m%dT%H%MZ"
#: the same minute as IAM conditions and the spec write it (RFC 3339, what Terraform's timecmp wants)
UNTIL_TEXT = "%Y-%m-%dT%H:%M:00Z"


def temporary_policy_name(role_name: str, until: datetime) -> str:
    """Assume<RoleName>PolicyUntil<YYYYMMDDTHHMMZ>: one per (role, until), shared by whoever holds that pair."""
    return f"{policy_name(role_name)}Until{until.strftime(UNTIL_STAMP)}"


def temporary_group_name(group: str, until: datetime) -> str:
    """Under grant_via: group, the group of one (role, until) pair: <RoleName>UsersUntil<YYYYMMDDTHHMMZ>."""
    return f"{group}Until{until.strftime(UNTIL_STAMP)}"


def until_condition(until: datetime) -> dict:
    """AWS itself ends the grant: the statement applies only while aws:CurrentTime < until (strict)."""
    return {"DateLessThan": {"aws:CurrentTime": until.strftime(UNTIL_TEXT)}}


def group_name(role_name: str) -> str:
    """The default IAM group of a role under `grant_via: group` (`role_groups` overrides it)."""
    return f"{role_name}Users"


def mfa_condition(max_age_seconds: int | None = None) -> dict:
    """The Condition block of an MFA-required Assume*Policy, with an optional age limit."""
    condition = {op: dict(keys) for op, keys in MFA_PRESENT.items()}
    if max_age_seconds is not None:
        condition["NumericLessThan"] = {"aws:MultiFactorAuthAge": str(max_age_seconds)}
    return condition


def policy_document(
    account_id: str,
    role_name: str,
    *,
    mfa: bool = False,
    mfa_max_age_seconds: int | None = None,
    partition: str = "aws",
    until: datetime | None = None,
) -> dict:
    """The one statement an Assume*Policy holds: sts:AssumeRole on one role (only with MFA, if asked; only
    before `until`, for a temporary grant)."""
    statement = {"Effect": "Allow", "Action": ASSUME_ROLE, "Resource": role_arn(account_id, role_name, partition)}
    condition = (mfa_condition(mfa_max_age_seconds) if mfa else {}) | (until_condition(until) if until else {})
    if condition:
        statement["Condition"] = condition
    return {"Version": POLICY_VERSION, "Statement": [statement]}


def document_text(document: dict) -> str:
    """A policy document as the JSON string IAM takes."""
    return json.dumps(document)


def user_tags(name: str, description: str, role_keys: tuple[str, ...]) -> dict[str, str]:
    return {
        "Name": name,
        "Description": description,
        "Roles": ROLES_TAG_SEPARATOR.join(role_keys),
        MANAGED_BY_KEY: MANAGED_BY_VALUE,
    }


# --- Terraform addresses, as `terraform state list` prints them --------------------------------------
def _address(resource: str, key: str) -> str:
    return f'{resource}["{key}"]'


def user_address(user: str) -> str:
    return _address("aws_iam_user.users", user)


def policy_address(role_key: str) -> str:
    return _address("aws_iam_policy.assume_role", role_key)


def attachment_address(user: str, role_key: str) -> str:
    return _address("aws_iam_user_policy_attachment.user_roles", f"{user}/{role_key}")


def group_address(role_key: str) -> str:
    return _address("aws_iam_group.role_groups", role_key)


def group_attachment_address(role_key: str) -> str:
    return _address("aws_iam_group_policy_attachment.role_groups", role_key)


def membership_address(user: str) -> str:
    return _address("aws_iam_user_group_membership.users", user)
