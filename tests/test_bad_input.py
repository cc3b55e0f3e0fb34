"""The bad-input corpus through `iamrunbook run --apply`: each one a clear error, exit 1, no change to AWS.

Every case runs against the legacy account with --apply, so a mistake that slipped through would have
something to change. Parameter and spec mistakes are refused before any notebook starts (no kernel, no
AWS call, no run folder); the two mistakes only the account can reveal (a wrong account, a role that
does not exist) fail inside a notebook before its first mutating call.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from iamrunbook.cli import cli
from iamrunbook.sandbox import seed

pytestmark = pytest.mark.e2e  # every test here runs notebooks in kernels

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "parameters" / "example.yaml"

GOOD_TFVARS = """\
iam_users = {
  "bob" = {
    description = "Bob - Data Engineer"
    roles       = ["data_engineer"]
  }
}
"""


def example(**overrides) -> dict:
    params = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    params.update(overrides)
    return params


def write(folder: Path, name: str, content) -> Path:
    path = folder / name
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content), encoding="utf-8")
    return path


BOB = {"description": "Bob - Data Engineer", "roles": ["data_engineer"]}

#: id -> (params file content, or None for a missing file; extra files {name: text}; words the error must name)
REFUSED_BEFORE_ANY_NOTEBOOK = {
    "malformed-yaml": (
        "roles: {admin: AdminRole\niam_users:\n  bob: {description: Bob, roles: [admin]}\n",
        {},
        ["params.yaml", "malformed YAML", "line"],
    ),
    "malformed-hcl": (
        {"iam_users_file": "{tmp}/users.tfvars"},
        {"users.tfvars": 'iam_users = {\n  "bob" = {\n    roles = ["admin"\n  }\n'},
        ["users.tfvars", "malformed HCL"],
    ),
    "missing-params-file": (None, {}, ["params.yaml", "does not exist"]),
    "missing-users-file": (
        {"iam_users_file": "{tmp}/nobody.tfvars"},
        {},
        ["iam_users_file", "nobody.tfvars", "does not exist"],
    ),
    "roles-as-a-string": (
        example(iam_users={"bob": {"description": "Bob", "roles": "admin, data_engineer"}}),
        {},
        ["bob: roles must be a list of role keys, got str 'admin, data_engineer'"],
    ),
    "roles-parameter-as-a-string": (
        example(roles="AdminRole"),
        {},
        ["parameter roles: expected mapping, got str 'AdminRole'"],
    ),
    "unknown-role": (
        example(iam_users={"bob": {"description": "Bob", "roles": ["data_enginer"]}}),
        {},
        ["bob: unknown role 'data_enginer'", "did you mean 'data_engineer'", "valid roles"],
    ),
    "duplicate-user-yaml": (
        "iam_users:\n  bob: {description: Bob, roles: [admin]}\n  bob: {description: Bob, roles: [data_engineer]}\n",
        {},
        ["params.yaml", "duplicate key 'bob' at line 3 (first at line 2)"],
    ),
    "duplicate-user-case": (
        example(iam_users={"bob": BOB, "Bob": BOB}),
        {},
        ["same IAM user as", "names are case-insensitive"],
    ),
    "duplicate-user-hcl": (
        {"iam_users_file": "{tmp}/users.tfvars"},
        {"users.tfvars": GOOD_TFVARS.replace("}\n}\n", '}\n  "bob" = {\n    roles = ["admin"]\n  }\n}\n')},
        ["users.tfvars", "duplicate key 'bob'"],
    ),
    "invalid-user-name": (
        example(iam_users={"bad name!": BOB}),
        {},
        ["invalid user name 'bad name!'"],
    ),
    "description-aws-refuses": (
        example(iam_users={"alice@example.com": {"description": "Alice - Platform Engineer (promoted)", "roles": []}}),
        {},
        ["alice@example.com: description", "contains '(' ')'"],
    ),
    "unknown-parameter": (example(colour="blue"), {}, ["unknown parameter 'colour'", "allowed: aws_profile"]),
    "wrong-parameter-type": (
        example(max_deletions="many", offboard_user=42),
        {},
        ["parameter max_deletions: expected int, got str 'many'", "parameter offboard_user: expected string or null"],
    ),
    "both-users-and-file": (
        example(iam_users_file="{tmp}/users.tfvars"),
        {"users.tfvars": GOOD_TFVARS},
        ["either iam_users or iam_users_file, not both"],
    ),
}


def _materialize(tmp_path: Path, content, files: dict[str, str]) -> Path:
    for name, text in files.items():
        write(tmp_path, name, text)
    path = tmp_path / "params.yaml"
    if content is None:
        return path
    if isinstance(content, dict):
        content = yaml.safe_dump(content).replace("{tmp}", str(tmp_path))
    return write(tmp_path, "params.yaml", content)


@pytest.fixture
def seeded(aws, iam):
    """The legacy account, then a clean call log: anything the run changes would show."""
    seed.seed_legacy_account(iam)
    aws.clear_calls()
    return aws


@pytest.mark.parametrize("case", REFUSED_BEFORE_ANY_NOTEBOOK)
def test_refused_before_any_notebook(seeded, tmp_path, capsys, case):
    content, files, words = REFUSED_BEFORE_ANY_NOTEBOOK[case]
    params = _materialize(tmp_path, content, files)
    out = tmp_path / "runs"

    code = cli.main(["run", "-f", str(params), "--apply", "--out", str(out)])

    assert code == 1
    captured = capsys.readouterr()
    for word in words:
        assert word.replace("{tmp}", str(tmp_path)) in captured.err, f"{word!r} not in {captured.err!r}"
    assert "Traceback" not in captured.err + captured.out
    assert seeded.mutating_calls() == []
    assert seeded.calls == []  # not even a read: nothing started
    assert not out.exists() or list(out.iterdir()) == []  # no run folder, so no kernel either


def test_every_problem_is_listed_in_one_pass(seeded, tmp_path, capsys):
    params = example(
        colour="blue",
        iam_users={
            "bob": {"description": "Bob (contractor)", "roles": ["superuser"]},
            "bad name!": {"description": "x", "roles": "admin"},
        },
    )
    path = write(tmp_path, "params.yaml", params)
    assert cli.main(["run", "-f", str(path), "--apply", "--out", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    assert "unknown parameter 'colour'" in err  # parameters first: the spec is only read once they are valid
    assert seeded.calls == []
    del params["colour"]
    write(tmp_path, "params.yaml", params)
    assert cli.main(["run", "-f", str(path), "--apply", "--out", str(tmp_path / "runs")]) == 1
    err = capsys.readouterr().err
    for word in ("bob: description 'Bob (contractor)'", "unknown role 'superuser'", "invalid user name 'bad name!'"):
        assert word in err
    assert seeded.calls == []


# --------------------------------------------------------------------------- only the account can tell


def test_expected_account_id_mismatch_changes_nothing(seeded, tmp_path, capsys):
    path = write(tmp_path, "params.yaml", example(expected_account_id="999999999999"))

    code = cli.main(["run", "-f", str(path), "--apply", "--out", str(tmp_path / "runs")])

    assert code == 1
    err = capsys.readouterr().err
    assert "FAILED: 01_gather_user_info: cell In [" in err
    assert "refused: these credentials are for account 123456789012, but expected_account_id is 999999999999" in err
    assert seeded.mutating_calls() == []
    assert {c.action for c in seeded.calls} == {"GetCallerIdentity"}  # refused right after asking who we are


def test_a_role_missing_from_the_account_changes_nothing(aws, iam, tmp_path, capsys):
    two_roles = {k: v for k, v in seed.ROLE_NAMES.items() if k != "infrastructure_admin"}
    seed.seed_legacy_account(iam, two_roles)  # the spec still grants infrastructure_admin
    aws.clear_calls()
    path = write(tmp_path, "params.yaml", example())

    code = cli.main(["run", "-f", str(path), "--apply", "--out", str(tmp_path / "runs")])

    assert code == 1
    err = capsys.readouterr().err
    assert "FAILED: 02_delete_legacy_policy: cell In [" in err
    assert "IAM role 'InfrastructureAdminRole' does not exist in account 123456789012" in err
    assert aws.mutating_calls() == []
    assert aws.calls, "the notebooks read the account before finding out"
