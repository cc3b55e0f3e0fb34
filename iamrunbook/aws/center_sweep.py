"""The Identity Center read: the instance, its identity store and permission sets, the assignments in the
target accounts and the reserved roles in the caller's account, as one `CenterState` keyed by names.

Every list is paginated. The calls go through clients paced to the instance's rate (about 20 requests a
second for all Identity Center APIs, clients.Pacer) with botocore's standard retries for throttling.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

import boto3
from botocore.exceptions import ClientError

from iamrunbook.aws import clients as aws
from iamrunbook.aws.credentials import iso
from iamrunbook.base.errors import SpecError
from iamrunbook.core.identity_center import IdentityCenterSettings
from iamrunbook.core.identity_center_state import GROUP, USER, Assignment, CenterState, PermissionSet

#: the instance, its permission sets and assignments (sso), its users and groups (identitystore), reserved roles
READ_ACTIONS = tuple(
    f"sso:{name}" for name in ("ListInstances", "ListPermissionSets", "DescribePermissionSet",
                               "ListCustomerManagedPolicyReferencesInPermissionSet",
                               "ListManagedPoliciesInPermissionSet", "GetInlinePolicyForPermissionSet",
                               "ListTagsForResource", "ListAccountsForProvisionedPermissionSet",
                               "ListAccountAssignments")
) + ("identitystore:ListUsers", "identitystore:ListGroups", "identitystore:ListGroupMemberships",
     "iam:ListRoles", "organizations:DescribeOrganization")  # fmt: skip
WRITE_ACTIONS: tuple[str, ...] = ()

#: DescribeOrganization's answers for an account in no organization, or one that may not read it: standalone
NO_ORGANIZATION = ("AWSOrganizationsNotInUseException", "AccessDeniedException", "AccessDenied")
RESERVED_PATH = "/aws-reserved/sso.amazonaws.com/"
#: AWSReservedSSO_<permission set name>_<16 hex>: the name may hold underscores, the suffix is the last 16 hex
_RESERVED_NAME = re.compile(r"AWSReservedSSO_(?P<name>.+)_(?P<suffix>[0-9a-f]{16})")
#: An assignment's principal that is neither a user nor a group of the store (deleted since, or another
#: store's) keeps its id, behind this mark, so nothing takes it for a UserName or DisplayName.
UNKNOWN_PRINCIPAL = "unknown-principal-id:"


def is_unknown_principal(principal: str) -> bool:
    return principal.startswith(UNKNOWN_PRINCIPAL)


def home_region(session: boto3.Session, settings: IdentityCenterSettings) -> str:
    return settings.home_region or session.region_name or "us-east-1"


def find_instance(sso, settings: IdentityCenterSettings, region: str) -> tuple[str, str]:
    """(instance ARN, identity store id): the settings', else the one instance ListInstances finds."""
    if settings.instance_arn and settings.identity_store_id:
        return settings.instance_arn, settings.identity_store_id
    instances = aws.paginate(sso, "list_instances", "Instances")
    if settings.instance_arn:
        instances = [i for i in instances if i["InstanceArn"] == settings.instance_arn]
    if not instances:
        wanted = f"instance {settings.instance_arn}" if settings.instance_arn else "IAM Identity Center instance"
        raise SpecError(f"identity_center: no {wanted} in {region} (ListInstances found none); enable Identity "
                        "Center there, or set identity_center.home_region to the region it is in")  # fmt: skip
    if len(instances) > 1:
        found = ", ".join(i["InstanceArn"] for i in instances)
        raise SpecError(f"identity_center: ListInstances found {len(instances)} instances in {region} ({found}); "
                        "set identity_center.instance_arn and identity_store_id to the one to use")  # fmt: skip
    return instances[0]["InstanceArn"], instances[0]["IdentityStoreId"]


def management_account(session: boto3.Session) -> str | None:
    """The organization's management account id, or None for an account in no organization (or that may not
    read it): who runs the Identity Center part (flows/center.part)."""
    org = aws.client(session, "organizations")
    try:
        found = org.describe_organization()["Organization"]
    except ClientError as exc:
        if aws.error_code(exc) in NO_ORGANIZATION:
            return None
        raise
    return found.get("MasterAccountId")


# --- the identity store ------------------------------------------------------------------------------
def read_store(store, store_id: str) -> tuple[dict[str, dict], dict[str, dict], dict[tuple[str, str], str]]:
    """Users by UserName, groups by DisplayName, and (group, user) memberships by names -> MembershipId (the
    Terraform handoff imports by it; a duplicate membership counts once, with the first id)."""
    users = {u["UserName"]: u for u in aws.paginate(store, "list_users", "Users", IdentityStoreId=store_id)}
    groups = {g["DisplayName"]: g for g in aws.paginate(store, "list_groups", "Groups", IdentityStoreId=store_id)}
    user_names = {u["UserId"]: name for name, u in users.items()}
    memberships: dict[tuple[str, str], str] = {}
    for name, group in groups.items():
        members = aws.paginate(store, "list_group_memberships", "GroupMemberships", IdentityStoreId=store_id,
                               GroupId=group["GroupId"])  # fmt: skip
        for member in members:
            user_id = (member.get("MemberId") or {}).get("UserId")
            if user_id in user_names:
                memberships.setdefault((name, user_names[user_id]), member.get("MembershipId"))
    return users, groups, memberships


