"""The proof for `grant_via: identity_center`: simulate.py's account plus the Identity Center instance, in memory.

`CenterSimulation` is simulate.Simulation (every IAM kind as before) with a CenterState beside it, and makes
each Identity Center kind the way AWS does, refusing what AWS refuses: a second user, group or permission set
of one name (ConflictException), a membership or assignment naming a principal that does not exist, an
assignment or provisioning whose permission set references a policy the account lacks ("Received a 404
status error: Not supported policy ..."). Provisioning makes the reserved role: the first assignment of a
permission set in an account creates it (a new suffix each time), removing the last deletes it.

07's retiring of an IAM user: its IAM paths stop counting as soon as `deactivate_access_keys` or
`delete_login_profile` runs on it (whichever comes first), not once both have: the proof then asks for the
Identity Center path before the first credential goes, whichever one the person used. `delete_user` removes
the user as before. On a plain Simulation the two kinds only change the credential report.

`check_center` is simulate.check for this mode: after every step, no spec user loses a role they hold now (by
their IAM user, matched case-insensitively, or their identity-store user, by UserName) that the spec grants
them, and the operator (the caller's IAM user) loses no role they hold now, by either path: the runbook's
calls never need the roles, the person does.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timezone

from iamrunbook.base.names import caller_user_name
from iamrunbook.core.changes import CENTER_KINDS, Change
from iamrunbook.core.identity_center_access import center_access, missing_references, policies_by_name, present_roles
from iamrunbook.core.identity_center_state import GROUP, POLICY_PATH, USER, Assignment, CenterState, PermissionSet
from iamrunbook.core.identity_center_trust import reserved_role_arn
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.simulate import IN_MEMORY, LockoutError, Loss, Simulation, SimulationError

#: IAM kinds that change a policy's document or existence: they can change what a permission set grants
_POLICY_KINDS = ("create_policy", "update_policy", "prune_policy_version", "delete_policy_version", "delete_policy")


class CenterSimulation(Simulation):
    """The account and the Identity Center instance in memory (see the module docstring)."""

    def __init__(self, inventory: Inventory, state: CenterState | None, roles: Mapping[str, str] | None = None,
                 now: datetime | None = None):  # fmt: skip
        super().__init__(inventory, roles, now)
        self._center: dict[str, CenterState | None] = {"state": state}
        self._retired: dict[str, bool] = {}
        self._suffix = 0

    @property
    def center(self) -> CenterState:
        state = self._center["state"]
        if state is None:
            raise SimulationError("InvalidAction", "no Identity Center instance to change (no state was given)")
        return state

    def put(self, **changes) -> None:
        """The one way the instance changes: a new CenterState, undone like any write inside a trial."""
        self._set(self._center, "state", self.center.with_(**changes))

    def retire(self, user: str) -> None:
        self._set(self._retired, user.lower(), True)

    def retired(self, user: str) -> bool:
        return user.lower() in self._retired

    def affected(self, change: Change) -> set[str]:
        if change.kind in ("deactivate_access_keys", "delete_login_profile"):
            return {change.user.lower()}
        return super().affected(change)

    def grants(self, users=None):
        """IAM paths, without those of retired users."""
        return [g for g in super().grants(users) if not self.retired(g.user)]

    def center_grants(self, users: Iterable[str] | None = None):
        """Identity Center paths in the inventory's account, as the instance and the account are now."""
        if self._center["state"] is None:
            return []
        return center_access(self.center, self.policies, present_roles(self.roles, self.role_keys), self.account_id,
                             self.partition, users, self.now)  # fmt: skip

    def new_role_arn(self, account: str, permission_set: str) -> str:
        self._suffix += 1
        return reserved_role_arn(account, permission_set, f"{self._suffix:016x}", self.center.home_region,
                                 self.partition)  # fmt: skip

    def state(self) -> CenterState | None:
        """The instance as the simulation leaves it, for planning on."""
        return self._center["state"]


# --- the Identity Center kinds -----------------------------------------------------------------------------
def _sim(sim: Simulation, change: Change) -> CenterSimulation:
    if not isinstance(sim, CenterSimulation) or sim.state() is None:
        raise SimulationError("InvalidAction", f"{change.kind} changes Identity Center: simulate it with "
                              "identity_center_simulate.CenterSimulation and the instance's state")  # fmt: skip
    return sim


