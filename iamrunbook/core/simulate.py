"""Simulate: run a plan against an in-memory copy of the account, step by step, before any AWS call.

`Simulation` holds the account as the sweep returned it and applies every kind of change in
changes.KINDS the way AWS would, refusing (SimulationError) what AWS would refuse. After each step it
re-evaluates effective access (access.py, every path) for the users that step can affect, and only
those: a step's reach is known from the account (who holds the policy, who is in the group), so a
5,000-user account checks a 10,000-change plan in seconds.

`check` is the proof the plan owes before its first call: no step takes from a spec user a role they
hold now (by any path, yes or conditional) and the spec grants them, and no step takes from the
operator (the caller's IAM user) a role they hold now. A loss is a pair that falls to no path at all,
even for one call. `ensure_safe` raises LockoutError naming the step, the user and the role.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone

from iamrunbook.base.errors import SafetyError
from iamrunbook.base.names import caller_user_name, name_from_arn, version_number
from iamrunbook.core.access import effective_access
from iamrunbook.core.changes import Change, Handlers
from iamrunbook.core.inventory import Inventory

MAX_POLICY_VERSIONS = 5
_MISSING = object()
#: kind -> how the in-memory account makes it; the same dispatch as the executor's (changes.Handlers)
IN_MEMORY = Handlers("the simulator")


class SimulationError(SafetyError):
    """A step AWS would refuse: the plan would stop there, half done, so it is refused before it starts."""

    def __init__(self, code: str, message: str, change: Change | None = None, step: int | None = None):
        self.code, self.message, self.change, self.step = code, message, change, step
        where = f"step {step} ({change.kind} {change.address}): " if change is not None and step else ""
        super().__init__(f"{where}AWS would refuse it: {code}: {message}")

    def at(self, step: int, change: Change) -> SimulationError:
        return SimulationError(self.code, self.message, change, step)


def _missing(what: str) -> SimulationError:
    return SimulationError("NoSuchEntity", f"{what} does not exist")


def _arns(entity: Mapping) -> list[str]:
    return [p["PolicyArn"] for p in entity.get("AttachedManagedPolicies", [])]


def _boundary(user: Mapping) -> str | None:
    return (user.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")


def _refuse_taken(names: Mapping[str, str], what: str, name: str) -> None:  # IAM names ignore case: Bob is bob
    if name.lower() in names:
        raise SimulationError("EntityAlreadyExists", f"{what} {names[name.lower()]} already exists")


def _now() -> datetime:
    return datetime.now(timezone.utc)



class Simulation:
    """The account in memory: users, groups, roles and policies as `get_account_authorization_details`
    returns them, plus the indexes that say who a step reaches.

    Nested lists and version entries are never changed in place, only replaced, so an entity copied
    from the Inventory is all that needs copying, and `trial` can undo any write by restoring one key.
    """

    def __init__(self, inventory: Inventory, roles: Mapping[str, str] | None = None, now: datetime | None = None):
        self.account_id, self.caller_arn = inventory.account_id, inventory.caller_arn
        self.now = now  # the time access is judged at (temporary grants); None: the clock
        self.partition = inventory.partition
        self.users = {name: dict(u) for name, u in inventory.users.items()}
        self.groups = {name: dict(g) for name, g in inventory.groups.items()}
        self.roles = {name: dict(r) for name, r in inventory.roles.items()}
        self.policies = {arn: dict(p) for arn, p in inventory.policies.items()}
        self.report = None if inventory.credential_report is None else {
            row.get("user", "").lower(): row for row in inventory.credential_report
        }  # fmt: skip
        self.role_keys = dict(roles if roles is not None else {})
        self._undo: list | None = None
        self._user_names = {name.lower(): name for name in self.users}
        self._group_names = {name.lower(): name for name in self.groups}
        self._role_names = {name.lower(): name for name in self.roles}
        self._members: dict[str, dict[str, bool]] = {g: {} for g in self._group_names}
        self._holders: dict[str, dict[tuple[str, str], bool]] = {arn: {} for arn in self.policies}
        self._bounded: dict[str, dict[str, bool]] = {}
        for kind, table in (("user", self.users), ("group", self.groups), ("role", self.roles)):
            for name, entity in table.items():
                for arn in _arns(entity):
                    self._holders.setdefault(arn, {})[(kind, name.lower())] = True
        for name, user in self.users.items():
            for group in user.get("GroupList", []):
                self._members.setdefault(group.lower(), {})[name.lower()] = True
            if _boundary(user):
                self._bounded.setdefault(_boundary(user), {})[name.lower()] = True

    # --- writes, each undoable ------------------------------------------------------------------
    def _set(self, table: dict, key, value=_MISSING) -> None:
        """The one way state changes: set (or, with no value, remove) one key, logged inside a trial."""
        if self._undo is not None:
            self._undo.append((table, key, table.get(key, _MISSING)))
        if value is _MISSING:
            table.pop(key, None)
        else:
            table[key] = value

    @contextmanager
    def trial(self) -> Iterator[Simulation]:
        """Whatever is applied inside is undone on leaving: the planner's what-if questions."""
        outer, self._undo = self._undo, []
        try:
            yield self
        finally:
            log, self._undo = self._undo, outer
            for table, key, old in reversed(log):
                if old is _MISSING:
                    table.pop(key, None)
                else:
                    table[key] = old

    # --- lookups, case-insensitive where IAM is -----------------------------------------------------
    def _entity(self, kind: str, name: str | None) -> dict:
        """The user, group or role called `name` (any case), or NoSuchEntity."""
        names, table = {"user": (self._user_names, self.users), "group": (self._group_names, self.groups),
                        "role": (self._role_names, self.roles)}[kind]  # fmt: skip
        found = names.get((name or "").lower())
        if found is None:
            raise _missing(f"{kind} {name}")
        return table[found]

    def policy(self, arn: str | None) -> dict:
        if arn not in self.policies:
            raise _missing(f"policy {arn}")
        return self.policies[arn]

    def members(self, group: str) -> set[str]:
        """Lower-case names of the group's members."""
        return set(self._members.get(group.lower(), ()))

    def reach(self, arn: str) -> set[str]:
        """Lower-case names of the users whose access a policy's document decides: it is attached to them
        or to a group of theirs, or it is their permissions boundary."""
        found = set(self._bounded.get(arn, ()))
        for kind, name in self._holders.get(arn, ()):
            if kind == "user":
                found.add(name)
            elif kind == "group":
                found |= self.members(name)
        return found

    # --- steps -----------------------------------------------------------------------------------
    def affected(self, change: Change) -> set[str]:
        """The users (lower-case) whose access `change` can alter, known before it runs. Tags, creating a
        policy or group, and deleting a non-default version or an unattached policy alter nobody's."""
        kind, target = change.kind, change.target_kind
        if kind == "update_policy":
            return self.reach(change.policy_arn)
        if kind in ("attach", "detach") and target in ("group", "role"):
            return self.members(change.target_name) if target == "group" else set()
        if kind == "attach":
            return {change.user.lower()}
        if kind == "detach":
            return {change.target_name.lower()}
        if kind in ("add_to_group", "remove_from_group", "create_user", "delete_user"):
            return {change.user.lower()}
        return set()

    def apply(self, change: Change) -> set[str]:
        """Make `change` as AWS would, or raise SimulationError; returns `affected(change)`."""
        affected = self.affected(change)
        if not IN_MEMORY.handles(change.kind):
            raise SimulationError("InvalidAction", f"unknown change kind {change.kind!r}", change)
        IN_MEMORY(self, change)
        return affected

    def run(self, changes: Iterable[Change]) -> Simulation:
        """Apply every change in order; a refusal names its step."""
        for step, change in enumerate(changes, 1):
            try:
                self.apply(change)
            except SimulationError as exc:
                raise exc.at(step, change) from None
        return self

    # --- access ----------------------------------------------------------------------------------
    def _view(self, names: set[str]) -> dict:
        """The part of the sweep that decides these users' access: them, their groups, the policies on
        either, their boundaries and the configured roles."""
        users = [self.users[self._user_names[n]] for n in names if n in self._user_names]
        groups = [self.groups[g] for g in {g for u in users for g in u.get("GroupList", [])} if g in self.groups]
        arns = {a for entity in (*users, *groups) for a in _arns(entity)} | {_boundary(u) for u in users}
        roles = [self.roles[r] for r in self.role_keys.values() if r in self.roles]
        policies = [self.policies[a] for a in arns if a in self.policies]
        return {"UserDetailList": users, "GroupDetailList": groups, "RoleDetailList": roles, "Policies": policies}

    def _present_roles(self) -> dict[str, str]:
        return {key: name for key, name in self.role_keys.items() if name in self.roles}

    def grants(self, users: Iterable[str] | None = None):
        """access.Grant for every path of the given users (every user when None), as the account is now."""
        if users is None:
            return effective_access(self.inventory(copy_state=False).details(), self._present_roles(), self.account_id,
                                    now=self.now)  # fmt: skip
        names = {u.lower() for u in users}
        return effective_access(self._view(names), self._present_roles(), self.account_id, users=names, now=self.now)

    def held(self, users: Iterable[str]) -> dict[str, frozenset[str]]:
        """user (lower-case) -> the role keys they can assume now by any path, yes or conditional."""
        names = {u.lower() for u in users}
        found: dict[str, set[str]] = {n: set() for n in names}
        for grant in self.grants(names):
            found[grant.user.lower()].add(grant.role_key)
        return {n: frozenset(keys) for n, keys in found.items()}

    def effect(
        self, changes: Sequence[Change], known: dict[str, frozenset[str]] | None = None
    ) -> tuple[set[tuple[str, str]], set[tuple[str, str]]]:
        """(gained, lost) (user, role key) pairs were `changes` to run now; the account is left as it was.
        A user's access is taken just before the first change that reaches them (nothing earlier did), so it
        is their access now: `known` keeps it across calls that leave the account as it is."""
        known = {} if known is None else known
        before: dict[str, frozenset[str]] = {}
        with self.trial():
            for change in changes:
                fresh = self.affected(change) - before.keys()
                known.update(self.held(fresh - known.keys()))
                before.update((user, known[user]) for user in fresh)
                self.apply(change)
            after = self.held(before)
        gained = {(u, k) for u, keys in after.items() for k in keys - before[u]}
        lost = {(u, k) for u, keys in before.items() for k in keys - after[u]}
        return gained, lost

    def inventory(self, *, copy_state: bool = True) -> Inventory:
        """The account as the simulation leaves it, for planning on: "the account after the migration"."""
        clone = copy.deepcopy if copy_state else (lambda x: x)
        report = None if self.report is None else clone(list(self.report.values()))
        return Inventory(self.account_id, self.caller_arn, clone(self.users), clone(self.groups),
                         clone(self.roles), clone(self.policies), credential_report=report)  # fmt: skip

    # --- one handler per kind, each refusing what AWS refuses -----------------------------------------
    def _arn_of(self, kind: str, name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:{kind}/{name}"

    @IN_MEMORY.register("create_policy")
    def _create_policy(self, c: Change) -> None:
        if c.policy_arn in self.policies:
            raise SimulationError("EntityAlreadyExists", f"policy {c.policy_arn} already exists")
        version = {"VersionId": "v1", "IsDefaultVersion": True, "Document": json.loads(c.document),
                   "CreateDate": _now()}  # fmt: skip
        policy = {"PolicyName": c.policy_name or name_from_arn(c.policy_arn), "Arn": c.policy_arn, "Path": "/",
                  "DefaultVersionId": "v1", "AttachmentCount": 0, "IsAttachable": True,
                  "PolicyVersionList": [version]}  # fmt: skip
        if c.description is not None:
            policy["Description"] = c.description
        self._set(self.policies, c.policy_arn, policy)
        self._set(self._holders, c.policy_arn, {})

    @IN_MEMORY.register("update_policy")
    def _update_policy(self, c: Change) -> None:
        policy = self.policy(c.policy_arn)
        versions = policy.get("PolicyVersionList", [])
        if len(versions) >= MAX_POLICY_VERSIONS:
            raise SimulationError("LimitExceeded", f"{c.policy_arn} already has {MAX_POLICY_VERSIONS} versions")
        new_id = f"v{max((version_number(v) for v in versions), default=0) + 1}"
        new = {"VersionId": new_id, "IsDefaultVersion": True, "Document": json.loads(c.document),
               "CreateDate": _now()}  # fmt: skip
        self._set(policy, "PolicyVersionList", [*({**v, "IsDefaultVersion": False} for v in versions), new])
        self._set(policy, "DefaultVersionId", new_id)

    @IN_MEMORY.register("delete_policy_version", "prune_policy_version")
    def _delete_policy_version(self, c: Change) -> None:
        policy = self.policy(c.policy_arn)
        versions = policy.get("PolicyVersionList", [])
        version = next((v for v in versions if v["VersionId"] == c.version_id), None)
        if version is None:
            raise _missing(f"version {c.version_id} of {c.policy_arn}")
        if version.get("IsDefaultVersion"):
            raise SimulationError("DeleteConflict", f"{c.version_id} is the default version of {c.policy_arn}")
        self._set(policy, "PolicyVersionList", [v for v in versions if v is not version])

    @IN_MEMORY.register("delete_policy")
    def _delete_policy(self, c: Change) -> None:
        policy = self.policy(c.policy_arn)
        if self._holders.get(c.policy_arn) or self._bounded.get(c.policy_arn):
            raise SimulationError("DeleteConflict", f"{c.policy_arn} is still attached to entities")
        if len(policy.get("PolicyVersionList", [])) > 1:
            raise SimulationError("DeleteConflict", f"{c.policy_arn} still has non-default versions")
        self._set(self.policies, c.policy_arn)
        self._set(self._holders, c.policy_arn)

    @IN_MEMORY.register("create_group")
    def _create_group(self, c: Change) -> None:
        name = c.target_name
        _refuse_taken(self._group_names, "group", name)
        group = {"GroupName": name, "GroupId": f"AGPA{name.upper()}"[:21], "Arn": self._arn_of("group", name),
                 "Path": "/", "CreateDate": _now(), "GroupPolicyList": [],
                 "AttachedManagedPolicies": []}  # fmt: skip
        self._set(self.groups, name, group)
        self._set(self._group_names, name.lower(), name)
        self._set(self._members, name.lower(), {})

    @IN_MEMORY.register("delete_group")
    def _delete_group(self, c: Change) -> None:
        group = self._entity("group", c.target_name)
        name = group["GroupName"]
        if self._members.get(name.lower()) or _arns(group) or group.get("GroupPolicyList"):
            raise SimulationError("DeleteConflict", f"group {name} still has members or policies")
        self._set(self.groups, name)
        self._set(self._group_names, name.lower())
        self._set(self._members, name.lower())

    @IN_MEMORY.register("create_user")
    def _create_user(self, c: Change) -> None:
        name = c.user
        _refuse_taken(self._user_names, "user", name)
        user = {"UserName": name, "UserId": f"AIDA{name.upper()}"[:21], "Arn": self._arn_of("user", name),
                "Path": "/", "CreateDate": _now(), "GroupList": [], "AttachedManagedPolicies": [],
                "UserPolicyList": [], "Tags": [{"Key": k, "Value": v} for k, v in c.tags]}  # fmt: skip
        self._set(self.users, name, user)
        self._set(self._user_names, name.lower(), name)
        if self.report is not None:
            row = {"user": name, "arn": user["Arn"], "password_enabled": "false", "mfa_active": "false",
                   "access_key_1_active": "false", "access_key_2_active": "false"}  # fmt: skip
            self._set(self.report, name.lower(), row)

    @IN_MEMORY.register("tag_user", "import_user")
    def _tag_user(self, c: Change) -> None:
        """TagUser: values of keys already there are replaced, new keys are added."""
        user = self._entity("user", c.user)
        tags = {t["Key"]: t["Value"] for t in user.get("Tags", [])} | dict(c.tags)
        self._set(user, "Tags", [{"Key": k, "Value": v} for k, v in tags.items()])

    @IN_MEMORY.register("attach")
    def _attach(self, c: Change) -> None:
        """AttachUserPolicy / AttachGroupPolicy; attaching what is attached already changes nothing."""
        kind = c.target_kind if c.target_kind in ("group", "role") else "user"
        entity = self._entity(kind, c.user or c.target_name if kind == "user" else c.target_name)
        policy = self.policy(c.policy_arn)
        if c.policy_arn in _arns(entity):
            return
        ref = {"PolicyName": policy.get("PolicyName") or name_from_arn(c.policy_arn), "PolicyArn": c.policy_arn}
        self._set(entity, "AttachedManagedPolicies", [*entity.get("AttachedManagedPolicies", []), ref])
        self._set(self._holders.setdefault(c.policy_arn, {}), (kind, self._name_of(kind, entity).lower()), True)
        self._count(policy, +1)

    @IN_MEMORY.register("detach")
    def _detach(self, c: Change) -> None:
        entity = self._entity(c.target_kind or "user", c.target_name)
        if c.policy_arn not in _arns(entity):
            raise _missing(f"policy {c.policy_arn} attached to {c.target_kind} {c.target_name}")
        self._unlink(c.target_kind or "user", entity, c.policy_arn)

    def _unlink(self, kind: str, entity: dict, arn: str) -> None:
        kept = [p for p in entity.get("AttachedManagedPolicies", []) if p["PolicyArn"] != arn]
        self._set(entity, "AttachedManagedPolicies", kept)
        self._set(self._holders.get(arn, {}), (kind, self._name_of(kind, entity).lower()))
        if arn in self.policies:
            self._count(self.policies[arn], -1)

    def _count(self, policy: dict, delta: int) -> None:
        if "AttachmentCount" in policy:
            self._set(policy, "AttachmentCount", max(0, policy["AttachmentCount"] + delta))

    @staticmethod
    def _name_of(kind: str, entity: Mapping) -> str:
        return entity[{"user": "UserName", "group": "GroupName", "role": "RoleName"}[kind]]

    @IN_MEMORY.register("add_to_group")
    def _add_to_group(self, c: Change) -> None:
        """AddUserToGroup; a member already is left as is."""
        group, user = self._entity("group", c.target_name), self._entity("user", c.user)
        if user["UserName"].lower() in self._members[group["GroupName"].lower()]:
            return
        self._set(user, "GroupList", [*user.get("GroupList", []), group["GroupName"]])
        self._set(self._members[group["GroupName"].lower()], user["UserName"].lower(), True)

    @IN_MEMORY.register("remove_from_group")
    def _remove_from_group(self, c: Change) -> None:
        group, user = self._entity("group", c.target_name), self._entity("user", c.user)
        if user["UserName"].lower() not in self._members[group["GroupName"].lower()]:
            raise _missing(f"user {c.user} in group {c.target_name}")
        self._leave(user, group["GroupName"])

    def _leave(self, user: dict, group: str) -> None:
        self._set(user, "GroupList", [g for g in user.get("GroupList", []) if g.lower() != group.lower()])
        self._set(self._members[group.lower()], user["UserName"].lower())

    @IN_MEMORY.register("delete_user")
    def _delete_user(self, c: Change) -> None:
        """The offboarding's full cleanup (groups, policies, credentials), then the user."""
        user = self._entity("user", c.user)
        name = user["UserName"]
        for group in user.get("GroupList", []):
            if group.lower() in self._members:
                self._leave(user, group)
        for arn in _arns(user):
            self._unlink("user", user, arn)
        if _boundary(user):
            self._set(self._bounded[_boundary(user)], name.lower())
        self._set(self.users, name)
        self._set(self._user_names, name.lower())
        if self.report is not None:
            self._set(self.report, name.lower())


# --- the proof ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Loss:
    """One (user, role) pair that a step leaves with no path at all."""

    step: int  # 1-based, as the plan's table numbers it
    change: Change
    user: str
    role_key: str
    role_name: str
    #: the identity running the plan (else a spec user whom the spec grants the role)
    operator: bool = False

    def __str__(self) -> str:
        who = "the identity running the plan, who holds it now"
        if not self.operator:
            who = "who holds it now and whom the spec grants it"
        return (f"step {self.step} ({self.change.kind} {self.change.address}) takes {self.role_name} "
                f"({self.role_key}) from {self.user}, {who}")  # fmt: skip


class LockoutError(SafetyError):
    """The plan would take a role from someone who keeps it, for at least one call: refused before any."""

    def __init__(self, losses: Sequence[Loss], limit: int = 20):
        self.losses = list(losses)
        lines = [f"- {loss}" for loss in self.losses[:limit]]
        if len(self.losses) > limit:
            lines.append(f"- ... and {len(self.losses) - limit} more")
        super().__init__("refused before any change: the plan would lock people out of roles they keep:\n"
                         + "\n".join(lines) + "\nPlan again (make_plan orders it safely) or fix the spec.")  # fmt: skip


def protected(inventory: Inventory, spec, caller_arn: str | None = None) -> dict[str, frozenset[str]]:
    """user (lower-case) -> the role keys no step may take: those a spec user holds now by any path and the
    spec grants them, and every role the operator (the caller's IAM user) holds now."""
    me = (caller_user_name(caller_arn if caller_arn is not None else inventory.caller_arn) or "").lower()
    now = getattr(spec, "now", None)
    granted = {name.lower(): {*u.roles, *(t.role for t in u.active(now))} if now else set(u.roles)
               for name, u in spec.users.items()}  # fmt: skip
    watched = [n for n in inventory.users if n.lower() in granted or n.lower() == me]
    roles = {key: name for key, name in spec.roles.items() if name in inventory.roles}
    held: dict[str, set[str]] = {}
    for grant in effective_access(inventory.details(), roles, inventory.account_id, users=watched, now=now):
        held.setdefault(grant.user.lower(), set()).add(grant.role_key)
    keep = {u: keys & (set(spec.roles) if u == me else granted.get(u, set())) for u, keys in held.items()}
    return {u: frozenset(keys) for u, keys in keep.items() if keys}


def check(inventory: Inventory, changes: Sequence[Change], spec, caller_arn: str | None = None) -> list[Loss]:
    """Every step at which a protected pair (see `protected`) falls to no path, in plan order.

    Raises SimulationError (naming the step) when AWS would refuse a step. `caller_arn` defaults to the
    inventory's caller.
    """
    caller = caller_arn if caller_arn is not None else inventory.caller_arn
    keep = protected(inventory, spec, caller)
    me = (caller_user_name(caller) or "").lower()
    holding = dict(keep)
    spelled = {name.lower(): name for name in inventory.users}
    sim = Simulation(inventory, spec.roles, getattr(spec, "now", None))
    losses: list[Loss] = []
    for step, change in enumerate(changes, 1):
        try:
            reached = sim.apply(change) & keep.keys()
        except SimulationError as exc:
            raise exc.at(step, change) from None
        if not reached:
            continue
        now = sim.held(reached)
        for user in sorted(reached):
            kept = now[user] & keep[user]
            losses += [Loss(step, change, spelled[user], key, spec.roles[key], operator=user == me)
                       for key in sorted(holding[user] - kept)]  # fmt: skip
            holding[user] = kept
    return losses


def ensure_safe(inventory: Inventory, changes: Sequence[Change], spec, caller_arn: str | None = None) -> None:
    """Refuse, before any call, a plan with a step AWS would refuse (SimulationError) or a step that locks a
    kept role out (LockoutError); both are SafetyErrors naming the step."""
    losses = check(inventory, changes, spec, caller_arn)
    if losses:
        raise LockoutError(losses)
