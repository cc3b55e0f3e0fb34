"""Plan: a pure function of spec and inventory, returning the ordered changes that converge the account.

The plan is data. It is shown to the operator (table, Terraform-style text, JSON) and consumed by apply;
nothing here calls AWS. The order is the safe order of order.py: grants and widening first, then
narrowing and revocation, then deletions, checked step by step by the simulator before apply runs it.

Grants are made the way `spec.settings` says: each role's Assume*Policy attached to the user (the
seed's model) or, with `grant_via: group`, to one IAM group per role whose members are exactly the users
the spec grants that role. Either way anything the spec does not grant through the runbook's own policies
and groups is drift, and tagged users gone from the spec are deleted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import (
    attachment_address,
    group_address,
    group_attachment_address,
    membership_address,
    name_from_arn,
    partition_of,
    policy_address,
    policy_arn,
    policy_description,
    policy_document,
    policy_name,
    same_name,
    user_address,
    user_tags,
    version_number,
)
from iamrunbook.core.changes import KINDS as ALL_KINDS
from iamrunbook.core.changes import Change, ChangeSet, changes_json
from iamrunbook.core.inventory import Inventory, default_document
from iamrunbook.core.spec import Spec
from iamrunbook.core.temporary_plan import check_quotas, temporary_changes

MAX_POLICY_VERSIONS = 5
#: The kinds a plan holds under `grant_via: user` (the others: groups, and the legacy migration's own).
KINDS = {
    kind: ALL_KINDS[kind]
    for kind in (
        *("create_policy", "prune_policy_version", "update_policy", "create_user", "import_user", "tag_user"),
        *("attach", "detach", "delete_user"),
    )
}


@dataclass(frozen=True)
class Plan(ChangeSet):
    changes: tuple[Change, ...]
    account_id: str
    caller_arn: str
    roles: dict = field(default_factory=dict)
    #: spec users granted an MFA-required role who have no MFA device (they would lose it in practice)
    without_mfa: tuple[str, ...] = ()

    def deletions(self) -> list[Change]:
        return [c for c in self.changes if c.kind == "delete_user"]

    def to_json(self) -> str:
        data = {
            "account_id": self.account_id,
            "caller_arn": self.caller_arn,
            "roles": dict(self.roles),
            "summary": self.summary(),
            "changes": changes_json(self.changes),
        }
        if self.without_mfa:
            data["without_mfa"] = list(self.without_mfa)
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> Plan:
        data = json.loads(text)
        changes = tuple(Change.from_dict(raw) for raw in data["changes"])
        return cls(
            changes,
            data["account_id"],
            data["caller_arn"],
            dict(data.get("roles", {})),
            tuple(data.get("without_mfa", ())),
        )


def _canonical(doc: dict) -> str:
    """Documents compare equal when they mean the same (single statements may be a dict or a list)."""
    doc = dict(doc)
    statements = doc.get("Statement", [])
    doc["Statement"] = [statements] if isinstance(statements, dict) else statements
    return json.dumps(doc, sort_keys=True)



def check_roles_exist(spec: Spec, inventory: Inventory) -> None:
    missing = [
        f"role {key!r}: IAM role {name!r} does not exist in account {inventory.account_id}; "
        "create it first or fix `roles`"
        for key, name in spec.roles.items()
        if name not in inventory.roles
    ]
    if missing:
        raise SpecError(missing)


def wanted_document(spec: Spec, inv: Inventory, key: str) -> dict:
    """The document the role's Assume*Policy must hold, with the MFA condition when the spec asks for it."""
    settings = spec.settings
    return policy_document(
        inv.account_id,
        spec.roles[key],
        mfa=settings.mfa(key),
        mfa_max_age_seconds=settings.mfa_max_age_seconds if settings.mfa(key) else None,
        partition=partition_of(inv.caller_arn),
    )


def policy_arns(spec: Spec, inv: Inventory) -> dict[str, str]:
    """role key -> the ARN its Assume*Policy has (or will have once created)."""
    partition = partition_of(inv.caller_arn)
    return {
        key: (existing or {}).get("Arn") or policy_arn(inv.account_id, policy_name(role), partition)
        for key, role in spec.roles.items()
        for existing in [inv.local_policy(policy_name(role))]
    }


