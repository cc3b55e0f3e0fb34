"""Temporary grants: the spec (YAML and tfvars, every problem at once), the plan (policies, attachments,
groups, expiry, quotas), effective access against the run's time, and the simulator's proof. In memory."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from test_plan import ACCOUNT, ARNS, managed_user, policy, role, user
from test_plan import account as bare_account

from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import DEFAULT_ROLES, policy_arn, policy_document, temporary_policy_name, user_tags
from iamrunbook.core.access import effective_access
from iamrunbook.core.plan import make_plan
from iamrunbook.core.simulate import Simulation, check
from iamrunbook.core.spec import GrantSettings, load_spec
from iamrunbook.core.temporary_plan import QuotaError
from iamrunbook.core.terraform import dump_tfvars, load_tfvars

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
VALID = datetime(2026, 12, 8, 18, 0, tzinfo=timezone.utc)
EXPIRED = datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc)
VALID_ARN = policy_arn(ACCOUNT, temporary_policy_name("AdminRole", VALID))
EXPIRED_ARN = policy_arn(ACCOUNT, temporary_policy_name("AdminRole", EXPIRED))


TRUST = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"}]}


def account(users=(), **kwargs):
    """test_plan's account, its roles trusting the account (so identity policies decide)."""
    roles = [role(name) | {"AssumeRolePolicyDocument": TRUST} for name in DEFAULT_ROLES.values()]
    return bare_account(users, roles=roles, **kwargs)


def temp(role: str = "admin", until: datetime = VALID, reason: str = "INC-1234 restore the warehouse") -> dict:
    return {"role": role, "until": until.strftime("%Y-%m-%dT%H:%M:00Z"), "reason": reason}


def spec_of(users: dict, via: str = "user", now: datetime = NOW):
    return load_spec(users, settings=GrantSettings(grant_via=via), now=now)


def alice(roles=("data_engineer",), temporary=None) -> dict:
    temporary = [temp()] if temporary is None else temporary
    return {"alice": {"description": "Alice", "roles": list(roles), "temporary": list(temporary)}}


def temp_policy(until: datetime) -> dict:
    arn = policy_arn(ACCOUNT, temporary_policy_name("AdminRole", until))
    document = policy_document(ACCOUNT, "AdminRole", until=until)
    version = {"VersionId": "v1", "IsDefaultVersion": True, "Document": document, "CreateDate": NOW}
    return {"Arn": arn, "PolicyName": temporary_policy_name("AdminRole", until), "DefaultVersionId": "v1",
            "PolicyVersionList": [version]}  # fmt: skip


def alice_user(*arns: str, roles=("data_engineer",)) -> dict:
    return user("alice", user_tags("alice", "Alice", roles), [ARNS[k] for k in roles] + list(arns))


# --- the spec ----------------------------------------------------------------------------------------
def test_yaml_timestamps_and_strings_load_alike_and_a_past_until_is_no_error():
    from iamrunbook.core.spec import load_yaml

    text = "alice:\n  roles: []\n  temporary:\n    - {role: admin, until: 2026-12-08T18:00:00Z, reason: INC-1}\n"
    spec = spec_of(load_yaml(text))
    assert spec.users["alice"].temporary[0].until == VALID
    expired = spec_of(alice(temporary=[temp(until=EXPIRED), temp(until=VALID)]))
    assert [t.until for t in expired.users["alice"].active(NOW)] == [VALID]
    assert ("alice", "admin") in expired.grants()
    assert ("alice", "admin") not in spec_of(alice(temporary=[temp(until=EXPIRED)])).grants()


