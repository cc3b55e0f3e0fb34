"""The legacy migration against a strict embedded AWS: no lockout window, a backup first, reruns finish."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from iamrunbook.aws import clients as aws_edge
from iamrunbook.aws import legacy_backup
from iamrunbook.aws.executor import ApplyError
from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base.errors import SafetyError
from iamrunbook.base.names import policy_arn, role_arn
from iamrunbook.core import migration
from iamrunbook.core.access import effective_access
from iamrunbook.core.migration import Holder
from iamrunbook.core.spec import load_spec
from iamrunbook.flows import legacy, reports
from iamrunbook.sandbox import ACCOUNT_ID

LEGACY = "AssumeRolesPolicy"
LEGACY_ARN = policy_arn(ACCOUNT_ID, LEGACY)
ALL_KEYS = ["admin", "data_engineer", "infrastructure_admin"]
OWNER = {"your-username": {"description": "Account owner - full access", "roles": ALL_KEYS}}
ASSUME_POLICIES = {"AssumeAdminRolePolicy", "AssumeDataEngineerRolePolicy", "AssumeInfrastructureAdminRolePolicy"}
SWEEP = ["User", "Group", "Role", "LocalManagedPolicy"]  # AWS-managed policies are not the question here


def doc(*statements) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(resource, **extra) -> dict:
    return {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": resource, **extra}


def arn(role: str) -> str:
    return role_arn(ACCOUNT_ID, role)


def survey(session, spec_map, legacy_name=LEGACY):
    """What the notebook reads before deciding: spec, inventory, the policy, its holders."""
    iam, sts = aws_edge.client(session, "iam"), aws_edge.client(session, "sts")
    spec = load_spec(spec_map)
    inv = read_inventory(iam, sts)
    policy = migration.find_legacy(inv, legacy_name)
    holders = legacy_backup.list_holders(iam, policy["Arn"] if policy else None)
    return iam, spec, inv, policy, holders


def migrate(session, spec_map, run_dir: Path, *, detach_unmanaged=False, legacy_name=LEGACY):
    """The notebook's sequence: read, back up, plan, apply."""
    iam, spec, inv, policy, holders = survey(session, spec_map, legacy_name)
    path = legacy_backup.backup(iam, policy, holders, run_dir)
    mplan = migration.plan_migration(spec, inv, legacy_name, holders, detach_unmanaged)
    return mplan, legacy.apply_migration(iam, mplan, backup_path=path), path


def snapshot(aws) -> dict:
    """The account, normalized: who holds which policy, and each local policy's default document."""
    iam = aws.client("iam", internal=True)
    details = {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [], "Policies": []}
    for page in iam.get_paginator("get_account_authorization_details").paginate(Filter=SWEEP):
        for key in details:
            details[key].extend(page.get(key, []))

    def held(entity):
        return sorted(p["PolicyName"] for p in entity.get("AttachedManagedPolicies", []))

    policies = {}
    for p in details["Policies"]:
        default = next(v for v in p["PolicyVersionList"] if v["IsDefaultVersion"])
        policies[p["Arn"].rsplit("/", 1)[-1]] = (
            json.dumps(default["Document"], sort_keys=True),
            len(p["PolicyVersionList"]),
        )
    return {
        "users": {u["UserName"]: (held(u), sorted(u.get("GroupList", []))) for u in details["UserDetailList"]},
        "groups": {g["GroupName"]: held(g) for g in details["GroupDetailList"]},
        "roles": {r["RoleName"]: held(r) for r in details["RoleDetailList"]},
        "policies": policies,
    }, details


def attached_names(iam, user: str) -> set[str]:
    pages = iam.get_paginator("list_attached_user_policies").paginate(UserName=user)
    return {p["PolicyName"] for page in pages for p in page["AttachedPolicies"]}


def policy_exists(iam, arn_: str) -> bool:
    try:
        iam.get_policy(PolicyArn=arn_)
        return True
    except ClientError as exc:
        assert aws_edge.is_not_found(exc)
        return False


