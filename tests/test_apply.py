"""Apply against the strict embedded AWS: one call per change, safety refusals before any change,
failures that stop and say where, reruns that converge, retries of throttling and eventual consistency."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iamrunbook.aws.executor import ApplyError, ApplyResult
from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base.errors import AwsActionError, SafetyError
from iamrunbook.base.names import MANAGED_BY_KEY, MANAGED_BY_VALUE, policy_arn
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.plan import Change, Plan, make_plan
from iamrunbook.core.spec import load_spec
from iamrunbook.core.verify import verify
from iamrunbook.flows.apply import apply_plan, check_safety
from iamrunbook.sandbox import seed

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "123456789012"
CALLER = f"arn:aws:sts::{ACCOUNT}:user/moto"
ADMIN_ARN = policy_arn(ACCOUNT, "AssumeAdminRolePolicy")
DATA_ARN = policy_arn(ACCOUNT, "AssumeDataEngineerRolePolicy")
MANAGED_TAG = {"Key": MANAGED_BY_KEY, "Value": MANAGED_BY_VALUE}

#: the one API action each change kind makes in a clean apply
ACTION = {
    "create_policy": "CreatePolicy",
    "prune_policy_version": "DeletePolicyVersion",
    "update_policy": "CreatePolicyVersion",
    "create_user": "CreateUser",
    "import_user": "TagUser",
    "tag_user": "TagUser",
    "attach": "AttachUserPolicy",
}


def example_spec():
    return load_spec(iam_users_file=ROOT / "parameters" / "example.yaml")


def plan_for(iam, sts, spec) -> Plan:
    return make_plan(spec, read_inventory(iam, sts))


def state(iam, sts) -> dict:
    """What the runbook manages, comparable between runs: users' tags and attachments, policy documents."""
    inv = read_inventory(iam, sts)
    return {
        "users": {n: (Inventory.tags(u), sorted(Inventory.attached_arns(u))) for n, u in inv.users.items()},
        "groups": {n: sorted(Inventory.attached_arns(g)) for n, g in inv.groups.items()},
        "policies": {
            arn: [v["Document"] for v in p["PolicyVersionList"] if v["IsDefaultVersion"]]
            for arn, p in inv.policies.items()
        },
    }


def fresh_account(iam, sts) -> Plan:
    seed.seed_roles(iam)
    return plan_for(iam, sts, example_spec())


# --- a clean apply -------------------------------------------------------------------------------------


def test_exactly_one_mutating_call_per_change(aws, iam, sts):
    plan = fresh_account(iam, sts)
    aws.clear_calls()
    result = apply_plan(iam, plan)
    calls = aws.mutating_calls()
    assert [c.action for c in calls] == [ACTION[c.kind] for c in plan.changes]
    assert all(c.ok for c in calls)
    assert [c.action for c in aws.calls] == [c.action for c in calls]  # and no reads either
    assert isinstance(result, ApplyResult)
    assert result.ok and result.failed is None and result.not_done == []
    assert result.done == list(plan.changes)
    assert [r["status"] for r in result.rows()] == ["done"] * 12
    assert calls[3].params["UserName"] == "your-username"
    assert {t["Key"]: t["Value"] for t in calls[3].params["Tags"]} == {
        "Name": "your-username",
        "Description": "Account owner - full access",
        "Roles": "admin data_engineer infrastructure_admin",
        "ManagedBy": "iamrunbook",
    }
    created = calls[0].params
    assert created["PolicyName"] == "AssumeAdminRolePolicy"
    assert created["Description"] == "Allows assuming AdminRole"
    assert created["Tags"] == [{"Key": "Name", "Value": "AssumeAdminRolePolicy"}]


