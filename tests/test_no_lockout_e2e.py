"""No lockout from any starting account, end to end: random accounts (tests/strategies.py) built on the strict
embedded AWS, then an apply of 02 and 03 with the continuity guard after every mutating call; then a plan-only
run finds nothing an apply would do and makes no mutating call, and strangers and foreign policies are exactly
as they were.

Ten examples drive the notebooks' own flow calls in this process (`open_runbook`, then 02's and 03's cells
as package calls, one Runbook per notebook, one run folder per chain, as `iamrunbook run` lays them out):
the property is about the apply path, not the kernel. Two more go through `iamrunbook run --apply` itself
(papermill, kernels, exit codes), so the contract from the command line down is held to the same checks.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from invariants import role_guard, sweep
from strategies import MOTO_CALLER, accounts, build, specs

from iamrunbook.aws.sweep import ENTITY_FILTER
from iamrunbook.base import records
from iamrunbook.base.exit_codes import EXIT_OK
from iamrunbook.cli import cli
from iamrunbook.flows import apply, legacy
from iamrunbook.flows.session import HEADLESS_ENV, open_runbook
from iamrunbook.runs import outcome

pytestmark = pytest.mark.e2e  # minutes, not seconds: README's fast loop leaves the whole property out

CHAIN = ["02_delete_legacy_policy", "03_import_and_apply"]  # 01 and 04 only read


def parameters(spec) -> dict:
    return {
        "iam_users": spec.to_mapping(),
        "roles": dict(spec.roles),
        "grant_via": spec.settings.grant_via,
        "require_mfa": sorted(spec.settings.require_mfa),
        "allow_without_mfa_device": True,
        "legacy_detach_unmanaged": True,
        "max_deletions": 50,
    }


def params_file(tmp: Path, spec) -> Path:
    path = tmp / "params.yaml"
    path.write_text(yaml.safe_dump(parameters(spec)), encoding="utf-8")
    return path


def strangers(aws, spec) -> dict:
    """Users neither in the spec nor tagged for the runbook, and every policy that is not the runbook's."""
    details = sweep(aws.client("iam", internal=True), ENTITY_FILTER)  # customer-managed policies are entities here
    spec_names = {u.lower() for u in spec.users}
    own = {f"Assume{role}Policy" for role in spec.roles.values()} | {"AssumeRolesPolicy"}
    temporary = tuple(f"Assume{role}PolicyUntil" for role in spec.roles.values())  # a temporary grant's policy

    def is_own(arn: str) -> bool:
        name = arn.rsplit("/", 1)[-1]
        return name in own or name.startswith(temporary)

    def theirs(arns) -> list[str]:  # the runbook's own policies on a stranger are drift it removes
        return sorted(a for a in arns if not is_own(a))

    users = {
        u["UserName"]: (theirs(p["PolicyArn"] for p in u.get("AttachedManagedPolicies", [])),
                        sorted(p["PolicyName"] for p in u.get("UserPolicyList", [])))
        for u in details["UserDetailList"]
        if u["UserName"].lower() not in spec_names and not any(t["Key"] == "ManagedBy" for t in u.get("Tags", []))
    }  # fmt: skip
    # Customer-managed policies only: no account can change an AWS-managed one (the users say who holds which).
    policies = {p["Arn"]: p["DefaultVersionId"] for p in details["Policies"] if not is_own(p["Arn"])}
    return {"users": users, "policies": policies}


@st.composite
def moto_cases(draw):
    """An account and a spec for it, run as the embedded AWS's caller (moto): a user `moto` in the account
    is then the operator, and the spec keeps what it holds."""
    account = replace(draw(accounts()), caller_arn=MOTO_CALLER)
    return account, draw(specs(account))


def run_in_process(params: dict, run_dir: Path) -> int:
    """02 then 03, each notebook's cells as the package calls they are, each notebook with its own Runbook
    (a kernel of its own) in one run folder; the exit code `iamrunbook run` would give for their records.
    An exception is a failed notebook: it fails the test, as exit code 1 would."""
    rb = open_runbook(params, run_dir)  # 02
    legacy.run(rb)
    rb = open_runbook(params, run_dir)  # 03
    spec = rb.spec()
    inventory = rb.inventory()
    plan = apply.record_plan(rb, spec, inventory)
    result = apply.apply_confirmed(rb, plan, inventory)
    apply.handoff(rb, spec, inventory, result)
    found = outcome.assess(run_dir, rb.apply)
    return outcome.decide_exit([], rb.apply, found.pending, found.problems)


def in_process(tmp: Path, spec, *, apply_: bool) -> tuple[int, Path]:
    run_dir = tmp / ("apply" if apply_ else "plan")
    return run_in_process({**parameters(spec), "apply": apply_}, run_dir), run_dir


def through_cli(tmp: Path, spec, *, apply_: bool) -> tuple[int, Path]:
    out = tmp / "runs"
    code = cli.main(["run", *CHAIN, "-f", str(params_file(tmp, spec)), *(["--apply"] if apply_ else []),
                     "--out", str(out)])  # fmt: skip
    return code, max((p for p in out.iterdir() if p.is_dir()), key=lambda p: p.name)


def never_opens_a_window(aws, case, tmp: Path, run) -> None:
    """The property, whichever way the chain runs: `run(tmp, spec, apply_=...)` -> (exit code, run folder)."""
    account, spec = case
    aws.reset()
    build(aws.client("iam", internal=True), account)
    before = strangers(aws, spec)
    checked = role_guard(aws, spec, allow_empty=True)

    applied, _ = run(tmp, spec, apply_=True)
    aws.raise_hook_errors()  # no spec user lost a granted role they held, after any call
    assert len(checked) == len([c for c in aws.mutating_calls() if c.ok])  # the guard saw every call
    assert applied == EXIT_OK

    aws.clear_calls()
    check, latest = run(tmp, spec, apply_=False)
    assert aws.mutating_calls() == []
    assert check == EXIT_OK, "an apply left something an apply would still do"
    assert records.read(latest, records.PLAN).is_empty
    assert strangers(aws, spec) == before


@pytest.mark.timeout(1800)
@settings(max_examples=10)
@given(case=moto_cases())
def test_apply_on_a_random_account_never_opens_a_window(case, embedded_aws, aws, monkeypatch, tmp_path_factory):
    monkeypatch.setenv(HEADLESS_ENV, "1")  # what `iamrunbook run` gives every kernel
    never_opens_a_window(aws, case, tmp_path_factory.mktemp("in-process"), in_process)


@pytest.mark.timeout(600)
@settings(max_examples=2)
@given(case=moto_cases())
def test_the_same_through_iamrunbook_run_apply(case, embedded_aws, aws, tmp_path_factory):
    never_opens_a_window(aws, case, tmp_path_factory.mktemp("e2e"), through_cli)
