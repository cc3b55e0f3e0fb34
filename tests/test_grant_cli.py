"""`iamrunbook grant` / `revoke`: the temporary grant written into the spec file (YAML or tfvars, comments
and order kept), bad input refused with nothing written and nothing changed, then the ordinary run."""

from __future__ import annotations

from pathlib import Path

import pytest
from examples import EXAMPLE_TFVARS
from test_cli import run_folders

from iamrunbook.aws.sweep import read_inventory
from iamrunbook.cli import cli
from iamrunbook.core.spec import load_spec
from iamrunbook.core.terraform import load_tfvars
from iamrunbook.sandbox import seed

EXAMPLE = Path(__file__).resolve().parents[1] / "parameters" / "example.yaml"
#: the example spec as tfvars, with a comment inside iam_users that a grant must keep
TFVARS = EXAMPLE_TFVARS.replace('  "alice@example.com" = {', '  # Alice, on call this week\n  "alice@example.com" = {')


def yaml_params(tmp_path: Path) -> Path:
    path = tmp_path / "params.yaml"
    path.write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def tfvars_params(tmp_path: Path) -> tuple[Path, Path]:
    spec = tmp_path / "users.auto.tfvars"
    spec.write_text(TFVARS, encoding="utf-8")
    params = tmp_path / "params.yaml"
    params.write_text(f"# plan the tfvars spec\niam_users_file: {spec}\n", encoding="utf-8")
    return params, spec


BAD = [
    (["grant", "carol", "admin", "--for", "4h", "--reason", "x"], "'carol' is not in the spec"),
    (["grant", "alice@example.com", "root", "--for", "4h", "--reason", "x"], "unknown role 'root'"),
    (["grant", "alice@example.com", "admin", "--for", "4 hours", "--reason", "x"], "allowed: a whole number"),
    (["grant", "alice@example.com", "admin", "--for", "31d", "--reason", "x"], "more than max_temporary_days (30)"),
    (["grant", "alice@example.com", "admin", "--until", "2026-12-31 18:00", "--reason", "x"], "--until"),
    (["grant", "alice@example.com", "admin", "--for", "4h", "--reason", " "], "a reason is required"),
    (["grant", "alice@example.com", "data_engineer", "--for", "4h", "--reason", "x"], "already granted for good"),
    (["revoke", "alice@example.com", "admin"], "holds no temporary grant of 'admin'"),
]


@pytest.mark.parametrize("args, message", BAD, ids=[m for _, m in BAD])
@pytest.mark.parametrize("kind", ["yaml", "tfvars"])
def test_bad_input_changes_nothing(aws, tmp_path, capsys, args, message, kind):
    params, spec = (yaml_params(tmp_path),) * 2 if kind == "yaml" else tfvars_params(tmp_path)
    before = spec.read_text(encoding="utf-8"), params.read_text(encoding="utf-8")
    out = tmp_path / "runs"
    assert cli.main([*args, "-f", str(params), "--out", str(out), "--apply"]) == 1
    err = capsys.readouterr().err
    assert message in err and "nothing changed" in err
    assert (spec.read_text(encoding="utf-8"), params.read_text(encoding="utf-8")) == before
    assert aws.calls == [] and run_folders(out) == []


@pytest.mark.e2e
def test_grant_then_revoke_keep_the_tfvars_comments_and_order(aws, iam, tmp_path, capsys):
    seed.seed_roles(iam)
    aws.clear_calls()
    params, spec = tfvars_params(tmp_path)
    out = tmp_path / "runs"
    args = ["grant", "alice@example.com", "admin", "--for", "4h", "--reason", "INC-1234 restore", "-f", str(params)]
    assert cli.main([*args, "--out", str(out)]) == 2  # plan only: pending, nothing changed
    assert aws.mutating_calls() == []
    printed = capsys.readouterr().out
    assert "may assume AdminRole until" in printed and "AssumeAdminRolePolicyUntil" in printed
    text = spec.read_text(encoding="utf-8")
    assert text.startswith(TFVARS.split("\n  # Alice")[0])  # the header, the owner and the comments above stay
    assert "# Alice, on call this week" in text
    users = load_tfvars(text)
    assert list(users) == ["your-username", "alice@example.com", "bob@example.com"]
    assert users["alice@example.com"]["temporary"][0]["reason"] == "INC-1234 restore"

    assert cli.main(["revoke", "alice@example.com", "admin", "-f", str(params), "--out", str(out)]) == 2
    assert spec.read_text(encoding="utf-8") == TFVARS  # back as it was written


@pytest.mark.e2e
def test_grant_apply_makes_it_and_revoke_apply_removes_it(aws, iam, sts, tmp_path, capsys):
    seed.seed_roles(iam)
    params = yaml_params(tmp_path)
    out = tmp_path / "runs"
    grant = ["grant", "bob@example.com", "admin", "--for", "90m", "--reason", "INC-9 on call", "-f", str(params)]
    assert cli.main([*grant, "--apply", "--out", str(out)]) == 0
    text = params.read_text(encoding="utf-8")
    assert text.startswith("# The example spec") and "role key -> IAM role name" in text  # comments kept
    spec = load_spec(iam_users_file=params)
    assert [t.role for t in spec.users["bob@example.com"].temporary] == ["admin"]
    inv = read_inventory(iam, sts)
    held = [p["PolicyName"] for p in inv.users["bob@example.com"]["AttachedManagedPolicies"]]
    assert any(name.startswith("AssumeAdminRolePolicyUntil") for name in held)
    capsys.readouterr()
    assert cli.main(["revoke", "bob@example.com", "admin", "-f", str(params), "--apply", "--out", str(out)]) == 0
    assert params.read_text(encoding="utf-8") == EXAMPLE.read_text(encoding="utf-8")
    assert not [p for p in read_inventory(iam, sts).policies if "Until" in p]