def test_every_problem_at_once():
    bad = [
        {"role": "root", "until": "2026-12-08T18:00:00Z", "reason": "x"},
        {"role": "admin", "until": "2026-12-08 18:00", "reason": "x"},
        {"role": "admin", "until": "2026-12-08T18:00:30Z", "reason": "x"},
        {"role": "admin", "until": "2026-12-08T18:00:00+02:00", "reason": "x"},
        {"role": "admin", "until": "2026-12-09T18:00:00Z"},
        {"role": "admin", "until": "2027-02-01T00:00:00Z", "reason": "far"},
        {"role": "data_engineer", "until": "2026-12-08T18:00:00Z", "reason": "held"},
        {"role": "admin", "until": "2026-12-10T18:00:00Z", "reason": "ok", "by": "me"},
    ]
    with pytest.raises(SpecError) as exc:
        spec_of(alice(temporary=bad))
    lines = exc.value.problems
    assert len(lines) == 8, lines
    assert "temporary grant 1: unknown role 'root'" in lines[0]
    assert all("is not a UTC time" in line for line in lines[1:4])
    assert "a reason is required" in lines[4]
    assert "more than max_temporary_days (30)" in lines[5]
    assert "'data_engineer' is already granted for good" in lines[6]
    assert "unknown field 'by'" in lines[7]
    with pytest.raises(SpecError, match=r"max_temporary_days \(2\)"):
        load_spec(alice(), now=NOW, max_temporary_days=2)


def test_tfvars_round_trip_keeps_temporary_grants():
    spec = spec_of(alice(temporary=[temp(), temp(until=EXPIRED, reason='quote " and ${x}')]))
    text = dump_tfvars(spec.to_mapping())
    assert "temporary" in text
    assert load_tfvars(text) == spec.to_mapping()
    assert spec_of(load_tfvars(text)) == spec


# --- the plan ----------------------------------------------------------------------------------------
def test_a_valid_grant_makes_its_policy_and_attaches_it():
    plan = make_plan(spec_of(alice()), account([alice_user()]))
    made = {c.kind: c for c in plan.changes}
    assert set(made) == {"create_policy", "attach"}
    document = json.loads(made["create_policy"].document)
    assert made["create_policy"].policy_name == "AssumeAdminRolePolicyUntil20261208T1800Z"
    assert document["Statement"][0]["Condition"] == {"DateLessThan": {"aws:CurrentTime": "2026-12-08T18:00:00Z"}}
    assert made["attach"].policy_arn == VALID_ARN and made["attach"].target_name == "alice"
    assert "until 2026-12-08 18:00 UTC" in made["attach"].reason


def test_an_expired_grant_is_detached_then_deleted_and_the_permanent_grant_of_the_role_stays():
    users = {"alice": {"description": "Alice", "roles": ["admin"], "temporary": [temp(until=EXPIRED)]}}
    with pytest.raises(SpecError, match="already granted for good"):
        spec_of(users)  # one or the other ...
    spec = spec_of({"alice": {"description": "Alice", "roles": ["admin"]}})  # ... so: moved to permanent
    inv = account([alice_user(EXPIRED_ARN, roles=("admin",))], policies=[*map(policy, DEFAULT_ROLES),
                                                                          temp_policy(EXPIRED)])  # fmt: skip
    plan = make_plan(spec, inv)
    assert [(c.kind, c.policy_arn) for c in plan.changes] == [("detach", EXPIRED_ARN), ("delete_policy", EXPIRED_ARN)]
    assert "AWS already denies it" in plan.changes[0].reason
    assert not check(inv, plan.changes, spec)


@pytest.mark.parametrize("via", ["user", "group"])
def test_moving_permanent_to_temporary_and_back_opens_no_window(via):
    permanent = spec_of({"alice": {"description": "Alice", "roles": ["admin"]}}, via)
    temporary = spec_of(alice(roles=(), temporary=[temp()]), via)
    inv = account([user("alice")])
    start = Simulation(inv, DEFAULT_ROLES, NOW).run(make_plan(permanent, inv).changes).inventory()
    to_temp = make_plan(temporary, start)
    assert not check(start, to_temp.changes, temporary)
    middle = Simulation(start, DEFAULT_ROLES, NOW).run(to_temp.changes).inventory()
    grants = effective_access(middle.details(), DEFAULT_ROLES, ACCOUNT, now=NOW)
    assert [(g.role_key, g.shown) for g in grants] == [("admin", "yes, until 2026-12-08 18:00 UTC")]
    assert make_plan(temporary, middle).is_empty
    back = make_plan(permanent, middle)
    assert not check(middle, back.changes, permanent)
    end = Simulation(middle, DEFAULT_ROLES, NOW).run(back.changes).inventory()
    assert make_plan(permanent, end).is_empty
    assert not existing_temporary(end)