def guard_no_lost_role(aws, spec_map) -> list[str]:
    """After every mutating call: every (spec user, role) that both the legacy policy and the spec grant
    is still assumable. Computed independently of legacy.py, from access.effective_access."""
    spec = load_spec(spec_map)
    _, details = snapshot(aws)
    before = effective_access(details, spec.roles, ACCOUNT_ID)
    granted = {(u.lower(), k) for u, k in spec.grants()}
    must = {(g.user.lower(), g.role_key) for g in before if g.policy_arn == LEGACY_ARN} & granted
    assert must, "the guard must have something to guard"
    checked: list[str] = []

    def check(call):
        _, now = snapshot(aws)
        have = {(g.user.lower(), g.role_key) for g in effective_access(now, spec.roles, ACCOUNT_ID)}
        checked.append(call.action)
        lost = sorted(must - have)
        assert not lost, f"after {call.action}: {lost} can no longer assume their role"

    aws.on_mutation(check)
    return checked


# ----------------------------------------------------------------------------- the seed account


def test_seed_account_migrates_with_backup_and_new_policies(aws, session, legacy_account, tmp_path):
    iam = aws_edge.client(session, "iam")
    original = iam.get_policy_version(PolicyArn=LEGACY_ARN, VersionId="v1")["PolicyVersion"]["Document"]
    checked = guard_no_lost_role(aws, OWNER)
    aws.clear_calls()

    mplan, result, backup_path = migrate(session, OWNER, tmp_path)

    aws.raise_hook_errors()
    assert result.ok and len(result.done) == len(mplan.steps) == 8
    assert checked == [c.action for c in aws.mutating_calls()]
    assert not policy_exists(iam, LEGACY_ARN)
    assert attached_names(iam, "your-username") == ASSUME_POLICIES
    assert backup_path == tmp_path / "legacy_policy_backup.json"
    record = json.loads(backup_path.read_text())
    assert record["arn"] == LEGACY_ARN and record["default_version_id"] == "v1"
    assert record["versions"] == [
        {
            "version_id": "v1",
            "is_default": True,
            "create_date": record["versions"][0]["create_date"],
            "document": original,
        }
    ]
    assert record["holders"] == [{"kind": "user", "name": "your-username"}]
    _, spec, inv, _, _ = survey(session, OWNER)
    assert migration.verify_migration(spec, inv, mplan) == []


def test_the_order_is_new_attachments_first_then_detach_then_delete(aws, session, legacy_account):
    iam = aws_edge.client(session, "iam")
    iam.create_policy_version(PolicyArn=LEGACY_ARN, PolicyDocument=doc(allow("*")), SetAsDefault=True)
    _, spec, inv, _, holders = survey(session, OWNER)
    kinds = [s.kind for s in migration.plan_migration(spec, inv, LEGACY, holders).steps]
    assert kinds == ["create_policy"] * 3 + ["attach"] * 3 + ["detach", "delete_policy_version", "delete_policy"]
    assert aws.mutating_calls()[-1].action == "CreatePolicyVersion"  # planning itself changed nothing


def test_the_guard_catches_the_manual_order(aws, session, legacy_account):
    """The invariant check can fail: detaching first (the manual procedure) leaves a window."""
    iam = aws_edge.client(session, "iam")
    guard_no_lost_role(aws, OWNER)
    iam.detach_user_policy(UserName="your-username", PolicyArn=LEGACY_ARN)
    with pytest.raises(AssertionError, match="can no longer assume"):
        aws.raise_hook_errors()


def test_already_migrated_account_has_nothing_to_migrate(aws, session, legacy_account, tmp_path):
    migrate(session, OWNER, tmp_path / "first")
    before, _ = snapshot(aws)
    aws.clear_calls()

    mplan, result, backup_path = migrate(session, OWNER, tmp_path / "second")

    assert mplan.nothing_to_migrate and result.ok and result.done == []
    assert result.message == f"Nothing to migrate: there is no customer-managed policy named {LEGACY}."
    assert backup_path is None and aws.mutating_calls() == []
    assert snapshot(aws)[0] == before


