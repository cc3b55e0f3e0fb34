"""The plan simulator (simulate.py): AWS's refusals in memory, the state each kind of change leaves,
effective access step by step, and the proof that a plan locks nobody out (issue 14).

The hand-made accounts use the dataclasses of tests/strategies.py; the property tests at the end draw
random accounts and specs from it. The last test builds one generated account on the embedded AWS.
"""

from __future__ import annotations

import json
import time

import pytest
import strategies
from hypothesis import Phase, event, given, settings
from hypothesis import strategies as st
from strategies import ACCOUNT, LEGACY, MOTO_CALLER, ROLES, Account, Policy, Principal, arn_of, assume, doc, role_of

from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base.errors import SafetyError
from iamrunbook.base.names import is_aws_managed, policy_document, policy_name, user_tags
from iamrunbook.core import migration
from iamrunbook.core.access import effective_access
from iamrunbook.core.changes import KINDS, RANK, Change
from iamrunbook.core.identity_center import store_user
from iamrunbook.core.identity_center_simulate import CenterSimulation
from iamrunbook.core.identity_center_state import empty_state
from iamrunbook.core.inventory import decode_document
from iamrunbook.core.migration import Holder
from iamrunbook.core.order import entity
from iamrunbook.core.plan import make_plan
from iamrunbook.core.simulate import LockoutError, Loss, Simulation, SimulationError, check, ensure_safe, protected
from iamrunbook.core.spec import GrantSettings, load_spec

CONFIGURED = tuple(Principal(name) for name in ROLES.values())
NAMES = {key: policy_name(role) for key, role in ROLES.items()}
RIGHT = {key: Policy(NAMES[key], (policy_document(ACCOUNT, role),)) for key, role in ROLES.items()}
BROAD = doc(assume("*"))
TWO_ROLES = doc(assume([role_of("data_engineer"), role_of("infrastructure_admin")]))


def inventory(users=(), groups=(), policies=(), caller=MOTO_CALLER, roles=CONFIGURED):
    return Account(tuple(users), tuple(groups), tuple(roles), tuple(policies), caller).inventory()


def spec_of(users: dict[str, list[str]], via: str = "user", mfa=frozenset()):
    entries = {name: {"description": name, "roles": keys} for name, keys in users.items()}
    return load_spec(entries, roles=ROLES, settings=GrantSettings(grant_via=via, require_mfa=frozenset(mfa)))


def attach(user: str, policy: str) -> Change:
    return Change("attach", f"attach/{user}/{policy}", "grant", user=user, policy_arn=arn_of(policy),
                  policy_name=policy, target_kind="user", target_name=user)  # fmt: skip


def detach(kind: str, name: str, policy: str) -> Change:
    return Change("detach", f"{kind}/{name}/{policy}", "revoke", user=name if kind == "user" else None,
                  policy_arn=arn_of(policy), policy_name=policy, target_kind=kind, target_name=name)  # fmt: skip


def update(policy: str, document: dict) -> Change:
    return Change("update_policy", f"policy/{policy}", "restore", policy_arn=arn_of(policy), policy_name=policy,
                  document=json.dumps(document))  # fmt: skip


def version(kind: str, policy: str, version_id: str) -> Change:
    return Change(kind, f"policy/{policy}/{version_id}", "prune", policy_arn=arn_of(policy), policy_name=policy,
                  version_id=version_id)  # fmt: skip


def membership(kind: str, user: str, group: str) -> Change:
    return Change(kind, f"group/{group}/{user}", "member", user=user, target_kind="group", target_name=group)


def delete_user(user: str) -> Change:
    return Change("delete_user", f'aws_iam_user.users["{user}"]', "offboard", user=user)


def held(inv) -> dict[str, set[str]]:
    """user -> role keys, from a full effective_access recompute of the whole account."""
    found: dict[str, set[str]] = {name.lower(): set() for name in inv.users}
    for grant in effective_access(inv.details(), ROLES, ACCOUNT):
        found[grant.user.lower()].add(grant.role_key)
    return found