def existing_temporary(inv) -> list[str]:
    return [arn for arn in inv.policies if "Until" in arn] + [g for g in inv.groups if "Until" in g]


def test_under_grant_via_group_each_pair_has_its_own_group_and_no_user_holds_a_policy():
    spec = spec_of({**alice(), "bob": {"description": "Bob", "roles": [], "temporary": [temp()]}}, "group")
    inv = account([alice_user(), user("bob")])
    after = Simulation(inv, DEFAULT_ROLES, NOW).run(make_plan(spec, inv).changes).inventory()
    group = "AdminRoleUsersUntil20261208T1800Z"
    assert after.group_members(group) == ["alice", "bob"]
    assert not any(VALID_ARN in after.attached_arns(u) for u in after.users.values())
    path = f"group {group}: attached policy {temporary_policy_name('AdminRole', VALID)}"
    grants = effective_access(after.details(), DEFAULT_ROLES, ACCOUNT, now=NOW)
    assert [g.path for g in grants if g.role_key == "admin"] == [path] * 2
    later = VALID + timedelta(minutes=1)
    expired = spec_of({**alice(), "bob": {"description": "Bob", "roles": [], "temporary": [temp()]}}, "group", later)
    assert not effective_access(after.details(), {"admin": "AdminRole"}, ACCOUNT, now=later)
    tidy = make_plan(expired, after)
    assert [c.kind for c in tidy.changes].count("delete_group") == 1
    end = Simulation(after, DEFAULT_ROLES, later).run(tidy.changes).inventory()
    assert not existing_temporary(end)
    assert end.group_members("DataEngineerRoleUsers") == ["alice"]


def test_access_reads_yes_until_then_nothing_after_the_until():
    inv = account([alice_user(VALID_ARN)], policies=[*map(policy, DEFAULT_ROLES), temp_policy(VALID)])
    before = [g for g in effective_access(inv.details(), DEFAULT_ROLES, ACCOUNT, now=NOW) if g.role_key == "admin"]
    assert [(g.verdict, g.until, g.shown) for g in before] == [("yes", "2026-12-08T18:00:00Z",
                                                                "yes, until 2026-12-08 18:00 UTC")]  # fmt: skip
    at_until = effective_access(inv.details(), DEFAULT_ROLES, ACCOUNT, now=VALID)  # DateLessThan is strict
    assert not [g for g in at_until if g.role_key == "admin"]


def test_an_eleventh_managed_policy_is_refused_naming_the_quota():
    others = [policy_arn(ACCOUNT, f"Other{i}") for i in range(9)]
    extra = [{"Arn": arn, "DefaultVersionId": "v1", "PolicyVersionList": [
        {"VersionId": "v1", "IsDefaultVersion": True, "Document": {"Version": "2012-10-17", "Statement": []}}]}
        for arn in others]  # fmt: skip
    inv = account([user("alice", user_tags("alice", "Alice", ("data_engineer",)), [ARNS["data_engineer"], *others])],
                  policies=[*map(policy, DEFAULT_ROLES), *extra])  # fmt: skip
    with pytest.raises(QuotaError, match="11 managed policies; the quota is 10 managed policies per user"):
        make_plan(spec_of(alice()), inv)
    inv.users["alice"]["AttachedManagedPolicies"].pop()
    assert len(make_plan(spec_of(alice()), inv).changes) == 2


