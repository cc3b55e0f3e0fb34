"""grant_via: identity_center: its parameters, validated all at once, and the names and users it derives."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import DEFAULT_ROLES
from iamrunbook.core.identity_center import (
    IdentityCenterSettings,
    identity_center_settings,
    permission_set_name,
    session_seconds,
    store_user,
)
from iamrunbook.core.params import check_params, validate_params
from iamrunbook.core.spec import GRANT_VIA, grant_settings, settings_problems

ARN = "arn:aws:sso:::instance/ssoins-1234567890abcdef"
STORE = "d-1234567890"


def ic_params(**overrides) -> dict:
    return {"grant_via": "identity_center", **overrides}


def test_the_default_roles_fit_a_permission_set_name():
    assert [permission_set_name(r) for r in DEFAULT_ROLES.values()] == [
        "AssumeAdminRole", "AssumeDataEngineerRole", "AssumeInfrastructureAdminRole",
    ]  # fmt: skip
    assert settings_problems(ic_params(), DEFAULT_ROLES) == []


def test_every_problem_is_reported_at_once():
    roles = {**DEFAULT_ROLES, "long": "A" * 27}
    params = ic_params(
        identity_center={"instance_arn": "arn:aws:sso:::instance/bad", "home_region": "Mars",
                         "session_duration": "PT13H", "colour": "red"},
        identity_center_accounts=["123456789012", "123456789012", 123456789012, "12345"],
    )  # fmt: skip
    problems = settings_problems(params, roles)
    expected = [
        "identity_center: unknown key 'colour'",
        "identity_center.instance_arn: 'arn:aws:sso:::instance/bad' is not an instance ARN",
        "identity_center: give instance_arn and identity_store_id together, or neither",
        "identity_center.home_region: 'Mars' is not a region",
        "identity_center.session_duration: 'PT13H' is not allowed; allowed: ISO 8601 from PT1H to PT12H",
        "identity_center_accounts: 123456789012 is not a 12-digit account id",
        "identity_center_accounts: '12345' is not a 12-digit account id",
        "identity_center_accounts: listed twice: 123456789012",
        "roles.long: permission set 'AssumeAAAAAAAAAAAAAAAAAAAAAAAAAAA' is 33 characters",
    ]
    assert len(problems) == len(expected)
    for wanted, problem in zip(expected, problems, strict=True):
        assert problem.startswith(wanted), (wanted, problem)


@pytest.mark.parametrize("duration", ["PT1H", "PT12H", "PT1H30M", "PT90M", "PT720M"])
def test_session_durations_from_one_to_twelve_hours_pass(duration):
    assert settings_problems(ic_params(identity_center={"session_duration": duration}), DEFAULT_ROLES) == []


@pytest.mark.parametrize("duration", ["PT59M", "PT12H1M", "P1D", "1h", "", "PT", 3600])
def test_other_session_durations_fail(duration):
    [problem] = settings_problems(ic_params(identity_center={"session_duration": duration}), DEFAULT_ROLES)
    assert problem.startswith("identity_center.session_duration:") and "PT1H to PT12H" in problem


def test_identity_center_settings_outside_the_mode_are_a_mistake():
    problems = settings_problems({"grant_via": "group", "identity_center": {"home_region": "eu-west-1"},
                                  "identity_center_accounts": ["123456789012"]}, DEFAULT_ROLES)  # fmt: skip
    assert problems == ["identity_center: only with grant_via: identity_center",
                        "identity_center_accounts: only with grant_via: identity_center"]  # fmt: skip
    assert settings_problems({"grant_via": "user", "identity_center": None}, DEFAULT_ROLES) == []


def test_the_mode_is_validated_every_problem_at_once_then_planned():
    assert "identity_center" in GRANT_VIA
    with pytest.raises(SpecError) as refused:
        grant_settings(ic_params(identity_center={"session_duration": "PT20H"}, identity_center_accounts=["1"]),
                       DEFAULT_ROLES)  # fmt: skip
    [duration, accounts] = sorted(refused.value.problems)
    assert duration.startswith("identity_center.session_duration:") and accounts.startswith("identity_center_accounts")
    settings = grant_settings(ic_params(), DEFAULT_ROLES)
    assert settings.grant_via == "identity_center" and settings.identity_center == IdentityCenterSettings()
    assert grant_settings({"grant_via": "group"}, DEFAULT_ROLES).identity_center is None  # other modes unchanged


def test_settings_fill_in_what_is_not_given():
    assert identity_center_settings(ic_params(aws_region="eu-west-1")) == IdentityCenterSettings(
        home_region="eu-west-1"
    )
    given_all = ic_params(
        identity_center={"instance_arn": ARN, "identity_store_id": STORE, "home_region": "eu-central-1",
                         "session_duration": "PT8H"},
        identity_center_accounts=["123456789012", "210987654321"],
    )  # fmt: skip
    assert settings_problems(given_all, DEFAULT_ROLES) == []
    assert identity_center_settings(given_all) == IdentityCenterSettings(
        ARN, STORE, "eu-central-1", "PT8H", ("123456789012", "210987654321")
    )
    assert identity_center_settings({"grant_via": "user"}) is None


def test_the_parameters_are_declared_with_their_types():
    assert validate_params({})["identity_center"] is None
    assert validate_params({})["identity_center_accounts"] is None
    problems = check_params({"identity_center": "ssoins-1", "identity_center_accounts": "123456789012"})
    assert problems == [
        "parameter identity_center: expected mapping or null, got str 'ssoins-1'",
        "parameter identity_center_accounts: expected list or null, got str '123456789012'",
    ]


def test_a_store_user_from_a_spec_user():
    assert store_user("alice@example.com", "Alice Smith - Platform Engineer") == {
        "UserName": "alice@example.com",
        "DisplayName": "Alice Smith",
        "Name": {"Formatted": "Alice Smith", "GivenName": "Alice", "FamilyName": "Smith"},
        "Emails": [{"Value": "alice@example.com", "Type": "work", "Primary": True}],
    }
    assert store_user("your-username", "") == {
        "UserName": "your-username",
        "DisplayName": "your-username",
        "Name": {"Formatted": "your-username", "GivenName": "your-username", "FamilyName": "your-username"},
    }


@given(st.from_regex(r"[\w+=,.@-]{1,64}", fullmatch=True), st.text(max_size=256))
def test_every_store_user_has_the_parts_terraform_needs(name, description):
    user = store_user(name, description)
    assert user["UserName"] == name and user["DisplayName"].strip()
    assert user["Name"]["GivenName"].strip() and user["Name"]["FamilyName"].strip()
    assert len(user.get("Emails", [])) <= 1


def test_session_seconds():
    assert [session_seconds(d) for d in ("PT1H", "PT1H30M", "PT45M", "P1D", "PT")] == [3600, 5400, 2700, None, None]


def test_settings_of_the_wrong_shape_are_named():
    problems = settings_problems(ic_params(identity_center="ssoins-1", identity_center_accounts="123456789012"),
                                 DEFAULT_ROLES)  # fmt: skip
    assert problems == [
        "identity_center: expected a mapping with instance_arn, identity_store_id, home_region, session_duration, "
        "got 'ssoins-1'",
        "identity_center_accounts: expected a list of 12-digit account ids, got '123456789012'",
    ]


def test_the_runner_refuses_a_bad_setting_before_any_folder_kernel_or_aws_call(tmp_path):
    from iamrunbook.cli import runner

    params = ic_params(identity_center={"session_duration": "PT13H"}, identity_center_accounts=["123456789012"],
                       iam_users={"alice": {"description": "Alice", "roles": ["admin"]}})  # fmt: skip
    with pytest.raises(SpecError, match="PT1H to PT12H"):
        runner.run(["03_import_and_apply"], params, out=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()
