"""Plan for `grant_via: identity_center`: a pure function of spec, account and instance, proven before it is shown.

The same spec as the other modes, granted through Identity Center (07's phase 1, and 03 in this mode):

- each role's Assume<Role>Policy in the caller's account, exactly as plan.py makes them;
- one identity-store user per spec user, created when missing (never edited or deleted: the store has no
  tags to say whose a user is);
- one group per role (`<RoleName>Users` or `role_groups`) holding exactly the users the spec grants it;
- one permission set per role, `Assume<Role>`, tagged ManagedBy=iamrunbook, with the settings' session
  duration, referencing only `Assume<Role>Policy` at path `/`, provisioned again after it changes;
- one assignment group -> permission set in each target account; any other principal assigned to the
  runbook's permission sets is drift.

The runbook's groups and permission sets are known by name, as group mode knows its groups. Nothing else in
the instance is touched: not other users, groups, permission sets or their assignments, and no IAM user.

Temporary grants are refused while active: Identity Center memberships do not end by themselves, so a
grant "until" a time cannot be made the way the spec means it (expired ones are ignored).

Every change has a `phase` (changes of one phase may run at once, the executor runs phases in order):
policies, then creates, permission set edits, their provisioning, memberships, assignments; then what
narrows: policy documents that take access away, unassignments, reference detaches and their provisioning,
membership removals. The plan is then proven with identity_center_simulate: a plan that cannot be ordered
so that nobody loses a role they keep is refused (LockoutError), never returned.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import MANAGED_BY_KEY, MANAGED_BY_VALUE, policy_description, policy_name
from iamrunbook.core.changes import RANK, Change
from iamrunbook.core.identity_center import (
    MODE,
    IdentityCenterSettings,
    group_description,
    ic_address,
    ic_provision_address,
    permission_set_name,
    store_user,
)
from iamrunbook.core.identity_center_access import is_provisioned, policies_by_name
from iamrunbook.core.identity_center_retire import RetirePlan, plan_retire
from iamrunbook.core.identity_center_simulate import check_center
from iamrunbook.core.identity_center_state import GROUP, POLICY_PATH, Assignment, CenterState
from iamrunbook.core.identity_center_trust import unassumable_roles
from iamrunbook.core.inventory import Inventory, decode_document
from iamrunbook.core.plan import Plan, check_roles_exist, policy_arns, policy_changes
from iamrunbook.core.simulate import LockoutError
from iamrunbook.core.spec import Spec

__all__ = ["CenterPlan", "RetirePlan", "make_center_plan", "make_member_plan", "plan_retire", "PHASES"]

POLICY, CREATE, EDIT, PROVISION, MEMBER, ASSIGN, NARROW, UNASSIGN, DETACH, REPROVISION, REMOVE = range(1, 12)
PHASES = {
    POLICY: "Assume*Policy policies created, and documents restored where that takes access from nobody",
    CREATE: "identity-store users and groups, permission sets",
    EDIT: "permission set settings and policy references",
    PROVISION: "provisioning of changed permission sets",
    MEMBER: "group memberships added",
    ASSIGN: "account assignments",
    NARROW: "Assume*Policy documents restored where that narrows someone's access",
    UNASSIGN: "assignments of other principals to the runbook's permission sets removed",
    DETACH: "other policy references detached from the runbook's permission sets",
    REPROVISION: "provisioning after the detaches",
    REMOVE: "group memberships the spec does not grant removed",
}
_PHASE_OF = {"create_policy": POLICY, "prune_policy_version": POLICY, "update_policy": POLICY,
             "ic_create_user": CREATE, "ic_create_group": CREATE, "ic_create_permission_set": CREATE,
             "ic_update_permission_set": EDIT, "ic_attach_policy_reference": EDIT, "ic_add_member": MEMBER,
             "ic_assign": ASSIGN, "ic_unassign": UNASSIGN, "ic_detach_policy_reference": DETACH,
             "ic_remove_member": REMOVE}  # fmt: skip


@dataclass(frozen=True)
class CenterPlan(Plan):
    """The changes that grant the spec through Identity Center, in their phases; apply consumes it. A Plan
    (account, caller, roles, changes) with the instance and the target accounts."""

    instance_arn: str = ""
    accounts: tuple[str, ...] = ()
    empty_line = "No changes. Identity Center matches the spec."

    def to_json(self) -> str:
        data = json.loads(super().to_json()) | {"instance_arn": self.instance_arn, "accounts": list(self.accounts)}
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> CenterPlan:
        data = json.loads(text)
        return replace(super().from_json(text), instance_arn=data.get("instance_arn", ""),
                       accounts=tuple(data.get("accounts", ())))  # fmt: skip


# --- refusals -----------------------------------------------------------------------------------------
def _granted_roles(spec: Spec) -> dict[str, str]:
    keys = {key for _, key in spec.grants()}
    return {key: role for key, role in spec.roles.items() if key in keys}


def refusals(spec: Spec, inv: Inventory, state: CenterState) -> list[str]:
    """Every reason the mode cannot grant this spec in this account, one line each."""
    problems = []
    if spec.settings.grant_via != MODE:
        problems.append(f"grant_via is {spec.settings.grant_via!r}: this plan is for grant_via: {MODE}")
    try:
        check_roles_exist(spec, inv)
    except SpecError as exc:
        problems += exc.problems
    granted = {k: r for k, r in _granted_roles(spec).items() if r in inv.roles}
    trusts = {r: decode_document(inv.roles[r].get("AssumeRolePolicyDocument") or {}) for r in granted.values()}
    problems += unassumable_roles(granted, trusts, inv.account_id, state.home_region, inv.partition)
    for user in spec.users.values():
        for grant in user.active(spec.now):
            problems.append(f"{user.name}: temporary grant of {grant.role} until {grant.until}: Identity Center "
                            f"memberships do not end by themselves; grant_via: {MODE} does not plan temporary "
                            "grants (remove it, or let it expire)")  # fmt: skip
    for key, role in spec.roles.items():
        found = inv.local_policy(policy_name(role))
        if found is not None and (found.get("Path") or "/") != POLICY_PATH:
            problems.append(f"roles.{key}: {policy_name(role)} is at path {found['Path']}; the permission set "
                            f"references it at {POLICY_PATH} (recreate it there)")  # fmt: skip
    return problems


# --- the changes, unordered ---------------------------------------------------------------------------------
def _user_changes(spec: Spec, state: CenterState) -> Iterator[Change]:
    for user in spec.users.values():
        if user.name not in state.users:
            wanted = store_user(user.name, user.description)
            yield Change("ic_create_user", ic_address("user", user.name),
                         f"create identity-store user {user.name} ({wanted['DisplayName']})", user=user.name,
                         document=json.dumps(wanted))  # fmt: skip


def _group_changes(spec: Spec, state: CenterState, key: str) -> Iterator[Change]:
    """The role's group, holding exactly the users the spec grants the role."""
    role, group = spec.roles[key], spec.settings.group_name(key, spec.roles[key])
    common = dict(target_kind="ic_group", target_name=group, role_key=key)
    if group not in state.groups:
        yield Change("ic_create_group", ic_address("group", key), f"create group {group} for {role}",
                     description=group_description(role), **common)  # fmt: skip
    members = state.members(group)
    granted = [u.name for u in spec.users.values() if key in u.roles]
    for user in granted:
        if user not in members:
            yield Change("ic_add_member", ic_address("membership", key, user), f"add {user} to {group} (grants {role})",
                         user=user, **common)  # fmt: skip
    for user in sorted(members - set(granted)):
        yield Change("ic_remove_member", ic_address("membership", key, user), f"drift: the spec does not grant {user} "
                     f"{role}", user=user, **common)  # fmt: skip


