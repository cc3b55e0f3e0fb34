"""Spec loading and validation: YAML and tfvars give the same spec; every problem is reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from examples import EXAMPLE_TFVARS

from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import DEFAULT_ROLES
from iamrunbook.core.spec import Spec, UserSpec, load_hcl, load_spec, load_yaml, tag_value_problem

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_YAML = ROOT / "parameters" / "example.yaml"
VALID_ROLES = "valid roles: admin, data_engineer, infrastructure_admin"


EXPECTED_USERS = {
    "your-username": UserSpec(
        "your-username", "Account owner - full access", ("admin", "data_engineer", "infrastructure_admin")
    ),
    "alice@example.com": UserSpec(
        "alice@example.com", "Alice - Platform Engineer", ("data_engineer", "infrastructure_admin")
    ),
    "bob@example.com": UserSpec("bob@example.com", "Bob - Data Engineer", ("data_engineer",)),
}


def problems_of(iam_users=None, **kwargs) -> list[str]:
    with pytest.raises(SpecError) as err:
        load_spec(iam_users, **kwargs)
    return err.value.problems


def one_problem(iam_users, **kwargs) -> str:
    problems = problems_of(iam_users, **kwargs)
    assert len(problems) == 1, problems
    return problems[0]


# --- loading -----------------------------------------------------------------------------------------


def test_example_yaml_loads_the_three_users():
    spec = load_spec(iam_users_file=EXAMPLE_YAML)
    assert spec.users == EXPECTED_USERS
    assert list(spec.users) == ["your-username", "alice@example.com", "bob@example.com"]
    assert spec.roles == DEFAULT_ROLES
    assert spec.source == str(EXAMPLE_YAML)


def test_tfvars_gives_the_same_spec_as_yaml(tmp_path):
    tfvars = tmp_path / "iam_users.auto.tfvars"
    tfvars.write_text(EXAMPLE_TFVARS)
    from_hcl = load_spec(iam_users_file=tfvars)
    from_yaml = load_spec(iam_users_file=EXAMPLE_YAML)
    assert from_hcl == from_yaml
    assert from_hcl.users == EXPECTED_USERS  # quotes stripped from keys and values
    assert from_hcl.source == str(tfvars)


def test_inline_mapping_gives_the_same_spec():
    spec = load_spec(load_yaml(EXAMPLE_YAML.read_text())["iam_users"])
    assert spec == load_spec(iam_users_file=EXAMPLE_YAML)
    assert spec.source is None


def test_relative_file_resolves_against_base_dir(tmp_path):
    (tmp_path / "users.yaml").write_text("iam_users:\n  carol: {description: Carol, roles: [admin]}\n")
    spec = load_spec(iam_users_file="users.yaml", base_dir=tmp_path)
    assert spec.users == {"carol": UserSpec("carol", "Carol", ("admin",))}


def test_spec_helpers():
    spec = load_spec(iam_users_file=EXAMPLE_YAML)
    assert spec.grants() == {
        ("your-username", "admin"),
        ("your-username", "data_engineer"),
        ("your-username", "infrastructure_admin"),
        ("alice@example.com", "data_engineer"),
        ("alice@example.com", "infrastructure_admin"),
        ("bob@example.com", "data_engineer"),
    }
    assert spec.policy_names() == {
        "admin": "AssumeAdminRolePolicy",
        "data_engineer": "AssumeDataEngineerRolePolicy",
        "infrastructure_admin": "AssumeInfrastructureAdminRolePolicy",
    }
    assert load_spec(spec.to_mapping()) == spec


def test_custom_role_mapping():
    spec = load_spec({"carol": {"roles": ["ops"]}}, roles={"ops": "OpsRole"})
    assert spec.roles == {"ops": "OpsRole"}
    assert spec.policy_names() == {"ops": "AssumeOpsRolePolicy"}


def test_both_sources_is_an_error():
    problem = one_problem({"bob": {"roles": []}}, iam_users_file=EXAMPLE_YAML)
    assert "either iam_users or iam_users_file, not both" in problem


def test_no_source_is_an_error():
    assert "no spec" in one_problem(None)


def test_missing_file(tmp_path):
    problem = one_problem(None, iam_users_file=tmp_path / "nope.yaml")
    assert "nope.yaml does not exist" in problem


def test_unknown_extension(tmp_path):
    path = tmp_path / "users.txt"
    path.write_text("iam_users: {}\n")
    assert "unknown extension" in one_problem(None, iam_users_file=path)


def test_file_without_iam_users(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text("roles: {admin: AdminRole}\n")
    assert "no top-level `iam_users`" in one_problem(None, iam_users_file=path)


def test_malformed_yaml(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("iam_users:\n  bob: {roles: [admin\n")
    problem = one_problem(None, iam_users_file=path)
    assert problem.startswith(f"{path}: malformed YAML")
    assert "line" in problem


def test_malformed_hcl(tmp_path):
    path = tmp_path / "bad.tfvars"
    path.write_text('iam_users = {\n  "bob" = { roles = [ }\n')
    problem = one_problem(None, iam_users_file=path)
    assert problem.startswith(f"{path}: malformed HCL")
    assert "\n" not in problem  # one line, not a parser dump


# --- validation: every error of issue 2 ------------------------------------------------------------


def test_unknown_role_with_closest_match_hint():
    problem = one_problem({"bob@example.com": {"description": "Bob", "roles": ["data-engineer"]}})
    assert problem == (
        "bob@example.com: unknown role 'data-engineer' (did you mean 'data_engineer'?); "
        "valid roles: admin, data_engineer, infrastructure_admin"
    )


def test_unknown_role_without_close_match_has_no_hint():
    problem = one_problem({"bob": {"roles": ["finance"]}})
    assert problem == f"bob: unknown role 'finance'; {VALID_ROLES}"


@pytest.mark.parametrize(
    "name",
    ["bad name!", "a" * 65, "", "josé", "bob/smith", "tab\tname", "semi;colon"],
)
def test_invalid_user_names(name):
    problem = one_problem({name: {"description": "x", "roles": []}})
    assert problem.startswith(f"{name}: invalid user name {name!r}")
    assert "1-64 characters of letters, digits and + = , . @ _ -" in problem


def test_non_string_user_name():
    assert one_problem({42: {"roles": []}}) == "42: user name must be a string, got int"


@pytest.mark.parametrize("name", ["a" * 64, "x", "first.last+tag=1@example.com", "under_score-dash"])
def test_valid_user_names(name):
    assert load_spec({name: {"roles": ["admin"]}}).users[name].roles == ("admin",)


def test_comma_in_user_name_cannot_be_tagged():
    problem = one_problem({"smith,john": {"roles": []}})
    assert problem.startswith("smith,john: ")
    assert "','" in problem and "Name tag" in problem


def test_duplicate_user_in_yaml(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text(
        "iam_users:\n"
        "  bob:\n    description: Bob\n    roles: [admin]\n"
        "  alice:\n    roles: []\n"
        "  bob:\n    description: Bob again\n    roles: []\n"
    )
    problem = one_problem(None, iam_users_file=path)
    assert problem == (
        f"{path}: duplicate key 'bob' at line 7 (first at line 2): each user and setting may appear once"
    )


def test_every_yaml_duplicate_is_reported():
    with pytest.raises(SpecError) as err:
        load_yaml("iam_users:\n  bob: {roles: []}\n  bob: {roles: []}\n  amy: {roles: [a, b], roles: []}\n")
    assert [p.split(" at line")[0] for p in err.value.problems] == [
        "<yaml>: duplicate key 'bob'",
        "<yaml>: duplicate key 'roles'",
    ]


def test_duplicate_user_in_hcl(tmp_path):
    path = tmp_path / "dup.tfvars"
    path.write_text(
        "iam_users = {\n"
        '  "bob" = { description = "Bob", roles = ["admin"] }\n'
        '  alice = { description = "Alice", roles = [] }\n'
        '  bob = { description = "Bob again", roles = [] }\n'  # unquoted, still the same key
        "}\n"
    )
    assert one_problem(None, iam_users_file=path) == (
        f"{path}: duplicate key 'bob': each user and setting may appear once"
    )


def test_duplicate_top_level_attribute_in_hcl():
    with pytest.raises(SpecError) as err:
        load_hcl('iam_users = {}\niam_users = { "bob" = { roles = [] } }\n')
    assert err.value.problems == ["<tfvars>: duplicate key 'iam_users': each user and setting may appear once"]


def test_user_names_are_case_insensitive():
    problem = one_problem({"Bob": {"roles": []}, "bob": {"roles": ["admin"]}})
    assert problem == "bob: same IAM user as 'Bob' (names are case-insensitive)"


def test_description_over_256_characters():
    assert load_spec({"bob": {"description": "x" * 256, "roles": []}}).users["bob"].description == "x" * 256
    problem = one_problem({"bob": {"description": "y" * 300, "roles": []}})
    assert problem.startswith("bob: description 'yyy")
    assert "is 300 characters long; at most 256 allowed" in problem
    assert len(problem) < 200  # the value is shortened in the message


@pytest.mark.parametrize(
    ("description", "shown"),
    [
        ("Alice - Platform Engineer (promoted)", "'(' ')'"),
        ("Ops, on call", "','"),
        ("semi;colon", "';'"),
        ('a "quoted" word', "'\"'"),
        ("tab\there", "'\\t'"),
    ],
)
def test_descriptions_aws_refuses_as_tag_values(description, shown):
    problem = one_problem({"alice": {"description": description, "roles": []}})
    assert problem == (
        f"alice: description {description!r} contains {shown}; allowed: letters, digits, spaces and _ . : / = + - @"
    )


@pytest.mark.parametrize("description", ["", "Zoë Ünal - Ops", "a_b.c:d/e=f+g-h@i", "Team 42", "雪 Yuki"])
def test_descriptions_aws_accepts(description):
    assert load_spec({"alice": {"description": description, "roles": []}}).users["alice"].description == description


def test_tag_value_problem_directly():
    assert tag_value_problem("fine value") is None
    assert "257 characters" in tag_value_problem("z" * 257)
    assert "','" in tag_value_problem("a,b")


def test_missing_or_empty_description_is_no_description():
    spec = load_spec({"bob": {"roles": ["admin"]}, "amy": {"description": None, "roles": []}})
    assert spec.users["bob"].description == ""
    assert spec.users["amy"].description == ""


def test_wrong_description_type():
    assert one_problem({"bob": {"description": 5, "roles": []}}) == "bob: description must be a string, got int"


def test_roles_given_as_a_string():
    problem = one_problem({"bob": {"description": "Bob", "roles": "admin"}})
    assert problem == f"bob: roles must be a list of role keys, got str 'admin'; {VALID_ROLES}"


def test_role_entries_must_be_strings_and_unique():
    problems = problems_of({"bob": {"roles": [1, "admin", "admin"]}})
    assert problems == [f"bob: role 1 must be a string; {VALID_ROLES}", "bob: role(s) listed twice: admin"]


def test_user_entry_must_be_a_mapping_with_known_fields():
    problems = problems_of({"bob": ["admin"], "amy": {"description": "Amy", "role": ["admin"]}})
    assert problems == [
        "bob: must be a mapping with keys description and roles",
        "amy: unknown field 'role'; allowed: description, roles, temporary",
    ]


def test_iam_users_must_be_a_mapping():
    assert "must be a mapping" in one_problem(["bob"])


def test_empty_roles_list_is_valid():
    spec = load_spec({"bob": {"description": "Bob", "roles": []}})
    assert spec.users["bob"].roles == ()
    assert spec.grants() == set()


def test_empty_spec_is_valid():
    assert load_spec({}).users == {}


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        ({"admin": "Admin Role"}, "roles.admin: invalid role name 'Admin Role'"),
        ({"admin": "R" * 65}, "roles.admin: invalid role name"),
        ({"admin": ""}, "roles.admin: invalid role name ''"),
        ({"admin": 7}, "roles.admin: role name must be a string, got int"),
        ({"Admin": "AdminRole"}, "roles: invalid role key 'Admin'"),
        ({"data-engineer": "DataEngineerRole"}, "roles: invalid role key 'data-engineer'"),
    ],
)
def test_invalid_role_mapping(roles, expected):
    problem = one_problem({"bob": {"roles": []}}, roles=roles)
    assert problem.startswith(expected), problem


def test_empty_role_mapping():
    assert one_problem({"bob": {"roles": []}}, roles={}).startswith("roles: must be a mapping")


def test_several_problems_collected_in_one_error():
    with pytest.raises(SpecError) as err:
        load_spec(
            {
                "bob@example.com": {"description": "Bob", "roles": ["data-engineer"]},
                "bad name!": {"description": "x", "roles": []},
                "carol": {"description": "Carol (ops)", "roles": "admin"},
                "Carol": {"description": "dup", "roles": ["admin"]},
            }
        )
    problems = err.value.problems
    assert problems == [
        f"bob@example.com: unknown role 'data-engineer' (did you mean 'data_engineer'?); {VALID_ROLES}",
        "bad name!: invalid user name 'bad name!'; allowed: 1-64 characters of letters, digits and + = , . @ _ -",
        "carol: description 'Carol (ops)' contains '(' ')'; allowed: letters, digits, spaces and _ . : / = + - @",
        f"carol: roles must be a list of role keys, got str 'admin'; {VALID_ROLES}",
        "Carol: same IAM user as 'carol' (names are case-insensitive)",
    ]
    assert str(err.value).splitlines() == problems  # one line each


def test_role_mapping_and_user_problems_reported_together():
    problems = problems_of({"bob": {"roles": ["admin", "ops"]}}, roles={"admin": "Bad Role!"})
    assert problems[0].startswith("roles.admin: invalid role name 'Bad Role!'")
    assert problems[1] == "bob: unknown role 'ops'; valid roles: admin"
    assert len(problems) == 2


def test_spec_is_frozen():
    spec = load_spec({"bob": {"roles": []}})
    assert isinstance(spec, Spec)
    with pytest.raises(AttributeError):
        spec.users["bob"].roles = ("admin",)