def test_no_legacy_policy_at_all_is_success(aws, session, tmp_path):
    from iamrunbook.sandbox import seed

    seed.seed_roles(aws_edge.client(session, "iam"))
    aws.clear_calls()
    mplan, result, _ = migrate(session, OWNER, tmp_path)
    assert mplan.nothing_to_migrate and mplan.steps == () and result.ok
    assert "Nothing to migrate" in mplan.to_text()
    assert aws.mutating_calls() == []


def test_applying_the_same_plan_twice_is_harmless(aws, session, legacy_account, tmp_path):
    mplan, _, backup_path = migrate(session, OWNER, tmp_path)
    after, _ = snapshot(aws)
    again = legacy.apply_migration(aws_edge.client(session, "iam"), mplan, backup_path=backup_path)
    assert again.ok and len(again.done) == len(mplan.steps)
    assert snapshot(aws)[0] == after


# ----------------------------------------------------------------------------- holders the spec does not cover


@pytest.fixture
def shared_legacy(legacy_account, iam):
    """The legacy policy also held by a group (alice, in the spec, is a member) and by a role."""
    iam.create_user(UserName="alice")
    iam.create_group(GroupName="ops")
    iam.add_user_to_group(GroupName="ops", UserName="alice")
    iam.attach_group_policy(GroupName="ops", PolicyArn=LEGACY_ARN)
    iam.attach_role_policy(RoleName="DataEngineerRole", PolicyArn=LEGACY_ARN)
    return legacy_account


SHARED_SPEC = {**OWNER, "alice": {"description": "Alice - Platform Engineer", "roles": ["data_engineer"]}}


def test_unmanaged_holders_stop_the_run_before_any_change(aws, session, shared_legacy, tmp_path):
    before, _ = snapshot(aws)
    aws.clear_calls()
    with pytest.raises(SafetyError) as refused:
        migrate(session, SHARED_SPEC, tmp_path)
    message = str(refused.value)
    assert "refused before any change" in message
    assert "group ops (members: alice)" in message and "role DataEngineerRole" in message
    assert "legacy_detach_unmanaged: true" in message
    assert aws.mutating_calls() == []
    assert snapshot(aws)[0] == before
    assert (tmp_path / "legacy_policy_backup.json").is_file()  # the backup is written before deciding


def test_unmanaged_holders_are_detached_when_asked(aws, session, shared_legacy, tmp_path):
    iam = aws_edge.client(session, "iam")
    checked = guard_no_lost_role(aws, SHARED_SPEC)
    mplan, result, backup_path = migrate(session, SHARED_SPEC, tmp_path, detach_unmanaged=True)
    aws.raise_hook_errors()
    assert result.ok and checked
    assert mplan.migrating_users == ("your-username", "alice")
    assert not policy_exists(iam, LEGACY_ARN)
    assert attached_names(iam, "alice") == {"AssumeDataEngineerRolePolicy"}
    assert iam.list_attached_group_policies(GroupName="ops")["AttachedPolicies"] == []
    assert iam.list_attached_role_policies(RoleName="DataEngineerRole")["AttachedPolicies"] == []
    holders = json.loads(backup_path.read_text())["holders"]
    assert holders == [
        {"kind": "user", "name": "your-username"},
        {"kind": "group", "name": "ops"},
        {"kind": "role", "name": "DataEngineerRole"},
    ]


def test_a_user_absent_from_the_spec_is_unmanaged_too(aws, session, legacy_account, tmp_path, iam):
    iam.create_user(UserName="mallory")
    iam.attach_user_policy(UserName="mallory", PolicyArn=LEGACY_ARN)
    aws.clear_calls()
    with pytest.raises(SafetyError, match="user mallory"):
        migrate(session, OWNER, tmp_path)
    assert aws.mutating_calls() == []


