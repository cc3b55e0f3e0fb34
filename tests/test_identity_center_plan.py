"""grant_via: identity_center: the plan (07's phase 1, 03 in this mode), its proof, and 07's phase 2 (issue 31).

Hand-made accounts show each rule; the property tests at the end draw accounts in the middle of a migration
(tests/center_strategies.py) and hold the invariants: every plan is proven safe and reaches the spec, phase 2
never retires a user without a working Identity Center path, and what the spec does not own is untouched.
"""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta

import pytest
from center_strategies import (
    FOREIGN_GROUPS,
    INSTANCE,
    OWN_GROUPS,
    OWN_SETS,
    REGION,
    STORE,
    TRUSTS,
    center_cases,
    center_spec,
)
from hypothesis import event, given, settings
from hypothesis import strategies as st
from strategies import ACCOUNT, KEYS, NOW, ROLES, Account, Policy, Principal, arn_of
from test_simulate import CONFIGURED, NAMES, RIGHT

from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import policy_document
from iamrunbook.core.changes import CENTER_KINDS, Change
from iamrunbook.core.identity_center_access import center_grants, held_now
from iamrunbook.core.identity_center_plan import CenterPlan, RetirePlan, make_center_plan, make_member_plan, plan_retire
from iamrunbook.core.identity_center_retire import RETIRED_AT
from iamrunbook.core.identity_center_simulate import (
    CenterSimulation,
    check_center,
    ensure_center_safe,
    simulate_center,
)
from iamrunbook.core.identity_center_state import GROUP, USER, Assignment, CenterState, PermissionSet, empty_state
from iamrunbook.core.simulate import LockoutError, Simulation, SimulationError

ALICE, BOB = "alice@example.com", "bob@example.com"
OWNER = "owner"
CALLER = f"arn:aws:iam::{ACCOUNT}:user/{OWNER}"
SPEC = {ALICE: {"description": "Alice - Platform", "roles": ["data_engineer", "infrastructure_admin"]},
        BOB: {"description": "Bob - Data", "roles": ["data_engineer"]},
        OWNER: {"description": "Owner", "roles": list(KEYS)}}  # fmt: skip


MANAGED_TAG = (("ManagedBy", "iamrunbook"),)  # 03 tags every spec user it manages


def demo(users=None, policies=None, roles=CONFIGURED):
    """The demo account after 03 in user mode: every spec user holds their roles through their own policies."""
    users = users if users is not None else [Principal(ALICE, (NAMES["data_engineer"], NAMES["infrastructure_admin"]),
                                                       tags=MANAGED_TAG, keys=1, password=True),
                                             Principal(BOB, (NAMES["data_engineer"],), tags=MANAGED_TAG, keys=2),
                                             Principal(OWNER, tuple(NAMES.values()), tags=MANAGED_TAG,
                                                       keys=1)]  # fmt: skip
    policies = policies if policies is not None else list(RIGHT.values())
    return Account(tuple(users), (), tuple(roles), tuple(policies), CALLER).inventory()


def fresh() -> CenterState:
    return empty_state(INSTANCE, STORE, REGION)


def kinds(plan) -> list[str]:
    return [c.kind for c in plan.changes]


def applied(inv, state, plan):
    sim = simulate_center(inv, state, plan.changes, ROLES, NOW)
    return sim.inventory(), sim.state()


def ic_held(state, inv) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for g in center_grants(state, inv, ROLES, ACCOUNT, now=NOW):
        found.setdefault(g.user, set()).add(g.role_key)
    return found


# --- effective access along the Identity Center path ---------------------------------------------------------
def _granted_state(provisioned=True, refs=((NAMES["admin"], "/"),), trust_ok=True) -> CenterState:
    ps = PermissionSet(OWN_SETS["admin"], customer_managed=tuple(refs),
                       provisioned=frozenset({ACCOUNT}) if provisioned else frozenset())  # fmt: skip
    return CenterState(INSTANCE, STORE, REGION, users={ALICE: {"UserName": ALICE}, BOB: {"UserName": BOB}},
                       groups={"AdminRoleUsers": {}}, memberships=frozenset({("AdminRoleUsers", ALICE)}),
                       permission_sets={ps.name: ps},
                       assignments=frozenset({Assignment(ACCOUNT, ps.name, GROUP, "AdminRoleUsers"),
                                              Assignment(ACCOUNT, ps.name, USER, BOB)}))  # fmt: skip


