"""The safe order (order.py): phases computed from simulated access, the kinds table only breaking ties.

Hand-made accounts (tests/strategies.py's dataclasses); every ordered plan here is also proven by the
simulator's check, the way apply proves it.
"""

from __future__ import annotations

import json

from strategies import ACCOUNT, LEGACY, MOTO_CALLER, ROLES, Account, Policy, Principal, arn_of, assume, doc, role_of

from iamrunbook.base.names import policy_document, policy_name
from iamrunbook.core import migration
from iamrunbook.core.changes import Change
from iamrunbook.core.migration import Holder
from iamrunbook.core.order import CREATE, DELETE, GRANT, NARROW, PHASES, REVOKE, TAG, entity, phases_of
from iamrunbook.core.plan import make_plan
from iamrunbook.core.simulate import check
from iamrunbook.core.spec import GrantSettings, load_spec

NAMES = {key: policy_name(role) for key, role in ROLES.items()}
RIGHT = {key: Policy(NAMES[key], (policy_document(ACCOUNT, role),)) for key, role in ROLES.items()}
BROAD = doc(assume("*"))
CONFIGURED = tuple(Principal(name) for name in ROLES.values())


def inventory(users=(), groups=(), policies=None):
    policies = RIGHT.values() if policies is None else policies
    return Account(tuple(users), tuple(groups), CONFIGURED, tuple(policies), MOTO_CALLER).inventory()


def spec_of(users: dict[str, list[str]], via: str = "user"):
    entries = {name: {"description": name, "roles": keys} for name, keys in users.items()}
    return load_spec(entries, roles=ROLES, settings=GrantSettings(grant_via=via))


def steps(changes) -> list[tuple[str, str, int]]:
    return [(c.kind, c.address, c.phase) for c in changes]


def test_phases_are_numbered_one_to_six_in_the_order_they_run():
    assert list(PHASES) == [CREATE, TAG, GRANT, NARROW, REVOKE, DELETE] == [1, 2, 3, 4, 5, 6]


def test_the_example_plan_keeps_its_order_and_gets_phases():
    spec = load_spec({"alice": {"description": "A", "roles": ["data_engineer"]},
                      "bob": {"description": "B", "roles": ["admin", "data_engineer"]}})  # fmt: skip
    plan = make_plan(spec, inventory(policies=()))
    assert [(c.kind, c.phase) for c in plan.changes] == [
        ("create_policy", 1), ("create_policy", 1), ("create_policy", 1), ("create_user", 1), ("create_user", 1),
        ("attach", 3), ("attach", 3), ("attach", 3)]  # fmt: skip
    assert json.loads(plan.to_json())["changes"][0]["phase"] == 1  # the parallel executor reads it there


def test_switching_to_group_mode_adds_members_before_detaching_direct_attachments():
    inv = inventory(users=[Principal("bob", (NAMES["admin"],))])
    spec = spec_of({"bob": ["admin"]}, via="group")
    plan = make_plan(spec, inv)
    assert steps(plan.changes) == [
        ("create_group", 'aws_iam_group.role_groups["admin"]', 1),
        ("create_group", 'aws_iam_group.role_groups["data_engineer"]', 1),
        ("create_group", 'aws_iam_group.role_groups["infrastructure_admin"]', 1),
        ("import_user", 'aws_iam_user.users["bob"]', 2),
        ("attach", 'aws_iam_group_policy_attachment.role_groups["admin"]', 3),
        ("attach", 'aws_iam_group_policy_attachment.role_groups["data_engineer"]', 3),
        ("attach", 'aws_iam_group_policy_attachment.role_groups["infrastructure_admin"]', 3),
        ("add_to_group", 'aws_iam_user_group_membership.users["bob"]', 3),
        ("detach", 'aws_iam_user_policy_attachment.user_roles["bob/admin"]', 5),
    ]
    assert check(inv, plan.changes, spec) == []


def test_switching_back_to_user_mode_attaches_before_leaving_the_groups():
    inv = inventory(users=[Principal("bob", groups=("AdminRoleUsers",))],
                    groups=[Principal("AdminRoleUsers", (NAMES["admin"],))])  # fmt: skip
    spec = spec_of({"bob": ["admin"]})
    plan = make_plan(spec, inv)
    assert steps(plan.changes) == [
        ("import_user", 'aws_iam_user.users["bob"]', 2),
        ("attach", 'aws_iam_user_policy_attachment.user_roles["bob/admin"]', 3),
        ("detach", "group/AdminRoleUsers/AssumeAdminRolePolicy", 5),
    ]
    assert check(inv, plan.changes, spec) == []


def test_the_legacy_migration_grants_then_detaches_then_deletes_versions_before_the_policy():
    inv = inventory(users=[Principal("bob", (LEGACY,))], policies=[*RIGHT.values(), Policy(LEGACY, (BROAD,) * 3, 1)])
    spec = spec_of({"bob": ["admin", "infrastructure_admin"]})
    mplan = migration.plan_migration(spec, inv, LEGACY, [Holder("user", "bob")])
    assert steps(mplan.steps) == [
        ("attach", 'aws_iam_user_policy_attachment.user_roles["bob/admin"]', 3),
        ("attach", 'aws_iam_user_policy_attachment.user_roles["bob/infrastructure_admin"]', 3),
        ("detach", "user/bob/AssumeRolesPolicy", 5),
        ("delete_policy_version", "policy/AssumeRolesPolicy/v1", 6),
        ("delete_policy_version", "policy/AssumeRolesPolicy/v3", 6),
        ("delete_policy", "policy/AssumeRolesPolicy", 6),
    ]
    assert check(inv, mplan.steps, spec) == []