# ----------------------------------------------------------------------------- policy shapes


def test_three_non_default_versions_are_deleted_before_the_policy(aws, session, legacy_account, tmp_path, iam):
    for role in ("AdminRole", "DataEngineerRole", "InfrastructureAdminRole"):
        iam.create_policy_version(PolicyArn=LEGACY_ARN, PolicyDocument=doc(allow(arn(role))), SetAsDefault=False)
    _, spec, inv, policy, holders = survey(session, OWNER)
    mplan = migration.plan_migration(spec, inv, LEGACY, holders)
    versions = [s.version_id for s in mplan.steps if s.kind == "delete_policy_version"]
    assert versions == ["v2", "v3", "v4"]

    _, result, backup_path = migrate(session, OWNER, tmp_path)

    assert result.ok and not policy_exists(iam, LEGACY_ARN)
    deletes = [c.action for c in aws.mutating_calls() if c.action.startswith("Delete")]
    assert deletes == ["DeletePolicyVersion"] * 3 + ["DeletePolicy"]
    record = json.loads(backup_path.read_text())
    assert [(v["version_id"], v["is_default"]) for v in record["versions"]] == [
        ("v1", True),
        ("v2", False),
        ("v3", False),
        ("v4", False),
    ]
    assert record["versions"][3]["document"]["Statement"][0]["Resource"] == arn("InfrastructureAdminRole")


def test_the_strict_server_refuses_deleting_a_versioned_policy(aws, legacy_account, iam):
    iam.create_policy_version(PolicyArn=LEGACY_ARN, PolicyDocument=doc(allow("*")))
    iam.detach_user_policy(UserName="your-username", PolicyArn=LEGACY_ARN)
    with pytest.raises(ClientError) as refused:
        iam.delete_policy(PolicyArn=LEGACY_ARN)
    assert aws_edge.error_code(refused.value) == "DeleteConflict"


def test_resource_wildcard_covers_every_role(aws, session, legacy_account, tmp_path, iam):
    iam.create_role(RoleName="BreakGlassRole", AssumeRolePolicyDocument=doc())
    iam.create_policy_version(PolicyArn=LEGACY_ARN, PolicyDocument=doc(allow("*")), SetAsDefault=True)
    iam.delete_policy_version(PolicyArn=LEGACY_ARN, VersionId="v1")
    _, spec, inv, policy, holders = survey(session, OWNER)

    grants = reports.grants_frame(policy, inv, spec.roles)
    assert list(grants["verdict"]) == ["yes", "yes", "yes"]
    statements = reports.statements_frame(policy, inv, spec.roles)
    assert statements.loc[0, "covers"] == "admin, data_engineer, infrastructure_admin"
    assert statements.loc[0, "other_roles"] == "BreakGlassRole"
    assert not statements.loc[0, "beyond_assume_role"]

    _, result, _ = migrate(session, OWNER, tmp_path)
    assert result.ok and not policy_exists(iam, LEGACY_ARN)
    assert attached_names(iam, "your-username") == ASSUME_POLICIES


