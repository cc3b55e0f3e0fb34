"""The safe order of a plan, computed from simulated access: grants and widening first, then narrowing and
revocation, then deletions, so that nobody loses a role they keep, not even for one call.

Every change gets a `phase`; all changes of one phase may run in any order, at once:

1. creates (policies, groups, users) and policy updates that take access from nobody;
2. imports and tags;
3. grants: attachments and group memberships, and any link whose removal only adds access (a Deny);
4. narrowing policy updates: a new document that takes access from someone, after what replaces it;
5. revocations: detachments and group removals, and any link whose addition takes access away;
6. deletions: users, policy versions, policies.

Which of 1 or 4 an update goes to, and which of 3 or 5 a link goes to, is what the simulator says the
change does to effective access (simulate.py), not its kind: the kinds table (changes.RANK) only breaks
ties. An update's judgement is made on the account as it is, with the updates already judged harmless
applied; a link's on the account after phases 1 and 2. Within a phase, changes of one entity (a policy's
version prune and its update, a policy's versions and its deletion) keep plan order: see `entity`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Sequence
from contextlib import suppress
from dataclasses import replace

from iamrunbook.core.changes import KINDS, RANK, Change
from iamrunbook.core.simulate import Simulation, SimulationError

CREATE, TAG, GRANT, NARROW, REVOKE, DELETE = 1, 2, 3, 4, 5, 6
PHASES = {
    CREATE: "creates and widening policy updates",
    TAG: "imports and tags",
    GRANT: "grants",
    NARROW: "narrowing policy updates",
    REVOKE: "revocations",
    DELETE: "deletions",
}
#: kinds whose phase is theirs whatever they do to access
_FIXED = {
    "create_policy": CREATE,
    "create_group": CREATE,
    "create_user": CREATE,
    "import_user": TAG,
    "tag_user": TAG,
    "delete_user": DELETE,
    "delete_group": DELETE,
    "delete_policy_version": DELETE,
    "delete_policy": DELETE,
}
#: a new default document: CREATE when it takes access from nobody, else NARROW (its prune goes with it)
_DOCUMENT = ("prune_policy_version", "update_policy")
#: links between a user, group or role and a policy or group: GRANT or REVOKE by what they do
_LINKS = ("attach", "add_to_group", "detach", "remove_from_group")
_POLICY_KINDS = ("create_policy", *_DOCUMENT, "delete_policy_version", "delete_policy")
_USER_KINDS = (
    *("create_user", "import_user", "tag_user", "delete_user"),
    *("deactivate_access_keys", "delete_login_profile"),  # 07's retiring
)
#: Identity Center: one permission set's edits and provisioning run one at a time (AWS refuses a change to a
#: permission set while another is in progress on it); its assignments, each their own, run at once (up to the
#: 10 in flight the instance allows; the executor retries the rest), since the phases already keep them apart
_PERMISSION_SET_KINDS = (
    *("ic_create_permission_set", "ic_update_permission_set", "ic_attach_policy_reference"),
    *("ic_detach_policy_reference", "ic_provision"),
)


def entity(change: Change) -> Hashable:
    """What a change works on. Within a phase, changes of one entity run one after another in list order
    (a prune before its update; versions before their policy); the others may run at once."""
    if change.kind in _POLICY_KINDS:
        return ("policy", change.policy_arn)
    if change.kind in _USER_KINDS:
        return ("user", (change.user or "").lower())
    if change.kind in ("create_group", "delete_group"):
        return ("group", (change.target_name or "").lower())
    if change.kind in ("add_to_group", "remove_from_group"):
        return ("member", (change.target_name or "").lower(), (change.user or "").lower())
    if change.kind in _PERMISSION_SET_KINDS:
        return ("permission_set", change.target_name)
    if change.kind in ("ic_assign", "ic_unassign"):
        return ("assignment", change.target_name, change.account, change.principal_type, change.user)
    if change.kind in ("ic_create_user", "ic_create_group", "ic_add_member", "ic_remove_member"):
        return ("identity_store", change.kind.rsplit("_", 1)[-1], change.target_name, change.user)
    target = change.target_name if change.target_kind in ("group", "role") else change.user or change.target_name
    return ("link", change.target_kind or "user", (target or "").lower(), change.policy_arn)


def _document_phases(sim: Simulation, changes: Sequence[Change]) -> dict[int, int]:
    """Each policy's prune and update together: CREATE when the new document takes access from nobody,
    judged alone and after the updates already judged so (two broad policies may each be harmless to
    narrow and not both), else NARROW. The harmless ones stay applied to `sim`."""
    batches: dict[str, list[int]] = defaultdict(list)
    for i, change in enumerate(changes):
        if change.kind in _DOCUMENT:
            batches[change.policy_arn].append(i)
    phases = {}
    harmless = []
    known: dict = {}  # access as the account is now, shared while nothing is applied
    for indices in batches.values():
        batch = [changes[i] for i in indices]
        harmless.append(indices if _loses_nothing(sim, batch, known) else None)
        phases.update(dict.fromkeys(indices, NARROW))
    for indices in filter(None, harmless):
        batch = [changes[i] for i in indices]
        if _loses_nothing(sim, batch):
            sim.run(batch)
            phases.update(dict.fromkeys(indices, CREATE))
    return phases


def _loses_nothing(sim: Simulation, batch: Sequence[Change], known: dict | None = None) -> bool:
    try:
        return not sim.effect(batch, known)[1]
    except SimulationError:
        return False  # AWS would refuse it; the check says so, with the step


def _link_phase(sim: Simulation, change: Change, known: dict) -> int:
    """GRANT when the link adds access and takes none, REVOKE when it takes some; a link that changes
    nobody's access goes where its kind does (changes.Kind.role)."""
    try:
        gained, lost = sim.effect([change], known)
    except SimulationError:
        gained = lost = set()
    if lost:
        return REVOKE
    if gained:
        return GRANT
    return GRANT if KINDS[change.kind].role == "grant" else REVOKE