def test_a_user_reaches_a_role_through_group_or_direct_assignment():
    inv = demo()
    grants = center_grants(_granted_state(), inv, ROLES, ACCOUNT)
    assert {(g.user, g.role_key, g.verdict) for g in grants} == {(ALICE, "admin", "yes"), (BOB, "admin", "yes")}
    assert grants[0].path == "via Identity Center permission set AssumeAdminRole"
    assert grants[0].policy_arn == arn_of(NAMES["admin"])


@pytest.mark.parametrize(
    ("state", "why"),
    [
        (_granted_state(provisioned=False), "not provisioned in the account"),
        (_granted_state(refs=((NAMES["admin"], "/other/"),)), "the reference names a path the policy is not at"),
        (_granted_state(refs=((NAMES["admin"], "/"), ("Gone", "/"))), "one referenced policy is missing"),
        (_granted_state(refs=()), "references nothing"),
    ],
)
def test_a_permission_set_counts_only_provisioned_with_every_policy_present(state, why):
    assert center_grants(state, demo(), ROLES, ACCOUNT) == [], why


def test_the_trust_must_admit_the_reserved_role_and_conditions_make_it_conditional():
    inv = demo(policies=[Policy(NAMES["admin"], (policy_document(ACCOUNT, ROLES["admin"], mfa=True),))])
    (grant,) = [g for g in center_grants(_granted_state(), inv, ROLES, ACCOUNT) if g.user == ALICE]
    assert grant.verdict == "conditional" and grant.conditions == ("only with MFA",)
    inv.roles[ROLES["admin"]] = {**inv.roles[ROLES["admin"]], "AssumeRolePolicyDocument": TRUSTS[2]}
    assert center_grants(_granted_state(), inv, ROLES, ACCOUNT) == []


def test_held_now_joins_iam_case_insensitively_and_identity_center_exactly():
    inv = demo()
    held = held_now(inv, _granted_state(), ROLES, [ALICE.upper(), BOB])
    assert held[ALICE.upper()] == {"data_engineer", "infrastructure_admin"}  # IAM only: the store's name differs
    assert held[BOB] == {"data_engineer", "admin"}


# --- the simulator ------------------------------------------------------------------------------------------------
def test_a_plain_simulation_refuses_identity_center_changes_clearly():
    change = Change("ic_create_group", "g", "r", target_kind="ic_group", target_name="AdminRoleUsers")
    with pytest.raises(SimulationError, match="CenterSimulation"):
        Simulation(demo(), ROLES).apply(change)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (Change("ic_create_group", "g", "r", target_name="AdminRoleUsers"), "ConflictException"),
        (Change("ic_add_member", "m", "r", user=ALICE, target_name="Nobody"), "ResourceNotFoundException"),
        (Change("ic_add_member", "m", "r", user=ALICE, target_name="AdminRoleUsers"), "ConflictException"),
        (Change("ic_unassign", "a", "r", target_name="AssumeAdminRole", account=ACCOUNT, principal_type=USER,
                user=ALICE), "ResourceNotFoundException"),
        (Change("ic_assign", "a", "r", target_name="AssumeAdminRole", account=ACCOUNT, principal_type=GROUP,
                user="Ghosts"), "ResourceNotFoundException"),
    ],
)  # fmt: skip
def test_the_simulator_refuses_what_identity_center_refuses(change, code):
    with pytest.raises(SimulationError, match=code):
        CenterSimulation(demo(), _granted_state(), ROLES).apply(change)


def test_assigning_a_permission_set_whose_policy_is_missing_fails_as_aws_does():
    state = _granted_state(refs=(("Gone", "/"),))
    change = Change("ic_assign", "a", "r", target_name="AssumeAdminRole", account=ACCOUNT, principal_type=USER,
                    user=ALICE)  # fmt: skip
    with pytest.raises(SimulationError, match="Received a 404 status error: Not supported policy .*policy/Gone"):
        CenterSimulation(demo(), state, ROLES).apply(change)