def test_not_resource_deny_and_conditions_resolve_to_role_keys(aws, session, legacy_account, iam):
    mfa = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    document = doc(
        {"Sid": "AllButAdmin", "Effect": "Allow", "Action": "sts:AssumeRole", "NotResource": arn("AdminRole")},
        {"Sid": "NoInfra", "Effect": "Deny", "Action": "sts:*", "Resource": arn("InfrastructureAdminRole")},
        allow(arn("AdminRole"), Sid="AdminWithMfa", Condition=mfa),
        {"Sid": "Buckets", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"},
    )
    iam.create_policy_version(PolicyArn=LEGACY_ARN, PolicyDocument=document, SetAsDefault=True)
    _, spec, inv, policy, _ = survey(session, OWNER)

    grants = migration.legacy_grants(policy, inv, spec.roles)
    assert grants == {
        "admin": ("conditional", ("only with MFA",)),
        "data_engineer": ("yes", ()),
        "infrastructure_admin": ("no", ()),
    }
    table = reports.statements_frame(policy, inv, spec.roles).set_index("sid")
    assert table.loc["AllButAdmin", "covers"] == "data_engineer, infrastructure_admin"
    assert table.loc["AllButAdmin", "resource"] == f"NotResource: {arn('AdminRole')}"
    assert table.loc["NoInfra", "covers"] == "infrastructure_admin"
    assert table.loc["AdminWithMfa", "condition"] == json.dumps(mfa, sort_keys=True)
    assert table.loc["Buckets", "covers"] == ""
    assert bool(table.loc["Buckets", "beyond_assume_role"]) and bool(table.loc["NoInfra", "beyond_assume_role"])


def test_privilege_delta_marks_removed_added_and_widened(aws, session, legacy_account, iam):
    mfa = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
    document = doc(allow(arn("AdminRole"), Condition=mfa), allow(arn("DataEngineerRole")))
    iam.create_policy_version(PolicyArn=LEGACY_ARN, PolicyDocument=document, SetAsDefault=True)
    spec_map = {"your-username": {"description": "Owner", "roles": ["admin", "infrastructure_admin"]}}
    _, spec, inv, policy, holders = survey(session, spec_map)

    delta = reports.privilege_delta(spec, inv, policy, holders).set_index("role_key")
    assert delta.loc["admin", "change"] == "condition dropped"
    assert delta.loc["data_engineer", "change"] == "removed"
    assert delta.loc["infrastructure_admin", "change"] == "added"
    assert delta.loc["admin", "conditions"] == "only with MFA"
    frame = delta.reset_index()
    html = reports.styled_delta(frame).to_html()
    (red,) = re.findall(r"([^{}]*)\{[^}]*#c62828", html)  # the selectors of the one red rule
    removed_row = frame.index[frame["change"] == "removed"][0]
    cells = set(re.findall(r"_row(\d+)_col(\d+)", red))
    assert cells == {(str(removed_row), str(col)) for col in range(len(frame.columns))}


# ----------------------------------------------------------------------------- the operator's own access


def as_caller(inv, arn_: str):
    return dataclasses.replace(inv, caller_arn=arn_)


def test_the_operator_is_never_detached_from_roles_the_spec_does_not_keep(aws, session, legacy_account, tmp_path):
    spec_map = {"your-username": {"description": "Owner", "roles": ["admin"]}}
    iam, spec, inv, policy, holders = survey(session, spec_map)
    me = as_caller(inv, f"arn:aws:iam::{ACCOUNT_ID}:user/your-username")
    mplan = migration.plan_migration(spec, me, LEGACY, holders)
    assert mplan.blocked
    (refusal,) = mplan.refusals
    assert "your-username" in refusal and "DataEngineerRole, InfrastructureAdminRole" in refusal
    path = legacy_backup.backup(iam, policy, holders, tmp_path)
    aws.clear_calls()
    with pytest.raises(SafetyError, match="you are running this as your-username"):
        legacy.apply_migration(iam, mplan, backup_path=path)
    assert aws.mutating_calls() == []

    full = migration.plan_migration(load_spec(OWNER), me, LEGACY, holders)
    assert not full.blocked


def test_the_operator_outside_the_spec_is_refused_even_with_detach_unmanaged(aws, session, legacy_account):
    spec_map = {"bob": {"description": "Bob", "roles": ["admin"]}}
    _, spec, inv, _, holders = survey(session, spec_map)
    me = as_caller(inv, f"arn:aws:iam::{ACCOUNT_ID}:user/your-username")
    mplan = migration.plan_migration(spec, me, LEGACY, holders, detach_unmanaged=True)
    assert len(mplan.refusals) == 1 and mplan.blocked
    other = migration.plan_migration(spec, inv, LEGACY, holders, detach_unmanaged=True)
    assert not other.blocked  # run by someone else, it may proceed


def test_an_operator_role_holding_the_policy_is_refused(aws, session, shared_legacy):
    _, spec, inv, _, holders = survey(session, SHARED_SPEC)
    me = as_caller(inv, f"arn:aws:sts::{ACCOUNT_ID}:assumed-role/DataEngineerRole/operator")
    mplan = migration.plan_migration(spec, me, LEGACY, holders, detach_unmanaged=True)
    assert [r.startswith("you are running this as role DataEngineerRole") for r in mplan.refusals] == [True]


# ----------------------------------------------------------------------------- backup and restore


def test_apply_refuses_without_a_backup_of_this_policy(aws, session, legacy_account, tmp_path):
    iam, spec, inv, policy, holders = survey(session, OWNER)
    mplan = migration.plan_migration(spec, inv, LEGACY, holders)
    aws.clear_calls()
    with pytest.raises(SafetyError, match="no backup"):
        legacy.apply_migration(iam, mplan, backup_path=tmp_path / "missing.json")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"arn": "arn:aws:iam::123456789012:policy/Other", "versions": []}))
    with pytest.raises(SafetyError, match="is not a backup of"):
        legacy.apply_migration(iam, mplan, backup_path=other)
    assert aws.mutating_calls() == []


