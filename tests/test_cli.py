"""`iamrunbook run` and `iamrunbook demo` as an operator (or cron) meets them: exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

from iamrunbook.base.names import MANAGED_BY_KEY, MANAGED_BY_VALUE
from iamrunbook.base.shipped import shipped_dir
from iamrunbook.cli import cli

EXAMPLE = shipped_dir("parameters") / "example.yaml"


def params_file(tmp_path: Path, **overrides) -> str:
    params = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    params.update(overrides)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params), encoding="utf-8")
    return str(path)


def run_folders(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir()) if out.exists() else []


# --- refused before any kernel -----------------------------------------------------------------------
@pytest.mark.e2e
def test_unknown_parameter_is_refused_before_any_aws_call(aws, tmp_path, capsys):
    out = tmp_path / "runs"
    code = cli.main(["run", "-f", str(EXAMPLE), "-p", "colour", "blue", "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "unknown parameter 'colour'" in err and "aws_region" in err  # names the allowed ones
    assert aws.calls == [] and run_folders(out) == []


@pytest.mark.e2e
def test_wrong_type_is_refused_with_the_expected_type(aws, tmp_path, capsys):
    out = tmp_path / "runs"
    path = params_file(tmp_path, apply="yes please")
    code = cli.main(["run", "-f", path, "-p", "max_deletions", "many", "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "parameter apply: expected bool" in err
    assert "parameter max_deletions: expected int, got str 'many'" in err
    assert aws.calls == [] and run_folders(out) == []


@pytest.mark.e2e
def test_a_number_given_for_a_text_parameter_gets_a_hint(aws, tmp_path, capsys):
    code = cli.main(["run", "-f", str(EXAMPLE), "-p", "expected_account_id", "123456789012", "--out", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert "parameter expected_account_id: expected string or null, got int" in err
    assert "quote a number" in err
    assert aws.calls == []


@pytest.mark.e2e
def test_missing_parameters_file_and_unknown_notebook(aws, tmp_path, capsys):
    assert cli.main(["run", "-f", str(tmp_path / "nope.yaml"), "--out", str(tmp_path)]) == 1
    assert "nope.yaml does not exist" in capsys.readouterr().err
    assert cli.main(["run", "06_everything", "-f", str(EXAMPLE), "--out", str(tmp_path)]) == 1
    assert "no notebook '06_everything'" in capsys.readouterr().err
    assert aws.calls == [] and run_folders(tmp_path) == []


@pytest.mark.e2e
def test_parameters_file_is_required():
    with pytest.raises(SystemExit) as exc:
        cli.main(["run"])
    assert exc.value.code == 2  # argparse's usage error


# --- refused inside a notebook -----------------------------------------------------------------------
@pytest.mark.e2e
def test_wrong_account_is_refused_with_zero_mutating_calls(aws, legacy_account, tmp_path, capsys):
    aws.clear_calls()
    path = params_file(tmp_path, expected_account_id="999999999999")
    code = cli.main(["run", "03_import_and_apply", "-f", path, "--apply", "--out", str(tmp_path / "runs")])
    assert code == 1
    assert aws.mutating_calls() == []
    captured = capsys.readouterr()
    assert "FAILED: 03_import_and_apply: cell In [" in captured.err
    assert "SafetyError: refused: these credentials are for account 123456789012" in captured.err
    assert "Traceback" not in captured.err + captured.out
    (folder,) = run_folders(tmp_path / "runs")
    record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    assert record["exit_code"] == 1 and record["account_id"] == "123456789012"
    assert record["parameters"]["expected_account_id"] == "999999999999" and record["parameters"]["apply"] is True


@pytest.mark.e2e
def test_too_many_deletions_is_refused_before_any_change(aws, iam, tmp_path, capsys):
    from iamrunbook.sandbox import seed

    seed.seed_roles(iam)
    for name in ("gone-1", "gone-2"):
        iam.create_user(UserName=name, Tags=[{"Key": MANAGED_BY_KEY, "Value": MANAGED_BY_VALUE}])
    aws.clear_calls()
    code = cli.main(
        ["run", "03_import_and_apply", "-f", str(EXAMPLE), "--apply", "-p", "max_deletions", "1"]
        + ["--out", str(tmp_path)]
    )
    assert code == 1
    assert aws.mutating_calls() == []
    err = capsys.readouterr().err
    assert "SafetyError: refused before any change:" in err and "max_deletions=1" in err


@pytest.mark.e2e
def test_invalid_spec_is_refused_before_any_notebook(aws, legacy_account, tmp_path, capsys):
    path = params_file(tmp_path, iam_users={"carol": {"description": "Carol (contractor)", "roles": ["admin"]}})
    aws.clear_calls()
    code = cli.main(["run", "03_import_and_apply", "-f", path, "--out", str(tmp_path / "runs")])
    assert code == 1
    err = capsys.readouterr().err
    assert "refused before starting any notebook" in err
    assert "carol: description 'Carol (contractor)' contains '(' ')'" in err
    assert run_folders(tmp_path / "runs") == []
    assert aws.calls == []


MISSING_ROLE = {"admin": "AdminRole", "data_engineer": "DataEngineerRole", "infrastructure_admin": "GoneRole"}


@pytest.mark.e2e
def test_a_failed_cell_says_which_and_why(aws, legacy_account, tmp_path, capsys):
    path = params_file(tmp_path, roles=MISSING_ROLE)
    code = cli.main(["run", "03_import_and_apply", "-f", path, "--out", str(tmp_path / "runs")])
    assert code == 1
    captured = capsys.readouterr()
    assert "FAILED: 03_import_and_apply: cell In [" in captured.err and "(plan = apply.record_plan(rb" in captured.err
    assert "SpecError:" in captured.err and "'GoneRole' does not exist" in captured.err
    assert "Traceback" not in captured.err + captured.out
    (folder,) = run_folders(tmp_path / "runs")
    assert f"run folder: {folder}" in captured.out
    assert str(folder / "03_import_and_apply.ipynb") in captured.err
    assert (folder / "03_import_and_apply.ipynb").is_file() and (folder / "03_import_and_apply.html").is_file()


# --- offboarding -------------------------------------------------------------------------------------
@pytest.mark.e2e
def test_offboard_plan_is_pending_then_apply_removes_the_user(aws, legacy_account, iam, tmp_path, capsys):
    iam.create_user(UserName="dave")
    iam.create_access_key(UserName="dave")
    iam.create_login_profile(UserName="dave", Password="Not-a-real-one-42!")
    iam.attach_user_policy(UserName="dave", PolicyArn=legacy_account["policy_arn"])  # dave can assume all 3 roles
    aws.clear_calls()
    args = ["run", "05_offboard_user", "-f", str(EXAMPLE), "-p", "offboard_user", "dave", "--out", str(tmp_path)]

    assert cli.main(args) == 2
    assert aws.mutating_calls() == []
    assert "offboarding of dave pending" in capsys.readouterr().out

    assert cli.main([*args, "--apply", "-p", "revoke_role_sessions", "true"]) == 0
    assert not any(u.name == "dave" for u in aws.iam_backend().users.values())
    for role in ("AdminRole", "DataEngineerRole", "InfrastructureAdminRole"):
        document = iam.get_role_policy(RoleName=role, PolicyName="AWSRevokeOlderSessions")["PolicyDocument"]
        assert document["Statement"][0]["Effect"] == "Deny"
    folder = next(p for p in run_folders(tmp_path) if p.name.endswith("-apply"))
    credentials = json.loads((folder / "offboard_dave_credentials.json").read_text(encoding="utf-8"))
    assert credentials["exists"] is True and credentials["login_profile"]["exists"] is True
    record = json.loads((folder / "offboard.json").read_text(encoding="utf-8"))
    assert record["applied"] is True and record["steps"][-1]["action"] == "DeleteUser"
    # no secret in the run folder: the key id is masked, the password never read
    text = "".join(p.read_text(encoding="utf-8", errors="replace") for p in folder.rglob("*") if p.is_file())
    assert "Not-a-real-one-42!" not in text
    assert credentials["access_keys"][0]["access_key_id"].count("*") > 0


@pytest.mark.e2e
def test_offboard_without_a_user_has_nothing_to_do(aws, legacy_account, tmp_path, capsys):
    aws.clear_calls()
    assert cli.main(["run", "05_offboard_user", "-f", str(EXAMPLE), "--apply", "--out", str(tmp_path)]) == 0
    assert aws.mutating_calls() == []
    (folder,) = run_folders(tmp_path)
    executed = (folder / "05_offboard_user.ipynb").read_text(encoding="utf-8")
    assert "offboard_user is not set: nothing to do." in executed


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ("bob@example.com", "still in iam_users"),  # the next run would recreate them
        # the embedded AWS's caller is arn:aws:sts::123456789012:user/moto
        ("moto", "is the identity running this runbook"),
    ],
)
def test_offboard_refusals_change_nothing(aws, legacy_account, iam, tmp_path, capsys, user, message):
    iam.create_user(UserName=user)
    aws.clear_calls()
    args = ["run", "05_offboard_user", "-f", str(EXAMPLE), "-p", "offboard_user", user, "--apply"]
    assert cli.main([*args, "--out", str(tmp_path)]) == 1
    assert message in capsys.readouterr().err
    assert aws.mutating_calls() == []
    assert iam.get_user(UserName=user)["User"]["UserName"] == user


def test_offboard_of_a_user_already_gone_succeeds(aws, legacy_account, tmp_path, capsys):
    aws.clear_calls()
    args = ["run", "05_offboard_user", "-f", str(EXAMPLE), "-p", "offboard_user", "ghost", "--apply"]
    assert cli.main([*args, "--out", str(tmp_path)]) == 0
    assert aws.mutating_calls() == []
    (folder,) = run_folders(tmp_path)
    assert "already gone" in (folder / "05_offboard_user.ipynb").read_text(encoding="utf-8")


# --- the rest of the command -------------------------------------------------------------------------
@pytest.mark.e2e
def test_demo_subcommand_calls_run_demo(monkeypatch, tmp_path):
    seen = {}

    def run_demo(main, out, keep_running):
        seen.update(out=out, keep_running=keep_running)
        return 0

    monkeypatch.setitem(sys.modules, "iamrunbook.sandbox.demo", types.SimpleNamespace(run_demo=run_demo))
    assert cli.main(["demo", "--out", str(tmp_path), "--keep-running"]) == 0
    assert seen == {"out": str(tmp_path), "keep_running": True}


@pytest.mark.e2e
def test_python_m_iamrunbook_shows_the_run_usage():
    done = subprocess.run(
        [sys.executable, "-m", "iamrunbook", "run", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0
    assert "-f PARAMS.yaml" in done.stdout and "--apply" in done.stdout and "NOTEBOOK" in done.stdout