def test_a_temporary_grant_expiring_does_not_touch_other_users_of_the_pair():
    spec = spec_of({**alice(), "bob": {"description": "Bob", "roles": [], "temporary": [temp()]}})
    inv = account([alice_user(VALID_ARN), managed_user("bob", "Bob", ()) | {"AttachedManagedPolicies": []}],
                  policies=[*map(policy, DEFAULT_ROLES), temp_policy(VALID)])  # fmt: skip
    plan = make_plan(spec, inv)
    assert [(c.kind, c.target_name) for c in plan.changes] == [("attach", "bob")]


# --- where access is shown ------------------------------------------------------------------------------
def test_the_review_shows_temporary_grants_and_never_proposes_them_as_permanent():
    from iamrunbook.core import review as rv

    spec = spec_of(alice(temporary=[temp(), temp("infrastructure_admin", EXPIRED, "INC-7 old")]))
    use = rv.RoleUse({("alice", "adminrole"): NOW - timedelta(hours=1)}, NOW - timedelta(days=90), NOW)
    rows = rv.temporary_rows(spec, use)
    assert [(r["role_key"], r["state"], r["reason"], r["used"]) for r in rows] == [
        ("admin", "valid", "INC-1234 restore the warehouse", "yes"),
        ("infrastructure_admin", "expired", "INC-7 old", "no"),
    ]
    kept = rv.reviewed_users(spec, {})
    assert kept["alice"]["roles"] == ["data_engineer"]  # not made permanent ...
    assert [t["role"] for t in kept["alice"]["temporary"]] == ["admin", "infrastructure_admin"]  # ... nor dropped
    removed = rv.reviewed_users(spec, {"alice": rv.Decision("alice", rv.REMOVE, ("admin",))})
    assert [t["role"] for t in removed["alice"]["temporary"]] == ["infrastructure_admin"]


def test_the_access_paths_table_reads_yes_until_and_adoption_keeps_it_out_of_roles():
    from iamrunbook.core.terraform import adopt
    from iamrunbook.flows.reports import access_paths

    soon = datetime.now(timezone.utc).replace(second=0, microsecond=0) + timedelta(days=1)  # adopt reads the clock
    arn = policy_arn(ACCOUNT, temporary_policy_name("AdminRole", soon))
    inv = account([alice_user(arn)], policies=[*map(policy, DEFAULT_ROLES), temp_policy(soon)])
    grants = effective_access(inv.details(), DEFAULT_ROLES, ACCOUNT, now=soon - timedelta(hours=1))
    frame = access_paths(grants)
    assert frame.loc[frame.role_key == "admin", "verdict"].tolist() == [f"yes, until {soon:%Y-%m-%d %H:%M} UTC"]
    adoption = adopt(inv, DEFAULT_ROLES)
    assert adoption.iam_users["alice"]["roles"] == ["data_engineer"]
    assert any("temporary" in note and "not adopted" in note for note in adoption.notes["alice"])


@pytest.mark.parametrize("via", ["user", "group"])
def test_the_terraform_handoff_holds_the_valid_grant_and_imports_what_exists(tmp_path, via):
    import hcl2

    from iamrunbook.core.terraform import MODULE_FILE, STATE_LIST_FILE, import_blocks, write_terraform

    spec = spec_of({**alice(), "bob": {"description": "Bob", "roles": [], "temporary": [temp(until=EXPIRED)]}}, via)
    inv = account([alice_user(), user("bob")])
    after = Simulation(inv, DEFAULT_ROLES, NOW).run(make_plan(spec, inv).changes).inventory()
    files = write_terraform(tmp_path, spec, after)
    module = files[MODULE_FILE].read_text(encoding="utf-8")
    hcl2.loads(module)  # parses
    assert "timecmp(grant.until, plantimestamp()) > 0" in module and '"DateLessThan"' in module
    stamp = "admin/20261208T1800Z"
    expected = [f'aws_iam_policy.temporary["{stamp}"]', f'data.aws_iam_policy_document.temporary["{stamp}"]']
    expected += ([f'aws_iam_group.temporary["{stamp}"]', f'aws_iam_user_group_membership.temporary["alice/{stamp}"]']
                 if via == "group" else [f'aws_iam_user_policy_attachment.temporary["alice/{stamp}"]'])  # fmt: skip
    state = files[STATE_LIST_FILE].read_text(encoding="utf-8").split()
    assert set(expected) <= set(state) and not [a for a in state if "20261201" in a]  # the expired one is not there
    imported = {b.to: b.id for b in import_blocks(spec, after)}
    assert imported[f'aws_iam_policy.temporary["{stamp}"]'] == VALID_ARN
    assert set(expected) - {f'data.aws_iam_policy_document.temporary["{stamp}"]'} <= set(imported)
    assert "20261201" not in files[MODULE_FILE].read_text(encoding="utf-8")
    plain = write_terraform(tmp_path / "plain", spec_of({"alice": {"description": "A", "roles": ["admin"]}}), None)
    assert "temporary" not in plain[MODULE_FILE].read_text(encoding="utf-8")  # unchanged without temporary grants


