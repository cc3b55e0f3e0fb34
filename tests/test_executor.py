"""The parallel executor (issue 20) on the strict embedded AWS, with latency so calls overlap: phases never
interleave (the server's own start/end times), one entity's changes keep plan order, a failure mid-phase
stops cleanly and a rerun converges, the continuity invariant holds on random accounts, and throttling at a
rate limit is absorbed. The AIMD window and the phase grouping are checked as plain code first."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import replace
from pathlib import Path

import pytest
import strategies
from hypothesis import event, given, settings
from hypothesis import strategies as st
from invariants import role_guard

from iamrunbook.aws import clients as aws_edge
from iamrunbook.aws import executor, mutations
from iamrunbook.aws.executor import ApplyError, ApplyResult
from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base.errors import SafetyError
from iamrunbook.base.names import DEFAULT_ROLES, policy_arn, policy_name
from iamrunbook.base.progress import HEADLESS_ENV
from iamrunbook.cli import cli
from iamrunbook.core.changes import Change
from iamrunbook.core.plan import make_plan
from iamrunbook.core.spec import GrantSettings, load_spec
from iamrunbook.flows.apply import apply_plan
from iamrunbook.sandbox import ACCOUNT_ID, seed

KEYS = tuple(DEFAULT_ROLES)
EXAMPLE = str(Path(__file__).resolve().parents[1] / "parameters" / "example.yaml")


def spec_of(users: dict[str, list[str]], description: str = "works here", **settings) -> object:
    entries = {name: {"description": f"{name} {description}", "roles": roles} for name, roles in users.items()}
    return load_spec(iam_users=entries, roles=DEFAULT_ROLES, settings=GrantSettings(**settings))


def apply(iam, sts, spec, **options):
    """Plan from a fresh read and apply; returns (plan, result)."""
    plan = make_plan(spec, read_inventory(iam, sts))
    options.setdefault("max_deletions", 50)
    return plan, apply_plan(iam, plan, allow_without_mfa_device=True, **options)


def converged(iam, sts, spec) -> bool:
    return make_plan(spec, read_inventory(iam, sts)).is_empty


def overlapped(calls) -> bool:
    """Two of these calls were at the server at once."""
    ordered = sorted(calls, key=lambda c: c.started)
    return any(b.started < a.ended for a, b in zip(ordered, ordered[1:], strict=False))


# --------------------------------------------------------------------------- plain code


def test_window_halves_once_per_congestion_and_grows_by_one_after_a_window_of_successes():
    window = executor.Window(8)
    window.throttled(0)
    window.throttled(0)  # the same congestion: calls that started before the halving
    assert (window.size, window.epoch, window.throttles) == (4, 1, 2)
    window.throttled(1)
    assert (window.size, window.lowest) == (2, 2)
    window.succeeded(0)  # started at a larger size: not counted
    window.succeeded(2)
    assert window.size == 2
    window.succeeded(2)
    assert window.size == 3  # a window's worth (2) of clean changes: one more slot
    for _ in range(6):
        window.throttled(window.epoch)
    assert window.size == window.lowest == 1  # never below one
    for _ in range(100):
        window.succeeded(window.epoch)
    assert window.size == 8  # never above the ceiling
    assert window.note() == "parallelism 8 of 8 (down to 1), 0 retries"


def test_phases_are_runs_of_one_phase_and_a_change_without_one_stands_alone():
    def change(phase):
        return Change("tag_user", "x", "", user="x", phase=phase)

    changes = [change(1), change(1), change(2), change(None), change(None), change(2), change(5)]
    assert executor.phases(changes) == [[0, 1], [2], [3], [4], [5], [6]]


@pytest.mark.e2e
def test_cli_parallelism_sets_the_parameter_and_is_checked(capsys):
    assert cli.main(["run", "-f", EXAMPLE, "--parallelism", "0"]) != 0
    assert "apply_parallelism: must be 1 or more" in capsys.readouterr().err


# --------------------------------------------------------------------------- on the embedded AWS


def seed_account(iam, sts) -> dict[str, list[str]]:
    """Roles, policies and 16 users as an earlier run left them, plus `stray`, who is outside the runbook
    and holds an Assume*Policy (drift: detached in the revocations)."""
    seed.seed_roles(iam)
    users = {f"u{i:02d}": [KEYS[i % 3], *([KEYS[(i + 1) % 3]] if i % 2 else [])] for i in range(16)}
    apply(iam, sts, spec_of(users))
    iam.create_user(UserName="stray")
    iam.attach_user_policy(UserName="stray", PolicyArn=policy_arn(ACCOUNT_ID, policy_name(DEFAULT_ROLES["admin"])))
    return users


def changed(users: dict[str, list[str]]) -> tuple[dict[str, list[str]], set[str]]:
    """A spec one run away, with changes in five phases: 8 new users (create, then attach), 4 gone (deleted),
    4 with a role more (tag, attach), 4 with a role less (tag, detach), and the stray's detach."""
    wanted = {name: list(roles) for name, roles in users.items()}
    gone = {f"u{i:02d}" for i in range(12, 16)}
    for name in gone:
        del wanted[name]
    for i in range(4):
        wanted[f"u{i:02d}"].append(next(k for k in KEYS if k not in wanted[f"u{i:02d}"]))
    for i in range(5, 12, 2)[:4]:
        wanted[f"u{i:02d}"] = wanted[f"u{i:02d}"][:1]
    wanted.update({f"new{i}": [KEYS[i % 3]] for i in range(8)})
    return wanted, gone