def phases_of(changes: Sequence[Change], inventory, spec) -> list[int]:
    """The phase of every change, in plan order (see the module docstring)."""
    sim = Simulation(inventory, spec.roles, getattr(spec, "now", None))
    phases = {i: _FIXED[c.kind] for i, c in enumerate(changes) if c.kind in _FIXED}
    phases.update(_document_phases(sim, changes))
    for i in sorted((i for i, p in phases.items() if p in (CREATE, TAG) and changes[i].kind in _FIXED),
                    key=lambda i: (phases[i], RANK[changes[i].kind], i)):  # fmt: skip
        with suppress(SimulationError):  # judged without it; the check names the step AWS would refuse
            sim.apply(changes[i])
    known: dict = {}  # every link is judged on the same account: its access is worked out once per user
    for i, change in enumerate(changes):
        if change.kind in _LINKS:
            phases[i] = _link_phase(sim, change, known)
        elif i not in phases:  # a kind the planner does not know: where its class says
            phases[i] = {"grant": GRANT, "revoke": REVOKE}.get(KINDS[change.kind].role, DELETE)
    return [phases[i] for i in range(len(changes))]


def safe_order(changes: Sequence[Change], inventory, spec) -> list[Change]:
    """`changes` in the safe order, each with its phase: by phase, then the kinds table, then plan order;
    changes of one entity in one phase keep plan order."""
    changes = list(changes)
    phases = phases_of(changes, inventory, spec)
    order = sorted(range(len(changes)), key=lambda i: (phases[i], RANK[changes[i].kind], i))
    slots: dict[tuple, list[int]] = defaultdict(list)
    for position, i in enumerate(order):
        slots[(phases[i], entity(changes[i]))].append(position)
    for positions in slots.values():
        for position, i in zip(positions, sorted(order[p] for p in positions), strict=True):
            order[position] = i
    return [replace(changes[i], phase=phases[i]) for i in order]
