"""07 end to end on the embedded AWS, from the demo account: phase 1 through `iamrunbook run --apply` (papermill,
a kernel, exit codes), sign-ins seeded for alice and bob and none for your-username, phase 2 (disable), the grace
period passed, phase 2 again (delete), then 04 in identity_center mode exits 0. After every run the people of
the spec still hold every role the spec grants them, by one path or the other.
"""

from __future__ import annotations

import csv
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from iamrunbook.base.exit_codes import EXIT_OK
from iamrunbook.base.shipped import shipped_dir
from iamrunbook.cli import cli
from iamrunbook.flows import apply, legacy
from iamrunbook.flows.session import HEADLESS_ENV, open_runbook
from iamrunbook.sandbox.identity_center import sign_in
from iamrunbook.sandbox.seed import seed_demo_account

pytestmark = pytest.mark.e2e

STEP = "07_migrate_to_identity_center"
RETIRED = "iamrunbook:retired-at"


@pytest.fixture
def demo(aws, iam, tmp_path, monkeypatch):
    """The demo account after the demo's chain: the legacy policy migrated, the example spec applied (user mode)."""
    monkeypatch.setenv(HEADLESS_ENV, "1")
    seed_demo_account(iam)
    params = yaml.safe_load((shipped_dir("parameters") / "example.yaml").read_text(encoding="utf-8"))
    params = {**params, "apply": True}
    legacy.run(open_runbook(params, tmp_path / "setup-02"))
    rb = open_runbook(params, tmp_path / "setup-03")
    inventory = rb.inventory()
    apply.apply_confirmed(rb, apply.record_plan(rb, rb.spec(), inventory), inventory)
    return params


def run(tmp_path: Path, params: dict, *notebooks: str, apply_it: bool = True) -> tuple[int, Path]:
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in params.items() if k != "apply"}), encoding="utf-8")
    out = tmp_path / "runs"
    before = set(out.iterdir()) if out.is_dir() else set()
    code = cli.main(["run", *notebooks, "-f", str(path), "--out", str(out), *(["--apply"] if apply_it else [])])
    (folder,) = set(out.iterdir()) - before
    return code, folder


def users(iam) -> dict[str, dict]:
    found = {}
    for page in iam.get_paginator("list_users").paginate():
        for user in page["Users"]:
            tags = iam.list_user_tags(UserName=user["UserName"])["Tags"]
            found[user["UserName"]] = {t["Key"]: t["Value"] for t in tags}
    return found


def store_ids(aws) -> dict[str, str]:
    sso, store = aws.client("sso-admin"), aws.client("identitystore")
    store_id = sso.list_instances()["Instances"][0]["IdentityStoreId"]
    return {u["UserName"]: u["UserId"] for u in store.list_users(IdentityStoreId=store_id)["Users"]}


