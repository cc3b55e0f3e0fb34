"""The legacy migration as data: who holds the bundled AssumeRolesPolicy, what it grants, and the ordered steps
that replace it with one Assume*Policy per role without a window (`plan_migration`, pure).

The manual procedure detaches and deletes the bundled policy first and attaches the new policies after, which
leaves a window in which nobody can assume any role. Here the order is the other way round, in the safe order of
order.py: create (or repair) the Assume*Policy policies; grant each migrating user's roles from the spec; detach
the legacy policy from those users, then from everyone else (only with legacy_detach_unmanaged); delete its
non-default versions, then the policy. flows/legacy.py runs it (02).

The operator's own access: when the identity running the migration holds the legacy policy and the policy lets
it assume a configured role that the spec does not grant that user, the migration is refused before any change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from iamrunbook.base.names import caller_role_name, name_from_arn, role_arn, version_number
from iamrunbook.core.access import ASSUME_ROLE, document_access
from iamrunbook.core.changes import Change, ChangeSet
from iamrunbook.core.inventory import Inventory, default_document
from iamrunbook.core.plan import check_roles_exist, plan_changes
from iamrunbook.core.spec import Spec

#: Changes of plan.make_plan the migration takes over for the users it moves.
_GRANT_KINDS = ("create_policy", "prune_policy_version", "update_policy", "create_group", "attach", "add_to_group")
GRANTING = ("yes", "conditional")
HOLDER_KINDS = ("user", "group", "role")


@dataclass(frozen=True)
class Holder:
    """An entity the legacy policy is attached to."""

    kind: str  # "user" | "group" | "role"
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def find_legacy(inv: Inventory, name: str) -> dict | None:
    """The customer-managed policy called `name` (ManagedPolicyDetail from the sweep), or None."""
    return inv.local_policy(name)


def role_arns(inv: Inventory, roles: Mapping[str, str]) -> dict[str, str]:
    """role key -> the role's real ARN (with its path) when it exists, else the plain one."""
    return {
        key: inv.roles[name]["Arn"] if name in inv.roles else role_arn(inv.account_id, name, inv.partition)
        for key, name in roles.items()
    }