def test_a_second_backup_never_overwrites_the_first(aws, session, legacy_account, tmp_path):
    iam, _, _, policy, holders = survey(session, OWNER)
    first = legacy_backup.backup(iam, policy, holders, tmp_path)
    second = legacy_backup.backup(iam, policy, (), tmp_path)
    assert first.name == "legacy_policy_backup.json" and second.name == "legacy_policy_backup-2.json"
    assert json.loads(first.read_text())["holders"] == [{"kind": "user", "name": "your-username"}]


def test_restore_recreates_versions_default_and_holders(aws, session, shared_legacy, tmp_path, iam):
    iam.create_policy_version(PolicyArn=LEGACY_ARN, PolicyDocument=doc(allow("*")), SetAsDefault=True)
    iam.create_policy_version(PolicyArn=LEGACY_ARN, PolicyDocument=doc(allow(arn("AdminRole"))))
    before, _ = snapshot(aws)
    _, _, backup_path = migrate(session, SHARED_SPEC, tmp_path, detach_unmanaged=True)
    assert LEGACY not in snapshot(aws)[0]["policies"]

    done = legacy_backup.restore_legacy(iam, legacy_backup.read_backup(backup_path))

    assert done[0] == "created AssumeRolesPolicy with 3 version(s), default v2"
    after, _ = snapshot(aws)
    assert after["policies"][LEGACY] == before["policies"][LEGACY]
    assert LEGACY in after["users"]["your-username"][0] and after["groups"]["ops"] == [LEGACY]
    assert after["roles"]["DataEngineerRole"] == [LEGACY]
    # Restoring again: the policy exists, attachments are already there.
    assert legacy_backup.restore_legacy(iam, legacy_backup.read_backup(backup_path))[0].endswith("left as they are")


# ----------------------------------------------------------------------------- faults and reruns


def fault_seed(iam) -> None:
    """The seed account plus one non-default version, so every kind of step is in the run."""
    iam.create_policy_version(PolicyArn=LEGACY_ARN, PolicyDocument=doc(allow("*")), SetAsDefault=False)


FAULT_STEPS = 9  # 3 create_policy, 3 attach, detach, delete_policy_version, delete_policy


def expected_end_state(roles) -> dict:
    """Where an uninterrupted migration of the fault seed ends (checked by the test below)."""
    from iamrunbook.base.names import policy_document

    return {
        "users": {"your-username": (sorted(ASSUME_POLICIES), [])},
        "groups": {},
        "roles": {name: [] for name in roles},
        "policies": {
            f"Assume{name}Policy": (json.dumps(policy_document(ACCOUNT_ID, name), sort_keys=True), 1) for name in roles
        },
    }