#: the phase each call of that plan belongs to; a deleted user's every call is its deletion's (phase 6)
ACTION_PHASES = {"CreateUser": 1, "TagUser": 2, "AttachUserPolicy": 3, "DetachUserPolicy": 5}


def test_phases_never_interleave_and_a_phase_runs_at_once(aws, iam, sts):
    wanted, gone = changed(seed_account(iam, sts))
    plan = make_plan(spec_of(wanted), read_inventory(iam, sts))
    phases = {c.kind: c.phase for c in plan.changes}
    assert phases == {"create_user": 1, "tag_user": 2, "attach": 3, "detach": 5, "delete_user": 6}
    aws.clear_calls()

    with aws.paced(latency_ms=30, jitter_ms=20):
        result = apply_plan(iam, plan, max_deletions=10, parallelism=8)

    assert result.ok and result.done == list(plan.changes)
    calls = aws.mutating_calls()
    assert all(c.ok or (c.action, c.error_code) == ("DeleteLoginProfile", "NoSuchEntity") for c in calls)  # none
    by_phase: dict[int, list] = {}
    for call in calls:
        phase = 6 if call.params["UserName"] in gone else ACTION_PHASES[call.action]
        by_phase.setdefault(phase, []).append(call)
    assert sorted(by_phase) == [1, 2, 3, 5, 6]
    ordered = [by_phase[p] for p in sorted(by_phase)]
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        assert max(c.ended for c in earlier) <= min(c.started for c in later)
    assert all(overlapped(by_phase[p]) for p in (1, 2, 3, 6))  # the pool really ran them at once
    assert converged(iam, sts, spec_of(wanted))


