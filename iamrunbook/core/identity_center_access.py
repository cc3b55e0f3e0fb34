"""Effective access along Identity Center's path, beside access.py's IAM paths.

user -> group (membership) or the user itself -> account assignment in the account -> permission set -> its
reserved role `AWSReservedSSO_<PermissionSet>_<suffix>` there -> the policies it references -> the role's
trust. A permission set counts in an account only once provisioned there (its reserved role exists, or
the account is among those with its current version) and only when every customer-managed policy it
references exists in the account with that name and path (else AWS fails its provisioning). Its policies
are evaluated as one identity policy (an unconditional Deny wins, the weakest Allow decides, a condition
makes the path "conditional"); the trust must admit the reserved role whatever its suffix
(identity_center_trust.py), so a trust naming today's reserved role by ARN does not count.

The policies are the account's as they are now: a reserved role holds references by name, so a new
document takes effect without provisioning. What a reference attached since the last provisioning adds is
counted at once (provisioning follows it in every plan); inline and AWS-managed policies of a permission
set are counted only when the sweep holds their document.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from iamrunbook.base.names import ASSUME_ROLE, is_aws_managed, partition_of
from iamrunbook.core.access import Grant, document_access, effective_access, statements
from iamrunbook.core.identity_center_state import GROUP, USER, CenterState, PermissionSet
from iamrunbook.core.identity_center_trust import trust_admits_reserved_role
from iamrunbook.core.inventory import Inventory, decode_document, default_document

GRANTING = ("yes", "conditional")


def via(permission_set: str) -> str:
    """A grant's path through Identity Center, as 01 and 04 show it."""
    return f"via Identity Center permission set {permission_set}"


def policies_by_name(policies: Mapping[str, dict]) -> dict[tuple[str, str], dict]:
    """(name, path) -> customer-managed policy: how a permission set's reference finds its policy."""
    return {(p.get("PolicyName") or arn.rsplit("/", 1)[-1], p.get("Path") or "/"): p
            for arn, p in policies.items() if not is_aws_managed(arn)}  # fmt: skip


def is_provisioned(state: CenterState, ps: PermissionSet, account: str) -> bool:
    return account in ps.provisioned or ps.name in state.reserved_roles.get(account, {})


def missing_references(ps: PermissionSet, named: Mapping[tuple[str, str], dict]) -> list[str]:
    """The permission set's references that name no policy of the account: `<path><name>` each."""
    return [f"{path}{name}" for name, path in ps.customer_managed if (name, path) not in named]


def _documents(ps: PermissionSet, named: Mapping, policies: Mapping[str, dict]) -> list[tuple[str, dict]]:
    """(policy ARN, default document) of every policy the reserved role holds that the sweep knows."""
    found = [(named[ref]["Arn"], default_document(named[ref])) for ref in ps.customer_managed]
    found += [(arn, default_document(policies[arn])) for arn in ps.managed_arns if arn in policies]
    return found


def _reach(documents: list[tuple[str, dict]], role_arn: str, now: datetime | None) -> tuple[str, tuple, str | None]:
    """(verdict, conditions, the first policy that allows on its own) of the documents taken together."""
    merged = {"Version": "2012-10-17", "Statement": [s for _, d in documents for s in statements(d)]}
    verdict, conditions = document_access(merged, ASSUME_ROLE, role_arn, now=now)
    source = next((arn for arn, d in documents
                   if document_access(d, ASSUME_ROLE, role_arn, now=now)[0] in GRANTING), None)  # fmt: skip
    return verdict, conditions, source or (documents[0][0] if documents else None)