def test_applying_a_stale_plan_again_is_harmless(aws, iam, sts):
    plan = fresh_account(iam, sts)
    apply_plan(iam, plan)
    converged = state(iam, sts)
    again = apply_plan(iam, plan)  # e.g. the operator re-runs the apply cell
    assert again.ok and len(again.done) == 12
    assert state(iam, sts) == converged
    assert plan_for(iam, sts, example_spec()).is_empty


def test_import_tags_an_existing_user_and_keeps_its_other_policies(aws, iam, sts, legacy_account):
    plan = plan_for(iam, sts, example_spec())
    apply_plan(iam, plan)
    inv = read_inventory(iam, sts)
    owner = inv.users["your-username"]
    assert owner["UserId"]  # the same user, adopted, never recreated
    assert Inventory.tags(owner)["ManagedBy"] == "iamrunbook"
    assert Inventory.tags(owner)["Roles"] == "admin data_engineer infrastructure_admin"
    assert legacy_account["policy_arn"] in Inventory.attached_arns(owner)  # not ours to remove here
    assert [c.action for c in aws.calls].count("CreateUser") == 3  # the seed's one + alice + bob


# --- safety ------------------------------------------------------------------------------------------


def _managed_users(iam, names, keys=()):
    for name in names:
        iam.create_user(UserName=name, Tags=[MANAGED_TAG, {"Key": "Name", "Value": name}])
        iam.create_access_key(UserName=name)  # something offboarding must clean up first
        for key in keys:
            iam.attach_user_policy(UserName=name, PolicyArn=policy_arn(ACCOUNT, f"Assume{key}Policy"))


def test_max_deletions_refused_before_any_change(aws, iam, sts):
    seed.seed_roles(iam)
    apply_plan(iam, plan_for(iam, sts, example_spec()))
    _managed_users(iam, ["old1", "old2", "old3", "old4"], keys=["AdminRole"])
    plan = plan_for(iam, sts, example_spec())
    assert [c.user for c in plan.deletions()] == ["old1", "old2", "old3", "old4"]
    aws.clear_calls()
    with pytest.raises(SafetyError) as err:
        apply_plan(iam, plan)  # default max_deletions=3
    assert aws.mutating_calls() == []
    assert aws.calls == []  # refused from the plan alone
    message = str(err.value)
    assert message.startswith("refused before any change:")
    assert "deletes 4 users (old1, old2, old3, old4), more than max_deletions=3" in message

    result = apply_plan(iam, plan, max_deletions=4)
    assert [c.kind for c in result.done] == ["delete_user"] * 4
    inv = read_inventory(iam, sts)
    assert set(inv.users) == set(example_spec().users)
    assert plan_for(iam, sts, example_spec()).is_empty


def test_max_deletions_zero_refuses_any_deletion(aws, iam, sts):
    seed.seed_roles(iam)
    _managed_users(iam, ["old1"])
    plan = plan_for(iam, sts, load_spec({}))
    aws.clear_calls()
    with pytest.raises(SafetyError, match="more than max_deletions=0"):
        apply_plan(iam, plan, max_deletions=0)
    assert aws.mutating_calls() == []


def test_refuses_to_delete_the_callers_own_user(aws, iam, sts):
    seed.seed_roles(iam)
    _managed_users(iam, ["moto"])  # moto's caller is arn:aws:sts::123456789012:user/moto
    plan = plan_for(iam, sts, load_spec({}))
    assert [c.user for c in plan.deletions()] == ["moto"]
    aws.clear_calls()
    with pytest.raises(SafetyError) as err:
        apply_plan(iam, plan, max_deletions=10)
    assert "the plan deletes moto, the identity running it" in str(err.value)
    assert aws.mutating_calls() == []
    assert "moto" in read_inventory(iam, sts).users