# --- what AWS refuses --------------------------------------------------------------------------------
REFUSED = [
    ("attach to a missing user", attach("ghost", NAMES["admin"]), "NoSuchEntity"),
    ("attach a missing policy", attach("bob", "NoSuchPolicy"), "NoSuchEntity"),
    ("attach to a missing group",
     Change("attach", "g", "r", policy_arn=arn_of(NAMES["admin"]), target_kind="group", target_name="nope"),
     "NoSuchEntity"),
    ("add a missing user to a group", membership("add_to_group", "ghost", "ops"), "NoSuchEntity"),
    ("add to a missing group", membership("add_to_group", "bob", "nope"), "NoSuchEntity"),
    ("tag a missing user", Change("tag_user", "u", "r", user="ghost", tags=(("Name", "ghost"),)), "NoSuchEntity"),
    ("import a missing user", Change("import_user", "u", "r", user="ghost"), "NoSuchEntity"),
    ("detach what is not attached", detach("user", "bob", NAMES["data_engineer"]), "NoSuchEntity"),
    ("remove a non-member", membership("remove_from_group", "carol", "ops"), "NoSuchEntity"),
    ("update a missing policy", update("NoSuchPolicy", BROAD), "NoSuchEntity"),
    ("delete a policy still attached", Change("delete_policy", "p", "r", policy_arn=arn_of(NAMES["admin"])),
     "DeleteConflict"),
    ("delete a policy with versions", Change("delete_policy", "p", "r", policy_arn=arn_of(LEGACY)), "DeleteConflict"),
    ("a sixth version", update(NAMES["data_engineer"], BROAD), "LimitExceeded"),
    ("delete the default version", version("delete_policy_version", LEGACY, "v2"), "DeleteConflict"),
    ("prune a version that is not there", version("prune_policy_version", LEGACY, "v9"), "NoSuchEntity"),
    ("create a user that exists, in another case", Change("create_user", "u", "r", user="BOB"), "EntityAlreadyExists"),
    ("create a group that exists, in another case",
     Change("create_group", "g", "r", target_name="OPS"), "EntityAlreadyExists"),
    ("create a policy that exists",
     Change("create_policy", "p", "r", policy_arn=arn_of(NAMES["admin"]), policy_name=NAMES["admin"],
            document=json.dumps(BROAD)), "EntityAlreadyExists"),
    ("offboard a missing user", delete_user("ghost"), "NoSuchEntity"),
    ("delete a group with members", Change("delete_group", "g", "r", target_kind="group", target_name="ops"),
     "DeleteConflict"),
    ("delete a missing group", Change("delete_group", "g", "r", target_kind="group", target_name="nope"),
     "NoSuchEntity"),
]  # fmt: skip


def refusing_account():
    return inventory(
        users=[Principal("bob", (NAMES["admin"],), groups=("ops",))],
        groups=[Principal("ops")],
        policies=[RIGHT["admin"], Policy(NAMES["data_engineer"], (BROAD,) * 5, 4), Policy(LEGACY, (BROAD, BROAD), 1)],
    )


@pytest.mark.parametrize("what, change, code", REFUSED, ids=[r[0] for r in REFUSED])
def test_what_aws_refuses_the_simulator_refuses(what, change, code):
    sim = Simulation(refusing_account(), ROLES)
    with pytest.raises(SimulationError) as refused:
        sim.apply(change)
    assert refused.value.code == code
    assert isinstance(refused.value, SafetyError)  # a plan AWS would stop half-way is refused before it starts


def test_a_refusal_names_its_step():
    changes = [attach("bob", NAMES["admin"]), attach("ghost", NAMES["admin"])]
    with pytest.raises(SimulationError) as refused:
        check(refusing_account(), changes, spec_of({"bob": ["admin"]}))
    assert refused.value.step == 2
    assert str(refused.value).startswith("step 2 (attach attach/ghost/AssumeAdminRolePolicy): AWS would refuse it: "
                                         "NoSuchEntity: user ghost does not exist")  # fmt: skip


def test_what_aws_allows_twice_changes_nothing_the_second_time():
    sim = Simulation(refusing_account(), ROLES)
    sim.apply(attach("bob", NAMES["admin"]))  # attached already
    sim.apply(membership("add_to_group", "BOB", "OPS"))  # a member already, names in any case
    assert sim.users["bob"]["AttachedManagedPolicies"] == [{"PolicyName": NAMES["admin"],
                                                            "PolicyArn": arn_of(NAMES["admin"])}]  # fmt: skip
    assert sim.users["bob"]["GroupList"] == ["ops"]