ROLE_NAMES = ("AdminRole", "DataEngineerRole", "InfrastructureAdminRole")


def test_uninterrupted_run_of_the_fault_seed(aws, session, legacy_account, iam, tmp_path):
    fault_seed(iam)
    mplan, result, _ = migrate(session, OWNER, tmp_path)
    assert result.ok and len(mplan.steps) == FAULT_STEPS
    assert snapshot(aws)[0] == expected_end_state(ROLE_NAMES)


@pytest.mark.parametrize("k", range(1, FAULT_STEPS + 1))
def test_persistent_failure_at_each_step_then_a_clean_rerun(aws, session, legacy_account, iam, tmp_path, k):
    fault_seed(iam)
    checked = guard_no_lost_role(aws, OWNER)
    aws.clear_calls()
    aws.inject_fault(at=k, times=None)

    with pytest.raises(ApplyError) as failed:
        migrate(session, OWNER, tmp_path / "interrupted")
    _, spec, inv, _, holders = survey(session, OWNER)

    aws.clear_faults()
    mutating = aws.mutating_calls()
    assert [c.injected for c in mutating].index(True) == k - 1  # the k-th mutating call is the one that failed
    assert all(c.injected for c in mutating[k - 1 :])  # retried, never got through
    step = failed.value.result.failed
    assert failed.value.step == f"{step.kind} {step.address}"
    assert str(failed.value).startswith(f"{step.kind} {step.address} failed")
    assert len(failed.value.result.done) == k - 1

    mplan, result, _ = migrate(session, OWNER, tmp_path / "rerun")
    aws.raise_hook_errors()
    assert result.ok and len(mplan.steps) == FAULT_STEPS - (k - 1)
    assert snapshot(aws)[0] == expected_end_state(ROLE_NAMES)
    assert checked  # the guard ran after every successful mutating call


@pytest.mark.parametrize("k", range(1, FAULT_STEPS + 1))
def test_throttling_at_each_step_is_retried(aws, session, legacy_account, iam, tmp_path, k):
    fault_seed(iam)
    aws.clear_calls()
    aws.inject_fault(at=k, code="Throttling", status=400, times=1)

    _, result, _ = migrate(session, OWNER, tmp_path / "throttled")

    assert result.ok
    mutating = aws.mutating_calls()
    assert [c.error_code for c in mutating if c.injected] == ["Throttling"]
    assert len(mutating) == FAULT_STEPS + 1
    assert snapshot(aws)[0] == expected_end_state(ROLE_NAMES)


# ----------------------------------------------------------------------------- reading and least privilege


def test_holders_are_read_from_every_page():
    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(iam) as stub:
        stub.add_response(
            "list_entities_for_policy",
            {
                "PolicyUsers": [{"UserName": "b"}],
                "PolicyGroups": [],
                "PolicyRoles": [],
                "IsTruncated": True,
                "Marker": "m",
            },
            {"PolicyArn": LEGACY_ARN},
        )
        stub.add_response(
            "list_entities_for_policy",
            {
                "PolicyUsers": [{"UserName": "a"}],
                "PolicyGroups": [{"GroupName": "g"}],
                "PolicyRoles": [{"RoleName": "r"}],
                "IsTruncated": False,
            },
            {"PolicyArn": LEGACY_ARN, "Marker": "m"},
        )
        holders = legacy_backup.list_holders(iam, LEGACY_ARN)
    assert holders == (Holder("user", "a"), Holder("user", "b"), Holder("group", "g"), Holder("role", "r"))
    assert legacy_backup.list_holders(iam, None) == ()