def backdate(iam, user: str, days: int) -> None:
    """The grace period passed: the retirement happened `days` ago (the tag is the runbook's own memory)."""
    when = (datetime.now(timezone.utc) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    iam.tag_user(UserName=user, Tags=[{"Key": RETIRED, "Value": when}])


def test_migration_retires_who_signed_in_and_keeps_the_rest(aws, iam, demo, tmp_path):
    params = {**demo, "grant_via": "identity_center"}
    alice, bob, owner = "alice@example.com", "bob@example.com", "your-username"

    code, phase1 = run(tmp_path, params, STEP)
    assert code == EXIT_OK, (phase1 / "run.json").read_text()
    result = json.loads((phase1 / "identity_center_result.json").read_text())
    assert result["ok"] and result["changes"], "phase 1 made the Identity Center paths"
    assert set(users(iam)) >= {alice, bob, owner}, "phase 1 never touches an IAM user"
    ids = store_ids(aws)
    assert set(ids) == {alice, bob, owner}

    code, plan_only = run(tmp_path, params, STEP, apply_it=False)
    assert code == EXIT_OK  # phase 1 is done and nobody has signed in yet: phase 2 has nothing to do
    assert "not signed in" in (plan_only / "identity_center_users.csv").read_text()

    for name in (alice, bob):
        sign_in(aws, name, ids[name])
    code, phase2 = run(tmp_path, params, STEP)
    assert code == EXIT_OK, (phase2 / "run.json").read_text()
    now = users(iam)
    assert RETIRED in now[alice] and RETIRED in now[bob] and RETIRED not in now[owner]
    assert all(k["Status"] == "Inactive" for k in iam.list_access_keys(UserName=alice)["AccessKeyMetadata"])
    assert any(k["Status"] == "Active" for k in iam.list_access_keys(UserName=owner)["AccessKeyMetadata"])

    for name in (alice, bob):
        backdate(iam, name, params.get("retire_grace_days", 7) + 1)
    code, deleted = run(tmp_path, params, STEP)
    assert code == EXIT_OK, (deleted / "run.json").read_text()
    assert alice not in users(iam) and bob not in users(iam) and owner in users(iam)

    code, verified = run(tmp_path, params, "04_verify", apply_it=False)
    assert code == EXIT_OK, (verified / "verification.json").read_text()


def test_a_reviewed_phase_one_applies_exactly_and_a_changed_account_refuses_it(aws, iam, demo, tmp_path):
    params = {**demo, "grant_via": "identity_center"}
    code, planned = run(tmp_path, params, STEP, apply_it=False)
    assert code == 2  # phase 1 pending
    store = aws.client("identitystore")
    store_id = aws.client("sso-admin").list_instances()["Instances"][0]["IdentityStoreId"]
    assert store.list_users(IdentityStoreId=store_id)["Users"] == [], "a plan-only run changes nothing"

    path = tmp_path / "params.yaml"
    applied = cli.main(["run", STEP, "-f", str(path), "--out", str(tmp_path / "runs"), "--apply",
                        "--plan", str(planned), "--approved-by", "reviewer"])  # fmt: skip
    assert applied == EXIT_OK
    assert {u["UserName"] for u in store.list_users(IdentityStoreId=store_id)["Users"]} == set(demo["iam_users"])

    code, second = run(tmp_path, {**params, "iam_users": {**demo["iam_users"], "carol@example.com": {
        "description": "Carol - Analyst", "roles": ["data_engineer"]}}}, STEP, apply_it=False)  # fmt: skip
    assert code == 2
    store.create_user(IdentityStoreId=store_id, UserName="carol@example.com", DisplayName="Carol",
                      Name={"GivenName": "Carol", "FamilyName": "Carol"})  # made by hand since the review  # fmt: skip
    refused = cli.main(["run", STEP, "-f", str(path), "--out", str(tmp_path / "runs"), "--apply",
                        "--plan", str(second), "--approved-by", "reviewer"])  # fmt: skip
    assert refused != EXIT_OK, "a fresh plan no longer creates carol: it differs from the reviewed one"
    groups = store.list_groups(IdentityStoreId=store_id)["Groups"]
    data = next(g["GroupId"] for g in groups if g["DisplayName"] == "DataEngineerRoleUsers")
    members = store.list_group_memberships(IdentityStoreId=store_id, GroupId=data)["GroupMemberships"]
    carol = next(u["UserId"] for u in store.list_users(IdentityStoreId=store_id)["Users"]
                 if u["UserName"] == "carol@example.com")  # fmt: skip
    assert carol not in {m["MemberId"]["UserId"] for m in members}, "refused before any change: carol not added"


def test_a_trust_that_shuts_identity_center_out_refuses_phase_one_with_nothing_changed(aws, iam, demo, tmp_path):
    only_users = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                  "Principal": {"AWS": "arn:aws:iam::123456789012:user/your-username"}}]}  # fmt: skip
    iam.update_assume_role_policy(RoleName="AdminRole", PolicyDocument=json.dumps(only_users))
    code, folder = run(tmp_path, {**demo, "grant_via": "identity_center"}, STEP)
    assert code != EXIT_OK
    executed = (folder / f"{STEP}.ipynb").read_text(encoding="utf-8")
    assert "AdminRole" in executed and "the runbook never edits trust policies" in executed
    store_id = aws.client("sso-admin").list_instances()["Instances"][0]["IdentityStoreId"]
    assert aws.client("identitystore").list_users(IdentityStoreId=store_id)["Users"] == []