def test_the_last_assignment_removed_takes_the_reserved_role_and_a_new_one_gets_a_new_suffix():
    state = _granted_state()
    sim = CenterSimulation(demo(), state.with_(reserved_roles={ACCOUNT: {"AssumeAdminRole": "old"}}), ROLES)
    for principal_type, who in ((GROUP, "AdminRoleUsers"), (USER, BOB)):
        sim.apply(Change("ic_unassign", "a", "r", target_name="AssumeAdminRole", account=ACCOUNT,
                         principal_type=principal_type, user=who))  # fmt: skip
    assert sim.state().reserved_roles[ACCOUNT] == {} and not sim.state().permission_sets["AssumeAdminRole"].provisioned
    sim.apply(Change("ic_assign", "a", "r", target_name="AssumeAdminRole", account=ACCOUNT, principal_type=USER,
                     user=BOB))  # fmt: skip
    assert sim.state().reserved_roles[ACCOUNT]["AssumeAdminRole"].startswith(
        f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_AssumeAdminRole_")
    assert {g.user for g in sim.center_grants()} == {BOB}


def test_retiring_an_iam_user_without_an_identity_center_path_is_a_lockout():
    inv, spec = demo(), center_spec(SPEC)
    step = Change("deactivate_access_keys", "u", "r", user=BOB)
    (loss, *_) = check_center(inv, fresh(), [step], spec)
    assert (loss.user, loss.role_key, loss.step) == (BOB, "data_engineer", 1)


# --- the plan -----------------------------------------------------------------------------------------------
def test_phase_one_on_the_demo_account_builds_every_path_and_touches_no_iam_user():
    inv, spec = demo(), center_spec(SPEC, duration="PT4H")
    plan = make_center_plan(spec, inv, fresh())
    assert set(kinds(plan)) == {"ic_create_user", "ic_create_group", "ic_create_permission_set",
                                "ic_attach_policy_reference", "ic_add_member", "ic_assign"}  # fmt: skip
    assert [c.phase for c in plan.changes] == sorted(c.phase for c in plan.changes)
    addresses = {c.address for c in plan.changes}
    assert {'aws_identitystore_user.this["alice@example.com"]', 'aws_identitystore_group.role["admin"]',
            'aws_identitystore_group_membership.this["data_engineer/bob@example.com"]',
            'aws_ssoadmin_permission_set.role["admin"]',
            'aws_ssoadmin_customer_managed_policy_attachment.role["admin"]',
            f'aws_ssoadmin_account_assignment.role["admin/{ACCOUNT}"]'} <= addresses  # fmt: skip
    created = next(c for c in plan.changes if c.kind == "ic_create_permission_set")
    assert json.loads(created.document) == {"SessionDuration": "PT4H"} and dict(created.tags)["ManagedBy"]
    after_inv, after = applied(inv, fresh(), plan)
    assert ic_held(after, after_inv) == {ALICE: {"data_engineer", "infrastructure_admin"}, BOB: {"data_engineer"},
                                         OWNER: set(KEYS)}  # fmt: skip
    assert make_center_plan(spec, after_inv, after).is_empty
    assert after_inv.users == inv.users


def test_the_plan_round_trips_as_json():
    plan = make_center_plan(center_spec(SPEC), demo(), fresh())
    again = CenterPlan.from_json(plan.to_json())
    assert again == plan and again.accounts == (ACCOUNT,) and again.instance_arn == INSTANCE


def test_missing_policies_are_created_first_and_the_plan_targets_every_account():
    inv = demo(policies=[])
    plan = make_center_plan(center_spec(SPEC), inv, fresh(), accounts=[ACCOUNT, "210987654321"])
    assert kinds(plan)[:3] == ["create_policy"] * 3 and {c.phase for c in plan.changes[:3]} == {1}
    assigned = {(c.target_name, c.account) for c in plan.changes if c.kind == "ic_assign"}
    assert assigned == {(ps, a) for ps in OWN_SETS.values() for a in (ACCOUNT, "210987654321")}


def test_drift_on_the_runbooks_own_parts_is_undone_and_foreign_parts_are_left():
    own = PermissionSet("AssumeAdminRole", customer_managed=((NAMES["admin"], "/"), ("AssumeAnything", "/")),
                        session_duration="PT2H", provisioned=frozenset({ACCOUNT}))  # fmt: skip
    foreign = PermissionSet("PowerUsers", customer_managed=(("AssumeAnything", "/"),), provisioned=frozenset({ACCOUNT}))
    state = CenterState(INSTANCE, STORE, REGION, users={ALICE: {}, "outsider": {}},
                        groups={"AdminRoleUsers": {}, "Platform": {}},
                        memberships=frozenset({("AdminRoleUsers", "outsider"), ("Platform", "outsider")}),
                        permission_sets={own.name: own, foreign.name: foreign},
                        assignments=frozenset({Assignment(ACCOUNT, own.name, USER, "outsider"),
                                               Assignment(ACCOUNT, foreign.name, GROUP, "Platform")}))  # fmt: skip
    inv = demo(policies=[*RIGHT.values(), Policy("AssumeAnything", (RIGHT["admin"].versions[0],))])
    plan = make_center_plan(center_spec(SPEC), inv, state)
    by_kind = {c.kind: c for c in plan.changes}
    assert by_kind["ic_update_permission_set"].target_name == "AssumeAdminRole"
    assert by_kind["ic_detach_policy_reference"].policy_name == "AssumeAnything"
    assert by_kind["ic_unassign"].user == "outsider" and by_kind["ic_remove_member"].user == "outsider"
    assert {c.address for c in plan.changes if c.kind == "ic_provision"} == {
        f'aws_ssoadmin_permission_set.role["admin"].provision["{ACCOUNT}"]',
        f'aws_ssoadmin_permission_set.role["admin"].reprovision["{ACCOUNT}"]'}  # fmt: skip
    assert not any("PowerUsers" in (c.target_name or "") or c.target_name == "Platform" for c in plan.changes)
    order = [c.kind for c in plan.changes]
    assert order.index("ic_assign") < order.index("ic_unassign") < order.index("ic_detach_policy_reference")


def test_refused_roles_missing_trusts_that_shut_identity_center_out_and_temporary_grants():
    inv = demo(roles=CONFIGURED[:2])
    inv.roles[ROLES["admin"]] = {**inv.roles[ROLES["admin"]], "AssumeRolePolicyDocument": TRUSTS[2]}
    entries = {**SPEC, BOB: {"roles": [], "temporary": [{"role": "admin", "until": (NOW + timedelta(days=1))
                                                          .strftime("%Y-%m-%dT%H:%M:00Z"), "reason": "INC-1"}]}}
    with pytest.raises(SpecError) as refused:
        make_center_plan(center_spec(entries), inv, fresh())
    text = str(refused.value)
    assert "InfrastructureAdminRole' does not exist" in text and "does not admit Identity Center's" in text
    assert "temporary grant of admin" in text


def test_a_narrowing_policy_update_waits_for_the_identity_center_path():
    broad = Policy(NAMES["admin"], ({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]},))  # fmt: skip
    inv = demo(users=[Principal(BOB, (NAMES["admin"],)), Principal(OWNER, tuple(NAMES.values()))],
               policies=[broad, RIGHT["data_engineer"], RIGHT["infrastructure_admin"]])  # fmt: skip
    plan = make_center_plan(center_spec(SPEC), inv, fresh())
    update = next(c for c in plan.changes if c.kind == "update_policy")
    assert update.phase == 7  # bob holds data_engineer only through the broad policy until his group is assigned
    ensure_center_safe(inv, fresh(), plan.changes, center_spec(SPEC), CALLER)