def permission_set_grants(state: CenterState, ps: PermissionSet, policies: Mapping[str, dict],
                          roles: Mapping[str, dict], account_id: str, partition: str = "aws",
                          now: datetime | None = None) -> list[Grant]:  # fmt: skip
    """The roles (role key -> the role's sweep entry) the permission set reaches in `account_id`, as Grants
    with no user: nothing when it is not provisioned there or a referenced policy is missing."""
    named = policies_by_name(policies)
    if not is_provisioned(state, ps, account_id) or missing_references(ps, named):
        return []
    documents = _documents(ps, named, policies)
    found = []
    for key, role in roles.items():
        verdict, conditions, source = _reach(documents, role["Arn"], now)
        if verdict not in GRANTING:
            continue
        trust = decode_document(role.get("AssumeRolePolicyDocument") or {})
        if not trust_admits_reserved_role(trust, account_id, ps.name, state.home_region, partition).admits:
            continue
        found.append(Grant("", key, role["RoleName"], verdict, via(ps.name), source, conditions))
    return found


def _permission_sets_of(state: CenterState, user: str, account_id: str) -> set[str]:
    """The permission sets assigned in the account to the user or to a group of theirs."""
    groups = {g for g in state.groups_of(user) if g in state.groups}
    return {a.permission_set for a in state.assignments if a.account == account_id and (
            (a.principal_type == USER and a.principal == user) or
            (a.principal_type == GROUP and a.principal in groups))}  # fmt: skip


def center_access(state: CenterState, policies: Mapping[str, dict], roles: Mapping[str, dict], account_id: str,
                  partition: str = "aws", users: Iterable[str] | None = None,
                  now: datetime | None = None) -> list[Grant]:  # fmt: skip
    """Every (identity-store user, role) path through Identity Center in `account_id`; `roles` maps role key
    -> the role's sweep entry, `policies` the account's policies by ARN; `users` (UserNames, exact) limits it."""
    names = sorted(state.users if users is None else (u for u in users if u in state.users))
    by_set: dict[str, list[Grant]] = {}
    grants = []
    for user in names:
        for name in sorted(_permission_sets_of(state, user, account_id)):
            if name not in by_set:
                ps = state.permission_sets.get(name)
                by_set[name] = [] if ps is None else permission_set_grants(state, ps, policies, roles, account_id,
                                                                           partition, now)  # fmt: skip
            grants += [Grant(user, g.role_key, g.role_name, g.verdict, g.path, g.policy_arn, g.conditions)
                       for g in by_set[name]]  # fmt: skip
    return grants


def present_roles(inventory_roles: Mapping[str, dict], roles: Mapping[str, str]) -> dict[str, dict]:
    """role key -> the role's sweep entry, for the configured roles that exist."""
    return {key: inventory_roles[name] for key, name in roles.items() if name in inventory_roles}


def center_grants(state: CenterState, inventory: Inventory, roles: Mapping[str, str], account_id: str,
                  users: Iterable[str] | None = None, now: datetime | None = None) -> list[Grant]:  # fmt: skip
    """Every Identity Center path to a configured role (role key -> role name) in `account_id`, whose policies
    and roles `inventory` holds. Grant.user is the identity-store UserName."""
    return center_access(state, inventory.policies, present_roles(inventory.roles, roles), account_id,
                         partition_of(inventory.caller_arn), users, now)  # fmt: skip


def held_now(inventory: Inventory, state: CenterState, roles: Mapping[str, str], names: Iterable[str],
             now: datetime | None = None) -> dict[str, frozenset[str]]:  # fmt: skip
    """name -> the role keys that person can assume now by any path: their IAM user's (matched
    case-insensitively, as IAM does) and their identity-store user's (UserName exact)."""
    names = list(names)
    present = {key: name for key, name in roles.items() if name in inventory.roles}
    found: dict[str, set[str]] = {n: set() for n in names}
    lower = {n.lower(): n for n in names}
    for g in effective_access(inventory.details(), present, inventory.account_id, users=names, now=now):
        if g.user.lower() in lower:
            found[lower[g.user.lower()]].add(g.role_key)
    for g in center_grants(state, inventory, roles, inventory.account_id, users=names, now=now):
        found[g.user].add(g.role_key)
    return {n: frozenset(keys) for n, keys in found.items()}