def _provisions(state: CenterState, key: str, ps_name: str, edited: bool, detached: bool,
                targets: Sequence[str]) -> Iterator[Change]:  # fmt: skip
    """After an edit, provisioning wherever the permission set is provisioned now; after detaches, in every
    target account (where its assignments leave it provisioned)."""
    ps = state.permission_sets.get(ps_name)
    if edited and ps is not None:
        for account in sorted({*state.reserved_roles, *ps.provisioned}):
            if is_provisioned(state, ps, account):
                yield Change("ic_provision", ic_provision_address(key, account), f"provision {ps_name} in {account} "
                             "after its change", target_name=ps_name, role_key=key, account=account)  # fmt: skip
    if detached:
        for account in targets:
            yield Change("ic_provision", ic_provision_address(key, account, after_detach=True), f"provision "
                         f"{ps_name} in {account} after the detaches", target_name=ps_name, role_key=key,
                         account=account, phase=REPROVISION)  # fmt: skip


def _permission_set_changes(spec: Spec, inv: Inventory, state: CenterState, key: str,
                            settings: IdentityCenterSettings, targets: Sequence[str]) -> Iterator[Change]:  # fmt: skip
    """The role's permission set: created or its duration restored, referencing only Assume<Role>Policy, and
    provisioned again once it changed."""
    role, ps_name = spec.roles[key], permission_set_name(spec.roles[key])
    own_ref, duration = (policy_name(role), POLICY_PATH), settings.session_duration
    common = dict(target_kind="permission_set", target_name=ps_name, role_key=key)
    ps = state.permission_sets.get(ps_name)
    edited = False
    if ps is None:
        yield Change("ic_create_permission_set", ic_address("permission_set", key), f"create permission set {ps_name} "
                     f"for {role} (session {duration})", description=policy_description(role),
                     tags=((MANAGED_BY_KEY, MANAGED_BY_VALUE),), document=json.dumps({"SessionDuration": duration}),
                     **common)  # fmt: skip
    elif (ps.session_duration or "PT1H") != duration:
        edited = True
        yield Change("ic_update_permission_set", ic_address("permission_set", key), f"session duration "
                     f"{ps.session_duration or 'PT1H'} -> {duration}",
                     document=json.dumps({"SessionDuration": duration}), **common)  # fmt: skip
    refs = ps.customer_managed if ps is not None else ()
    if own_ref not in refs:
        edited = edited or ps is not None
        yield Change("ic_attach_policy_reference", ic_address("policy_reference", key), f"reference {own_ref[0]} at "
                     f"{POLICY_PATH}: the permission set grants what the IAM policy grants", policy_name=own_ref[0],
                     **common)  # fmt: skip
    named = policies_by_name(inv.policies)
    stale = [ref for ref in refs if ref != own_ref]
    for name, path in stale:
        # a reference to a policy the account lacks grants nothing and fails every provisioning: it goes first
        early = (name, path) not in named
        edited = edited or early
        yield Change("ic_detach_policy_reference", ic_address("policy_reference", key, f"{path}{name}", other=True),
                     f"drift: {ps_name} references only {own_ref[0]}" + (f" ({path}{name} does not exist)" * early),
                     policy_name=name, document=None if path == POLICY_PATH else json.dumps({"Path": path}),
                     phase=EDIT if early else None, **common)  # fmt: skip
    late = any(ref in named for ref in stale)
    yield from _provisions(state, key, ps_name, edited, late, targets)


