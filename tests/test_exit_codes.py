"""What the CLI says and how it exits, so a scheduled job can act on it: each problem and pending change on its
own line (Terraform's style, at most 20, then where the rest are), exit 2 only when an apply would help, and
exit 1 for a problem no apply fixes — in both modes, so a job that applies on 2 never loops."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from iamrunbook.cli import cli
from iamrunbook.sandbox import seed

pytestmark = pytest.mark.e2e  # every test here runs notebooks in kernels

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "parameters" / "example.yaml"
ANY_ROLE = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}]}


def newest(out: Path) -> Path:
    return max((p for p in out.iterdir() if p.is_dir()), key=lambda p: p.name)


def converged(iam, tmp_path) -> Path:
    seed.seed_roles(iam)
    out = tmp_path / "runs"
    assert cli.main(["run", "03_import_and_apply", "-f", str(EXAMPLE), "--apply", "--out", str(out)]) == 0
    return out


def test_a_foreign_inline_assume_role_is_exit_1_in_both_modes(aws, iam, tmp_path, capsys):
    out = converged(iam, tmp_path)
    iam.create_user(UserName="mallory")
    iam.put_user_policy(UserName="mallory", PolicyName="sneaky", PolicyDocument=json.dumps(ANY_ROLE))
    capsys.readouterr()
    aws.clear_calls()
    assert cli.main(["run", "04_verify", "-f", str(EXAMPLE), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    assert "mallory can assume AdminRole via inline policy sneaky (not granted by the spec)" in captured.err
    assert aws.mutating_calls() == []
    assert cli.main(["run", "03_import_and_apply", "04_verify", "-f", str(EXAMPLE), "--apply", "--out", str(out)]) == 1
    assert aws.iam_backend().get_user("mallory").policies  # never touched: not the runbook's to remove


def test_pending_changes_are_exit_2_and_listed_like_terraform(aws, iam, tmp_path, capsys):
    out = converged(iam, tmp_path)
    bob_data = "arn:aws:iam::123456789012:policy/AssumeDataEngineerRolePolicy"
    iam.detach_user_policy(UserName="bob@example.com", PolicyArn=bob_data)
    iam.attach_user_policy(UserName="bob@example.com", PolicyArn=bob_data.replace("DataEngineer", "Admin"))
    capsys.readouterr()
    assert cli.main(["run", "03_import_and_apply", "04_verify", "-f", str(EXAMPLE), "--out", str(out)]) == 2
    printed = capsys.readouterr().out
    assert (
        'aws_iam_user_policy_attachment.user_roles["bob@example.com/data_engineer"]: grant DataEngineerRole' in printed
    )
    assert '- aws_iam_user_policy_attachment.user_roles["bob@example.com/admin"]: role no longer granted' in printed
    assert "Plan: 0 to import, 1 to add, 0 to change, 1 to destroy." in printed
    assert printed.count('user_roles["bob@example.com/admin"]') == 1  # each pending change said once
    assert "bob@example.com can assume AdminRole via attached policy AssumeAdminRolePolicy" in printed


def test_at_most_twenty_lines_then_where_the_rest_are(aws, iam, tmp_path, capsys):
    seed.seed_roles(iam)
    params = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    params["iam_users"] = {f"user{i:02d}": {"description": "", "roles": ["admin"]} for i in range(30)}
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    out = tmp_path / "runs"
    assert cli.main(["run", "03_import_and_apply", "-f", str(path), "-p", "max_deletions", "0", "--out", str(out)]) == 2
    printed = capsys.readouterr().out
    run_dir = newest(out)
    assert f"... and {63 - 20} more (see {run_dir}/plan.json)" in printed  # 3 policies, 30 users, 30 attachments
    assert printed.count("+ aws_iam_") == 20