def test_refuses_to_detach_from_the_callers_own_user(aws, iam, sts):
    seed.seed_roles(iam)
    apply_plan(iam, plan_for(iam, sts, example_spec()))
    iam.create_user(UserName="moto")  # untagged, not in the spec, holding a role by hand: drift ...
    iam.attach_user_policy(UserName="moto", PolicyArn=ADMIN_ARN)
    plan = plan_for(iam, sts, example_spec())
    assert [(c.kind, c.target_name) for c in plan.changes] == [("detach", "moto")]
    aws.clear_calls()
    with pytest.raises(SafetyError) as err:  # ... but detaching it would lock the operator out
        apply_plan(iam, plan)
    assert "detaches AssumeAdminRolePolicy from user moto, the identity running it" in str(err.value)
    assert aws.mutating_calls() == []


def test_refuses_to_take_a_role_from_the_caller_in_the_spec(aws, iam, sts):
    seed.seed_roles(iam)
    spec = load_spec({"moto": {"description": "Operator", "roles": ["admin", "data_engineer"]}})
    apply_plan(iam, plan_for(iam, sts, spec))
    fewer = load_spec({"moto": {"description": "Operator", "roles": ["data_engineer"]}})
    plan = plan_for(iam, sts, fewer)
    aws.clear_calls()
    with pytest.raises(SafetyError, match="detaches AssumeAdminRolePolicy from user moto"):
        apply_plan(iam, plan)
    assert aws.mutating_calls() == []


def _plan(*changes: Change, caller: str = CALLER) -> Plan:
    return Plan(tuple(changes), ACCOUNT, caller)


def test_check_safety_ignores_case_and_other_callers():
    delete_me = Change("delete_user", 'aws_iam_user.users["Moto"]', "gone", user="Moto")
    with pytest.raises(SafetyError, match="deletes Moto"):
        check_safety(_plan(delete_me), max_deletions=3)
    # A role session has no IAM user of its own to protect.
    check_safety(_plan(delete_me, caller=f"arn:aws:sts::{ACCOUNT}:assumed-role/AdminRole/ops"), 3)
    group_detach = Change(
        "detach", "group/moto/AssumeAdminRolePolicy", "drift", target_kind="group", target_name="moto"
    )
    check_safety(_plan(group_detach), 3)  # a group that happens to share the name is not the caller


def test_check_safety_protects_the_callers_role():
    runner = f"arn:aws:sts::{ACCOUNT}:assumed-role/Runner/ops-session"

    def detach(role: str) -> Change:
        return Change(
            "detach",
            f"role/{role}/AssumeAdminRolePolicy",
            "drift",
            policy_name="AssumeAdminRolePolicy",
            target_kind="role",
            target_name=role,
        )

    with pytest.raises(SafetyError, match="detaches AssumeAdminRolePolicy from role runner, the identity running"):
        check_safety(_plan(detach("runner"), caller=runner), 3)
    check_safety(_plan(detach("ci"), caller=runner), 3)
    check_safety(_plan(detach("Runner"), caller=CALLER), 3)  # a user caller: roles are not its own


def test_every_safety_problem_is_listed():
    deletes = [Change("delete_user", f'aws_iam_user.users["{n}"]', "gone", user=n) for n in ("a", "b", "moto")]
    with pytest.raises(SafetyError) as err:
        check_safety(_plan(*deletes), max_deletions=2)
    lines = str(err.value).splitlines()
    assert lines[0] == "refused before any change:"
    assert len(lines) == 3
    assert "max_deletions=2" in lines[1] and "deletes moto, the identity running it" in lines[2]