def test_the_migration_grants_first_to_whoever_reaches_a_role_through_a_policy_it_narrows():
    """carol does not hold the legacy policy, but AssumeDataEngineerRolePolicy (Resource "*"), which the
    migration repairs for bob, is her only way to InfrastructureAdminRole: her grant comes first."""
    inv = inventory(
        users=[Principal("bob", (LEGACY,)), Principal("carol", (NAMES["data_engineer"],))],
        policies=[Policy(LEGACY, (doc(assume([role_of("admin"), role_of("data_engineer")])),)),
                  Policy(NAMES["data_engineer"], (BROAD,))],
    )  # fmt: skip
    spec = spec_of({"bob": ["data_engineer"], "carol": ["data_engineer", "infrastructure_admin"]})
    mplan = migration.plan_migration(spec, inv, LEGACY, [Holder("user", "bob")])
    kinds = [(c.kind, c.address, c.phase) for c in mplan.steps]
    attach = ("attach", 'aws_iam_user_policy_attachment.user_roles["carol/infrastructure_admin"]', 3)
    narrow = ("update_policy", 'aws_iam_policy.assume_role["data_engineer"]', 4)
    assert attach in kinds and narrow in kinds and kinds.index(attach) < kinds.index(narrow)
    assert check(inv, mplan.steps, spec) == []


def test_two_broad_policies_may_each_narrow_alone_but_not_both_at_once():
    """dan reaches AdminRole through either broad policy: narrowing one takes nothing, narrowing both
    takes AdminRole (which the spec does not grant him: his to lose, after his grants)."""
    inv = inventory(users=[Principal("dan", (NAMES["data_engineer"], NAMES["infrastructure_admin"]))],
                    policies=[Policy(NAMES["data_engineer"], (BROAD,)), Policy(NAMES["infrastructure_admin"], (BROAD,)),
                              RIGHT["admin"]])  # fmt: skip
    spec = spec_of({"dan": ["data_engineer", "infrastructure_admin"]})
    plan = make_plan(spec, inv)
    updates = [(c.role_key, c.phase) for c in plan.changes if c.kind == "update_policy"]
    assert updates == [("data_engineer", CREATE), ("infrastructure_admin", NARROW)]
    assert check(inv, plan.changes, spec) == []


def test_the_phase_comes_from_access_not_the_kind():
    """Detaching a Deny is a grant (phase 3); attaching a policy that denies is a revocation (phase 5); a link
    that changes nobody's access goes where its kind does."""
    inv = inventory(users=[Principal("eve", ("DenyAdminRole", "AssumeAnything")),
                           Principal("fay", (NAMES["admin"], "AssumeAnything")),
                           Principal("gus", ("AssumeAnything",))],
                    policies=[*RIGHT.values(), Policy("DenyAdminRole", (doc(assume(role_of("admin"), "Deny")),)),
                              Policy("AssumeAnything", (BROAD,))])  # fmt: skip

    def link(kind, user, policy):
        return Change(kind, f"{kind}/{user}/{policy}", "why", user=user, policy_arn=arn_of(policy),
                      target_kind="user", target_name=user)  # fmt: skip

    changes = [link("detach", "eve", "DenyAdminRole"), link("attach", "fay", "DenyAdminRole"),
               link("attach", "gus", NAMES["admin"]), link("detach", "fay", "AssumeAnything"),
               link("attach", "eve", NAMES["admin"])]  # fmt: skip
    assert phases_of(changes, inv, spec_of({})) == [GRANT, REVOKE, GRANT, REVOKE, GRANT]


def test_an_entity_keeps_plan_order_within_its_phase():
    inv = inventory(users=[Principal("bob", (NAMES["data_engineer"],))],
                    policies=[Policy(NAMES["data_engineer"], (BROAD,) * 5, 0), RIGHT["admin"]])  # fmt: skip
    spec = spec_of({"bob": ["data_engineer", "infrastructure_admin"]})
    plan = make_plan(spec, inv)
    document = [(c.kind, c.phase) for c in plan.changes if entity(c) == ("policy", arn_of(NAMES["data_engineer"]))]
    assert document == [("prune_policy_version", NARROW), ("update_policy", NARROW)]
    assert check(inv, plan.changes, spec) == []


def test_entity_names_what_a_change_works_on():
    arn = arn_of(NAMES["admin"])
    assert entity(Change("prune_policy_version", "a", "r", policy_arn=arn)) == entity(
        Change("update_policy", "a", "r", policy_arn=arn)) == ("policy", arn)  # fmt: skip
    assert entity(Change("tag_user", "a", "r", user="Bob")) == ("user", "bob")
    assert entity(Change("add_to_group", "a", "r", user="Bob", target_name="G")) == ("member", "g", "bob")
    assert entity(Change("attach", "a", "r", user="bob", policy_arn=arn, target_kind="user", target_name="bob")) != (
        entity(Change("attach", "a", "r", policy_arn=arn, target_kind="group", target_name="bob")))  # fmt: skip
