"""Smoke test of the benchmark's measuring machinery at U=20: the counts it reports are the calls made.

No timing is asserted here; the timed targets are checked by `python bench/bench.py` itself.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from collections import Counter
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

BENCH_PATH = Path(__file__).resolve().parent.parent / "bench" / "bench.py"
USERS = 20


def _load_bench():
    spec = importlib.util.spec_from_file_location("iamrunbook_bench", BENCH_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


bench = _load_bench()


@pytest.fixture(scope="module")
def seeded():
    """A moto server process with U=20 users, its counted clients and the population.

    Without AWS-managed policies: loading ~1,600 of them costs seconds and adds nothing to what is tested.
    """
    mapping = bench.make_population(USERS)
    with bench.MotoProcess(load_aws_managed_policies=False) as server:
        clients = bench.connect(server.endpoint)
        bench.seed_account(server, clients, mapping)
        yield server, clients, mapping


def test_population_is_deterministic_and_holds_one_to_three_roles():
    mapping = bench.make_population(USERS)
    assert mapping == bench.make_population(USERS)
    assert mapping != bench.make_population(USERS, seed=bench.SEED + 1)
    assert len(mapping) == USERS
    assert all(1 <= len(e["roles"]) <= 3 for e in mapping.values())
    assert all(e["roles"] == [k for k in bench.ROLE_KEYS if k in e["roles"]] for e in mapping.values())


def test_inventory_and_plan_counts_one_identity_call_and_the_sweep_pages(seeded):
    _, clients, mapping = seeded
    row, plan = bench.measure(
        USERS,
        bench.INVENTORY_EQUAL,
        clients,
        lambda: bench.inventory_and_plan(clients, bench.spec_of(mapping)),
        repeat=2,
    )
    assert plan.is_empty
    # one page (20 users, 3 roles, 3 policies), no second sweep: no AWS-managed policy is in use
    assert row.calls == Counter({"sts:GetCallerIdentity": 1, "iam:GetAccountAuthorizationDetails": 1})
    assert row.read_calls == sum(row.calls.values()) and row.mutating_calls == 0
    assert row.attempts == row.calls  # nothing was retried
    assert row.read_calls <= bench.read_call_limit(USERS)
    assert row.peak_mib is None  # not asked for
    assert clients.counter.calls == Counter()  # measure leaves the counter clear


def test_peak_memory_is_what_the_work_allocates(seeded):
    _, clients, _ = seeded
    row, block = bench.measure(0, "allocate", clients, lambda: bytearray(8 * 2**20), memory=True)
    assert len(block) == 8 * 2**20
    assert 8 <= row.peak_mib < 9
    assert row.calls == Counter()


def test_server_pages_the_sweep_and_list_users_like_aws(seeded):
    _, clients, _ = seeded
    pages = list(
        clients.iam.get_paginator("get_account_authorization_details").paginate(
            Filter=["User", "Role", "LocalManagedPolicy"], PaginationConfig={"PageSize": 7}
        )
    )
    users = [u["UserName"] for p in pages for u in p["UserDetailList"]]
    items = len(users) + sum(len(p["RoleDetailList"]) + len(p["Policies"]) for p in pages)
    assert sorted(users) == sorted(bench.make_population(USERS))
    assert items == USERS + 3 + 3
    assert len(pages) == math.ceil(items / 7)
    assert clients.counter.calls["iam:GetAccountAuthorizationDetails"] == len(pages)

    clients.counter.clear()
    listed = bench.paginate(clients.iam, "list_users", "Users", PaginationConfig={"PageSize": 6})
    assert len(listed) == USERS
    assert clients.counter.calls == Counter({"iam:ListUsers": math.ceil(USERS / 6)})
    clients.counter.clear()


def test_baseline_a_is_one_list_users_page_then_two_calls_per_user(seeded):
    _, clients, _ = seeded
    row, found = bench.measure(USERS, bench.BASELINE_MANUAL, clients, lambda: bench.baseline_manual(clients))
    assert len(found) == USERS
    assert row.calls == Counter(
        {"iam:ListUsers": 1, "iam:ListAttachedUserPolicies": USERS, "iam:ListGroupsForUser": USERS}
    )


def test_baseline_b_replays_a_terraform_refresh(seeded):
    _, clients, mapping = seeded
    attachments = bench.attachment_count(mapping)
    row, found = bench.measure(
        USERS, bench.BASELINE_TERRAFORM, clients, lambda: bench.baseline_terraform(clients, mapping, parallelism=4)
    )
    assert found == attachments  # every seeded attachment was seen
    assert row.calls == Counter(
        {
            "sts:GetCallerIdentity": 1,
            "iam:GetUser": USERS,
            "iam:GetPolicy": 3,
            "iam:GetPolicyVersion": 3,
            "iam:ListAttachedUserPolicies": attachments,
        }
    )
    assert row.read_calls == USERS + 2 * 3 + attachments + 1


def test_apply_counts_one_mutating_call_per_change(seeded):
    _, clients, mapping = seeded
    row, target = bench.measure_apply(USERS, clients, mapping, 10)
    assert row.changes == 10
    assert row.mutating_calls == 10 and row.read_calls == 0
    # new user: CreateUser + AttachUserPolicy; role granted: TagUser + AttachUserPolicy;
    # role removed: TagUser + DetachUserPolicy; description changed: TagUser (4 of them)
    assert row.calls == Counter(
        {"iam:CreateUser": 1, "iam:AttachUserPolicy": 2, "iam:DetachUserPolicy": 1, "iam:TagUser": 6}
    )
    assert row.note == "attach=2 create_user=1 detach=1 tag_user=6"
    after = bench.inventory_and_plan(clients, bench.spec_of(target))
    assert after.is_empty, after.to_text()


def test_with_changes_refuses_more_changes_than_users_allow():
    with pytest.raises(ValueError, match="too few"):
        bench.with_changes(bench.make_population(4), 100, label="x")
    with pytest.raises(ValueError):
        bench.with_changes(bench.make_population(4), 0, label="x")


def test_retries_show_as_attempts_above_calls():
    counter = bench.CallCounter()
    iam = counter.watch(
        boto3.client(
            "iam",
            endpoint_url="http://127.0.0.1:9",  # the discard port: nothing listens, every attempt fails
            region_name="us-east-1",
            config=Config(retries={"mode": "standard", "total_max_attempts": 2}, connect_timeout=1),
            **bench.FAKE_CREDENTIALS,
        )
    )
    with pytest.raises(EndpointConnectionError):
        iam.list_users()
    row = bench.Row(0, "x", calls=counter.calls, attempts=counter.attempts)
    assert row.calls == Counter({"iam:ListUsers": 1})
    assert row.attempts == Counter({"iam:ListUsers": 2})
    assert row.retries == 1


def test_targets_fail_when_a_limit_is_missed():
    ok = bench.Row(5000, bench.INVENTORY_EQUAL, calls=Counter({"iam:GetAccountAuthorizationDetails": 9}), seconds=1.0)
    too_many = bench.Row(5000, bench.INVENTORY_DIFFERENT, calls=Counter({"iam:GetAccountAuthorizationDetails": 10}))
    baseline = bench.Row(5000, bench.BASELINE_MANUAL, calls=Counter({"iam:ListUsers": 1}), seconds=4.0)
    apply_row = bench.Row(5000, "apply K=10", calls=Counter({"iam:TagUser": 11}), changes=10)
    chain = bench.Row(0, bench.CHAIN, seconds=12.0, exit_code=2)
    results = {t.name: t.ok for t in bench.check_targets([ok, too_many, baseline, apply_row], chain)}
    assert results == {
        f"read calls, U=5000, {bench.INVENTORY_EQUAL}": True,
        f"read calls, U=5000, {bench.INVENTORY_DIFFERENT}": False,
        "one mutating call per change, U=5000, apply K=10": False,
        "inventory+plan at most 1/5 of baseline (a), U=5000": False,  # 1.0 s is more than 4.0 s / 5
        "chain 01-04 plan-only under 20s": True,
    }
    failed_chain = bench.Row(0, bench.CHAIN, seconds=5.0, exit_code=1)
    assert not bench.check_targets([], failed_chain)[-1].ok


def test_outputs_are_written(tmp_path):
    rows = [
        bench.Row(u, s, calls=Counter({"iam:ListUsers": u}), seconds=u / 100)
        for u in (10, 100)
        for s in (bench.INVENTORY_EQUAL, bench.BASELINE_MANUAL, bench.BASELINE_TERRAFORM)
    ]
    bench.write_csv(tmp_path / "results.csv", rows)
    bench.plot(tmp_path / "bench.png", rows)
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert lines[0].split(",")[:3] == ["users", "scenario", "read_calls"]
    assert len(lines) == 1 + len(rows)
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "baseline a" in bench.table(rows)