# --- failures and reruns -------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 4, 7, 12])
def test_failure_mid_apply_stops_and_a_rerun_converges(aws, iam, sts, no_backoff, k):
    plan = fresh_account(iam, sts)
    changes = list(plan.changes)
    aws.clear_calls()
    aws.inject_fault(at=k, times=None)  # InternalFailure from the k-th mutating call on, for good

    with pytest.raises(ApplyError) as err:
        apply_plan(iam, plan)

    failed = changes[k - 1]
    error = err.value
    assert isinstance(error, AwsActionError)
    assert error.step == f"{failed.kind} {failed.address}"
    assert error.result.failed == failed
    assert error.result.done == changes[: k - 1]
    assert error.result.not_done == changes[k:]
    assert "InternalFailure" in error.result.error
    text = str(error)
    assert text.startswith(f"{failed.kind} {failed.address} failed: ")
    assert f"{k - 1} change(s) done, {13 - k} not done" in text
    assert f"  {failed.symbol:>2} {failed.address}" in text.split("not done:")[1]
    assert "run again" in text
    rows = error.result.rows()
    assert [r["status"] for r in rows] == ["done"] * (k - 1) + [rows[k - 1]["status"]] + ["not done"] * (12 - k)
    assert rows[k - 1]["status"].startswith("FAILED")
    # botocore retried the failing call (standard mode, max_attempts=5 retries), then nothing else was tried.
    mutating = aws.mutating_calls()
    assert [c.ok for c in mutating] == [True] * (k - 1) + [False] * 6
    assert {c.action for c in mutating[k - 1 :]} == {ACTION[failed.kind]}
    assert len(no_backoff) == 5

    aws.clear_faults()
    rerun = plan_for(iam, sts, example_spec())
    assert [c.address for c in rerun.changes] == [c.address for c in changes[k - 1 :]]
    apply_plan(iam, rerun)
    assert verify(example_spec(), read_inventory(iam, sts)).ok
    assert plan_for(iam, sts, example_spec()).is_empty


def test_interrupted_and_clean_runs_end_in_the_same_state(aws, iam, sts, no_backoff):
    plan = fresh_account(iam, sts)
    apply_plan(iam, plan)
    clean = state(iam, sts)

    aws.reset()
    plan = fresh_account(iam, sts)
    aws.inject_fault("AttachUserPolicy", at=2, times=None)
    with pytest.raises(ApplyError):
        apply_plan(iam, plan)
    aws.clear_faults()
    apply_plan(iam, plan_for(iam, sts, example_spec()))
    assert state(iam, sts) == clean


def test_failed_user_deletion_is_an_apply_error(aws, iam, sts, no_backoff):
    seed.seed_roles(iam)
    apply_plan(iam, plan_for(iam, sts, load_spec({"leaver": {"description": "Leaver", "roles": ["admin"]}})))
    iam.create_access_key(UserName="leaver")
    plan = plan_for(iam, sts, load_spec({}))
    assert [c.kind for c in plan.changes] == ["delete_user"]
    aws.inject_fault("DeleteUser", times=None)
    with pytest.raises(ApplyError) as err:
        apply_plan(iam, plan)
    assert err.value.step == 'delete_user aws_iam_user.users["leaver"]'
    assert err.value.result.failed == plan.changes[0]
    assert "DeleteUser" in str(err.value)
    aws.clear_faults()
    apply_plan(iam, plan_for(iam, sts, load_spec({})))
    assert "leaver" not in read_inventory(iam, sts).users


def test_throttling_once_at_each_call_is_retried(aws, iam, sts, no_backoff):
    seed.seed_roles(iam)
    aws.clear_calls()
    aws.inject_fault("GetCallerIdentity", code="Throttling", status=400)
    aws.inject_fault("GetAccountAuthorizationDetails", code="Throttling", status=400)
    plan = plan_for(iam, sts, example_spec())
    # Mutating attempts alternate: each change's first attempt is throttled, its retry succeeds.
    for i in range(len(plan.changes)):
        aws.inject_fault(at=2 * i + 1, code="Throttling", status=400)

    result = apply_plan(iam, plan)

    assert result.ok and len(result.done) == 12
    reads = [(c.action, c.error_code) for c in aws.calls if not c.mutating]
    assert reads == [
        ("GetCallerIdentity", "Throttling"),
        ("GetCallerIdentity", None),
        ("GetAccountAuthorizationDetails", "Throttling"),
        ("GetAccountAuthorizationDetails", None),
    ]
    mutating = aws.mutating_calls()
    assert [c.error_code for c in mutating] == ["Throttling", None] * 12
    assert [c.action for c in mutating[1::2]] == [ACTION[c.kind] for c in plan.changes]
    assert len(no_backoff) == 14
    assert verify(example_spec(), read_inventory(iam, sts)).ok


