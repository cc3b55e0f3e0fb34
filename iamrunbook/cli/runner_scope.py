"""Where each of the runner's actions may act: one rule per action, each on the narrowest resource and condition
IAM offers, so that the runner's own policy cannot make anyone (itself included) an administrator.

`Scope` is what the policy is built for (the parameters a run uses); `RULES` maps every declared action to the
rules (statement builders) that allow it, each rule owning one kind of scoping. An action with no rule is an
error, never a statement on `"*"`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import MANAGED_BY_KEY, MANAGED_BY_VALUE, group_name, policy_name
from iamrunbook.cli.runner_scope_center import (
    CENTER_READS,
    CENTER_UNSCOPED,
    PROVISIONING_ACTIONS,
    RESERVED_ROLES,
    SAML_PROVIDERS,
    VIA_SERVICE,
    CenterScope,
)
from iamrunbook.core.identity_center_retire import RETIRED_AT

#: The tag keys the runbook writes on a user (names.user_tags): TagUser may set these and no other.
USER_TAG_KEYS = ("Description", MANAGED_BY_KEY, "Name", "Roles")
MANAGED = {"StringEquals": {f"aws:ResourceTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE}}
#: Actions IAM (or STS, CloudTrail) grants on no narrower resource than "*": the README lists them.
UNSCOPED = (
    "access-analyzer:ListAnalyzers",
    "cloudtrail:LookupEvents",
    "iam:GetAccountPasswordPolicy",
    "iam:GetAccountSummary",
    "iam:ListServerCertificates",
    "iam:ListVirtualMFADevices",
    "iam:GenerateCredentialReport",
    "iam:GetAccountAuthorizationDetails",
    "iam:GetCredentialReport",
    "sts:GetCallerIdentity",
)


def partition_for_region(region: str) -> str:
    """The partition a region is in (`us-gov-west-1` -> `aws-us-gov`, `cn-north-1` -> `aws-cn`)."""
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws-cn" if region.startswith("cn-") else "aws"


@dataclass(frozen=True)
class Scope:
    """What the runner owns in its account: built from the parameters a run uses (`account` "*": any account,
    safe for IAM, whose identity policies never reach another account's IAM)."""

    partition: str = "aws"
    account: str = "*"
    roles: Mapping[str, str] = field(default_factory=dict)
    legacy_policy: str = "AssumeRolesPolicy"
    via_group: bool = False
    role_groups: Mapping[str, str] = field(default_factory=dict)
    revoke_role_sessions: bool = False
    #: (bucket, prefix) of `--archive s3://BUCKET/PREFIX`, or None
    archive: tuple[str, str] | None = None
    #: security_hub_import: the CIS findings go to this account's Security Hub
    security_hub_import: bool = False
    #: grant_via: identity_center: the instance, store and target accounts; None in the other modes
    center: CenterScope | None = None

    def iam(self, resource: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:{resource}"

    def owned_policies(self) -> list[str]:
        """Each role's Assume<Role>Policy, and its temporary grants' Assume<Role>PolicyUntil<stamp> policies."""
        names = [policy_name(role) for role in self.roles.values()]
        return [self.iam(f"policy/{name}{suffix}") for name in names for suffix in ("", "Until*")]

    def legacy(self) -> str:
        return self.iam(f"policy/{self.legacy_policy}")

    def groups(self) -> list[str]:
        """The role groups, and the groups of their temporary grants (<group>Until<stamp>)."""
        return [*self.role_group_arns(), *self.pair_groups()]

    def role_group_arns(self) -> list[str]:
        return [self.iam(f"group/{self.role_groups.get(k) or group_name(r)}") for k, r in self.roles.items()]

    def pair_groups(self) -> list[str]:
        return [f"{arn}Until*" for arn in self.role_group_arns()]

    def s3(self, resource: str) -> str:
        return f"arn:{self.partition}:s3:::{resource}"


def _statement(sid: str, actions: Iterable[str], resources: list[str], condition: dict | None = None) -> dict:
    statement = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def _policy_arn_is(arns: list[str]) -> dict:
    return {"ArnEquals": {"iam:PolicyARN": arns}}


# --- one builder per rule: (scope, the rule's actions that the run needs) -> statements ----------------
def _unscoped(s: Scope, actions: list[str]) -> list[dict]:
    return [_statement("ReadWithoutResourceLevelPermissions", actions, ["*"])]


def _read_users(s: Scope, actions: list[str]) -> list[dict]:
    return [_statement("ReadUsers", actions, [s.iam("user/*")])]


def _read_policies(s: Scope, actions: list[str]) -> list[dict]:
    return [_statement("ReadPolicies", actions, [s.iam("policy/*")])]


def _own_policies(s: Scope, actions: list[str]) -> list[dict]:
    """Policy writes on the Assume<Role>Policy ARNs; on the legacy policy only its deletion (the migration)."""
    legacy = [a for a in actions if a in ("iam:DeletePolicy", "iam:DeletePolicyVersion")]
    return [_statement("WriteOwnPolicies", actions, s.owned_policies()),
            _statement("DeleteLegacyPolicy", legacy, [s.legacy()])]  # fmt: skip


def _grant(s: Scope, actions: list[str]) -> list[dict]:
    """Attach only an Assume<Role>Policy: to users, or under grant_via group to the role groups."""
    out = [_statement("GrantRolesToUsers", [a for a in actions if a == "iam:AttachUserPolicy"], [s.iam("user/*")],
                      _policy_arn_is(s.owned_policies()))]  # fmt: skip
    if s.via_group:
        out.append(_statement("GrantRolesToRoleGroups", [a for a in actions if a == "iam:AttachGroupPolicy"],
                              s.groups(), _policy_arn_is(s.owned_policies())))  # fmt: skip
    return out


def _detach(s: Scope, actions: list[str]) -> list[dict]:
    """Detach an Assume<Role>Policy or the legacy policy from anything (the plan's revocations, the migration)."""
    kinds = {"iam:DetachUserPolicy": "user/*", "iam:DetachGroupPolicy": "group/*", "iam:DetachRolePolicy": "role/*"}
    resources = [s.iam(kinds[a]) for a in sorted(actions)]
    return [_statement("RevokeOwnPolicies", actions, resources, _policy_arn_is([*s.owned_policies(), s.legacy()]))]


def _role_groups(s: Scope, actions: list[str]) -> list[dict]:
    """grant_via group: create the role groups and add users to them, nothing else (no statement otherwise)."""
    return [_statement("WriteRoleGroups", actions, s.groups())] if s.via_group else []


def _users(s: Scope, actions: list[str]) -> list[dict]:
    """CreateUser only with the ManagedBy tag; TagUser only the runbook's keys, on a user already managed or
    one being adopted (the request sets ManagedBy=iamrunbook: adoption, and offboarding an untagged user)."""
    keys = {"ForAllValues:StringEquals": {"aws:TagKeys": list(USER_TAG_KEYS)}}
    adopt = {"StringEquals": {f"aws:RequestTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE}, **keys}
    retiring = [RETIRED_AT] if s.center else []  # 07's phase 2 remembers when it retired a managed user
    managed = {"StringEquals": MANAGED["StringEquals"],
               "ForAllValues:StringEquals": {"aws:TagKeys": [*USER_TAG_KEYS, *retiring]}}  # fmt: skip
    user = [s.iam("user/*")]
    tag = [a for a in actions if a == "iam:TagUser"]
    return [
        _statement("CreateOrAdoptManagedUsers", actions, user, adopt),
        _statement("TagManagedUsers", tag, user, managed),
    ]


def _managed_users(s: Scope, actions: list[str]) -> list[dict]:
    """Credential removal and deletion only on users tagged ManagedBy=iamrunbook."""
    return [_statement("RemoveManagedUsers", actions, [s.iam("user/*")], MANAGED)]


def _pair_groups(s: Scope, actions: list[str]) -> list[dict]:
    """grant_via group: a temporary grant's own group is deleted once it has expired; no other group ever is."""
    return [_statement("DeleteExpiredGrantGroups", actions, s.pair_groups())] if s.via_group else []


def _read_roles(s: Scope, actions: list[str]) -> list[dict]:
    """01's role table (session length, trust): the configured roles only."""
    return [_statement("ReadConfiguredRoles", actions, [s.iam(f"role/{r}") for r in s.roles.values()])]


def _leave_groups(s: Scope, actions: list[str]) -> list[dict]:
    """Deleting a user takes it out of every group it is in; IAM checks RemoveUserFromGroup on the group only,
    with no key for the member (README: a path that remains)."""
    return [_statement("RemoveUsersFromGroups", actions, [s.iam("group/*")])]


def _mfa(s: Scope, actions: list[str]) -> list[dict]:
    """The leaver's virtual MFA device, deleted after DeactivateMFADevice took it off the (tagged) user."""
    return [_statement("DeleteVirtualMfaDevices", actions, [s.iam("mfa/*")])]


def _revoke_sessions(s: Scope, actions: list[str]) -> list[dict]:
    """revoke_role_sessions: the AWSRevokeOlderSessions inline policy, on the configured roles only."""
    if not s.revoke_role_sessions:
        return []
    return [_statement("RevokeRoleSessions", actions, [s.iam(f"role/{r}") for r in s.roles.values()])]


def _security_hub(s: Scope, actions: list[str]) -> list[dict]:
    """security_hub_import: findings go only into the account's own default product (any region)."""
    if not s.security_hub_import:
        return []
    product = f"arn:{s.partition}:securityhub:*:{s.account}:product/{s.account}/default"
    return [{"Sid": "ImportCisFindings", "Effect": "Allow", "Action": actions, "Resource": [product]}]


def _archive(s: Scope, actions: list[str]) -> list[dict]:
    """--archive s3://BUCKET/PREFIX: objects under the prefix, the listing of the prefix, the bucket's lock."""
    if s.archive is None:
        return []
    bucket, prefix = s.archive
    objects = f"{bucket}/{prefix}/*" if prefix else f"{bucket}/*"
    object_actions = [a for a in actions if a in ("s3:GetObject", "s3:PutObject", "s3:PutObjectRetention")]
    out = [_statement("ArchiveObjects", object_actions, [s.s3(objects)])]
    if "s3:ListBucket" in actions:
        listed = {"StringLike": {"s3:prefix": [f"{prefix}/*" if prefix else "*"]}}
        out.append(_statement("ArchiveListing", ["s3:ListBucket"], [s.s3(bucket)], listed))
    lock = [a for a in actions if a == "s3:GetBucketObjectLockConfiguration"]
    if lock:
        out.append(_statement("ArchiveLockSettings", lock, [s.s3(bucket)]))
    return out


# --- grant_via: identity_center (runner_scope_center.py names the ARNs); nothing outside the mode --------
def _center_unscoped(s: Scope, actions: list[str]) -> list[dict]:
    """ListInstances (finding the instance) and ListRoles (the reserved roles): AWS scopes neither."""
    return [_statement("CenterReadsWithoutResourceLevelPermissions", actions, ["*"])] if s.center else []


def _center_reads(s: Scope, actions: list[str]) -> list[dict]:
    """The instance's permission sets and assignments (foreign ones too: the sweep must see what the spec does
    not own), on the target accounts; the store's users, groups and memberships."""
    if s.center is None:
        return []
    c, p = s.center, s.partition
    sso = [a for a in actions if a.startswith("sso:")]
    store = [a for a in actions if a.startswith("identitystore:")]
    return [
        _statement("ReadCenterInstance", sso, [c.instance(p), c.permission_sets(p), *c.sso_accounts(p, s.account)]),
        _statement("ReadIdentityStore", store, [c.store(p, s.account), *c.store_entities(p)]),
    ]


def _center_store(s: Scope, actions: list[str]) -> list[dict]:
    """Users, the role groups and their memberships, in the one store (README: groups cannot be narrowed)."""
    if s.center is None:
        return []
    return [_statement("WriteIdentityStore", actions, [s.center.store(s.partition, s.account),
                                                       *s.center.store_entities(s.partition)])]  # fmt: skip


def _center_create(s: Scope, actions: list[str]) -> list[dict]:
    """CreatePermissionSet only with ManagedBy=iamrunbook; tags only that key, never onto a permission set
    someone else manages (an untagged one may be adopted, as for users)."""
    if s.center is None:
        return []
    c, p = s.center, s.partition
    request = {"StringEquals": {f"aws:RequestTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE}}
    tag = {**request, "ForAllValues:StringEquals": {"aws:TagKeys": [MANAGED_BY_KEY]},
           "StringEqualsIfExists": MANAGED["StringEquals"]}  # fmt: skip
    resources = [c.instance(p), c.permission_sets(p)]
    return [
        _statement(
            "CreateManagedPermissionSets", [a for a in actions if a == "sso:CreatePermissionSet"], resources, request
        ),  # fmt: skip
        _statement("TagManagedPermissionSets", [a for a in actions if a == "sso:TagResource"], resources, tag),
    ]


def _center_writes(s: Scope, actions: list[str]) -> list[dict]:
    """Edits, provisioning and assignments: on the instance and the target accounts, and only on permission sets
    tagged ManagedBy=iamrunbook (one statement each: the tag condition must not meet the instance's ARN)."""
    if s.center is None:
        return []
    c, p = s.center, s.partition
    on_sets = [a for a in actions if not a.startswith("sso:Describe")]  # the status reads name the instance only
    return [
        _statement("CenterOnInstanceAndAccounts", actions, [c.instance(p), *c.sso_accounts(p, s.account)]),
        _statement("CenterOnManagedPermissionSets", on_sets, [c.permission_sets(p)], MANAGED),
    ]


def _center_provisioning(s: Scope, actions: list[str]) -> list[dict]:
    """The reserved roles and SAML provider Identity Center makes in the management account with the runner's
    credentials: only through the service (aws:ViaAWSService), only attaching the Assume<Role>Policy ARNs."""
    if s.center is None:
        return []
    attach = [a for a in actions if a in ("iam:AttachRolePolicy", "iam:DetachRolePolicy")]
    saml = [a for a in actions if "SAMLProvider" in a]
    roles = [a for a in actions if a not in attach and a not in saml]
    on_role = {**VIA_SERVICE, **_policy_arn_is(s.owned_policies())}
    return [
        _statement("CenterReservedRoles", roles, [s.iam(RESERVED_ROLES)], VIA_SERVICE),
        _statement("CenterReservedRolePolicies", attach, [s.iam(RESERVED_ROLES)], on_role),
        _statement("CenterSamlProvider", saml, [s.iam(SAML_PROVIDERS)], VIA_SERVICE),
    ]


Rule = Callable[[Scope, list[str]], list[dict]]
_USER_READS = (
    *("GetAccessKeyLastUsed", "GetLoginProfile", "GetUser", "ListAccessKeys", "ListAttachedUserPolicies"),
    *("ListGroupsForUser", "ListMFADevices", "ListSSHPublicKeys", "ListServiceSpecificCredentials"),
    *("ListSigningCertificates", "ListUserPolicies", "ListUserTags"),
)
_REMOVALS = (
    *("DeactivateMFADevice", "DeleteAccessKey", "DeleteLoginProfile", "DeleteSSHPublicKey"),
    *("DeleteServiceSpecificCredential", "DeleteSigningCertificate", "DeleteUser", "DeleteUserPolicy"),
    "UpdateAccessKey",
)
_POLICY_WRITES = ("CreatePolicy", "CreatePolicyVersion", "DeletePolicy", "DeletePolicyVersion", "TagPolicy")
#: legacy_backup.restore_legacy's own actions: the migration's rollback, run by hand with an operator's
#: credentials. The runner never gets them: with them it could attach the legacy policy to itself (or any
#: role) and rewrite it. (Its CreatePolicy and Attach*Policy of the legacy policy are refused too.)
OPERATOR_ONLY = ("iam:AttachRolePolicy", "iam:SetDefaultPolicyVersion")
_STORE_WRITES = ("CreateUser", "CreateGroup", "CreateGroupMembership", "DeleteGroupMembership")
_CENTER_WRITES = (
    *("UpdatePermissionSet", "AttachCustomerManagedPolicyReferenceToPermissionSet", "ProvisionPermissionSet"),
    *("DetachCustomerManagedPolicyReferenceFromPermissionSet", "CreateAccountAssignment", "DeleteAccountAssignment"),
    *("DescribePermissionSetProvisioningStatus", "DescribeAccountAssignmentCreationStatus"),
    "DescribeAccountAssignmentDeletionStatus",
)
_ARCHIVE = ("GetBucketObjectLockConfiguration", "GetObject", "ListBucket", "PutObject", "PutObjectRetention")

#: action -> the rules that allow it (DetachUserPolicy: the plan's owned policies, and a leaver's any policy)
RULES: dict[str, tuple[Rule, ...]] = {
    **{a: (_unscoped,) for a in UNSCOPED},
    **{f"iam:{a}": (_read_users,) for a in _USER_READS},
    **{f"iam:{a}": (_read_policies,) for a in ("GetPolicyVersion", "ListEntitiesForPolicy")},
    **{f"iam:{a}": (_own_policies,) for a in _POLICY_WRITES},
    **{f"iam:{a}": (_grant,) for a in ("AttachUserPolicy", "AttachGroupPolicy")},
    "iam:DetachGroupPolicy": (_detach,),
    "iam:DetachRolePolicy": (_detach, _center_provisioning),
    "iam:DetachUserPolicy": (_detach, _managed_users),
    **{f"iam:{a}": (_role_groups,) for a in ("CreateGroup", "AddUserToGroup")},
    "iam:RemoveUserFromGroup": (_leave_groups,),
    **{f"iam:{a}": (_users,) for a in ("CreateUser", "TagUser")},
    **{f"iam:{a}": (_managed_users,) for a in _REMOVALS},
    "iam:DeleteVirtualMFADevice": (_mfa,),
    "iam:DeleteGroup": (_pair_groups,),
    "iam:GetRole": (_read_roles, _center_provisioning),
    "iam:PutRolePolicy": (_revoke_sessions,),
    **{f"s3:{a}": (_archive,) for a in _ARCHIVE},
    "securityhub:BatchImportFindings": (_security_hub,),
    **{a: (_center_unscoped,) for a in CENTER_UNSCOPED},
    **{
        a: (_center_reads,)
        for a in CENTER_READS
        if a.split(":")[0] in ("sso", "identitystore") and a not in CENTER_UNSCOPED
    },
    **{f"identitystore:{a}": (_center_store,) for a in _STORE_WRITES},
    **{f"sso:{a}": (_center_create,) for a in ("CreatePermissionSet", "TagResource")},
    **{f"sso:{a}": (_center_writes,) for a in _CENTER_WRITES},
    **{a: (_center_provisioning,) for a in PROVISIONING_ACTIONS if a not in ("iam:GetRole", "iam:DetachRolePolicy")},
}
#: the mode's statements come last, reads first, in the order a run needs them
_CENTER_ORDER = (_center_unscoped, _center_reads, _center_store, _center_create, _center_writes, _center_provisioning)
_ORDER = [r for r in dict.fromkeys(rule for rules in RULES.values() for rule in rules) if r not in _CENTER_ORDER]
_ORDER += _CENTER_ORDER


def scoped_statements(scope: Scope, actions: Iterable[str]) -> list[dict]:
    """The statements allowing `actions` (less OPERATOR_ONLY), each on its rule's resources and conditions.
    Under grant_via identity_center, AttachRolePolicy is Identity Center's, on its reserved roles only."""
    operator_only = set(OPERATOR_ONLY) - (set(PROVISIONING_ACTIONS) if scope.center else set())
    actions = sorted(set(actions) - operator_only)
    unknown = [a for a in actions if a not in RULES]
    if unknown:
        raise SpecError(f"no scoping rule for {unknown}: add one to runner_scope.RULES (never Resource '*')")
    statements = []
    for rule in _ORDER:
        mine = [a for a in actions if rule in RULES[a]]
        if mine:
            statements += [s for s in rule(scope, mine) if s["Action"]]
    return statements