def test_one_entitys_changes_keep_plan_order_while_others_run_at_once(aws, iam, sts):
    users = seed_account(iam, sts)
    arns = [policy_arn(ACCOUNT_ID, policy_name(role)) for role in DEFAULT_ROLES.values()]
    read = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::artifacts/*"}
    document = json.dumps({"Version": "2012-10-17", "Statement": [read]})
    for arn in arns:  # five versions each: a new document needs its oldest pruned first
        for _ in range(4):
            iam.create_policy_version(PolicyArn=arn, PolicyDocument=document, SetAsDefault=False)
    spec = spec_of(users, require_mfa=frozenset(KEYS))
    plan = make_plan(spec, read_inventory(iam, sts))
    kinds = [c.kind for c in plan.changes if c.policy_arn in arns and c.kind != "detach"]  # and the stray's detach
    assert sorted(kinds) == ["prune_policy_version"] * 3 + ["update_policy"] * 3
    aws.clear_calls()

    with aws.paced(latency_ms=40, jitter_ms=20):
        result = apply_plan(iam, plan, allow_without_mfa_device=True, parallelism=8)

    assert result.ok
    calls = aws.mutating_calls()
    for arn in arns:
        prune, update = (c for c in calls if c.params["PolicyArn"] == arn and "PolicyVersion" in c.action)
        assert (prune.action, update.action) == ("DeletePolicyVersion", "CreatePolicyVersion")
        assert prune.ended <= update.started
    assert overlapped([c for c in calls if c.action == "DeletePolicyVersion"])
    assert converged(iam, sts, spec)


def test_a_failure_mid_phase_finishes_what_is_in_flight_starts_nothing_and_a_rerun_converges(aws, iam, sts, caplog):
    wanted, _ = changed(seed_account(iam, sts))
    spec = spec_of(wanted)
    plan = make_plan(spec, read_inventory(iam, sts))
    started: dict[str, float] = {}

    def run(client, change):
        started[change.address] = time.time()
        mutations.AWS(client, change)

    aws.clear_calls()
    aws.inject_fault("AttachUserPolicy", at=3, code="AccessDenied", status=403)  # not retried: fails at once
    logs = caplog.at_level(logging.ERROR, logger="iamrunbook")
    with aws.paced(latency_ms=50, jitter_ms=40), logs, pytest.raises(ApplyError) as failed:
        executor.execute(iam, plan.changes, ApplyResult(), desc="apply", progress=False, parallelism=4, run=run)

    result = failed.value.result
    faulted = next(c for c in aws.mutating_calls() if c.injected)
    assert (result.failed.kind, result.failed.user) == ("attach", faulted.params["UserName"])
    assert result.failed.policy_arn == faulted.params["PolicyArn"] and "AccessDenied" in result.error
    known = min(r.created for r in caplog.records if "failed" in r.getMessage())
    assert all(when < known for when in started.values())  # once the failure was known nothing new started
    assert len(result.done) + len(result.not_done) + 1 == len(plan.changes)
    assert {c.address for c in result.done} | {result.failed.address} == set(started)  # in flight: finished
    ok = [c for c in aws.mutating_calls() if c.ok]
    assert len(ok) == len(result.done)  # one call per change that ran: the failed one's was refused
    assert not any(c.phase > 3 for c in result.done)  # no revocation or deletion began
    assert [c.address for c in result.not_done] == [c.address for c in plan.changes if c in result.not_done]

    aws.clear_faults()
    with aws.paced(latency_ms=10):
        _, rerun = apply(iam, sts, spec, parallelism=4)
    assert rerun.ok and converged(iam, sts, spec)


def buildable(case) -> bool:
    """What the embedded AWS can build and the guard can guard: every policy has a statement (AWS refuses
    an empty document, which the generator draws now and then), and someone in the spec holds now a role
    the spec grants them."""
    account, spec = case
    if not all(version.get("Statement") for policy in account.policies for version in policy.versions):
        return False
    names = {u.name.lower(): u.name for u in account.users}
    return any(
        set(entry.roles) & strategies.held_now(account, names[name.lower()])
        for name, entry in spec.users.items()
        if name.lower() in names
    )


def lean(aws) -> None:
    """Keep only the AWS-managed policies the generator attaches: the guard sweeps the account after every
    call, and a sweep of all ~1,600 takes seconds."""
    backend = aws.iam_backend()
    unused = [p for p in backend.aws_managed_policies if p.name not in strategies.AWS_MANAGED]
    for policy in unused:
        del backend.managed_policies[policy.arn]
    backend.aws_managed_policies = [p for p in backend.aws_managed_policies if p.name in strategies.AWS_MANAGED]


#: random accounts whose caller is the one the embedded AWS answers as (moto's user), and a spec for each
CASES = (
    strategies.accounts()
    .map(lambda account: replace(account, caller_arn=strategies.MOTO_CALLER))
    .flatmap(lambda account: st.tuples(st.just(account), strategies.specs(account)))
    .filter(buildable)
)


@settings(max_examples=10)
@given(CASES)
def test_no_spec_user_loses_a_role_under_parallel_apply_on_random_accounts(aws, iam, sts, case):
    account, spec = case
    aws.reset()
    lean(aws)
    strategies.build(iam, account)
    checked = role_guard(aws, spec)
    plan = make_plan(spec, read_inventory(iam, sts))
    aws.clear_calls()
    with aws.paced(latency_ms=10, jitter_ms=10):
        try:
            result = apply_plan(iam, plan, max_deletions=50, allow_without_mfa_device=True, parallelism=8)
        except SafetyError:  # refused before any change (e.g. it detaches from the operator): nothing to lose
            event("refused before any change")
            assert aws.mutating_calls() == []
            return
    aws.raise_hook_errors()  # the guard's assertion, from the server's thread, after every call
    assert result.ok
    calls = aws.mutating_calls()
    assert len(checked) == sum(c.ok for c in calls)  # every successful call was checked
    event("calls overlapped" if overlapped(calls) else "no overlap")
    assert converged(iam, sts, spec)


def test_throttling_at_a_rate_limit_is_absorbed_and_the_pool_shrinks(aws, session, sts, monkeypatch, capsys):
    iam = aws_edge.apply_client(session, 8)
    seed.seed_roles(iam)
    spec = spec_of({f"t{i:02d}": [KEYS[i % 3]] for i in range(20)})
    plan = make_plan(spec, read_inventory(iam, sts))
    assert len(plan.changes) == 43  # 3 policies, 20 users, 20 attachments
    monkeypatch.setenv(HEADLESS_ENV, "1")
    aws.clear_calls()

    with aws.paced(latency_ms=20, max_tps=10, reads=False):
        result = apply_plan(iam, plan, progress=True, parallelism=8)

    assert result.ok and len(result.done) == len(plan.changes)
    assert aws.throttled > 0
    ok = [c for c in aws.mutating_calls() if c.ok]
    assert len(ok) == len(plan.changes)  # exactly one successful mutating call per change
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("apply: 43 changes, ") and "parallelism " in line and "(down to " in line
    retries = int(line.rsplit(", ", 1)[1].split()[0])
    assert retries >= aws.throttled  # every throttled attempt was retried (by botocore or the executor)
    assert converged(iam, sts, spec)