def _conflict(what: str) -> SimulationError:
    return SimulationError("ConflictException", f"{what} already exists")


def _not_found(what: str) -> SimulationError:
    return SimulationError("ResourceNotFoundException", f"{what} does not exist")


def _permission_set(sim: CenterSimulation, name: str | None):
    ps = sim.center.permission_sets.get(name or "")
    if ps is None:
        raise _not_found(f"permission set {name}")
    return ps


def _put_set(sim: CenterSimulation, ps) -> None:
    sim.put(permission_sets={**sim.center.permission_sets, ps.name: ps})


@IN_MEMORY.register("ic_create_user", "ic_create_group")
def _create_store_entity(sim: Simulation, c: Change) -> None:
    """CreateUser / CreateGroup: a second one of the same name is a ConflictException."""
    s = _sim(sim, c)
    what, table, name = ("user", "users", c.user) if c.kind == "ic_create_user" else ("group", "groups", c.target_name)
    existing = getattr(s.center, table)
    if name in existing:
        raise _conflict(f"identity-store {what} {name}")
    if what == "user":
        entity = {**json.loads(c.document or "{}"), "UserName": name}
    else:
        entity = {"DisplayName": name, **({"Description": c.description} if c.description else {})}
    entity[f"{what.title()}Id"] = f"sim-{what}-{len(existing) + 1}"
    s.put(**{table: {**existing, name: entity}})


@IN_MEMORY.register("ic_add_member")
def _add_member(sim: Simulation, c: Change) -> None:
    s = _sim(sim, c)
    if c.target_name not in s.center.groups or c.user not in s.center.users:
        raise _not_found(f"group {c.target_name}" if c.target_name not in s.center.groups else f"user {c.user}")
    if (c.target_name, c.user) in s.center.memberships:
        raise _conflict(f"membership of {c.user} in {c.target_name}")
    s.put(memberships=s.center.memberships | {(c.target_name, c.user)})


@IN_MEMORY.register("ic_remove_member")
def _remove_member(sim: Simulation, c: Change) -> None:
    s = _sim(sim, c)
    if (c.target_name, c.user) not in s.center.memberships:
        raise _not_found(f"membership of {c.user} in {c.target_name}")
    s.put(memberships=s.center.memberships - {(c.target_name, c.user)})


def _settings(c: Change) -> dict:
    return json.loads(c.document) if c.document else {}


