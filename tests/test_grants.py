"""Compliance-grade grants on the strict embedded AWS: grants through one group per role (CIS 1.15), switching
between grant modes with no lockout (a guard after every mutating call, faults at every call), and roles
that may only be assumed with MFA."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from invariants import role_guard

from iamrunbook.aws.executor import ApplyError
from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base.errors import SafetyError
from iamrunbook.base.names import MFA_PRESENT, policy_arn
from iamrunbook.core import cis
from iamrunbook.core.access import MFA_ONLY, effective_access
from iamrunbook.core.plan import make_plan
from iamrunbook.core.spec import grant_settings, load_spec
from iamrunbook.core.verify import verify
from iamrunbook.flows.apply import apply_plan
from iamrunbook.sandbox import ACCOUNT_ID, seed

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "parameters" / "example.yaml"
GROUPS = {"admin": "AdminRoleUsers", "data_engineer": "DataEngineerRoleUsers",
          "infrastructure_admin": "InfrastructureAdminRoleUsers"}  # fmt: skip


@pytest.fixture
def roles(iam):
    """The three roles and nothing else: these tests start from an account without the legacy policy."""
    return seed.seed_roles(iam)


def spec_of(**settings):
    base = load_spec(iam_users_file=EXAMPLE)
    return load_spec(base.to_mapping(), roles=base.roles, settings=grant_settings(settings, base.roles))


def converge(iam, sts, spec):
    result = apply_plan(iam, make_plan(spec, read_inventory(iam, sts)), allow_without_mfa_device=True)
    assert result.ok
    inv = read_inventory(iam, sts)
    assert make_plan(spec, inv).is_empty, make_plan(spec, inv).to_text()
    return inv


def members(iam, group: str) -> set[str]:
    return {u["UserName"] for u in iam.get_group(GroupName=group)["Users"]}


def direct(inv, user: str) -> set[str]:
    return {p["PolicyArn"].rsplit("/", 1)[-1] for p in inv.users[user].get("AttachedManagedPolicies", [])}


@pytest.mark.e2e
def test_grant_via_group_on_the_legacy_account_through_the_chain(aws, iam, sts, legacy_account, tmp_path):
    """02 migrates the legacy policy's holders into their role groups, 03 grants the rest the same way."""
    from iamrunbook.cli import cli

    iam.create_user(UserName="stranger")
    checked = role_guard(aws, spec_of(grant_via="group"))
    argv = ["run", "-f", str(EXAMPLE), "-p", "grant_via", "group", "--apply", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    aws.raise_hook_errors()
    assert checked
    spec = spec_of(grant_via="group")
    inv = read_inventory(iam, sts, with_credential_report=True)
    assert members(iam, GROUPS["admin"]) == {"your-username"}
    assert members(iam, GROUPS["data_engineer"]) == {"your-username", "alice@example.com", "bob@example.com"}
    assert members(iam, GROUPS["infrastructure_admin"]) == {"your-username", "alice@example.com"}
    for key, group in GROUPS.items():
        attached = {p["PolicyName"] for p in iam.list_attached_group_policies(GroupName=group)["AttachedPolicies"]}
        assert attached == {f"Assume{spec.roles[key]}Policy"}
    for user in ("your-username", "alice@example.com", "bob@example.com"):
        assert direct(inv, user) == set()  # CIS 1.15: permissions only through groups
    assert direct(inv, "stranger") == set() and inv.users["stranger"].get("GroupList") == []
    result = verify(spec, inv)
    assert result.ok, result.problems
    assert 'aws_iam_user_group_membership.users["alice@example.com"]' in result.addresses
    rows = [r for r in cis.findings(inv) if r["cis"].startswith("1.15")]
    assert {r["user"]: r["status"] for r in rows} == {
        "alice@example.com": cis.PASS,
        "bob@example.com": cis.PASS,
        "stranger": cis.PASS,
        "your-username": cis.PASS,
    }


def test_drift_in_group_memberships_and_attachments_is_removed(aws, iam, sts, roles):
    spec = spec_of(grant_via="group")
    converge(iam, sts, spec)
    iam.create_user(UserName="mallory")
    iam.add_user_to_group(GroupName=GROUPS["admin"], UserName="mallory")  # not granted: removed
    iam.add_user_to_group(GroupName=GROUPS["admin"], UserName="bob@example.com")  # not granted: removed
    iam.attach_user_policy(UserName="alice@example.com", PolicyArn=policy_arn(ACCOUNT_ID, "AssumeAdminRolePolicy"))
    read_only = "arn:aws:iam::aws:policy/ReadOnlyAccess"
    iam.attach_group_policy(GroupName=GROUPS["data_engineer"], PolicyArn=read_only)  # anything else: drift
    plan = make_plan(spec, read_inventory(iam, sts))
    assert sorted((c.kind, c.target_name, c.user or c.policy_name) for c in plan.changes) == [
        ("detach", "DataEngineerRoleUsers", "ReadOnlyAccess"),
        ("detach", "alice@example.com", "alice@example.com"),
        ("remove_from_group", "AdminRoleUsers", "bob@example.com"),
        ("remove_from_group", "AdminRoleUsers", "mallory"),
    ]
    inv = converge(iam, sts, spec)
    assert members(iam, GROUPS["admin"]) == {"your-username"}
    assert "mallory" in inv.users  # a stranger loses the runbook's group, never the user


@pytest.mark.parametrize(("start", "end"), [("user", "group"), ("group", "user")])
def test_switching_grant_modes_never_opens_a_window(aws, iam, sts, roles, start, end):
    converge(iam, sts, spec_of(grant_via=start))
    target = spec_of(grant_via=end)
    checked = role_guard(aws, target)
    plan = make_plan(target, read_inventory(iam, sts))
    kinds = [c.kind for c in plan.changes]
    first_removal = min(i for i, k in enumerate(kinds) if k in ("detach", "remove_from_group"))
    assert all(k not in ("create_group", "add_to_group", "attach") for k in kinds[first_removal:])
    converge(iam, sts, target)
    aws.raise_hook_errors()
    assert len(checked) == len(plan.changes)


@pytest.mark.parametrize("k", range(1, 19))
def test_a_fault_at_any_call_of_the_switch_then_a_rerun_converges(aws, iam, sts, roles, no_backoff, k):
    converge(iam, sts, spec_of(grant_via="user"))
    target = spec_of(grant_via="group")
    role_guard(aws, target)
    plan = make_plan(target, read_inventory(iam, sts))
    assert len(plan.changes) == 18  # 3 groups, 3 group attachments, 6 memberships, 6 direct detachments
    aws.inject_fault(at=k, times=None)
    with pytest.raises(ApplyError) as failed:
        apply_plan(iam, plan)
    assert len(failed.value.result.done) == k - 1
    aws.clear_faults()
    converge(iam, sts, target)
    aws.raise_hook_errors()


def test_require_mfa_documents_access_and_the_refusal(aws, iam, sts, roles):
    iam.create_user(UserName="your-username")
    spec = spec_of(require_mfa=["admin"], mfa_max_age_seconds=3600)
    plan = make_plan(spec, read_inventory(iam, sts, with_credential_report=True))
    assert set(plan.without_mfa) == {"your-username"}  # granted admin, no MFA device
    aws.clear_calls()
    with pytest.raises(SafetyError, match="no MFA device, so they would lose it in practice: your-username"):
        apply_plan(iam, plan)
    assert aws.mutating_calls() == []
    inv = converge(iam, sts, spec)
    admin = inv.local_policy("AssumeAdminRolePolicy")
    document = next(v["Document"] for v in admin["PolicyVersionList"] if v["IsDefaultVersion"])
    condition = json.loads(json.dumps(document))["Statement"][0]["Condition"]
    assert condition == {**MFA_PRESENT, "NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}
    grants = [g for g in effective_access(inv.details(), spec.roles, ACCOUNT_ID) if g.user == "your-username"]
    by_role = {g.role_key: g for g in grants if g.path.startswith("attached policy Assume")}
    assert by_role["admin"].verdict == "conditional" and MFA_ONLY in by_role["admin"].conditions
    assert by_role["data_engineer"].verdict == "yes"
    assert verify(spec, inv).ok  # granted as the spec asks
    plain = verify(spec_of(), inv)  # ... and drift when the spec does not ask for MFA
    assert [p.subject for p in plain.problems] == ['aws_iam_policy.assume_role["admin"]']


def test_a_user_with_an_mfa_device_is_not_listed(aws, iam, sts, roles):
    iam.create_user(UserName="your-username")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="owner")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(UserName="your-username", SerialNumber=serial, AuthenticationCode1="123456",
                          AuthenticationCode2="654321")  # fmt: skip
    spec = spec_of(require_mfa=True)
    plan = make_plan(spec, read_inventory(iam, sts, with_credential_report=True))
    assert "your-username" not in plan.without_mfa
    assert set(plan.without_mfa) == {"alice@example.com", "bob@example.com"}