def policy_changes(spec: Spec, inv: Inventory, arns: dict[str, str]) -> Iterator[Change]:
    """Each role's Assume*Policy created, or its document restored (the oldest version pruned at the limit)."""
    for key, role in spec.roles.items():
        name = policy_name(role)
        wanted = wanted_document(spec, inv, key)
        existing = inv.local_policy(name)
        common = dict(address=policy_address(key), role_key=key, policy_name=name, policy_arn=arns[key])
        if existing is None:
            yield Change(
                "create_policy",
                reason=f"create {name} (sts:AssumeRole on {role}{', only with MFA' if spec.settings.mfa(key) else ''})",
                document=json.dumps(wanted),
                description=policy_description(role),
                tags=(("Name", name),),
                **common,
            )
            continue
        if _canonical(default_document(existing)) == _canonical(wanted):
            continue
        versions = existing.get("PolicyVersionList", [])
        if len(versions) >= MAX_POLICY_VERSIONS:
            oldest = min((v for v in versions if not v.get("IsDefaultVersion")), key=version_number)
            yield Change(
                "prune_policy_version",
                reason=f"delete oldest non-default version {oldest['VersionId']} "
                f"({MAX_POLICY_VERSIONS} versions is the limit)",
                version_id=oldest["VersionId"],
                **common,
            )
        yield Change(
            "update_policy",
            reason="document differs from sts:AssumeRole on the role only: restore it",
            document=json.dumps(wanted),
            **common,
        )


def _user_change(spec_user, existing: dict | None, inv: Inventory) -> Change | None:
    """Create, adopt (import) or re-tag one spec user; None when the user is as the spec says."""
    wanted = user_tags(spec_user.name, spec_user.description, spec_user.roles)
    address = user_address(spec_user.name)
    if existing is None:
        return Change("create_user", address, "create user, tagged", user=spec_user.name, tags=tuple(wanted.items()))
    name = existing["UserName"]
    if not inv.is_managed(existing):
        reason = "adopt existing user: tag it ManagedBy=iamrunbook"
        return Change("import_user", address, reason, user=name, tags=tuple(wanted.items()))
    current = Inventory.tags(existing)
    diff = {k: v for k, v in wanted.items() if current.get(k) != v}
    if diff:
        return Change(
            "tag_user", address, "update tags " + ", ".join(sorted(diff)), user=name, tags=tuple(diff.items())
        )
    return None


def _attach(user: str, key: str, spec: Spec, arn: str) -> Change:
    return Change(
        "attach",
        attachment_address(user, key),
        f"grant {spec.roles[key]}",
        user=user,
        role_key=key,
        policy_name=name_from_arn(arn),
        policy_arn=arn,
        target_kind="user",
        target_name=user,
    )


def detach(kind: str, name: str, key: str, arn: str, why: str) -> Change:
    address = attachment_address(name, key) if kind == "user" else f"{kind}/{name}/{name_from_arn(arn)}"
    return Change(
        "detach",
        address,
        why,
        user=name if kind == "user" else None,
        role_key=key,
        policy_name=name_from_arn(arn),
        policy_arn=arn,
        target_kind=kind,
        target_name=name,
    )


def _user_changes(spec: Spec, inv: Inventory, arns: dict[str, str]) -> Iterator[Change]:
    """Each spec user as the spec says; in user mode, their Assume*Policy attachments too."""
    by_arn = {arn: key for key, arn in arns.items()}
    for spec_user in spec.users.values():
        existing = inv.user_named(spec_user.name)
        change = _user_change(spec_user, existing, inv)
        if change is not None:
            yield change
        name = existing["UserName"] if existing else spec_user.name
        held = {by_arn[a] for a in Inventory.attached_arns(existing or {}) if a in by_arn}
        keep = set() if spec.settings.via_group else set(spec_user.roles)
        why = (
            "drift: grant_via: group grants roles through groups only"
            if spec.settings.via_group
            else ("role no longer granted by the spec")
        )
        for key in sorted(held - keep):
            yield detach("user", name, key, arns[key], why)
        if not spec.settings.via_group:
            yield from (_attach(name, key, spec, arns[key]) for key in spec_user.roles if key not in held)