def test_03_in_identity_center_mode_grants_and_hands_off_without_iam_users(aws, iam, demo, tmp_path):
    params = {**demo, "grant_via": "identity_center"}
    code, applied = run(tmp_path, params, "03_import_and_apply")
    assert code == EXIT_OK, (applied / "run.json").read_text()
    assert json.loads((applied / "identity_center_result.json").read_text())["ok"]
    handoff = "\n".join(p.read_text(encoding="utf-8") for p in (applied / "terraform").glob("*.tf"))
    assert "aws_ssoadmin_account_assignment" in handoff and "aws_identitystore_user" in handoff
    assert "aws_iam_user" not in handoff, "checkov CKV_AWS_273: no IAM user in this mode's handoff"
    code, verified = run(tmp_path, params, "04_verify", apply_it=False)
    assert code == EXIT_OK
    addresses = json.loads((verified / "verification.json").read_text())["addresses"]
    assert 'aws_ssoadmin_permission_set.role["admin"]' in addresses

    ids = store_ids(aws)
    sign_in(aws, "bob@example.com", ids["bob@example.com"])
    code, reviewed = run(tmp_path, params, "06_access_review", apply_it=False)
    assert code in (EXIT_OK, 2)
    with (reviewed / "identity_center_users.csv").open(encoding="utf-8") as fh:
        rows = {row["user"]: row for row in csv.DictReader(fh)}
    assert set(rows) == set(demo["iam_users"]), "06 lists the Identity Center side next to the IAM users"
    assert rows["bob@example.com"]["status"] == "signed in" and rows["your-username"]["status"] == "not signed in yet"


def test_the_migration_runs_as_a_runner_holding_only_the_printed_policy(aws, iam, demo, tmp_path, monkeypatch):
    """07's two phases with credentials that hold nothing but `iamrunbook permissions --apply` for this mode,
    every request authorised by resource and condition: no call is refused, and every call is the runner's."""
    import dataclasses

    from iamrunbook.cli import permissions
    from iamrunbook.cli.runner_scope_center import CenterScope
    from iamrunbook.sandbox import authorize
    from iamrunbook.sandbox.calls import ACCOUNT_ID

    params = {**demo, "grant_via": "identity_center"}
    instance = aws.client("sso-admin").list_instances()["Instances"][0]
    scope = permissions.scope_for({k: v for k, v in params.items() if k != "apply"}, account_id=ACCOUNT_ID)
    # moto's store ids are not AWS's d-<10 hex>, which the parameter insists on: the scope is given them directly
    scope = dataclasses.replace(scope, center=CenterScope(instance["InstanceArn"], instance["IdentityStoreId"]))
    arn = iam.create_policy(PolicyName="IamrunbookRunner",
                            PolicyDocument=permissions.runner_policy_json(True, scope))["Policy"]["Arn"]  # fmt: skip
    iam.create_user(UserName="runner")
    iam.attach_user_policy(UserName="runner", PolicyArn=arn)
    key = iam.create_access_key(UserName="runner")["AccessKey"]
    authorize.enforce(key["AccessKeyId"])
    try:
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        aws.clear_calls()
        code, phase1 = run(tmp_path, params, STEP)
        assert code == EXIT_OK, (phase1 / "run.json").read_text()
        ids = store_ids(aws)
        sign_in(aws, "alice@example.com", ids["alice@example.com"])
        code, phase2 = run(tmp_path, params, STEP)
        assert code == EXIT_OK, (phase2 / "run.json").read_text()
        refused = [(c.action, c.params) for c in aws.calls if c.status == 403]
        assert refused == []
        runner_calls = [c for c in aws.calls if c.principal == f"arn:aws:iam::{ACCOUNT_ID}:user/runner"]
        writes = {c.action for c in runner_calls if c.mutating and c.ok}
        assert {"CreateAccountAssignment", "CreateGroupMembership", "CreatePermissionSet", "TagUser"} <= writes
        assert "DeleteLoginProfile" in {c.action for c in runner_calls}  # allowed; alice never had a password
        assert RETIRED in users(iam)["alice@example.com"], "phase 2 retired alice as the runner"
    finally:
        authorize.release(key["AccessKeyId"])
