"""Parameters: unknown names and wrong types are errors (papermill only warns); defaults fill the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import DEFAULT_ROLES
from iamrunbook.core.params import PARAMETERS, check_params, from_namespace, load_params_file, validate_params

ROOT = Path(__file__).resolve().parents[1]


def test_defaults():
    merged = validate_params({})
    assert merged == {name: default for name, (default, _, _) in PARAMETERS.items()}
    assert merged["apply"] is False
    assert merged["max_deletions"] == 3
    assert merged["roles"] == DEFAULT_ROLES
    assert merged["aws_region"] == "us-east-1"
    assert merged["iam_users"] is None and merged["iam_users_file"] is None
    assert merged["legacy_policy_name"] == "AssumeRolesPolicy"


def test_given_values_override_defaults():
    merged = validate_params({"apply": True, "max_deletions": 0, "expected_account_id": "123456789012"})
    assert merged["apply"] is True
    assert merged["max_deletions"] == 0
    assert merged["expected_account_id"] == "123456789012"
    assert merged["aws_profile"] is None


def test_default_roles_are_not_shared_between_runs():
    merged = validate_params({})
    merged["roles"]["admin"] = "Changed"  # a notebook editing its own copy
    assert validate_params({})["roles"]["admin"] == "AdminRole"
    assert DEFAULT_ROLES["admin"] == "AdminRole"


def test_unknown_parameter():
    problems = check_params({"max_deletion": 3})
    assert len(problems) == 1
    assert problems[0].startswith("unknown parameter 'max_deletion'; allowed: aws_profile, aws_region")
    assert "max_deletions" in problems[0]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("max_deletions", True, "parameter max_deletions: expected int, got bool True"),
        ("max_deletions", "3", "parameter max_deletions: expected int, got str '3'"),
        ("max_deletions", 2.5, "parameter max_deletions: expected int, got float 2.5"),
        ("apply", 1, "parameter apply: expected bool, got int 1"),
        ("apply", "yes", "parameter apply: expected bool, got str 'yes'"),
        ("revoke_role_sessions", 0, "parameter revoke_role_sessions: expected bool, got int 0"),
        ("iam_users", ["bob"], "parameter iam_users: expected mapping or null, got list ['bob']"),
        ("roles", None, "parameter roles: expected mapping, got NoneType None"),
        ("aws_profile", 5, "parameter aws_profile: expected string or null, got int 5"),
        ("expected_account_id", 123456789012, "parameter expected_account_id: expected string or null"),
    ],
)
def test_wrong_types(name, value, expected):
    problems = check_params({name: value})
    assert len(problems) == 1
    assert problems[0].startswith(expected), problems[0]


def test_negative_max_deletions():
    assert check_params({"max_deletions": -1}) == ["parameter max_deletions: must be 0 or more"]


def test_both_spec_sources():
    problems = check_params({"iam_users": {}, "iam_users_file": "users.yaml"})
    assert problems == ["give either iam_users or iam_users_file, not both: one source of truth for the spec"]


def test_validate_raises_with_every_problem():
    with pytest.raises(SpecError) as err:
        validate_params({"apply": "true", "max_deletions": True, "colour": "blue"})
    assert len(err.value.problems) == 3
    assert str(err.value).count("\n") == 2


def test_valid_values_give_no_problems():
    params = {
        "aws_profile": "ops",
        "aws_region": "eu-west-1",
        "expected_account_id": "123456789012",
        "roles": {"admin": "AdminRole"},
        "iam_users": {"bob": {"roles": ["admin"]}},
        "legacy_detach_unmanaged": True,
        "apply": True,
        "max_deletions": 10,
        "offboard_user": "bob",
        "revoke_role_sessions": True,
    }
    assert check_params(params) == []


def test_load_params_file_example():
    params = load_params_file(ROOT / "parameters" / "example.yaml")
    assert check_params(params) == []
    assert params["roles"] == DEFAULT_ROLES
    assert set(params["iam_users"]) == {"your-username", "alice@example.com", "bob@example.com"}


def test_load_params_file_problems(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        load_params_file(tmp_path / "missing.yaml")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_params_file(empty) == {}
    listy = tmp_path / "list.yaml"
    listy.write_text("- apply\n")
    with pytest.raises(SpecError, match="YAML mapping"):
        load_params_file(listy)
    dup = tmp_path / "dup.yaml"
    dup.write_text("apply: false\napply: true\n")
    with pytest.raises(SpecError, match="duplicate key 'apply'"):
        load_params_file(dup)


def test_from_namespace_keeps_only_parameters():
    namespace = {"apply": True, "max_deletions": 1, "rb": object(), "__name__": "__main__"}
    assert from_namespace(namespace) == {"apply": True, "max_deletions": 1}
