"""Faults at every mutating call of the two flows that change a real account, on the strict embedded AWS.

(i) the example apply on the legacy account (read_inventory + make_plan + apply_plan; the legacy account
    keeps its AssumeRolesPolicy in this flow), and
(ii) the legacy migration (plan_migration + apply_migration, with a backup) of the legacy account plus one
    non-default version, so every kind of step is in the run.

For every mutating call k of each flow: (a) Throttling on the first attempt of call k: the run succeeds;
(b) InternalFailure at call k, for good: the run fails naming the failed step; with the faults cleared a
clean rerun reaches exactly the end state of an uninterrupted run. All the while an `on_mutation` guard
checks that no user in the spec loses a role the spec grants them and that they held before.
Then the same through `iamrunbook run --apply`, once per flow, with a fault on one action.

tests/test_apply.py and tests/test_legacy.py hold the neighbouring API-level cases (a fresh account
without the legacy policy, the OWNER-only spec); this file is the every-k matrix on the runbook's own
starting point with the example spec, the guard on, and one normalized snapshot for both flows.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from invariants import role_guard

from iamrunbook.aws.executor import ApplyError
from iamrunbook.aws.sweep import fetch_details, read_inventory
from iamrunbook.base.errors import AwsActionError
from iamrunbook.base.names import policy_arn
from iamrunbook.cli import cli
from iamrunbook.core.inventory import Inventory, decode_document
from iamrunbook.core.plan import make_plan
from iamrunbook.core.spec import load_spec
from iamrunbook.flows import legacy
from iamrunbook.flows.apply import apply_plan
from iamrunbook.flows.session import open_runbook
from iamrunbook.sandbox import ACCOUNT_ID, seed

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "parameters" / "example.yaml"
LEGACY_ARN = policy_arn(ACCOUNT_ID, seed.LEGACY_POLICY)

#: mutating calls of an uninterrupted run (one per change/step); test_*_reference asserts these
APPLY_CALLS = 12  # 3 create_policy, import your-username, create alice and bob, 6 attach
MIGRATION_CALLS = 9  # 3 create_policy, 3 attach, detach, delete_policy_version, delete_policy

_REFERENCE: dict[str, dict] = {}  # flow -> snapshot of an uninterrupted run (computed once per session)


# --------------------------------------------------------------------------- helpers


def example_spec():
    return load_spec(iam_users_file=EXAMPLE)


def seed_flow(iam, flow: str) -> None:
    """The legacy account; for the migration also a non-default version (a delete_policy_version step)."""
    seed.seed_legacy_account(iam)
    if flow == "migration":
        statement = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}
        wide = {"Version": "2012-10-17", "Statement": [statement]}
        iam.create_policy_version(PolicyArn=LEGACY_ARN, PolicyDocument=json.dumps(wide), SetAsDefault=False)


def run_apply(iam, sts, tmp: Path):
    """Flow (i): what 03_import_and_apply does. Returns (the changes planned, the result)."""
    plan = make_plan(example_spec(), read_inventory(iam, sts))
    return list(plan.changes), apply_plan(iam, plan)


def run_migration(iam, sts, tmp: Path):
    """Flow (ii): what 02_delete_legacy_policy does (legacy.run): read, back up, plan, apply."""
    rb = open_runbook({"iam_users_file": str(EXAMPLE), "apply": True, "apply_parallelism": 1}, tmp)  # call k: step k
    mplan, result = legacy.run(rb)
    return list(mplan.steps), result


FLOWS = {"apply": (run_apply, APPLY_CALLS), "migration": (run_migration, MIGRATION_CALLS)}


def snapshot(aws) -> dict:
    """The account, normalized (no ids, dates or version numbers that differ between equal accounts):
    users with tags, attachments, groups and inline policies; groups and roles with attachments;
    customer-managed policies with default document, version count, description and holders."""
    details = fetch_details(aws.client("iam", internal=True))

    def attached(entity) -> list[str]:
        return sorted(p["PolicyArn"] for p in entity.get("AttachedManagedPolicies", []))

    holders: dict[str, list[tuple[str, str]]] = {}
    for kind, key, name_key in (
        ("user", "UserDetailList", "UserName"),
        ("group", "GroupDetailList", "GroupName"),
        ("role", "RoleDetailList", "RoleName"),
    ):
        for entity in details[key]:
            for arn in attached(entity):
                holders.setdefault(arn, []).append((kind, entity[name_key]))
    policies = {}
    for p in details["Policies"]:
        if not p["Arn"].startswith(f"arn:aws:iam::{ACCOUNT_ID}:"):
            continue
        default = next(v for v in p["PolicyVersionList"] if v["IsDefaultVersion"])
        policies[p["Arn"]] = {
            "default_document": json.dumps(decode_document(default["Document"]), sort_keys=True),
            "versions": len(p["PolicyVersionList"]),
            "description": p.get("Description", ""),
            "holders": sorted(holders.get(p["Arn"], [])),
        }
    return {
        "users": {
            u["UserName"]: {
                "tags": Inventory.tags(u),
                "attached": attached(u),
                "groups": sorted(u.get("GroupList", [])),
                "inline": sorted(p["PolicyName"] for p in u.get("UserPolicyList", [])),
            }
            for u in details["UserDetailList"]
        },
        "groups": {g["GroupName"]: attached(g) for g in details["GroupDetailList"]},
        "roles": {r["RoleName"]: attached(r) for r in details["RoleDetailList"]},
        "policies": policies,
    }


def reference(aws, iam, sts, flow: str, tmp: Path) -> dict:
    """The end state of an uninterrupted run of `flow` from its seed; leaves the account reset and seeded."""
    if flow not in _REFERENCE:
        aws.reset()
        seed_flow(iam, flow)
        FLOWS[flow][0](iam, sts, tmp / "reference")
        _REFERENCE[flow] = snapshot(aws)
    aws.reset()
    seed_flow(iam, flow)
    return _REFERENCE[flow]


# --------------------------------------------------------------------------- the uninterrupted runs


@pytest.mark.parametrize("flow", FLOWS)
def test_reference_run_makes_one_mutating_call_per_step(aws, iam, sts, tmp_path, flow):
    seed_flow(iam, flow)
    checked = role_guard(aws, example_spec())
    aws.clear_calls()
    run, calls = FLOWS[flow]

    changes, result = run(iam, sts, tmp_path)

    aws.raise_hook_errors()
    assert result.ok and result.done == changes
    mutating = aws.mutating_calls()
    assert len(changes) == len(mutating) == calls  # so k in 1..calls is every mutating call of the flow
    assert all(c.ok and not c.injected for c in mutating)
    assert checked == [c.action for c in mutating]
    end = snapshot(aws)
    assert end == reference(aws, iam, sts, flow, tmp_path)  # deterministic: the cached one is this one
    spec = example_spec()
    owner = end["users"]["your-username"]
    assert set(owner["attached"]) >= {policy_arn(ACCOUNT_ID, n) for n in spec.policy_names().values()}
    if flow == "apply":
        assert LEGACY_ARN in owner["attached"]  # flow (i) leaves the legacy policy alone
        assert set(end["users"]) == set(spec.users)
    else:
        assert LEGACY_ARN not in end["policies"]
        assert set(end["users"]) == {"your-username"}  # the migration only moves the legacy holders


def test_the_guard_fails_when_a_granted_role_is_taken_away(aws, iam):
    seed_flow(iam, "apply")
    role_guard(aws, example_spec())
    iam.detach_user_policy(UserName=seed.LEGACY_USER, PolicyArn=LEGACY_ARN)  # the manual order's window
    with pytest.raises(AssertionError, match=r"your-username.*can no longer assume"):
        aws.raise_hook_errors()


def test_the_snapshot_sees_a_tag_and_a_version(aws, iam):
    seed_flow(iam, "apply")
    before = snapshot(aws)
    iam.tag_user(UserName=seed.LEGACY_USER, Tags=[{"Key": "Team", "Value": "ops"}])
    tagged = snapshot(aws)
    assert tagged != before and tagged["users"][seed.LEGACY_USER]["tags"] == {"Team": "ops"}
    document = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]})
    iam.create_policy_version(PolicyArn=LEGACY_ARN, PolicyDocument=document, SetAsDefault=False)
    assert snapshot(aws)["policies"][LEGACY_ARN]["versions"] == 2


# --------------------------------------------------------------------------- every k


CASES = [(flow, k) for flow, (_, calls) in FLOWS.items() for k in range(1, calls + 1)]


@pytest.mark.parametrize(("flow", "k"), CASES, ids=[f"{f}-{k}" for f, k in CASES])
def test_throttled_once_at_call_k_still_succeeds(aws, iam, sts, no_backoff, tmp_path, flow, k):
    expected = reference(aws, iam, sts, flow, tmp_path)
    checked = role_guard(aws, example_spec())
    aws.clear_calls()
    aws.inject_fault(at=k, code="Throttling", status=400, times=1)

    changes, result = FLOWS[flow][0](iam, sts, tmp_path / "run")

    aws.raise_hook_errors()
    assert result.ok and result.done == changes
    mutating = aws.mutating_calls()
    assert [c.seq for c in mutating if c.injected] == [mutating[k - 1].seq]
    assert mutating[k - 1].error_code == "Throttling"
    assert mutating[k].action == mutating[k - 1].action and mutating[k].ok  # botocore's retry got through
    assert len(mutating) == FLOWS[flow][1] + 1
    assert len(no_backoff) == 1
    assert len(checked) == FLOWS[flow][1]
    assert snapshot(aws) == expected


@pytest.mark.parametrize(("flow", "k"), CASES, ids=[f"{f}-{k}" for f, k in CASES])
def test_persistent_failure_at_call_k_then_a_clean_rerun(aws, iam, sts, no_backoff, tmp_path, flow, k):
    expected = reference(aws, iam, sts, flow, tmp_path)
    run = FLOWS[flow][0]
    checked = role_guard(aws, example_spec())
    aws.clear_calls()
    aws.inject_fault(at=k, times=None)  # InternalFailure from the k-th mutating call on, every attempt

    with pytest.raises(ApplyError) as failed:
        run(iam, sts, tmp_path / "interrupted")

    error = failed.value
    step = error.result.failed
    assert isinstance(error, AwsActionError)
    assert error.step == f"{step.kind} {step.address}"
    assert str(error).startswith(f"{step.kind} {step.address} failed: ")
    assert "InternalFailure" in str(error)
    assert len(error.result.done) == k - 1  # one call per step: call k is step k
    mutating = aws.mutating_calls()
    assert [c.injected for c in mutating] == [False] * (k - 1) + [True] * (len(mutating) - k + 1)
    attempts = iam.meta.config.retries["total_max_attempts"]  # botocore's: the first and its retries (6)
    assert len(mutating) - (k - 1) == len(no_backoff) + 1 == attempts  # all at call k, then the run stopped
    assert len(checked) == k - 1

    aws.clear_faults()
    _, rerun = run(iam, sts, tmp_path / "rerun")
    aws.raise_hook_errors()
    assert rerun.ok
    assert snapshot(aws) == expected


# --------------------------------------------------------------------------- through the CLI


def _params(tmp_path: Path) -> str:
    path = tmp_path / "params.yaml"
    shutil.copyfile(EXAMPLE, path)
    return str(path)


def _cli_reference(aws, iam, tmp_path: Path) -> dict:
    """The end state of an uninterrupted `iamrunbook run --apply` from the legacy account (once)."""
    if "cli" not in _REFERENCE:
        aws.reset()
        seed.seed_legacy_account(iam)
        code = cli.main(["run", "-f", _params(tmp_path), "--apply", "--out", str(tmp_path / "reference")])
        assert code == 0
        _REFERENCE["cli"] = snapshot(aws)
    aws.reset()
    seed.seed_legacy_account(iam)
    return _REFERENCE["cli"]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("action", "notebook", "step"),
    [
        ("CreateUser", "03_import_and_apply", 'create_user aws_iam_user.users["alice@example.com"] failed'),
        ("DetachUserPolicy", "02_delete_legacy_policy", "detach user/your-username/AssumeRolesPolicy failed"),
    ],
    ids=["apply", "migration"],
)
def test_cli_run_fails_naming_the_step_and_a_rerun_converges(
    aws, iam, no_backoff, tmp_path, capsys, action, notebook, step
):
    expected = _cli_reference(aws, iam, tmp_path)
    capsys.readouterr()
    params = _params(tmp_path)
    out = tmp_path / "runs"
    checked = role_guard(aws, example_spec())
    aws.inject_fault(action, times=None)

    assert cli.main(["run", "-f", params, "--apply", "--out", str(out)]) == 1

    captured = capsys.readouterr()
    assert f"FAILED: {notebook}: cell In [" in captured.err
    assert step in captured.err and "InternalFailure" in captured.err
    assert "Traceback" not in captured.err + captured.out
    assert any(c.injected and c.action == action for c in aws.mutating_calls())
    assert checked, "the failed run changed something before the fault, under the guard"

    aws.clear_faults()
    assert cli.main(["run", "-f", params, "--apply", "--out", str(out)]) == 0
    assert "succeeded: the account matches the spec" in capsys.readouterr().out
    aws.raise_hook_errors()
    assert snapshot(aws) == expected
    failed_dir, rerun_dir = sorted(p for p in out.iterdir() if p.is_dir())
    record = json.loads((failed_dir / "run.json").read_text(encoding="utf-8"))
    assert record["exit_code"] == 1
    assert [n["status"] for n in record["notebooks"] if n["name"] == notebook] == ["failed"]
    assert json.loads((rerun_dir / "run.json").read_text(encoding="utf-8"))["verification_ok"] is True
