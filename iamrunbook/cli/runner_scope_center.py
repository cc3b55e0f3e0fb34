"""What the runner owns in Identity Center (`grant_via: identity_center`): the ARNs its statements name, and
what a policy printed before the instance is known cannot narrow.

The resource types are those of AWS's Service Authorization Reference: sso `Instance`
(`arn:P:sso:::instance/ID`), `PermissionSet` (`arn:P:sso:::permissionSet/INSTANCE_ID/PS_ID`, with
`aws:ResourceTag`), `Account` (`arn:P:sso:::account/ACCOUNT`); identitystore `Identitystore`
(`arn:P:identitystore::ACCOUNT:identitystore/STORE_ID`), `User`, `Group`, `GroupMembership` (no account, no
tags). runner_scope.py builds the statements from these.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The reads of the mode (aws/center_sweep.py, the sign-in reader): a test holds them equal to those modules'
#: declarations once they are merged.
CENTER_READS = (
    *("sso:ListInstances", "sso:ListPermissionSets", "sso:DescribePermissionSet"),
    *("sso:ListCustomerManagedPolicyReferencesInPermissionSet", "sso:ListManagedPoliciesInPermissionSet"),
    *("sso:GetInlinePolicyForPermissionSet", "sso:ListTagsForResource", "sso:ListAccountsForProvisionedPermissionSet"),
    *("sso:ListAccountAssignments", "identitystore:ListUsers", "identitystore:ListGroups"),
    *("identitystore:ListGroupMemberships", "identitystore:GetUserId", "identitystore:GetGroupId"),
    *("identitystore:GetGroupMembershipId", "iam:ListRoles", "cloudtrail:LookupEvents"),
    "organizations:DescribeOrganization",  # which part a run takes: the management account's or a member's
)
#: Reads AWS grants on no narrower resource than "*" (README lists them beside runner_scope.UNSCOPED).
CENTER_UNSCOPED = ("sso:ListInstances", "iam:ListRoles", "organizations:DescribeOrganization")
#: In the management account Identity Center makes the reserved roles with the caller's own credentials
#: (a forward access session), not its service-linked role: what it calls there, for the runbook's
#: permission sets (customer-managed references only, no inline policy, no boundary).
PROVISIONING_ACTIONS = (
    *("iam:CreateRole", "iam:GetRole", "iam:UpdateRole", "iam:UpdateRoleDescription", "iam:DeleteRole"),
    *("iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:ListAttachedRolePolicies", "iam:ListRolePolicies"),
    *("iam:CreateSAMLProvider", "iam:GetSAMLProvider"),
)
RESERVED_ROLES = "role/aws-reserved/sso.amazonaws.com/*"
SAML_PROVIDERS = "saml-provider/AWSSSO_*_DO_NOT_DELETE"
#: The condition every provisioning action carries: only a service acting with the runner's credentials
#: (Identity Center's forward access session) may use them, never the runner calling IAM itself.
VIA_SERVICE = {"Bool": {"aws:ViaAWSService": "true"}}


@dataclass(frozen=True)
class CenterScope:
    """The `identity_center` parameter as the policy needs it: None for what ListInstances finds at run time."""

    instance_arn: str | None = None
    identity_store_id: str | None = None
    #: identity_center_accounts; empty: the caller's account (the Scope's)
    accounts: tuple[str, ...] = ()

    @property
    def instance_id(self) -> str:
        return self.instance_arn.rsplit("/", 1)[-1] if self.instance_arn else "*"

    def instance(self, partition: str) -> str:
        return f"arn:{partition}:sso:::instance/{self.instance_id}"

    def permission_sets(self, partition: str) -> str:
        return f"arn:{partition}:sso:::permissionSet/{self.instance_id}/*"

    def sso_accounts(self, partition: str, caller: str) -> list[str]:
        """The target accounts' sso ARNs; no accounts and no caller's account known: any account."""
        return [f"arn:{partition}:sso:::account/{a}" for a in (self.accounts or (caller,))]

    def store(self, partition: str, account: str) -> str:
        return f"arn:{partition}:identitystore::{account}:identitystore/{self.identity_store_id or '*'}"

    @staticmethod
    def store_entities(partition: str) -> list[str]:
        """Users, groups and memberships: their ARNs carry neither the store nor an account, nor tags."""
        return [f"arn:{partition}:identitystore:::{kind}/*" for kind in ("user", "group", "membership")]

    def notes(self, account: str) -> list[str]:
        """What the printed policy could not narrow, and why (the CLI prints them to stderr)."""
        out = []
        if not self.instance_arn:
            out.append("identity_center.instance_arn not given: sso statements name any instance "
                       "(instance/*, permissionSet/*/*); give it to narrow them to yours")  # fmt: skip
        if not self.identity_store_id:
            out.append("identity_center.identity_store_id not given: identitystore statements name any store "
                       "in the account; give it to narrow them to yours")  # fmt: skip
        if not self.accounts and account == "*":
            out.append("no identity_center_accounts and no account: assignments may target any account "
                       "(account/*); give --account-id or identity_center_accounts")  # fmt: skip
        out.append("identity-store groups carry no tags and get their ids when created: group memberships "
                   "are scoped to the store, not to the runbook's groups")  # fmt: skip
        return out