@IN_MEMORY.register("ic_create_permission_set")
def _create_permission_set(sim: Simulation, c: Change) -> None:
    s = _sim(sim, c)
    if c.target_name in s.center.permission_sets:
        raise _conflict(f"permission set {c.target_name}")
    created = (s.now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
    arn = f"{s.center.instance_arn.replace(':instance/', ':permissionSet/')}/ps-sim{len(s.center.permission_sets)}"
    ps = PermissionSet(c.target_name, arn, _settings(c).get("SessionDuration", "PT1H"), tags=c.tags, created=created)
    _put_set(s, ps)


def _outdated(ps):
    """Any edit leaves the permission set OUTDATED wherever it was provisioned, until provisioned again."""
    return replace(ps, provisioned=frozenset())


@IN_MEMORY.register("ic_update_permission_set")
def _update_permission_set(sim: Simulation, c: Change) -> None:
    s = _sim(sim, c)
    ps = _permission_set(s, c.target_name)
    duration = _settings(c).get("SessionDuration", ps.session_duration)
    _put_set(s, _outdated(replace(ps, session_duration=duration)))


def _reference(c: Change) -> tuple[str, str]:
    return c.policy_name or "", _settings(c).get("Path", POLICY_PATH)


@IN_MEMORY.register("ic_attach_policy_reference")
def _attach_reference(sim: Simulation, c: Change) -> None:
    s = _sim(sim, c)
    ps = _permission_set(s, c.target_name)
    if _reference(c) in ps.customer_managed:
        raise _conflict(f"reference to {c.policy_name} on {ps.name}")
    _put_set(s, _outdated(replace(ps, customer_managed=(*ps.customer_managed, _reference(c)))))


@IN_MEMORY.register("ic_detach_policy_reference")
def _detach_reference(sim: Simulation, c: Change) -> None:
    s = _sim(sim, c)
    ps = _permission_set(s, c.target_name)
    if _reference(c) not in ps.customer_managed:
        raise _not_found(f"reference to {c.policy_name} on {ps.name}")
    kept = tuple(ref for ref in ps.customer_managed if ref != _reference(c))
    _put_set(s, _outdated(replace(ps, customer_managed=kept)))


def _refuse_missing_policy(s: CenterSimulation, ps, account: str) -> None:
    """AWS fails the request when a referenced policy is not in the account; only the inventory's account is
    known here (another target account gets its policies from its own run)."""
    missing = missing_references(ps, policies_by_name(s.policies)) if account == s.account_id else []
    if missing:
        arn = f"arn:{s.partition}:iam::{account}:policy{missing[0]}"
        raise SimulationError("FAILED", f"Received a 404 status error: Not supported policy {arn}.")


def _provision(s: CenterSimulation, ps, account: str) -> None:
    """Create (or keep) the reserved role and mark the current version provisioned in the account."""
    _refuse_missing_policy(s, ps, account)
    roles = dict(s.center.reserved_roles.get(account, {}))
    if ps.name not in roles:
        roles[ps.name] = s.new_role_arn(account, ps.name)
        s.put(reserved_roles={**s.center.reserved_roles, account: roles})
    _put_set(s, replace(ps, provisioned=ps.provisioned | {account}))


@IN_MEMORY.register("ic_provision")
def _provision_change(sim: Simulation, c: Change) -> None:
    s = _sim(sim, c)
    _provision(s, _permission_set(s, c.target_name), c.account or s.account_id)


def _assignment(c: Change, s: CenterSimulation) -> Assignment:
    return Assignment(c.account or s.account_id, c.target_name or "", c.principal_type or GROUP, c.user or "")


@IN_MEMORY.register("ic_assign")
def _assign(sim: Simulation, c: Change) -> None:
    s = _sim(sim, c)
    ps, wanted = _permission_set(s, c.target_name), _assignment(c, s)
    known = s.center.groups if wanted.principal_type == GROUP else s.center.users
    if wanted.principal_type not in (GROUP, USER) or wanted.principal not in known:
        raise _not_found(f"{wanted.principal_type.lower()} {wanted.principal}")
    if wanted in s.center.assignments:
        raise _conflict(f"assignment of {wanted.principal} to {ps.name} in {wanted.account}")
    _provision(s, ps, wanted.account)  # a failed assignment is never made
    s.put(assignments=s.center.assignments | {wanted})


@IN_MEMORY.register("ic_unassign")
def _unassign(sim: Simulation, c: Change) -> None:
    s = _sim(sim, c)
    gone = _assignment(c, s)
    if gone not in s.center.assignments:
        raise _not_found(f"assignment of {gone.principal} to {gone.permission_set} in {gone.account}")
    s.put(assignments=s.center.assignments - {gone})
    if any(a.account == gone.account and a.permission_set == gone.permission_set for a in s.center.assignments):
        return
    roles = {k: v for k, v in s.center.reserved_roles.get(gone.account, {}).items() if k != gone.permission_set}
    s.put(reserved_roles={**s.center.reserved_roles, gone.account: roles})
    ps = s.center.permission_sets.get(gone.permission_set)
    if ps is not None:
        _put_set(s, replace(ps, provisioned=ps.provisioned - {gone.account}))


# --- 07's retiring of an IAM user ----------------------------------------------------------------------
def _credentials(sim: Simulation, c: Change, **flags: str) -> None:
    user = sim._entity("user", c.user)
    if sim.report is not None and user["UserName"].lower() in sim.report:
        row = sim.report[user["UserName"].lower()]
        sim._set(sim.report, user["UserName"].lower(), {**row, **flags})
    if isinstance(sim, CenterSimulation):
        sim.retire(user["UserName"])


@IN_MEMORY.register("deactivate_access_keys")
def _deactivate_access_keys(sim: Simulation, c: Change) -> None:
    """UpdateAccessKey Inactive on every key of the user (none: nothing to do)."""
    _credentials(sim, c, access_key_1_active="false", access_key_2_active="false")


@IN_MEMORY.register("delete_login_profile")
def _delete_login_profile(sim: Simulation, c: Change) -> None:
    """DeleteLoginProfile; a user without a password is left as is (the AWS handler treats NoSuchEntity as
    done): the credential report the plan would read may be hours old."""
    _credentials(sim, c, password_enabled="false")


# --- the proof ------------------------------------------------------------------------------------------
class _Person:
    """One watched person: their IAM user (lower case), their identity-store UserName, the roles kept."""

    def __init__(self, name: str, ic_name: str, keep: frozenset[str] | None, operator: bool):
        self.name, self.iam, self.ic, self.keep, self.operator = name, name.lower(), ic_name, keep, operator


def _people(spec, inventory: Inventory, caller_arn: str) -> list[_Person]:
    """Every spec user (keeping what the spec grants them now) and the operator (keeping everything)."""
    me = (caller_user_name(caller_arn) or "").lower()
    now = getattr(spec, "now", None)
    people = []
    for name, user in spec.users.items():
        granted = {*user.roles, *(t.role for t in user.active(now))} if now else set(user.roles)
        people.append(_Person(name, name, None if name.lower() == me else frozenset(granted), name.lower() == me))
    if me and not any(p.operator for p in people):
        spelled = next((n for n in inventory.users if n.lower() == me), None)
        if spelled is not None:
            people.append(_Person(spelled, spelled, None, True))
    return people


def _held(sim: CenterSimulation, people: Sequence[_Person], iam: bool, center: bool,
          cache: dict[str, tuple[frozenset, frozenset]]) -> None:  # fmt: skip
    """Refresh the cached (IAM, Identity Center) role keys of `people` for the parts a step can change."""
    iam_now: dict[str, set] = {p.iam: set() for p in people} if iam else {}
    for g in sim.grants([p.iam for p in people]) if iam else ():
        iam_now.setdefault(g.user.lower(), set()).add(g.role_key)
    ic_now: dict[str, set] = {p.ic: set() for p in people} if center else {}
    for g in sim.center_grants([p.ic for p in people]) if center else ():
        ic_now[g.user].add(g.role_key)
    for p in people:
        old = cache.get(p.name, (frozenset(), frozenset()))
        cache[p.name] = (frozenset(iam_now[p.iam]) if iam else old[0], frozenset(ic_now[p.ic]) if center else old[1])


def check_center(inventory: Inventory, state: CenterState, changes: Sequence[Change], spec,
                 caller_arn: str | None = None) -> list[Loss]:  # fmt: skip
    """Every step at which a watched person's kept role falls to no path, IAM or Identity Center, in plan order
    (see the module docstring). Raises SimulationError naming the step AWS would refuse."""
    caller = caller_arn if caller_arn is not None else inventory.caller_arn
    sim = CenterSimulation(inventory, state, spec.roles, getattr(spec, "now", None))
    people = _people(spec, inventory, caller)
    cache: dict[str, tuple[frozenset, frozenset]] = {}
    _held(sim, people, True, True, cache)
    holding = {p.name: (cache[p.name][0] | cache[p.name][1]) & (p.keep if p.keep is not None else set(spec.roles))
               for p in people}  # fmt: skip
    losses: list[Loss] = []
    for step, change in enumerate(changes, 1):
        try:
            reached = sim.apply(change)
        except SimulationError as exc:
            raise exc.at(step, change) from None
        center = change.kind in CENTER_KINDS or change.kind in _POLICY_KINDS
        touched = [p for p in people if holding[p.name] and (center or p.iam in reached)]
        if not touched:
            continue
        _held(sim, touched, True, center, cache)
        for p in touched:
            kept = holding[p.name] & (cache[p.name][0] | cache[p.name][1])
            losses += [Loss(step, change, p.name, key, spec.roles[key], operator=p.operator)
                       for key in sorted(holding[p.name] - kept)]  # fmt: skip
            holding[p.name] = kept
    return losses


def ensure_center_safe(inventory: Inventory, state: CenterState, changes: Sequence[Change], spec,
                       caller_arn: str | None = None) -> None:  # fmt: skip
    """Refuse, before any call, a plan with a step AWS would refuse (SimulationError) or a step that takes a
    kept role from someone (LockoutError); both are SafetyErrors naming the step."""
    losses = check_center(inventory, state, changes, spec, caller_arn)
    if losses:
        raise LockoutError(losses)


def simulate_center(
    inventory: Inventory,
    state: CenterState,
    changes: Iterable[Change],
    roles: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> CenterSimulation:
    """Every change applied in order, as AWS would: the account and the instance after a plan."""
    sim = CenterSimulation(inventory, state, roles, now)
    sim.run(changes)
    return sim
