"""Names the runbook and its Terraform configuration share: policies, tags and resource addresses.

Keeping them in one place is what lets the Terraform handoff import exactly what the runbook made.
"""

from __future__ import annotations

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


def policy_name(role_name: str) -> str:
    return f"Assume{role_name}Policy"


def policy_description(role_name: str) -> str:
    return f"Allows assuming {role_name}"


def role_arn(account_id: str, role_name: str) -> str:
    return f"arn:aws:iam::{account_id}:role/{role_name}"


def policy_arn(account_id: str, name: str) -> str:
    return f"arn:aws:iam::{account_id}:policy/{name}"


def policy_document(account_id: str, role_name: str) -> dict:
    """The one statement an Assume*Policy holds: sts:AssumeRole on one role, nothing else."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": role_arn(account_id, role_name)}],
    }


def user_tags(name: str, description: str, role_keys: tuple[str, ...]) -> dict[str, str]:
    return {
        "Name": name,
        "Description": description,
        "Roles": ROLES_TAG_SEPARATOR.join(role_keys),
        MANAGED_BY_KEY: MANAGED_BY_VALUE,
    }


def name_from_arn(arn: str) -> str:
    """A policy or user name from its ARN: correct on AWS and on moto (which omits PolicyName)."""
    return arn.rsplit("/", 1)[-1]


# Terraform addresses, as `terraform state list` prints them.
def user_address(user: str) -> str:
    return f'aws_iam_user.users["{user}"]'


def policy_address(role_key: str) -> str:
    return f'aws_iam_policy.assume_role["{role_key}"]'


def attachment_address(user: str, role_key: str) -> str:
    return f'aws_iam_user_policy_attachment.user_roles["{user}/{role_key}"]'