# --- a member account, whose Identity Center part the management account runs ----------------------------------
def test_a_member_plan_makes_only_its_policies_and_refuses_like_the_full_plan():
    plan = make_member_plan(center_spec(SPEC), demo(policies=[RIGHT["admin"]]), REGION)
    assert kinds(plan) == ["create_policy"] * 2 and {c.phase for c in plan.changes} == {1}
    assert {c.policy_name for c in plan.changes} == {NAMES["data_engineer"], NAMES["infrastructure_admin"]}
    assert (plan.instance_arn, plan.accounts) == ("", (ACCOUNT,))
    assert CenterPlan.from_json(plan.to_json()) == plan
    assert make_member_plan(center_spec(SPEC), demo(), REGION).is_empty  # its policies as the spec says
    inv = demo()
    inv.roles[ROLES["admin"]] = {**inv.roles[ROLES["admin"]], "AssumeRolePolicyDocument": TRUSTS[2]}
    with pytest.raises(SpecError, match="does not admit Identity Center's"):
        make_member_plan(center_spec(SPEC), inv, REGION)


def test_a_member_plan_never_narrows_an_iam_path_nobody_else_gives_back():
    broad = Policy(NAMES["admin"], ({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]},))  # fmt: skip
    inv = demo(users=[Principal(BOB, (NAMES["admin"],)), Principal(OWNER, tuple(NAMES.values()))],
               policies=[broad, RIGHT["data_engineer"], RIGHT["infrastructure_admin"]])  # fmt: skip
    with pytest.raises(LockoutError):  # bob holds data_engineer only through it; the member has no instance path
        make_member_plan(center_spec(SPEC), inv, REGION)