def test_an_expired_temporary_path_reads_no_expired_and_a_valid_one_yes_until():
    from iamrunbook.core.access import expired_paths
    from iamrunbook.flows.reports import access_matrix, access_paths

    inv = account([alice_user(VALID_ARN, EXPIRED_ARN)],
                  policies=[*map(policy, DEFAULT_ROLES), temp_policy(VALID), temp_policy(EXPIRED)])  # fmt: skip
    grants = effective_access(inv.details(), DEFAULT_ROLES, ACCOUNT, now=NOW)
    expired = expired_paths(inv.details(), DEFAULT_ROLES, ACCOUNT, now=NOW)
    assert [(g.user, g.role_key, g.verdict, g.policy_arn) for g in expired] == [("alice", "admin", "no", EXPIRED_ARN)]
    frame = access_paths(grants + expired)
    admin = frame[frame.role_key == "admin"].set_index("path")["verdict"].to_dict()
    path = "attached policy {}".format
    assert admin == {path(temporary_policy_name("AdminRole", EXPIRED)): "no (expired 2026-12-01 09:30 UTC)",
                     path(temporary_policy_name("AdminRole", VALID)): "yes, until 2026-12-08 18:00 UTC"}  # fmt: skip
    assert access_matrix(grants + expired, inv.users, DEFAULT_ROLES).at["alice", "admin"] == "yes"  # the valid path
    later = VALID + timedelta(minutes=1)  # both past: the cell is no, each path says when it ended
    both = effective_access(inv.details(), DEFAULT_ROLES, ACCOUNT, now=later)
    both += expired_paths(inv.details(), DEFAULT_ROLES, ACCOUNT, now=later)
    assert access_matrix(both, inv.users, DEFAULT_ROLES).at["alice", "admin"] == "no"
    assert sorted(access_paths(both).query("role_key == 'admin'").verdict) == [
        "no (expired 2026-12-01 09:30 UTC)", "no (expired 2026-12-08 18:00 UTC)"]
    assert access_paths(both).query("role_key == 'data_engineer'").verdict.tolist() == ["yes"]  # permanent: untouched


def test_01_writes_the_expired_path_to_its_access_paths_record(aws, monkeypatch, tmp_path):
    import pandas as pd

    from iamrunbook.base import records
    from iamrunbook.flows import gather
    from iamrunbook.flows.session import RUN_DIR_ENV, start

    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path / "run"))
    rb = start({})
    past = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(days=1)
    arn = policy_arn(ACCOUNT, temporary_policy_name("AdminRole", past))
    inv = account([alice_user(arn)], policies=[*map(policy, DEFAULT_ROLES), temp_policy(past)])
    matrix, _ = gather.access(rb, inv)
    assert matrix.at["alice", "admin"] == "no"
    written = pd.read_csv(rb.run_dir / records.EFFECTIVE_ACCESS_PATHS.name)
    assert written.loc[written.role_key == "admin", "verdict"].tolist() == [f"no (expired {past:%Y-%m-%d %H:%M} UTC)"]