def test_plan_as_text_frame_and_json(aws, session, shared_legacy):
    _, spec, inv, _, holders = survey(session, SHARED_SPEC)
    mplan = migration.plan_migration(spec, inv, LEGACY, holders)
    text = mplan.to_text()
    assert "held by: user your-username, group ops, role DataEngineerRole" in text
    assert "Refused before any change:" in text and text.endswith("BLOCKED: see the problems above.")
    frame = mplan.to_frame()
    assert list(frame["step"]) == list(range(1, len(mplan.steps) + 1))
    data = json.loads(mplan.to_json())
    assert data["summary"] == mplan.summary() == {"import": 0, "add": 7, "change": 0, "destroy": 4}
    assert data["steps"][-1] == {
        "kind": "delete_policy",
        "address": "policy/AssumeRolesPolicy",
        "reason": "delete the legacy policy",
        "policy_name": LEGACY,
        "policy_arn": LEGACY_ARN,
        "phase": 6,  # deletions (order.py)
    }


def test_least_privilege_names_exactly_the_actions_called(aws, session, shared_legacy, tmp_path):
    """The migration's modules declare exactly what they call: legacy (pure), legacy_backup (holders, backup,
    restore) and mutations (every step)."""
    source = Path(legacy_backup.__file__).read_text()
    to_api = boto3.client("iam", region_name="us-east-1").meta.method_to_api_mapping
    called = {f"iam:{to_api[m]}" for m in set(re.findall(r"\biam\.([a-z_]+)\(", source)) - {"get_paginator"}}
    called |= {f"iam:{to_api[m]}" for m in re.findall(r'get_paginator\("([a-z_]+)"\)', source)}
    assert set(legacy_backup.READ_ACTIONS) | set(legacy_backup.WRITE_ACTIONS) == called
    assert not set(legacy_backup.READ_ACTIONS) & set(legacy_backup.WRITE_ACTIONS)
    assert legacy.READ_ACTIONS == legacy.WRITE_ACTIONS == ()  # pure: no AWS call of its own

    aws.clear_calls()
    iam, _, _, policy, holders = survey(session, SHARED_SPEC)
    _, _, backup_path = migrate(session, SHARED_SPEC, tmp_path, detach_unmanaged=True)
    legacy_backup.restore_legacy(iam, legacy_backup.read_backup(backup_path))
    from iamrunbook.aws import mutations, sweep

    declared = set(legacy_backup.READ_ACTIONS) | set(legacy_backup.WRITE_ACTIONS) | set(sweep.READ_ACTIONS)
    declared |= set(mutations.WRITE_ACTIONS)
    made = {f"{c.service}:{c.action}" for c in aws.calls}
    assert made - declared == set()


def test_document_access_answers_for_one_document_alone():
    from iamrunbook.core.access import document_access, statement_covers

    admin = arn("AdminRole")
    by_name = json.loads(doc(allow("arn:aws:iam::*:role/${aws:username}-*")))
    user = {"UserName": "AdminRole", "UserId": "AIDA", "Arn": "arn:aws:iam::123456789012:user/AdminRole"}
    assert document_access(by_name, "sts:AssumeRole", arn("AdminRole-x"), user=user, account_id=ACCOUNT_ID) == (
        "yes",
        (),
    )
    assert document_access(by_name, "sts:AssumeRole", arn("AdminRole-x")) == ("no", ())
    not_action = json.loads(doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}))
    assert document_access(not_action, "sts:AssumeRole", admin) == ("yes", ())
    assert document_access(not_action, "iam:CreateUser", "*") == ("no", ())
    gated = json.loads(
        doc(
            allow("*"),
            {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        )
    )
    assert document_access(gated, "sts:AssumeRole", admin) == (
        "conditional",
        ("denied when Condition Bool aws:SecureTransport",),
    )
    assert statement_covers({"Effect": "Deny", "Action": "sts:*", "Resource": admin}, "sts:AssumeRole", admin)
    assert not statement_covers({"Effect": "Allow", "Action": "s3:*", "Resource": "*"}, "sts:AssumeRole", admin)