def test_no_such_entity_right_after_a_create_is_retried(aws, iam, sts):
    plan = fresh_account(iam, sts)
    aws.clear_calls()
    aws.inject_fault("AttachUserPolicy", code="NoSuchEntity", status=404)  # IAM not consistent yet
    result = apply_plan(iam, plan)
    assert result.ok
    attaches = [c for c in aws.calls if c.action == "AttachUserPolicy"]
    assert [c.error_code for c in attaches] == ["NoSuchEntity"] + [None] * 6


def test_other_client_errors_are_not_retried(aws, iam, sts):
    plan = fresh_account(iam, sts)
    aws.clear_calls()
    aws.inject_fault("CreateUser", code="AccessDenied", status=403)
    with pytest.raises(ApplyError) as err:
        apply_plan(iam, plan)
    assert "AccessDenied" in str(err.value)
    assert [c.action for c in aws.calls].count("CreateUser") == 1
    assert [c.kind for c in err.value.result.done] == ["create_policy"] * 3


# --- drift and documents, applied ---------------------------------------------------------------------


def test_drift_detached_from_user_and_group(aws, iam, sts):
    seed.seed_roles(iam)
    apply_plan(iam, plan_for(iam, sts, example_spec()))
    iam.attach_user_policy(UserName="bob@example.com", PolicyArn=ADMIN_ARN)
    iam.create_user(UserName="mallory")
    iam.attach_user_policy(UserName="mallory", PolicyArn=DATA_ARN)
    iam.create_group(GroupName="admins")
    iam.attach_group_policy(GroupName="admins", PolicyArn=ADMIN_ARN)
    plan = plan_for(iam, sts, example_spec())
    assert [(c.kind, c.target_kind, c.target_name) for c in plan.changes] == [
        ("detach", "user", "bob@example.com"),
        ("detach", "user", "mallory"),
        ("detach", "group", "admins"),
    ]
    aws.clear_calls()
    apply_plan(iam, plan)
    assert [c.action for c in aws.mutating_calls()] == ["DetachUserPolicy", "DetachUserPolicy", "DetachGroupPolicy"]
    inv = read_inventory(iam, sts)
    assert Inventory.attached_arns(inv.users["bob@example.com"]) == {DATA_ARN}
    assert Inventory.attached_arns(inv.users["mallory"]) == set()
    assert Inventory.tags(inv.users["mallory"]) == {}  # detached, never tagged or adopted
    assert Inventory.attached_arns(inv.groups["admins"]) == set()
    assert verify(example_spec(), inv).ok


def test_hand_edited_document_restored(aws, iam, sts):
    seed.seed_roles(iam)
    apply_plan(iam, plan_for(iam, sts, example_spec()))
    wide = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}
    iam.create_policy_version(PolicyArn=ADMIN_ARN, PolicyDocument=json.dumps(wide), SetAsDefault=True)
    plan = plan_for(iam, sts, example_spec())
    assert [c.kind for c in plan.changes] == ["update_policy"]
    apply_plan(iam, plan)
    version = iam.get_policy(PolicyArn=ADMIN_ARN)["Policy"]["DefaultVersionId"]
    assert version == "v3"
    document = iam.get_policy_version(PolicyArn=ADMIN_ARN, VersionId=version)["PolicyVersion"]["Document"]
    assert document["Statement"] == [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/AdminRole"}
    ]
    assert plan_for(iam, sts, example_spec()).is_empty


