"""`iamrunbook demo` end to end: the README's first command, on its own embedded AWS."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from examples import EXAMPLE_ADDRESSES

from iamrunbook.cli.cli import main
from iamrunbook.sandbox.demo import run_demo


@pytest.mark.e2e
def test_demo_runs_the_whole_runbook_and_then_finds_no_drift(tmp_path, monkeypatch, capsys):
    """Seed; a plan-only run; that reviewed plan applied with --plan and --approved-by; a drift check that
    finds nothing; `audit verify` of the three runs."""
    monkeypatch.setenv("AWS_PROFILE", "someone-real")  # must never be used by the demo
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    lines: list[str] = []

    assert run_demo(main, out=tmp_path, echo=lines.append) == 0

    text = "\n".join(lines)
    printed = capsys.readouterr().out
    assert "http://127.0.0.1:" in text
    assert "imported 2 existing user(s) (your-username, alice@example.com), created 1 (bob@example.com)" in text
    assert "nobody was locked out" in text
    assert "04 verified: 12 addresses" in text
    assert "plan-only run exit code 0 (no drift)" in text
    assert "--apply --plan" in text and "--approved-by demo" in text
    assert "intact: every hash and link verifies" in printed
    # the environment is given back: nothing points at the stopped server, the profile is restored
    assert "AWS_ENDPOINT_URL" not in os.environ
    assert os.environ["AWS_PROFILE"] == "someone-real"

    plan_dir, apply_dir, check_dir = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert plan_dir.name.endswith("-plan") and apply_dir.name.endswith("-apply") and check_dir.name.endswith("-plan")
    codes = [json.loads((folder / "run.json").read_text())["exit_code"] for folder in (plan_dir, apply_dir, check_dir)]
    assert codes == [2, 0, 0]
    for folder in (plan_dir, apply_dir, check_dir):
        record = json.loads((folder / "run.json").read_text())
        assert [n["status"] for n in record["notebooks"]] == ["succeeded"] * 4
    reviewed = json.loads((apply_dir / "run.json").read_text())["reviewed_plan"]
    assert reviewed["run_id"] == plan_dir.name and reviewed["approved_by"] == "demo"
    verification = json.loads((apply_dir / "verification.json").read_text())
    assert verification["ok"] is True and verification["addresses"] == EXAMPLE_ADDRESSES
    backup = json.loads((apply_dir / "legacy_policy_backup.json").read_text())
    assert backup["versions"], "the legacy policy's document is in the backup"

    # ci-bot, an unmanaged user outside the spec, is left exactly as it was: its own inline policy, untagged
    with (check_dir / "inventory_users.csv").open() as fh:
        users = {row["user"]: row for row in csv.DictReader(fh)}
    assert users["ci-bot"]["managed"] == "False"
    assert users["ci-bot"]["inline_policies"] == "ci-bot-artifacts"
    assert users["ci-bot"]["attached_policies"] == ""
    assert set(users) == {"your-username", "alice@example.com", "bob@example.com", "ci-bot"}


def test_permissions_command_prints_the_runner_policy(capsys):
    assert main(["permissions"]) == 0
    plan_only = json.loads(capsys.readouterr().out)
    assert main(["permissions", "--apply"]) == 0
    with_apply = json.loads(capsys.readouterr().out)

    def actions(policy):
        return {a for s in policy["Statement"] for a in s["Action"]}

    assert "iam:GetAccountAuthorizationDetails" in actions(plan_only)
    assert "iam:AttachUserPolicy" not in actions(plan_only)
    assert {"iam:AttachUserPolicy", "iam:DeleteUser", "iam:DeletePolicy"} <= actions(with_apply)
    assert actions(plan_only) < actions(with_apply)


def test_keep_running_prints_the_environment_to_paste_and_stops_on_ctrl_c(monkeypatch, tmp_path):
    from iamrunbook.sandbox import EmbeddedAws, demo

    def interrupt(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr(demo.time, "sleep", interrupt)
    lines: list[str] = []
    with EmbeddedAws(load_aws_managed_policies=False) as aws:
        demo._serve_until_interrupted(aws, tmp_path, lines.append)
        endpoint = aws.endpoint
    assert f"  export AWS_ENDPOINT_URL={endpoint}" in lines
    assert any(line.startswith("  export AWS_ACCESS_KEY_ID=") for line in lines)
    assert any(" -m jupyter lab /" in line for line in lines) and "Press Ctrl-C to stop." in lines
    assert lines[-1] == "stopped"


def test_demo_accounts_env_serves_as_a_fixture_and_stops_cleanly_on_sigterm(tmp_path, monkeypatch):
    """`demo --accounts --keep-running --env FILE`: FILE holds every setting a scheduler needs while it serves;
    SIGTERM stops it as Ctrl-C does, and the temporary folder and FILE are gone after."""
    import signal
    import threading

    import yaml

    from iamrunbook.sandbox.demo import run_accounts_demo

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    env_file, seen = tmp_path / "fixture.env", {}

    def look_then_stop():
        while not env_file.is_file():
            threading.Event().wait(0.05)
        seen.update(line.split("=", 1) for line in env_file.read_text().splitlines())
        seen["mode"] = oct(env_file.stat().st_mode & 0o777)
        seen["accounts"] = yaml.safe_load(Path(seen["IAMRUNBOOK_ACCOUNTS"]).read_text())["accounts"]
        os.kill(os.getpid(), signal.SIGTERM)

    watcher = threading.Thread(target=look_then_stop)
    watcher.start()
    lines: list[str] = []
    assert run_accounts_demo(main, out=tmp_path / "runs", keep_running=True, echo=lines.append, env_file=env_file) == 0
    watcher.join()

    assert seen["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:") and seen["IAMRUNBOOK_OUT"] == str(tmp_path / "runs")
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} <= set(seen) and seen["mode"] == "0o600"
    assert seen["accounts"] == "from_organization"
    assert lines[-1] == "stopped" and not any("plan:" in line for line in lines)  # served at once: no walk-through
    assert not env_file.exists() and not Path(seen["IAMRUNBOOK_ACCOUNTS"]).parent.exists()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL and "AWS_ENDPOINT_URL" not in os.environ


def test_demo_env_goes_with_accounts_and_keep_running(tmp_path, capsys):
    assert main(["demo", "--env", str(tmp_path / "e")]) == 1
    assert main(["demo", "--accounts", "--env", str(tmp_path / "e")]) == 1
    assert "--env goes with --accounts --keep-running" in capsys.readouterr().err
    assert not (tmp_path / "e").exists()