# --- phase 2 ----------------------------------------------------------------------------------------------------
def _after_phase_one(inv=None):
    inv = inv or demo()
    spec = center_spec(SPEC)
    return (*applied(inv, fresh(), make_center_plan(spec, inv, fresh())), spec)


def test_phase_two_retires_who_signed_in_and_keeps_the_rest_with_why():
    inv, state, spec = _after_phase_one()
    plan = plan_retire(spec, inv, state, {ALICE: "2026-01-02T10:00:00Z", OWNER: "2026-01-02T10:00:00Z"},
                       retire_iam_users={}, grace_days=7, now=NOW, caller_arn=CALLER)  # fmt: skip
    assert [(c.kind, c.user, c.phase) for c in plan.changes] == [
        ("deactivate_access_keys", ALICE, 1), ("delete_login_profile", ALICE, 2), ("tag_user", ALICE, 3)]
    assert dict(plan.changes[2].tags)[RETIRED_AT] == NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert dict(plan.kept) == {BOB: "has not signed in through Identity Center since phase 1",
                               OWNER: "the identity running this"}  # fmt: skip
    assert RetirePlan.from_json(plan.to_json()) == plan


def test_phase_two_deletes_after_the_grace_period_only():
    inv, state, spec = _after_phase_one()
    stamp = (NOW - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    inv.users[ALICE]["Tags"] = [*inv.users[ALICE]["Tags"], {"Key": RETIRED_AT, "Value": stamp}]
    common = dict(retire_iam_users={BOB: "left the team"}, caller_arn=CALLER)
    early = plan_retire(spec, inv, state, {}, grace_days=7, now=NOW, **common)
    assert dict(early.kept)[ALICE].startswith(f"retired {(NOW - timedelta(days=3)).date()}; deleted after")
    assert {c.user for c in early.changes} == {BOB}
    late = plan_retire(spec, inv, state, {}, grace_days=2, now=NOW, **common)
    assert [c.kind for c in late.changes if c.user == ALICE] == ["delete_user"]


def test_phase_two_never_retires_without_a_working_path_nor_a_stranger():
    inv, state, spec = _after_phase_one()
    state = state.with_(memberships=state.memberships - {(OWN_GROUPS["infrastructure_admin"], ALICE)})
    plan = plan_retire(spec, inv, state, {ALICE: "2026-01-02T10:00:00Z"}, retire_iam_users={}, grace_days=7,
                       now=NOW, caller_arn=CALLER)  # fmt: skip
    assert plan.is_empty
    assert dict(plan.kept)[ALICE] == ("Identity Center path missing or not provisioned: InfrastructureAdminRole "
                                      "(infrastructure_admin)")  # fmt: skip
    with pytest.raises(SpecError, match="mallory is not a spec user"):
        plan_retire(spec, inv, state, {}, retire_iam_users={"mallory": "x"}, grace_days=7, now=NOW, caller_arn=CALLER)


# --- properties over accounts mid-migration -----------------------------------------------------------------------
def _own(change: Change, spec) -> bool:
    """Whether an Identity Center change addresses only what the spec owns."""
    groups = {spec.settings.group_name(k, r) for k, r in spec.roles.items()}
    sets = set(OWN_SETS.values())
    if change.kind == "ic_create_user":
        return change.user in spec.users
    if change.kind in ("ic_create_group", "ic_add_member", "ic_remove_member"):
        return change.target_name in groups
    return change.target_name in sets


def _foreign(state: CenterState, spec) -> tuple:
    sets = set(OWN_SETS.values())
    return ({n: u for n, u in state.users.items() if n not in spec.users},
            {g: v for g, v in state.groups.items() if g in FOREIGN_GROUPS},
            {m for m in state.memberships if m[0] in FOREIGN_GROUPS},
            {n: p.customer_managed for n, p in state.permission_sets.items() if n not in sets},
            {a for a in state.assignments if a.permission_set not in sets})  # fmt: skip


@settings(max_examples=60)
@given(center_cases())
def test_every_plan_is_proven_safe_reaches_the_spec_and_leaves_foreign_parts(case):
    _, inv, state, spec = case
    try:
        plan = make_center_plan(spec, inv, state)
    except SpecError as refused:
        event("refused: a granted role's trust shuts Identity Center out")
        assert all("does not admit Identity Center" in p for p in refused.problems)
        return
    event(f"{len(plan.changes) // 10 * 10}+ changes")
    for kind in {"ic_unassign", "ic_detach_policy_reference", "ic_remove_member"} & {c.kind for c in plan.changes}:
        event(f"drift undone: {kind}")
    if any(c.phase == 7 for c in plan.changes):
        event("a narrowing policy update waits for the Identity Center path")
    ensure_center_safe(inv, state, plan.changes, spec)
    assert all(_own(c, spec) for c in plan.changes if c.kind in CENTER_KINDS)
    assert {c.kind for c in plan.changes} <= {*CENTER_KINDS, "create_policy", "prune_policy_version", "update_policy"}
    after_inv, after = applied(inv, state, plan)
    assert make_center_plan(spec, after_inv, after).is_empty
    assert _foreign(after, spec) == _foreign(state, spec)
    held = ic_held(after, after_inv)
    for user, key in spec.grants():
        assert key in held.get(user, set()), (user, key)


@settings(max_examples=60)
@given(center_cases(), st.data())
def test_phase_two_never_retires_a_user_without_a_working_identity_center_path(case, data):
    _, inv, state, spec = case
    if data.draw(st.integers(0, 3), "phase 1 applied first unless 0"):
        with contextlib.suppress(SpecError):  # a refused plan: phase 2 on the account as it is
            inv, state = applied(inv, state, make_center_plan(spec, inv, state))
    names = sorted(spec.users)
    if not names:
        return
    signed_in = {n: "2026-01-02T10:00:00Z" for n in names if data.draw(st.integers(0, 3), f"{n} signed in unless 0")}
    listed = {n: "left" for n in data.draw(st.lists(st.sampled_from(names), max_size=2, unique=True))}
    for name in data.draw(st.lists(st.sampled_from(names), max_size=2, unique=True)):
        user = inv.user_named(name)
        if user is not None:
            stamp = (NOW - timedelta(days=data.draw(st.integers(0, 10)))).strftime("%Y-%m-%dT%H:%M:%SZ")
            user["Tags"] = [*user.get("Tags", []), {"Key": RETIRED_AT, "Value": stamp}]
    plan = plan_retire(spec, inv, state, signed_in, retire_iam_users=listed, grace_days=7, now=NOW,
                       caller_arn=inv.caller_arn)  # fmt: skip
    held = ic_held(state, inv)
    retired = {c.user for c in plan.changes}
    event(f"{len(retired)} retired or deleted")
    for _, why in plan.kept:
        event(f"kept: {why.split(':')[0]}")
    granted = {(u.lower(), k) for u, k in spec.grants()}
    for name in retired:
        spec_user = spec.user_named(name)
        assert {k for u, k in granted if u == name.lower()} <= held.get(spec_user.name, set())
        assert name.lower() != (inv.caller_user or "").lower()
    assert {k for k in (c.kind for c in plan.changes)} <= {"deactivate_access_keys", "delete_login_profile",
                                                          "tag_user", "delete_user"}  # fmt: skip
    ensure_center_safe(inv, state, plan.changes, spec)


def test_one_permission_sets_edits_run_one_at_a_time_its_assignments_and_memberships_at_once():
    from iamrunbook.core.order import entity

    plan = make_center_plan(center_spec(SPEC), demo(), fresh(), accounts=("123456789012", "210987654321"))
    admin = [c for c in plan.changes if c.target_name == OWN_SETS["admin"]]
    edits = {entity(c) for c in admin if c.kind not in ("ic_assign", "ic_unassign")}
    assigns = [entity(c) for c in admin if c.kind == "ic_assign"]
    members = [entity(c) for c in plan.changes if c.kind == "ic_add_member"]
    assert len(edits) == 1 and len(assigns) == 2 and len(set(assigns)) == 2
    assert len(set(members)) == len(members)


def test_phase_two_keeps_an_iam_user_the_runbook_does_not_manage():
    from iamrunbook.core.identity_center_retire import NOT_MANAGED

    inv = demo(users=[Principal(BOB, (NAMES["data_engineer"],), keys=1), Principal(OWNER, tuple(NAMES.values()))])
    spec = center_spec({BOB: SPEC[BOB], OWNER: SPEC[OWNER]})
    state = simulate_center(inv, fresh(), make_center_plan(spec, inv, fresh()).changes, spec.roles, NOW).state()
    plan = plan_retire(spec, inv, state, {BOB: "2026-12-05T10:00:00Z"}, retire_iam_users={}, grace_days=7,
                       now=NOW, caller_arn=CALLER)  # fmt: skip
    assert plan.is_empty and (BOB, NOT_MANAGED) in plan.kept