def test_hand_edited_document_with_five_versions(aws, iam, sts):
    seed.seed_roles(iam)
    apply_plan(iam, plan_for(iam, sts, example_spec()))
    for i in range(4):  # v2..v5; v5, the last, is the default
        doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": f"s3:Get{i}", "Resource": "*"}]}
        iam.create_policy_version(PolicyArn=ADMIN_ARN, PolicyDocument=json.dumps(doc), SetAsDefault=True)
    plan = plan_for(iam, sts, example_spec())
    assert [(c.kind, c.version_id) for c in plan.changes] == [("prune_policy_version", "v1"), ("update_policy", None)]
    aws.clear_calls()
    apply_plan(iam, plan)
    calls = aws.mutating_calls()
    assert [(c.action, c.ok) for c in calls] == [("DeletePolicyVersion", True), ("CreatePolicyVersion", True)]
    versions = iam.list_policy_versions(PolicyArn=ADMIN_ARN)["Versions"]
    assert sorted(v["VersionId"] for v in versions) == ["v2", "v3", "v4", "v5", "v6"]
    assert next(v["VersionId"] for v in versions if v["IsDefaultVersion"]) == "v6"
    assert plan_for(iam, sts, example_spec()).is_empty


def test_managed_user_removed_from_the_spec_is_offboarded(aws, iam, sts):
    seed.seed_roles(iam)
    apply_plan(iam, plan_for(iam, sts, example_spec()))
    iam.create_access_key(UserName="bob@example.com")
    iam.create_login_profile(UserName="bob@example.com", Password="Zx9!long-enough-Password")
    smaller = load_spec({k: v for k, v in example_spec().to_mapping().items() if k != "bob@example.com"})
    plan = plan_for(iam, sts, smaller)
    assert [(c.kind, c.user) for c in plan.changes] == [("delete_user", "bob@example.com")]
    aws.clear_calls()
    result = apply_plan(iam, plan)
    assert result.ok
    actions = [c.action for c in aws.mutating_calls()]
    assert actions[-1] == "DeleteUser"
    assert {"DetachUserPolicy", "DeleteAccessKey", "DeleteLoginProfile"} <= set(actions)
    assert all(c.ok for c in aws.mutating_calls())  # strict moto: nothing refused (no DeleteConflict)
    assert "bob@example.com" not in read_inventory(iam, sts).users
    assert plan_for(iam, sts, smaller).is_empty


def test_a_proven_plan_may_move_the_operator_to_a_role_group(aws):
    """Run as moto, who holds AssumeAdminRolePolicy directly: grant_via group adds moto to AdminRoleUsers
    and then detaches the direct policy. The name check alone would refuse that detach; the simulator
    sees moto keep the role through the group at every step, so the plan applies."""
    from iamrunbook.core.spec import GrantSettings

    iam = aws.client("iam")
    seed.seed_roles(iam)
    iam.create_user(UserName="moto")
    doc = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/AdminRole"}]}
    iam.create_policy(PolicyName="AssumeAdminRolePolicy", PolicyDocument=json.dumps(doc))
    iam.attach_user_policy(UserName="moto", PolicyArn=ADMIN_ARN)
    spec = load_spec({"moto": {"description": "me", "roles": ["admin"]}}, settings=GrantSettings(grant_via="group"))
    inventory = read_inventory(iam, aws.client("sts"))
    plan = make_plan(spec, inventory)
    assert any(c.kind == "detach" and (c.target_name or "").lower() == "moto" for c in plan.changes)
    with pytest.raises(SafetyError, match="moto, the identity running it"):
        check_safety(plan, 3)  # without the simulator, the name check stands
    apply_plan(iam, plan, inventory=inventory, spec=spec)
    groups = iam.list_groups_for_user(UserName="moto")["Groups"]
    assert [g["GroupName"] for g in groups] == ["AdminRoleUsers"]
    assert iam.list_attached_user_policies(UserName="moto")["AttachedPolicies"] == []
