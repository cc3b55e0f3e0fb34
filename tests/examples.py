"""The example spec as the tests expect it, written once: issue 2's 12 addresses and the same spec as tfvars."""

from __future__ import annotations

from pathlib import Path

EXAMPLE_PARAMS = Path(__file__).resolve().parents[1] / "parameters" / "example.yaml"

#: What verify (and `terraform state list`) must list once the example spec is applied: issue 2, verbatim.
EXAMPLE_ADDRESSES = [
    'aws_iam_policy.assume_role["admin"]',
    'aws_iam_policy.assume_role["data_engineer"]',
    'aws_iam_policy.assume_role["infrastructure_admin"]',
    'aws_iam_user.users["alice@example.com"]',
    'aws_iam_user.users["bob@example.com"]',
    'aws_iam_user.users["your-username"]',
    'aws_iam_user_policy_attachment.user_roles["alice@example.com/data_engineer"]',
    'aws_iam_user_policy_attachment.user_roles["alice@example.com/infrastructure_admin"]',
    'aws_iam_user_policy_attachment.user_roles["bob@example.com/data_engineer"]',
    'aws_iam_user_policy_attachment.user_roles["your-username/admin"]',
    'aws_iam_user_policy_attachment.user_roles["your-username/data_engineer"]',
    'aws_iam_user_policy_attachment.user_roles["your-username/infrastructure_admin"]',
]

#: parameters/example.yaml's iam_users as Terraform variables.
EXAMPLE_TFVARS = """\
# The same spec as parameters/example.yaml, as Terraform variables.
iam_users = {
  "your-username" = {
    description = "Account owner - full access"
    roles       = ["admin", "data_engineer", "infrastructure_admin"]
  }
  "alice@example.com" = {
    description = "Alice - Platform Engineer"
    roles       = ["data_engineer", "infrastructure_admin"]
  }
  "bob@example.com" = {
    description = "Bob - Data Engineer"
    roles       = ["data_engineer"]
  }
}
"""