def legacy_grants(
    policy: dict | None, inv: Inventory, roles: Mapping[str, str], user: str | None = None
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """role key -> (verdict, conditions) of the policy's default version for sts:AssumeRole on that role.

    Only this one document is evaluated (a Deny elsewhere in the account is not its business). `user`
    resolves policy variables like ${aws:username} for that user.
    """
    if policy is None:
        return {key: ("no", ()) for key in roles}
    doc = default_document(policy)
    principal = inv.user_named(user) if user else None
    return {
        key: document_access(doc, ASSUME_ROLE, arn, user=principal, account_id=inv.account_id)
        for key, arn in role_arns(inv, roles).items()
    }


def affected_users(inv: Inventory, holders: Iterable[Holder]) -> dict[str, str | None]:
    """Every IAM user the legacy policy reaches: name -> None when it holds it directly, else the group."""
    holders = list(holders)
    found: dict[str, str | None] = {h.name: None for h in holders if h.kind == "user"}
    for h in holders:
        if h.kind == "group":
            for member in inv.group_members(h.name):
                found.setdefault(member, h.name)
    return found


# --- the plan ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MigrationPlan(ChangeSet):
    """The migration as ordered steps (changes.Change), plus why it may not run.

    `unmanaged` lists holders the spec does not cover; they block the run unless `detach_unmanaged`.
    `refusals` (the operator's own lockout) block it always. No policy: nothing to migrate.
    """

    legacy_name: str
    policy_arn: str | None
    account_id: str
    caller_arn: str
    holders: tuple[Holder, ...] = ()
    migrating_users: tuple[str, ...] = ()
    unmanaged: tuple[str, ...] = ()  # one line per holder: "group ops (members: a, b)"
    refusals: tuple[str, ...] = ()
    steps: tuple[Change, ...] = ()
    detach_unmanaged: bool = False
    noun = "Migration"
    numbered = True

    @property
    def changes(self) -> tuple[Change, ...]:
        return self.steps

    @property
    def nothing_to_migrate(self) -> bool:
        return self.policy_arn is None

    def problems(self) -> list[str]:
        """Why the migration may not start; empty when it may."""
        problems = list(self.refusals)
        if self.unmanaged and not self.detach_unmanaged:
            listing = "\n".join(f"    {u}" for u in self.unmanaged)
            problems.append(
                f"{self.legacy_name} is held by entities the spec does not cover:\n{listing}\n"
                "  Detaching it would take their access away. Add those users to the spec, detach it from them "
                "yourself, or set legacy_detach_unmanaged: true to detach it from them too."
            )
        return problems

    @property
    def blocked(self) -> bool:
        return bool(self.problems())

    def summary_line(self) -> str:
        if self.nothing_to_migrate:
            return f"Nothing to migrate: there is no customer-managed policy named {self.legacy_name}."
        c = self.summary()
        line = f"Migration: {c['add']} to add, {c['change']} to change, {c['destroy']} to destroy."
        return line + (" BLOCKED: see the problems above." if self.blocked else "")

    def to_text(self) -> str:
        if self.nothing_to_migrate:
            return self.summary_line()
        lines = [f"{self.legacy_name} ({self.policy_arn})"]
        lines.append("  held by: " + (", ".join(str(h) for h in self.holders) or "nobody"))
        lines += self.lines()
        problems = self.problems()
        if problems:
            lines += ["", "Refused before any change:", *(f"- {p}" for p in problems)]
        return "\n".join([*lines, "", self.summary_line()])

    def to_json(self) -> str:
        data = {
            "legacy_name": self.legacy_name,
            "policy_arn": self.policy_arn,
            "account_id": self.account_id,
            "caller_arn": self.caller_arn,
            "holders": [{"kind": h.kind, "name": h.name} for h in self.holders],
            "migrating_users": list(self.migrating_users),
            "unmanaged": list(self.unmanaged),
            "refusals": list(self.refusals),
            "detach_unmanaged": self.detach_unmanaged,
            "problems": self.problems(),
            "summary": self.summary(),
            "steps": [s.as_dict() for s in self.steps],
        }
        return json.dumps(data, indent=2)

    @classmethod
    def from_json(cls, text: str) -> MigrationPlan:
        data = json.loads(text)
        return cls(
            legacy_name=data["legacy_name"],
            policy_arn=data["policy_arn"],
            account_id=data["account_id"],
            caller_arn=data["caller_arn"],
            holders=tuple(Holder(h["kind"], h["name"]) for h in data.get("holders", [])),
            migrating_users=tuple(data.get("migrating_users", [])),
            unmanaged=tuple(data.get("unmanaged", [])),
            refusals=tuple(data.get("refusals", [])),
            steps=tuple(Change.from_dict(s) for s in data.get("steps", [])),
            detach_unmanaged=bool(data.get("detach_unmanaged", False)),
        )


def _lockout(spec: Spec, inv: Inventory, policy: dict, holders: tuple[Holder, ...]) -> list[str]:
    """Refusals that keep the operator from locking themselves out (see the module docstring)."""
    name = name_from_arn(policy["Arn"])
    held = {(h.kind, h.name.lower()) for h in holders}
    problems = []
    me = inv.caller_user
    if me:
        via = ["attached"] if ("user", me.lower()) in held else []
        via += [f"group {g}" for g in (inv.user_named(me) or {}).get("GroupList", []) if ("group", g.lower()) in held]
        entry = spec.user_named(me)
        keeps = set(entry.roles) if entry else set()
        loses = [
            spec.roles[k]
            for k, (verdict, _) in legacy_grants(policy, inv, spec.roles, user=me).items()
            if verdict in GRANTING and k not in keeps
        ]
        if via and loses:
            problems.append(
                f"you are running this as {me}, who holds {name} ({', '.join(via)}) and would lose "
                f"{', '.join(loses)}, which the spec does not grant {me}: grant them in the spec or run as "
                "another identity"
            )
    role = caller_role_name(inv.caller_arn)
    if role and ("role", role.lower()) in held:
        loses = [spec.roles[k] for k, (v, _) in legacy_grants(policy, inv, spec.roles).items() if v in GRANTING]
        if loses:
            problems.append(
                f"you are running this as role {role}, which holds {name}: detaching it would take away its "
                f"access to {', '.join(loses)}; run as another identity"
            )
    return problems


def _legacy_detach(holder: Holder, arn: str, reason: str) -> Change:
    name = name_from_arn(arn)
    return Change(
        "detach",
        f"{holder.kind}/{holder.name}/{name}",
        reason,
        user=holder.name if holder.kind == "user" else None,
        policy_name=name,
        policy_arn=arn,
        target_kind=holder.kind,
        target_name=holder.name,
    )



def _removal_steps(policy: dict, holders: tuple[Holder, ...], migrating: set[str]) -> list[Change]:
    """Detach the policy from every holder (the migrating users first), then delete its versions and it."""
    arn = policy["Arn"]
    name = name_from_arn(arn)
    covered = [h for h in holders if h.kind == "user" and h.name.lower() in migrating]
    first = f"detach {name}: the earlier steps of this migration put the user's new grants in place first"
    steps = [_legacy_detach(h, arn, first) for h in covered]
    other = f"detach {name} from an entity the spec does not cover (legacy_detach_unmanaged)"
    steps += [_legacy_detach(h, arn, other) for h in holders if h not in covered]
    steps += [
        Change(
            "delete_policy_version",
            f"policy/{name}/{v['VersionId']}",
            "delete a non-default version (AWS refuses to delete a policy that has any)",
            policy_name=name,
            policy_arn=arn,
            version_id=v["VersionId"],
        )  # fmt: skip
        for v in sorted(policy.get("PolicyVersionList", []), key=version_number)
        if not v.get("IsDefaultVersion")
    ]
    steps.append(
        Change("delete_policy", f"policy/{name}", "delete the legacy policy", policy_name=name, policy_arn=arn)
    )
    return steps


def _unmanaged(spec: Spec, inv: Inventory, holders: Iterable[Holder]) -> list[str]:
    lines = []
    for h in holders:
        if h.kind == "user" and spec.user_named(h.name) is not None:
            continue
        members = inv.group_members(h.name) if h.kind == "group" else []
        lines.append(f"{h}" + (f" (members: {', '.join(members)})" if members else ""))
    return lines


def _taken_over(spec: Spec, inv: Inventory, planned: list[Change], users: set[str]) -> tuple[set[str], set[str]]:
    """The spec users whose grants the migration makes, and their role keys: the migrating users, plus every
    spec user holding an Assume*Policy the migration repairs. Narrowing a broad document (Resource "*")
    takes away what someone may reach only through it, so their own grants must come before it."""
    while True:
        keys = {k for u in users for k in spec.user_named(u).roles} | {
            t.role for u in users for t in spec.user_named(u).active(spec.now)}  # fmt: skip
        repaired = {c.policy_arn for c in planned if c.kind == "update_policy" and c.role_key in keys}
        reached = {
            name.lower()
            for kind, holder in (h for arn in repaired for h in inv.holders(arn))
            for name in ([holder] if kind == "user" else inv.group_members(holder) if kind == "group" else [])
            if spec.user_named(name) is not None
        }
        if reached <= users:
            return users, keys
        users |= reached


def plan_migration(
    spec: Spec, inv: Inventory, legacy_name: str, holders: Iterable[Holder], detach_unmanaged: bool = False
) -> MigrationPlan:
    """The ordered steps that replace the legacy policy without a window; pure (no AWS calls).

    Every user the spec covers who holds it (directly or through a group) gets their grants from the spec
    first; only then is it detached from anyone, then its versions and itself deleted.
    """
    from iamrunbook.core.order import safe_order

    holders = tuple(holders)
    policy = find_legacy(inv, legacy_name)
    common = dict(legacy_name=legacy_name, account_id=inv.account_id, caller_arn=inv.caller_arn)
    if policy is None:
        return MigrationPlan(policy_arn=None, detach_unmanaged=detach_unmanaged, **common)
    check_roles_exist(spec, inv)
    migrating = tuple(u for u in affected_users(inv, holders) if spec.user_named(u) is not None)
    planned = plan_changes(spec, inv)
    users, keys = _taken_over(spec, inv, planned, {u.lower() for u in migrating})
    grants = [
        c
        for c in planned
        if c.kind in _GRANT_KINDS and (c.role_key in keys if c.user is None else c.user.lower() in users)
    ]
    steps = safe_order([*grants, *_removal_steps(policy, holders, users)], inv, spec)
    return MigrationPlan(
        policy_arn=policy["Arn"],
        holders=holders,
        migrating_users=migrating,
        unmanaged=tuple(_unmanaged(spec, inv, holders)),
        refusals=tuple(_lockout(spec, inv, policy, holders)),
        steps=tuple(steps),
        detach_unmanaged=detach_unmanaged,
        **common,
    )


def verify_migration(spec: Spec, inv: Inventory, mplan: MigrationPlan) -> list[str]:
    """After the run, read afresh: the policy is gone and every migrating user holds what the spec grants."""
    problems = []
    if find_legacy(inv, mplan.legacy_name) is not None:
        problems.append(f"{mplan.legacy_name} still exists")
    pending = [c for c in plan_changes(spec, inv) if c.kind in _GRANT_KINDS]
    for user in mplan.migrating_users:
        for key in spec.user_named(user).roles:
            if any(c.role_key == key and (c.user is None or c.user.lower() == user.lower()) for c in pending):
                problems.append(f"{user} does not hold the Assume*Policy for {spec.roles[key]}")
    return problems
