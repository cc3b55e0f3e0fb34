"""No lockout from any starting account, end to end: random accounts (tests/strategies.py) built on the strict
embedded AWS, then `iamrunbook run --apply` of the whole chain with the continuity guard after every
mutating call; then a plan-only run finds nothing an apply would do and makes no mutating call, and
strangers and foreign policies are exactly as they were."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from invariants import role_guard
from strategies import MOTO_CALLER, accounts, build, specs

from iamrunbook.aws.sweep import fetch_details
from iamrunbook.base import records
from iamrunbook.cli import cli


def params_file(tmp: Path, spec) -> Path:
    path = tmp / "params.yaml"
    params = {
        "iam_users": spec.to_mapping(),
        "roles": dict(spec.roles),
        "grant_via": spec.settings.grant_via,
        "require_mfa": sorted(spec.settings.require_mfa),
        "allow_without_mfa_device": True,
        "legacy_detach_unmanaged": True,
        "max_deletions": 50,
    }
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return path


def strangers(aws, spec) -> dict:
    """Users neither in the spec nor tagged for the runbook, and every policy that is not the runbook's."""
    details = fetch_details(aws.client("iam", internal=True))
    spec_names = {u.lower() for u in spec.users}
    own = {f"Assume{role}Policy" for role in spec.roles.values()} | {"AssumeRolesPolicy"}
    def theirs(arns) -> list[str]:  # the runbook's own policies on a stranger are drift it removes
        return sorted(a for a in arns if a.rsplit("/", 1)[-1] not in own)

    users = {
        u["UserName"]: (theirs(p["PolicyArn"] for p in u.get("AttachedManagedPolicies", [])),
                        sorted(p["PolicyName"] for p in u.get("UserPolicyList", [])))
        for u in details["UserDetailList"]
        if u["UserName"].lower() not in spec_names and not any(t["Key"] == "ManagedBy" for t in u.get("Tags", []))
    }  # fmt: skip
    policies = {p["Arn"]: p["DefaultVersionId"] for p in details["Policies"] if p["Arn"].rsplit("/", 1)[-1] not in own}
    return {"users": users, "policies": policies}


@st.composite
def moto_cases(draw):
    """An account and a spec for it, run as the embedded AWS's caller (moto): a user `moto` in the account
    is then the operator, and the spec keeps what it holds."""
    account = replace(draw(accounts()), caller_arn=MOTO_CALLER)
    return account, draw(specs(account))


@pytest.mark.timeout(1800)
@settings(max_examples=10)
@given(case=moto_cases())
def test_apply_on_a_random_account_never_opens_a_window(case, embedded_aws, aws, tmp_path_factory):
    account, spec = case
    aws.reset()
    build(aws.client("iam", internal=True), account)
    before = strangers(aws, spec)
    out = tmp_path_factory.mktemp("e2e")
    params = params_file(out, spec)
    checked = role_guard(aws, spec, allow_empty=True)

    chain = ["02_delete_legacy_policy", "03_import_and_apply"]  # 01 and 04 only read
    applied = cli.main(["run", *chain, "-f", str(params), "--apply", "--out", str(out / "runs")])
    aws.raise_hook_errors()  # no spec user lost a granted role they held, after any call
    assert len(checked) == len([c for c in aws.mutating_calls() if c.ok])  # the guard saw every call
    assert applied == 0

    aws.clear_calls()
    check = cli.main(["run", *chain, "-f", str(params), "--out", str(out / "runs")])
    assert aws.mutating_calls() == []
    assert check == 0, "an apply left something an apply would still do"
    latest = max((p for p in (out / "runs").iterdir() if p.is_dir()), key=lambda p: p.name)
    assert records.read(latest, records.PLAN).is_empty
    assert strangers(aws, spec) == before