# --- the state each kind leaves ----------------------------------------------------------------------
def test_every_kind_leaves_the_account_as_aws_would():
    inv = inventory(
        users=[Principal("bob", (LEGACY,), groups=("ops",), tags=(("Team", "ops"),)), Principal("gone", (LEGACY,))],
        groups=[Principal("ops", (LEGACY,))],
        policies=[Policy(LEGACY, (BROAD, BROAD, BROAD), 2), Policy(NAMES["admin"], (BROAD,) * 5, 0)],
        roles=(*CONFIGURED, Principal("ci-runner", (LEGACY,))),
    )
    admin, data = arn_of(NAMES["admin"]), arn_of(NAMES["data_engineer"])
    changes = [
        Change("create_policy", "p", "r", policy_arn=data, policy_name=NAMES["data_engineer"],
               document=json.dumps(RIGHT["data_engineer"].versions[0]), description="Allows assuming DataEngineerRole"),
        version("prune_policy_version", NAMES["admin"], "v2"),
        update(NAMES["admin"], RIGHT["admin"].versions[0]),
        Change("create_group", "g", "r", target_name="AdminRoleUsers"),
        Change("create_user", "u", "r", user="zoe", tags=(("Name", "zoe"),)),
        Change("import_user", "u", "r", user="BOB", tags=(("Name", "bob"), ("Team", "data"))),
        Change("tag_user", "u", "r", user="zoe", tags=(("Roles", "admin"),)),
        Change("attach", "a", "r", policy_arn=admin, target_kind="group", target_name="AdminRoleUsers"),
        attach("zoe", NAMES["data_engineer"]),
        membership("add_to_group", "zoe", "AdminRoleUsers"),
        detach("user", "bob", LEGACY), detach("group", "ops", LEGACY), detach("role", "ci-runner", LEGACY),
        membership("remove_from_group", "bob", "ops"),
        delete_user("gone"),
        Change("delete_group", "g", "r", target_kind="group", target_name="OPS"),
        version("delete_policy_version", LEGACY, "v1"), version("delete_policy_version", LEGACY, "v2"),
        Change("delete_policy", "p", "r", policy_arn=arn_of(LEGACY)),
        *CENTER_STEPS,
        Change("deactivate_access_keys", "u", "r", user="BOB"), Change("delete_login_profile", "u", "r", user="bob"),
    ]  # fmt: skip
    assert {c.kind for c in changes} == set(KINDS)
    sim = CenterSimulation(inv, empty_state(INSTANCE, "d-1234567890", "us-east-1"), ROLES)
    after = sim.run(changes).inventory()
    state = sim.state()
    assert state.users["zoe"]["DisplayName"] == "Zoe" and state.memberships == frozenset()
    ps = state.permission_sets["AssumeDataEngineerRole"]
    assert ps.session_duration == "PT2H" and ps.customer_managed == ((NAMES["data_engineer"], "/"),)
    assert ps.provisioned == {ACCOUNT} and dict(ps.tags) == {"ManagedBy": "iamrunbook"}
    assert [a.principal for a in state.assignments] == ["DataEngineerRoleUsers"]  # zoe's own one removed
    assert "AWSReservedSSO_AssumeDataEngineerRole_" in state.reserved_roles[ACCOUNT]["AssumeDataEngineerRole"]
    bob = next(r for r in after.credential_report if r["user"] == "bob")
    assert (bob["access_key_1_active"], bob["password_enabled"]) == ("false", "false")
    assert sim.retired("bob") and not sim.grants(["bob"])  # a retired IAM user's paths no longer count

    assert arn_of(LEGACY) not in after.policies and "gone" not in after.users
    assert [v["VersionId"] for v in after.policies[admin]["PolicyVersionList"]] == ["v1", "v3", "v4", "v5", "v6"]
    assert after.policies[admin]["DefaultVersionId"] == "v6"
    assert after.policies[admin]["PolicyVersionList"][-1]["Document"] == RIGHT["admin"].versions[0]
    assert [v["IsDefaultVersion"] for v in after.policies[admin]["PolicyVersionList"]] == [False] * 4 + [True]
    assert after.policies[data]["Description"] == "Allows assuming DataEngineerRole"
    assert after.policies[admin]["AttachmentCount"] == 1 and after.policies[data]["AttachmentCount"] == 1
    assert after.users["bob"]["Tags"] == [{"Key": "Team", "Value": "data"}, {"Key": "Name", "Value": "bob"}]
    assert after.users["bob"]["GroupList"] == [] and after.users["bob"]["AttachedManagedPolicies"] == []
    zoe = after.users["zoe"]
    assert zoe["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/zoe" and zoe["GroupList"] == ["AdminRoleUsers"]
    assert zoe["Tags"] == [{"Key": "Name", "Value": "zoe"}, {"Key": "Roles", "Value": "admin"}]
    assert [p["PolicyArn"] for p in zoe["AttachedManagedPolicies"]] == [data]
    assert after.groups["AdminRoleUsers"]["AttachedManagedPolicies"][0]["PolicyArn"] == admin
    assert "ops" not in after.groups  # emptied, then deleted (named in any case)
    assert after.roles["ci-runner"]["AttachedManagedPolicies"] == []
    assert [r["user"] for r in after.credential_report] == ["bob", "zoe"]  # the offboarded row is gone
    assert held(after) == {"bob": set(), "zoe": {"admin", "data_engineer"}}
    assert make_plan(spec_of({"zoe": ["admin"]}), after).changes  # a plannable Inventory


INSTANCE = "arn:aws:sso:::instance/ssoins-1234567890123456"
_PS = dict(target_kind="permission_set", target_name="AssumeDataEngineerRole", role_key="data_engineer")
_TO_ZOE = dict(target_name="AssumeDataEngineerRole", account=ACCOUNT, principal_type="USER", user="zoe")
#: every Identity Center kind once: zoe gets DataEngineerRole through a group and directly, then loses both
CENTER_STEPS = (
    Change("ic_create_user", "u", "r", user="zoe", document=json.dumps(store_user("zoe", "Zoe - Data"))),
    Change("ic_create_group", "g", "r", target_kind="ic_group", target_name="DataEngineerRoleUsers"),
    Change("ic_create_permission_set", "ps", "r", tags=(("ManagedBy", "iamrunbook"),),
           document=json.dumps({"SessionDuration": "PT1H"}), **_PS),
    Change("ic_update_permission_set", "ps", "r", document=json.dumps({"SessionDuration": "PT2H"}), **_PS),
    Change("ic_attach_policy_reference", "ref", "r", policy_name=NAMES["data_engineer"], **_PS),
    Change("ic_attach_policy_reference", "ref", "r", policy_name=NAMES["admin"], **_PS),
    Change("ic_add_member", "m", "r", user="zoe", target_kind="ic_group", target_name="DataEngineerRoleUsers"),
    Change("ic_assign", "a", "r", target_name="AssumeDataEngineerRole", account=ACCOUNT, principal_type="GROUP",
           user="DataEngineerRoleUsers"),
    Change("ic_assign", "a", "r", **_TO_ZOE),
    Change("ic_unassign", "a", "r", **_TO_ZOE),
    Change("ic_detach_policy_reference", "ref", "r", policy_name=NAMES["admin"], **_PS),
    Change("ic_provision", "p", "r", target_name="AssumeDataEngineerRole", account=ACCOUNT),
    Change("ic_remove_member", "m", "r", user="zoe", target_kind="ic_group", target_name="DataEngineerRoleUsers"),
)  # fmt: skip


def test_the_source_inventory_is_never_changed():
    inv = refusing_account()
    before = json.dumps(inv.details(), default=str, sort_keys=True)
    sim = Simulation(inv, ROLES)
    sim.run([detach("user", "bob", NAMES["admin"]), membership("remove_from_group", "bob", "ops")])
    out = sim.inventory()
    sim.apply(delete_user("bob"))
    assert json.dumps(inv.details(), default=str, sort_keys=True) == before
    assert "bob" in out.users  # an inventory taken earlier is a copy, too


def test_a_trial_leaves_the_account_as_it_was():
    inv = refusing_account()
    sim = Simulation(inv, ROLES)
    before = json.dumps(sim.inventory().details(), default=str, sort_keys=True)
    with sim.trial():
        sim.run([version("prune_policy_version", NAMES["data_engineer"], "v1"), update(NAMES["data_engineer"], {}),
                 Change("create_group", "g", "r", target_name="new"), membership("add_to_group", "bob", "new"),
                 delete_user("bob")])  # fmt: skip
        assert "bob" not in sim.users
    assert json.dumps(sim.inventory().details(), default=str, sort_keys=True) == before
    assert sim.members("ops") == {"bob"} and sim.reach(arn_of(NAMES["admin"])) == {"bob"}
    sim.apply(Change("create_group", "g", "r", target_name="new"))  # the group is gone again: no conflict


# --- the proof -------------------------------------------------------------------------------------
def bob_account(data_policy: Policy):
    """bob reaches InfrastructureAdminRole only through a broad AssumeDataEngineerRolePolicy."""
    return inventory(users=[Principal("bob", (NAMES["data_engineer"],))], policies=[data_policy, RIGHT["admin"]])


BOB_CASES = {
    "Resource *": Policy(NAMES["data_engineer"], (BROAD,)),
    "5 versions, the default broad": Policy(NAMES["data_engineer"], (BROAD,) * 5, 4),
}


@pytest.mark.parametrize("data_policy", BOB_CASES.values(), ids=list(BOB_CASES))
def test_issue_14_bob_keeps_infrastructure_admin_while_the_broad_policy_narrows(data_policy):
    """The regression: the plan used to narrow the document before attaching what replaces it."""
    inv = bob_account(data_policy)
    spec = spec_of({"bob": ["data_engineer", "infrastructure_admin"]})
    plan = make_plan(spec, inv)
    kinds = [c.kind for c in plan.changes]
    assert kinds.index("attach") < kinds.index("update_policy")
    assert check(inv, plan.changes, spec) == []
    ensure_safe(inv, plan.changes, spec)

    old = sorted(plan.changes, key=lambda c: RANK[c.kind])  # the kind table alone: update before attach
    losses = check(inv, old, spec)
    step = next(i for i, c in enumerate(old, 1) if c.kind == "update_policy")
    assert [(x.step, x.user, x.role_key) for x in losses] == [(step, "bob", "infrastructure_admin")]
    with pytest.raises(LockoutError) as refused:
        ensure_safe(inv, old, spec)
    assert (
        f'step {step} (update_policy aws_iam_policy.assume_role["data_engineer"]) takes InfrastructureAdminRole '
        "(infrastructure_admin) from bob, who holds it now and whom the spec grants it" in str(refused.value)
    )


def test_a_broad_data_policy_held_by_someone_who_keeps_infrastructure_admin_another_way_is_narrowed_first():
    """carol reaches InfrastructureAdminRole through her own policy too: narrowing takes nothing, phase 1.
    (With Resource "*" it would take AdminRole from her: then it is narrowing, phase 4.)"""
    inv = inventory(
        users=[Principal("carol", (NAMES["data_engineer"], NAMES["infrastructure_admin"]))],
        policies=[Policy(NAMES["data_engineer"], (TWO_ROLES,)), RIGHT["infrastructure_admin"]],
    )
    spec = spec_of({"carol": ["data_engineer", "infrastructure_admin"]})
    plan = make_plan(spec, inv)
    assert [(c.kind, c.phase) for c in plan.changes] == [("create_policy", 1), ("update_policy", 1),
                                                         ("import_user", 2)]  # fmt: skip
    assert check(inv, plan.changes, spec) == []


def test_a_hand_made_unsafe_plan_is_refused_naming_step_user_and_role():
    inv = inventory(users=[Principal("alice", (LEGACY,))], policies=[Policy(LEGACY, (BROAD,)), RIGHT["admin"]])
    spec = spec_of({"alice": ["admin", "data_engineer"]})
    manual = [detach("user", "alice", LEGACY), attach("alice", NAMES["admin"])]  # the manual procedure
    with pytest.raises(LockoutError) as refused:
        ensure_safe(inv, manual, spec)
    text = str(refused.value)
    assert text.startswith("refused before any change: the plan would lock people out of roles they keep:")
    assert "- step 1 (detach user/alice/AssumeRolesPolicy) takes AdminRole (admin) from alice" in text
    assert "- step 1 (detach user/alice/AssumeRolesPolicy) takes DataEngineerRole (data_engineer) from alice" in text
    assert "InfrastructureAdminRole" not in text  # held, but the spec does not grant it: hers to lose
    assert [(x.step, x.user, x.role_name) for x in refused.value.losses] == [
        (1, "alice", "AdminRole"), (1, "alice", "DataEngineerRole")]  # fmt: skip
    assert check(inv, manual[::-1], spec) == [Loss(2, manual[0], "alice", "data_engineer", "DataEngineerRole")]


def test_a_role_held_by_any_path_is_protected():
    """Not only the runbook's policies: a group's inline policy, AWS-managed access, a foreign policy."""
    inv = inventory(
        users=[Principal("ann", ("AdministratorAccess",)), Principal("ben", groups=("ops",)),
               Principal("cid", ("AssumeAnything",))],
        groups=[Principal("ops", inline=("assume-data-with-mfa",))],
        policies=[Policy("AssumeAnything", (BROAD,))],
    )  # fmt: skip
    spec = spec_of({"ann": ["admin"], "ben": ["data_engineer"], "cid": ["infrastructure_admin"]})
    assert protected(inv, spec) == {"ann": {"admin"}, "ben": {"data_engineer"}, "cid": {"infrastructure_admin"}}
    plan = [detach("user", "ann", "AdministratorAccess"), membership("remove_from_group", "ben", "ops"),
            update("AssumeAnything", doc(assume(role_of("admin"))))]  # fmt: skip
    assert [(x.step, x.user, x.role_key) for x in check(inv, plan, spec)] == [
        (1, "ann", "admin"), (2, "ben", "data_engineer"), (3, "cid", "infrastructure_admin")]  # fmt: skip


def test_conditional_access_is_access_and_mfa_is_no_loss():
    """A pair held only with MFA is held; requiring MFA where there was none keeps the pair."""
    inv = inventory(users=[Principal("dee", (NAMES["admin"],))], policies=list(RIGHT.values()))
    spec = spec_of({"dee": ["admin"]}, mfa={"admin"})
    plan = make_plan(spec, inv)
    assert [(c.kind, c.phase) for c in plan.changes] == [("update_policy", 1), ("import_user", 2)]
    assert check(inv, plan.changes, spec) == []
    after = Simulation(inv, ROLES).run(plan.changes)
    assert [g.verdict for g in after.grants(["dee"])] == ["conditional"]
    assert check(after.inventory(), [detach("user", "dee", NAMES["admin"])], spec)[0].role_key == "admin"


def test_the_operator_keeps_what_they_hold_even_outside_the_spec():
    inv = inventory(users=[Principal("ops-lead", (LEGACY,), tags=tuple(user_tags("ops-lead", "x", ()).items()))],
                    policies=[Policy(LEGACY, (doc(assume([role_of("admin"), role_of("data_engineer")])),))],
                    caller=f"arn:aws:iam::{ACCOUNT}:user/ops-lead")  # fmt: skip
    spec = spec_of({})
    losses = check(inv, [delete_user("ops-lead")], spec)
    assert [(x.user, x.role_key, x.operator) for x in losses] == [("ops-lead", "admin", True),
                                                                 ("ops-lead", "data_engineer", True)]  # fmt: skip
    assert "from ops-lead, the identity running the plan, who holds it now" in str(losses[0])
    assert check(inv, [delete_user("ops-lead")], spec, caller_arn=MOTO_CALLER) == []  # someone else runs it


def test_offboarding_is_a_one_change_plan():
    inv = inventory(users=[Principal("bob", (NAMES["admin"],)), Principal("eve", (NAMES["admin"],))],
                    policies=[RIGHT["admin"]])  # fmt: skip
    spec = spec_of({"bob": ["admin"]})
    assert check(inv, [delete_user("eve")], spec) == []  # eve is not in the spec
    with pytest.raises(LockoutError, match=r"step 1 \(delete_user .*bob.*\) takes AdminRole \(admin\) from bob"):
        ensure_safe(inv, [delete_user("bob")], spec)


def test_a_lost_role_that_comes_back_is_still_a_loss():
    inv = inventory(users=[Principal("bob", (NAMES["admin"],))], policies=[RIGHT["admin"]])
    plan = [detach("user", "bob", NAMES["admin"]), attach("bob", NAMES["admin"])]
    assert [x.step for x in check(inv, plan, spec_of({"bob": ["admin"]}))] == [1]


# --- speed ---------------------------------------------------------------------------------------------
def big_case(users: int = 5000):
    """5,000 users holding 0-3 of the policies, AssumeDataEngineerRolePolicy broad at 5 versions, one in ten
    holding the legacy policy; a spec that changes roles, descriptions and membership all over."""
    import random

    rnd = random.Random(14)
    policies = (RIGHT["admin"], Policy(NAMES["data_engineer"], (BROAD,) * 5, 4), RIGHT["infrastructure_admin"],
                Policy(LEGACY, (BROAD,)))  # fmt: skip
    principals, entries = [], {}
    for i in range(users):
        name = f"user{i:05d}"
        keys = tuple(k for k in ROLES if rnd.random() < 0.4)
        tags = tuple(user_tags(name, "x", keys).items()) if rnd.random() < 0.6 else ()
        principals.append(Principal(name, tuple(NAMES[k] for k in keys) + ((LEGACY,) if rnd.random() < 0.1 else ()),
                                    tags=tags))  # fmt: skip
        if rnd.random() < 0.9:
            entries[name] = {"description": rnd.choice("xy"), "roles": [k for k in ROLES if rnd.random() < 0.5]}
    entries |= {f"new{i:05d}": {"description": "n", "roles": ["data_engineer"]} for i in range(users // 10)}
    inv = inventory(principals, policies=policies)
    return inv, load_spec(entries, roles=ROLES)


def test_5000_users_and_10000_changes_are_ordered_and_checked_in_seconds():
    inv, spec = big_case()
    started = time.perf_counter()
    plan = make_plan(spec, inv)
    planned = time.perf_counter() - started
    started = time.perf_counter()
    losses = check(inv, plan.changes, spec)
    checked = time.perf_counter() - started
    print(f"5,000 users, {len(plan.changes)} changes: make_plan {planned:.2f} s, check {checked:.2f} s")
    assert len(plan.changes) > 10_000 and losses == []
    assert checked < 15 and planned < 30  # a few seconds on a quiet machine; generous for a shared CI one


# --- properties over random accounts (strategies.py) ------------------------------------------------------
def by_phase_reversed(changes):
    """The same plan with each phase's entities run in the opposite order (an entity's own changes keep
    theirs): a phase's changes may run in any order, so this order must be safe too."""
    out = []
    for phase in sorted({c.phase for c in changes}):
        groups: dict = {}
        for change in (c for c in changes if c.phase == phase):
            groups.setdefault(entity(change), []).append(change)
        out += [c for group in reversed(groups.values()) for c in group]
    return out


def assert_proven_and_converging(inv, spec, plan_changes):
    phases = [c.phase for c in plan_changes]
    assert phases == sorted(phases) and set(phases) <= {1, 2, 3, 4, 5, 6}
    assert check(inv, plan_changes, spec) == []
    assert check(inv, by_phase_reversed(plan_changes), spec) == []
    end = Simulation(inv, spec.roles).run(plan_changes).inventory()
    assert make_plan(spec, end).is_empty, make_plan(spec, end).to_text()
    return end


@settings(max_examples=300)
@given(strategies.cases())
def test_every_plan_is_proven_safe_and_reaches_the_spec(case):
    account, spec = case
    inv = account.inventory()
    plan = make_plan(spec, inv)
    event(f"grant_via: {spec.settings.grant_via}")
    event("narrows a policy after granting" if any(c.phase == 4 for c in plan.changes) else "no narrowing update")
    assert_proven_and_converging(inv, spec, plan.changes)


@settings(max_examples=300)
@given(strategies.cases(legacy=True), st.integers(0, 3))
def test_the_migration_then_the_plan_is_proven_safe_and_reaches_the_spec(case, coin):
    """plan_migration, then make_plan on the account as the simulated migration leaves it, proven as one run
    from the account as it is now."""
    account, spec = case
    inv = account.inventory()
    holders = [Holder(kind, name) for kind, name in inv.holders(arn_of(LEGACY))]
    mplan = migration.plan_migration(spec, inv, LEGACY, holders, detach_unmanaged=coin > 0)
    event("nothing to migrate" if mplan.nothing_to_migrate else "blocked" if mplan.blocked else "migrated")
    if mplan.nothing_to_migrate or mplan.blocked:
        assert mplan.nothing_to_migrate == (arn_of(LEGACY) not in inv.policies)
        return
    migrated = Simulation(inv, spec.roles).run(mplan.steps).inventory()
    assert arn_of(LEGACY) not in migrated.policies
    assert migration.verify_migration(spec, migrated, mplan) == []
    plan = make_plan(spec, migrated)
    assert check(inv, [*mplan.steps, *plan.changes], spec) == []
    assert_proven_and_converging(migrated, spec, plan.changes)


@settings(max_examples=60)
@given(strategies.cases())
def test_re_evaluating_only_the_users_a_step_reaches_equals_a_full_recompute(case):
    account, spec = case
    inv = account.inventory()
    holders = [Holder(kind, name) for kind, name in inv.holders(arn_of(LEGACY))]
    mplan = migration.plan_migration(spec, inv, LEGACY, holders, detach_unmanaged=True)
    steps = [*mplan.steps, *make_plan(spec, inv).changes] if not mplan.blocked else list(make_plan(spec, inv).changes)
    sim = Simulation(inv, ROLES)
    incremental = held(inv)
    for change in steps:
        try:
            reached = sim.apply(change)
        except SimulationError:
            break  # the plan of the first account, run after the migration, may meet what it already did
        incremental.update((user, set(keys)) for user, keys in sim.held(reached).items())
        incremental = {u: keys for u, keys in incremental.items() if u in {n.lower() for n in sim.users}}
        assert incremental == held(sim.inventory()), change


# --- the same account through boto3 ---------------------------------------------------------------------
def rich(account: Account) -> bool:
    """An account that exercises every part of `build`."""
    everyone = (*account.users, *account.groups, *account.roles)
    return (
        any(u.keys and u.password and u.mfa for u in account.users)
        and any(len(p.versions) >= 3 and p.default < len(p.versions) - 1 for p in account.policies)
        and any(u.groups for u in account.users) and any(r.attached for r in account.roles)
        and any(g.inline for g in account.groups)
        and any(set(strategies.AWS_MANAGED) & set(e.attached) for e in everyone)
        and any(p.name == LEGACY for p in account.policies)
    )  # fmt: skip


def shape(inv) -> dict:
    """What an account is, without ids and dates: tags, memberships, attachments, inline and versioned
    documents, trust, the credential report's flags."""

    def attached(entity):
        return sorted(p["PolicyArn"] for p in entity.get("AttachedManagedPolicies", []))

    def inline(entity, key):
        return {p["PolicyName"]: decode_document(p["PolicyDocument"]) for p in entity.get(key, [])}

    flags = ("password_enabled", "mfa_active", "access_key_1_active", "access_key_2_active")
    return {
        "users": {n: (sorted((t["Key"], t["Value"]) for t in u.get("Tags", [])), sorted(u["GroupList"]),
                      attached(u), inline(u, "UserPolicyList")) for n, u in inv.users.items()},
        "groups": {n: (attached(g), inline(g, "GroupPolicyList")) for n, g in inv.groups.items()},
        "roles": {n: (decode_document(r["AssumeRolePolicyDocument"]), attached(r), inline(r, "RolePolicyList"))
                  for n, r in inv.roles.items()},
        "policies": {arn: sorted((v["VersionId"], v["IsDefaultVersion"], decode_document(v["Document"]))
                                 for v in p["PolicyVersionList"] if v["IsDefaultVersion"] or not is_aws_managed(arn))
                     for arn, p in inv.policies.items()},
        "report": {r["user"]: tuple(r[f] for f in flags) for r in inv.credential_report if r["user"] in inv.users},
    }  # fmt: skip


@settings(max_examples=1, phases=[Phase.generate])  # one account; a failure is shown as drawn, not shrunk
@given(strategies.accounts().filter(rich))
def test_build_makes_the_generated_account_on_the_embedded_aws(aws, iam, sts, account):
    aws.reset()
    strategies.build(iam, account)
    real = read_inventory(iam, sts, with_credential_report=True)
    assert shape(real) == shape(account.inventory())