# --- permission sets ---------------------------------------------------------------------------------
def read_permission_set(sso, instance: str, arn: str) -> PermissionSet:
    """One permission set: its description, policies, tags and the accounts its current version is in."""
    described = sso.describe_permission_set(InstanceArn=instance, PermissionSetArn=arn)["PermissionSet"]
    refs = aws.paginate(sso, "list_customer_managed_policy_references_in_permission_set",
                        "CustomerManagedPolicyReferences", InstanceArn=instance, PermissionSetArn=arn)  # fmt: skip
    managed = aws.paginate(sso, "list_managed_policies_in_permission_set", "AttachedManagedPolicies",
                           InstanceArn=instance, PermissionSetArn=arn)  # fmt: skip
    inline = sso.get_inline_policy_for_permission_set(InstanceArn=instance, PermissionSetArn=arn).get("InlinePolicy")
    tags = aws.paginate(sso, "list_tags_for_resource", "Tags", InstanceArn=instance, ResourceArn=arn)
    accounts = aws.paginate(sso, "list_accounts_for_provisioned_permission_set", "AccountIds", InstanceArn=instance,
                            PermissionSetArn=arn, ProvisioningStatus="LATEST_PERMISSION_SET_PROVISIONED")  # fmt: skip
    created = described.get("CreatedDate")
    return PermissionSet(
        name=described["Name"],
        arn=arn,
        session_duration=described.get("SessionDuration"),
        customer_managed=tuple(sorted((r["Name"], r.get("Path") or "/") for r in refs)),
        managed_arns=tuple(sorted(p["Arn"] for p in managed)),
        inline=bool(inline),
        tags=tuple(sorted((t["Key"], t.get("Value", "")) for t in tags)),
        created=iso(created) if isinstance(created, datetime) else None,
        provisioned=frozenset(accounts),
    )


def read_permission_sets(sso, instance: str) -> dict[str, PermissionSet]:
    arns = aws.paginate(sso, "list_permission_sets", "PermissionSets", InstanceArn=instance)
    found = (read_permission_set(sso, instance, arn) for arn in arns)
    return {ps.name: ps for ps in found}


def principal_name(principal_type: str, principal_id: str, users: dict[str, dict], groups: dict[str, dict]) -> str:
    """The principal's UserName or DisplayName; an id the store does not know stays an id, marked as one."""
    by_id = {u["UserId"]: n for n, u in users.items()} if principal_type == USER else {}
    if principal_type == GROUP:
        by_id = {g["GroupId"]: n for n, g in groups.items()}
    return by_id.get(principal_id, f"{UNKNOWN_PRINCIPAL}{principal_id}")


def read_assignments(sso, instance: str, permission_sets: dict[str, PermissionSet], accounts: Sequence[str],
                     users: dict[str, dict], groups: dict[str, dict]) -> frozenset[Assignment]:  # fmt: skip
    """Every assignment of every permission set in each target account, by names."""
    found = set()
    for ps in permission_sets.values():
        for account in accounts:
            listed = aws.paginate(sso, "list_account_assignments", "AccountAssignments", InstanceArn=instance,
                                  AccountId=account, PermissionSetArn=ps.arn)  # fmt: skip
            for a in listed:
                principal = principal_name(a["PrincipalType"], a["PrincipalId"], users, groups)
                found.add(Assignment(a.get("AccountId", account), ps.name, a["PrincipalType"], principal))
    return frozenset(found)


# --- the reserved roles ------------------------------------------------------------------------------
def parse_reserved_role(role_name: str) -> tuple[str, str] | None:
    """(permission set name, suffix) of an `AWSReservedSSO_<name>_<16 hex>` role name, or None."""
    match = _RESERVED_NAME.fullmatch(role_name)
    return (match["name"], match["suffix"]) if match else None


def read_reserved_roles(iam) -> dict[str, str]:
    """Permission set name -> the reserved role's ARN, for the account `iam` reads."""
    roles = aws.paginate(iam, "list_roles", "Roles", PathPrefix=RESERVED_PATH)
    found = {}
    for role in roles:
        parsed = parse_reserved_role(role["RoleName"])
        if parsed is not None:
            found[parsed[0]] = role["Arn"]
    return found


def read_center_state(session: boto3.Session, settings: IdentityCenterSettings, account_id: str, *,
                      accounts: Sequence[str] | None = None) -> CenterState:  # fmt: skip
    """The instance as it is now: users, groups, memberships, permission sets, the assignments in `accounts`
    (by default the caller's) and the reserved roles of the caller's account."""
    region = home_region(session, settings)
    pacer = aws.Pacer()
    sso = aws.center_client(session, "sso-admin", region, pacer)
    store = aws.center_client(session, "identitystore", region, pacer)
    with aws.step("Identity Center: find the instance (sso:ListInstances)"):
        instance, store_id = find_instance(sso, settings, region)
    with aws.step(f"Identity Center: read the identity store {store_id}"):
        users, groups, memberships = read_store(store, store_id)
    with aws.step(f"Identity Center: read the permission sets and assignments of {instance}"):
        permission_sets = read_permission_sets(sso, instance)
        assignments = read_assignments(sso, instance, permission_sets, tuple(accounts or (account_id,)), users, groups)
    with aws.step("IAM: list the Identity Center reserved roles (iam:ListRoles)"):
        reserved = read_reserved_roles(aws.client(session, "iam"))
    return CenterState(
        instance_arn=instance, identity_store_id=store_id, home_region=region, users=users, groups=groups,
        memberships=frozenset(memberships), membership_ids=memberships, permission_sets=permission_sets,
        assignments=assignments,
        reserved_roles={account_id: reserved},
    )  # fmt: skip