def _group_changes(spec: Spec, inv: Inventory, arns: dict[str, str]) -> Iterator[Change]:
    """Under `grant_via: group`: each role's group, holding exactly its Assume*Policy and exactly the users
    the spec grants the role."""
    for key, group in spec.groups().items():
        existing = inv.group_named(group)
        name = existing["GroupName"] if existing else group
        if existing is None:
            yield Change("create_group", group_address(key), f"create group {group} for {spec.roles[key]}",
                         role_key=key, target_kind="group", target_name=group)  # fmt: skip
        attached = Inventory.attached_arns(existing or {})
        if arns[key] not in attached:
            yield Change("attach", group_attachment_address(key), f"grant {spec.roles[key]} to group {name}",
                         role_key=key, policy_name=name_from_arn(arns[key]), policy_arn=arns[key],
                         target_kind="group", target_name=name)  # fmt: skip
        for arn in sorted(attached - {arns[key]}):
            yield detach("group", name, key, arn, f"drift: group {name} holds only {name_from_arn(arns[key])}")
        members = inv.group_members(name) if existing else []
        granted = {u.name.lower(): u.name for u in spec.users.values() if key in u.roles}
        for user in granted.values():
            if not any(same_name(user, m) for m in members):
                member = (inv.user_named(user) or {}).get("UserName", user)
                why = f"add to group {name} (grants {spec.roles[key]})"
                yield Change("add_to_group", membership_address(user), why,
                             user=member, role_key=key, target_kind="group", target_name=name)  # fmt: skip
        for member in members:
            if member.lower() not in granted:
                yield Change("remove_from_group", f"group/{name}/{member}", f"drift: {spec.roles[key]} not granted",
                             user=member, role_key=key, target_kind="group", target_name=name)  # fmt: skip


def _drift_and_deletions(spec: Spec, inv: Inventory, arns: dict[str, str]) -> Iterator[Change]:
    """Assume*Policy attachments the spec does not grant are drift; managed users gone from it are deleted."""
    by_arn = {arn: key for key, arn in arns.items()}
    own_groups = {g.lower() for g in spec.groups().values()}
    for name, user in sorted(inv.users.items()):
        if spec.user_named(name) is not None:
            continue
        if inv.is_managed(user):
            reason = "tagged ManagedBy=iamrunbook but no longer in the spec: offboard"
            yield Change("delete_user", user_address(name), reason, user=name)
            continue
        for arn in sorted(Inventory.attached_arns(user) & by_arn.keys()):
            yield detach("user", name, by_arn[arn], arn, "drift: not granted by the spec")
    for kind, entities in (("group", inv.groups), ("role", inv.roles)):
        for name, entity in sorted(entities.items()):
            if kind == "group" and name.lower() in own_groups:
                continue
            for arn in sorted(Inventory.attached_arns(entity) & by_arn.keys()):
                where = "the runbook's own role groups" if spec.settings.via_group else "users only"
                yield detach(kind, name, by_arn[arn], arn, f"drift: Assume*Policy policies are granted to {where}, "
                             f"not to a {kind}")  # fmt: skip


def users_without_mfa(spec: Spec, inv: Inventory) -> tuple[str, ...]:
    """Spec users granted an MFA-required role who have no MFA device (from the credential report)."""
    if not spec.settings.require_mfa:
        return ()
    active = {r.get("user", "").lower() for r in inv.credential_report or () if r.get("mfa_active") == "true"}
    return tuple(
        u.name for u in spec.users.values() if set(u.roles) & spec.settings.require_mfa and u.name.lower() not in active
    )


def plan_changes(spec: Spec, inventory: Inventory) -> list[Change]:
    """Every change the spec asks for, unordered."""
    arns = policy_arns(spec, inventory)
    return [
        *policy_changes(spec, inventory, arns),
        *_user_changes(spec, inventory, arns),
        *_group_changes(spec, inventory, arns),
        *_drift_and_deletions(spec, inventory, arns),
        *temporary_changes(spec, inventory),
    ]


def make_plan(spec: Spec, inventory: Inventory) -> Plan:
    """The changes that make the account match the spec, in the safe order; empty when it already does."""
    from iamrunbook.core.order import safe_order

    check_roles_exist(spec, inventory)
    changes = safe_order(plan_changes(spec, inventory), inventory, spec)
    check_quotas(spec, inventory, changes)
    return Plan(tuple(changes), inventory.account_id, inventory.caller_arn, dict(spec.roles),
                users_without_mfa(spec, inventory))  # fmt: skip