def _assignment_changes(spec: Spec, state: CenterState, key: str, targets: Sequence[str]) -> Iterator[Change]:
    """The role's group assigned to its permission set in every target account, and nobody else."""
    role, ps_name = spec.roles[key], permission_set_name(spec.roles[key])
    group = spec.settings.group_name(key, role)
    wanted = {Assignment(account, ps_name, GROUP, group) for account in targets}
    for a in sorted(wanted - state.assignments, key=lambda a: a.account):
        yield Change("ic_assign", ic_address("assignment", key, a.account), f"assign group {group} to {ps_name} in "
                     f"{a.account}", target_name=ps_name, account=a.account, principal_type=GROUP, user=group,
                     role_key=key)  # fmt: skip
    drift = [a for a in state.assignments if a.permission_set == ps_name and a not in wanted]
    for a in sorted(drift, key=lambda a: (a.account, a.principal_type, a.principal)):
        yield Change("ic_unassign", ic_address("assignment", key, a.account, a.principal_type, a.principal, other=True),
                     f"drift: {a.principal_type.lower()} {a.principal} assigned to {ps_name} in {a.account}; only "
                     f"group {group} is", target_name=ps_name, account=a.account, principal_type=a.principal_type,
                     user=a.principal, role_key=key)  # fmt: skip


