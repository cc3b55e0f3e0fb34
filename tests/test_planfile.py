"""Reviewed plans through the CLI on the strict embedded AWS: `iamrunbook run --apply --plan RUN --approved-by`
applies exactly the reviewed plan, or refuses before any change, naming what differs."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from iamrunbook.base import records
from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import policy_arn
from iamrunbook.cli import cli
from iamrunbook.core.changes import Change
from iamrunbook.core.plan import Plan
from iamrunbook.runs import planfile
from iamrunbook.sandbox import ACCOUNT_ID, seed

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "parameters" / "example.yaml"
CHAIN_CALLS = 9 + 5  # the migration's steps, then 03's on the account the migration left


def newest(out: Path) -> Path:
    return max((p for p in out.iterdir() if p.is_dir()), key=lambda p: p.name)


def plan_only(out: Path, *notebooks: str, params: str = str(EXAMPLE)) -> Path:
    assert cli.main(["run", *notebooks, "-f", params, "--out", str(out)]) == 2
    return newest(out)


def apply_reviewed(out: Path, planned: Path, *notebooks: str, params: str = str(EXAMPLE), extra=()) -> int:
    argv = ["run", *notebooks, "-f", params, "--apply", "--plan", str(planned), "--approved-by", "rita", *extra]
    return cli.main([*argv, "--out", str(out)])


@pytest.mark.e2e
def test_a_reviewed_chain_applies_exactly_the_reviewed_plan(aws, legacy_account, tmp_path, capsys):
    out = tmp_path / "runs"
    planned = plan_only(out)
    saved_plan = records.read(planned, records.PLAN)
    saved_migration = records.read(planned, records.LEGACY_PLAN)
    aws.clear_calls()

    assert apply_reviewed(out, planned) == 0, capsys.readouterr()
    applied = newest(out)
    manifest = json.loads((applied / "run.json").read_text(encoding="utf-8"))
    provenance = manifest["reviewed_plan"]
    assert provenance["run_id"] == planned.name and provenance["approved_by"] == "rita"
    assert provenance["sha256"] == json.loads((planned / "run.json").read_text())["artifacts"]["plan.json"]
    # what ran is what was reviewed: one mutating call per reviewed change, in the reviewed order
    done = records.read(applied, records.APPLY_RESULT).changes
    assert [row["address"] for row in done] == [c.address for c in saved_plan.changes]
    steps = records.read(applied, records.LEGACY_RESULT).steps
    assert [row["address"] for row in steps] == [c.address for c in saved_migration.steps]
    assert len([c for c in aws.mutating_calls() if c.service == "iam"]) == len(steps) + len(done)
    assert "applying the reviewed plan" in (applied / "03_import_and_apply.ipynb").read_text(encoding="utf-8")


def refused(capsys, out: Path, planned: Path, aws, *notebooks: str, params: str = str(EXAMPLE)) -> str:
    aws.clear_calls()
    assert apply_reviewed(out, planned, *notebooks, params=params) == 1
    assert aws.mutating_calls() == []
    record = json.loads((newest(out) / "run.json").read_text(encoding="utf-8"))
    assert all(n["status"] == "not run" for n in record["notebooks"])  # refused before the first notebook
    return capsys.readouterr().err


@pytest.mark.e2e
def test_a_user_added_by_hand_after_the_review_is_refused(aws, legacy_account, iam, tmp_path, capsys):
    out = tmp_path / "runs"
    planned = plan_only(out, "03_import_and_apply")
    iam.create_user(UserName="bob@example.com")  # made by hand: the plan would import, not create, bob
    err = refused(capsys, out, planned, aws, "03_import_and_apply")
    assert 'added since the review: <= aws_iam_user.users["bob@example.com"]' in err
    assert 'no longer planned: + aws_iam_user.users["bob@example.com"]: create user' in err


@pytest.mark.e2e
def test_an_attachment_removed_and_a_document_edited_are_named(aws, legacy_account, iam, tmp_path, capsys):
    out = tmp_path / "runs"
    seed.seed_roles(iam, {"extra": "ExtraRole"})
    assert cli.main(["run", "-f", str(EXAMPLE), "--apply", "--out", str(out)]) == 0
    alice_data = policy_arn(ACCOUNT_ID, "AssumeDataEngineerRolePolicy")
    iam.detach_user_policy(UserName="alice@example.com", PolicyArn=alice_data)
    planned = plan_only(out, "03_import_and_apply")
    iam.attach_user_policy(UserName="alice@example.com", PolicyArn=alice_data)  # fixed by hand after the review
    wide = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}
    admin = policy_arn(ACCOUNT_ID, "AssumeAdminRolePolicy")
    iam.create_policy_version(PolicyArn=admin, PolicyDocument=json.dumps(wide), SetAsDefault=True)
    err = refused(capsys, out, planned, aws, "03_import_and_apply")
    assert 'no longer planned: + aws_iam_user_policy_attachment.user_roles["alice@example.com/data_engineer"]' in err
    assert 'added since the review: ~ aws_iam_policy.assume_role["admin"]: document differs' in err


@pytest.mark.e2e
def test_a_spec_edit_after_the_review_is_refused(aws, legacy_account, tmp_path, capsys):
    out = tmp_path / "runs"
    planned = plan_only(out, "03_import_and_apply")
    params = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    params["iam_users"]["bob@example.com"]["roles"] = ["admin"]
    edited = tmp_path / "edited.yaml"
    edited.write_text(yaml.safe_dump(params), encoding="utf-8")
    err = refused(capsys, out, planned, aws, "03_import_and_apply", params=str(edited))
    assert 'added since the review: + aws_iam_user_policy_attachment.user_roles["bob@example.com/admin"]' in err
    assert 'altered: aws_iam_user.users["bob@example.com"] (create_user): tags' in err


@pytest.mark.e2e
def test_other_notebooks_than_the_reviewed_run_are_refused(aws, legacy_account, tmp_path, capsys):
    out = tmp_path / "runs"
    planned = plan_only(out, "03_import_and_apply")
    err = refused(capsys, out, planned, aws)
    assert "this run would run 01_gather_user_info, 02_delete_legacy_policy, 03_import_and_apply" in err


def test_another_account_or_roles_map_is_a_difference():
    change = Change("create_user", 'aws_iam_user.users["a"]', "create user, tagged", user="a")
    saved = Plan((change,), "111111111111", "arn:aws:iam::111111111111:user/x", {"admin": "AdminRole"})
    fresh = Plan((change,), "222222222222", "arn:aws:iam::222222222222:user/x", {"admin": "OtherRole"})
    lines = planfile.plan_diff("03", saved, fresh)
    assert lines == [
        "03: account 222222222222, but the plan was reviewed for account 111111111111",
        "03: roles {'admin': 'OtherRole'}, but the plan was reviewed with roles {'admin': 'AdminRole'}",
    ]
    assert planfile.plan_diff("03", saved, saved) == []


@pytest.mark.e2e
def test_an_expired_or_edited_plan_and_missing_flags_are_refused(aws, legacy_account, tmp_path, capsys):
    out = tmp_path / "runs"
    planned = plan_only(out, "03_import_and_apply")
    later = datetime.now(timezone.utc) + timedelta(hours=25)
    with pytest.raises(SpecError, match=r"the plan is 25\.0 h old, older than --max-plan-age 24\.0 h"):
        planfile.load(planned, now=later)
    aws.clear_calls()
    assert apply_reviewed(out, planned, "03_import_and_apply", extra=["--max-plan-age", "0s"]) == 1
    assert "older than --max-plan-age 0.0 h" in capsys.readouterr().err
    assert cli.main(["run", "03_import_and_apply", "-f", str(EXAMPLE), "--apply", "--plan", str(planned)]) == 1
    assert "--plan needs --approved-by NAME" in capsys.readouterr().err
    (planned / "plan.json").write_text((planned / "plan.json").read_text() + " ", encoding="utf-8")
    assert apply_reviewed(out, planned, "03_import_and_apply") == 1
    assert "plan.json was modified after the plan was made" in capsys.readouterr().err
    assert aws.mutating_calls() == []