def center_changes(spec: Spec, inv: Inventory, state: CenterState, targets: Sequence[str]) -> list[Change]:
    """Every change the spec asks for, each with its phase, unordered."""
    settings = spec.settings.identity_center or IdentityCenterSettings()
    found = [*policy_changes(spec, inv, policy_arns(spec, inv)), *_user_changes(spec, state)]
    for key in spec.roles:
        found += [*_group_changes(spec, state, key), *_permission_set_changes(spec, inv, state, key, settings, targets),
                  *_assignment_changes(spec, state, key, targets)]  # fmt: skip
    return [c if c.phase is not None else replace(c, phase=_PHASE_OF.get(c.kind, PROVISION)) for c in found]


# --- the order, proven ----------------------------------------------------------------------------------------
def _ordered(changes: Sequence[Change]) -> list[Change]:
    """By phase, then the kinds table, then plan order (a policy's prune before its update)."""
    order = sorted(range(len(changes)), key=lambda i: (changes[i].phase, RANK[changes[i].kind], i))
    return [changes[i] for i in order]


def prove(inv: Inventory, state: CenterState, changes: list[Change], spec: Spec) -> list[Change]:
    """The changes in an order check_center accepts: a policy document whose restoring takes access from
    someone moves after the assignments that give it back; any other loss refuses the plan."""
    changes = _ordered(changes)
    while True:
        losses = check_center(inv, state, changes, spec)
        narrowing = {
            loss.change.policy_arn
            for loss in losses
            if loss.change.kind in ("update_policy", "prune_policy_version") and loss.change.phase == POLICY
        }
        if not narrowing:
            break
        changes = _ordered([replace(c, phase=NARROW) if c.phase == POLICY and c.kind != "create_policy"
                            and c.policy_arn in narrowing else c for c in changes])  # fmt: skip
    if losses:
        raise LockoutError(losses)
    return changes


def make_center_plan(spec: Spec, inventory: Inventory, state: CenterState, *,
                     accounts: Sequence[str] | None = None) -> CenterPlan:  # fmt: skip
    """The changes that grant the spec through Identity Center in `accounts` (default: the caller's), in their
    phases, proven safe; empty when the instance already matches. Refuses (SpecError) what it cannot grant."""
    problems = refusals(spec, inventory, state)
    if problems:
        raise SpecError(problems)
    settings = spec.settings.identity_center or IdentityCenterSettings()
    targets = tuple(accounts or settings.accounts or (inventory.account_id,))
    changes = prove(inventory, state, center_changes(spec, inventory, state, targets), spec)
    return CenterPlan(tuple(changes), inventory.account_id, inventory.caller_arn, dict(spec.roles),
                      instance_arn=state.instance_arn, accounts=targets)  # fmt: skip


def make_member_plan(spec: Spec, inventory: Inventory, region: str = "us-east-1") -> CenterPlan:
    """A member account's part when the management account runs the Identity Center part for it: only each
    role's Assume<Role>Policy (provisioning there needs them; the management account's assignments follow), proven
    like the full plan with no instance (access by IAM alone), and refused like it, a role whose trust shuts out
    the reserved role of `region` (the home region) included. It makes no identity store or sso-admin change."""
    nothing = CenterState(instance_arn="", identity_store_id="", home_region=region)
    problems = refusals(spec, inventory, nothing)
    if problems:
        raise SpecError(problems)
    found = policy_changes(spec, inventory, policy_arns(spec, inventory))
    changes = prove(inventory, nothing, [replace(c, phase=POLICY) for c in found], spec)
    return CenterPlan(tuple(changes), inventory.account_id, inventory.caller_arn, dict(spec.roles),
                      accounts=(inventory.account_id,))  # fmt: skip
