"""Many accounts: the accounts file, the organization's accounts, and `iamrunbook run --accounts`.

The fan-out runs against the embedded Organization: each member is entered by assuming its role (refused
where its trust refuses, as AWS would), each runs in a process of its own, and the server's call log says
in which account every call acted. Fresh members (alpha, beta, gamma) are built already matching their
specs, so 01 and 04 alone prove the fan-out; the whole chain runs on the seeded members.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import py_compile
from pathlib import Path

import pytest
import yaml

from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base import records
from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import MANAGED_BY_KEY, MANAGED_BY_VALUE
from iamrunbook.cli import accounts, cli, fanout
from iamrunbook.cli.accounts import Account
from iamrunbook.core.plan import make_plan
from iamrunbook.core.spec import load_spec
from iamrunbook.flows.apply import apply_plan
from iamrunbook.runs import audit
from iamrunbook.sandbox import ACCOUNT_ID
from iamrunbook.sandbox.org import ACCESS_ROLE, ADMIN_POLICY_ARN, STRANGER, STRANGER_POLICY
from iamrunbook.sandbox.seed import seed_roles

ROOT = Path(__file__).resolve().parents[1]
DAG_FILE = ROOT / "examples" / "airflow_iamrunbook_dag.py"
BETA_EXTERNAL_ID = "beta-external-0001"
#: each fresh member's spec, which it already matches
SPECS = {
    "alpha": {"ann@example.com": {"description": "Ann - Admin", "roles": ["admin"]}},
    "beta": {"ben@example.com": {"description": "Ben - Data Engineer", "roles": ["data_engineer"]}},
    "gamma": {"gus@example.com": {"description": "Gus - Infrastructure", "roles": ["infrastructure_admin"]}},
}
DRIFT = {"bea@example.com": {"description": "Bea - New Data Engineer", "roles": ["data_engineer"]}}


def trust(principal: str, **extra) -> str:
    statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole", **extra}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def new_member(aws, org: dict, name: str, ou: str, users: dict) -> str:
    """A member account as Organizations makes it (its access role trusting the management account), with
    the three roles, already matching `users`: built by internal calls, outside the log."""
    organizations = aws.client("organizations", internal=True)
    status = organizations.create_account(
        AccountName=name, Email=f"{name}@example.com", Tags=[{"Key": "Team", "Value": name}]
    )["CreateAccountStatus"]
    account_id = status["AccountId"]
    organizations.move_account(AccountId=account_id, SourceParentId=org["root_id"], DestinationParentId=org["ous"][ou])
    iam = aws.client("iam", account_id=account_id, internal=True)
    iam.attach_role_policy(RoleName=ACCESS_ROLE, PolicyArn=ADMIN_POLICY_ARN)
    seed_roles(iam, account_id=account_id)
    inventory = read_inventory(iam, aws.client("sts", account_id=account_id, internal=True))
    apply_plan(iam, make_plan(load_spec(iam_users=users), inventory))
    return account_id


@pytest.fixture
def members(aws, organization) -> dict[str, str]:
    """alpha (converged), beta (its trust requires an ExternalId), gamma (its trust names another account)."""
    ids = {name: new_member(aws, organization, name, "Development", users) for name, users in SPECS.items()}
    condition = {"StringEquals": {"sts:ExternalId": BETA_EXTERNAL_ID}}
    beta = aws.client("iam", account_id=ids["beta"], internal=True)
    beta.update_assume_role_policy(RoleName=ACCESS_ROLE, PolicyDocument=trust(f"arn:aws:iam::{ACCOUNT_ID}:root",
                                                                               Condition=condition))  # fmt: skip
    gamma = aws.client("iam", account_id=ids["gamma"], internal=True)
    gamma.update_assume_role_policy(RoleName=ACCESS_ROLE, PolicyDocument=trust("arn:aws:iam::111122223333:root"))
    aws.clear_calls()
    return ids


def write_params(folder: Path, specs: dict[str, dict]) -> None:
    (folder / "params").mkdir(exist_ok=True)
    for name, users in specs.items():
        (folder / "params" / f"{name}.yaml").write_text(yaml.safe_dump({"iam_users": users}), encoding="utf-8")


def write_accounts(folder: Path, data: dict) -> Path:
    path = folder / "accounts.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def project(tmp_path, members) -> Path:
    """accounts.yaml for alpha, beta (with its ExternalId) and gamma; beta's spec has one user its account lacks."""
    write_params(tmp_path, {**SPECS, "beta": {**SPECS["beta"], **DRIFT}})
    listed = [
        {"id": members["alpha"], "name": "alpha"},
        {"id": members["beta"], "name": "beta", "external_id": BETA_EXTERNAL_ID},
        {"id": members["gamma"], "name": "gamma"},
    ]
    return write_accounts(tmp_path, {"defaults": {"parameters_file": "params/{name}.yaml"}, "accounts": listed})


def parents(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir()) if out.exists() else []


def summary(parent: Path) -> dict[str, dict]:
    data = json.loads((parent / fanout.SUMMARY_JSON).read_text(encoding="utf-8"))
    return {row["name"]: row for row in data["accounts"]}


def run_json(parent: Path, row: dict) -> dict:
    return json.loads((parent / row["run_folder"] / records.RUN_MANIFEST.name).read_text(encoding="utf-8"))


# ----------------------------------------------------------------------------- the accounts file
def test_a_valid_file_gives_each_account_its_settings_and_files(tmp_path):
    write_params(tmp_path, {"common": {}, "prod": {}})
    (tmp_path / "specs").mkdir()
    (tmp_path / "specs" / "dev.yaml").write_text("iam_users: {}\n", encoding="utf-8")
    path = write_accounts(tmp_path, {
        "defaults": {"role_name": "IamRunbookRole", "external_id": "org-wide-id",
                     "parameters_file": "params/common.yaml"},
        "accounts": [
            {"id": "111111111111", "name": "prod", "parameters_file": "params/prod.yaml", "duration_seconds": 900},
            {"id": "222222222222", "name": "dev", "iam_users_file": "specs/{name}.yaml", "external_id": None},
            {"id": "333333333333"},
        ],
    })  # fmt: skip

    found = accounts.load_accounts_file(path)

    prod, dev, bare = found.accounts
    assert prod == Account("111111111111", "prod", "IamRunbookRole", "org-wide-id",
                           str(tmp_path / "params" / "prod.yaml"), None, 900)  # fmt: skip
    assert dev.iam_users_file == str(tmp_path / "specs" / "dev.yaml")
    assert dev.parameters_file == str(tmp_path / "params" / "common.yaml")
    assert dev.external_id is None  # an account's own null replaces the default
    assert (bare.name, bare.label, bare.role_arn("aws-us-gov")) == (
        "333333333333",
        "333333333333-333333333333",
        "arn:aws-us-gov:iam::333333333333:role/IamRunbookRole",
    )
    assert accounts.select(found.accounts, ["dev", "111111111111"]) == [prod, dev]
    with pytest.raises(SpecError, match="--account staging: not in the accounts file"):
        accounts.select(found.accounts, ["staging"])


BAD_FILES = [
    ({"accounts": [{"id": "1234"}]}, ["accounts[1]: id '1234' is not an AWS account id"]),
    ({"accounts": [{"id": 111111111111}]}, ["accounts[1]: id 111111111111 is a number; quote it"]),
    ({"accounts": [{"name": "prod"}]}, ["accounts[1]: no id"]),
    (
        {"accounts": [{"id": "111111111111", "name": "a"}, {"id": "111111111111", "name": "b"}]},
        ["accounts: id '111111111111' is listed 2 times"],
    ),
    (
        {"accounts": [{"id": "111111111111", "name": "a"}, {"id": "222222222222", "name": "a"}]},
        ["accounts: name 'a' is listed 2 times"],
    ),
    (
        {"accounts": [{"id": "111111111111", "parameters_file": "params/missing.yaml"}]},
        ["account 111111111111: parameters_file: ", "params/missing.yaml does not exist"],
    ),
    (
        {"accounts": [{"id": "111111111111", "parameters_file": "params/{env}.yaml"}]},
        ["has placeholder(s) env; allowed: {id}, {name}"],
    ),
    ({"accounts": [{"id": "111111111111", "parameters_file": None}]}, ["account 111111111111: no spec"]),
    ({"accounts": [{"id": "111111111111", "parameters_file": 5}]}, ["parameters_file must be a path (a string)"]),
    ({"accounts": [{"id": "111111111111", "iam_users_file": "s/{name.yaml"}]}, ["'s/{name.yaml': expected '}'"]),
    ({"accounts": [{"id": "111111111111", "region": "eu-west-1"}]}, ["accounts[1]: unknown key 'region'"]),
    ({"acounts": []}, ["unknown key 'acounts'", "no `accounts`"]),
    ({"defaults": {"role": "x"}, "accounts": "from_organization"}, ["defaults: unknown key 'role'"]),
    ({"accounts": [{"id": "111111111111", "role_name": "bad role!"}]}, ["invalid role_name 'bad role!'"]),
    ({"accounts": [{"id": "111111111111", "external_id": "x"}]}, ["external_id must be 2-1224 characters"]),
    ({"accounts": [{"id": "111111111111", "duration_seconds": 60}]}, ["duration_seconds must be a whole number"]),
    ({"accounts": []}, ["accounts: a list of accounts"]),
    ({"accounts": "everything"}, ["accounts: a list of accounts"]),
    ({"accounts": [{"id": "111111111111"}], "ous": ["ou-ab12-cdef3456"]}, ["ous: only with `accounts: from_org"]),
    ({"accounts": "from_organization", "ous": ["Production"]}, ["ous: 'Production' is not an OU id"]),
    ({"accounts": "from_organization", "tags": ["Team"]}, ["tags: a mapping of tag key"]),
    ({"accounts": "from_organization", "exclude": ["12"]}, ["exclude: id '12' is not an AWS account id"]),
]


@pytest.mark.parametrize(("data", "expected"), BAD_FILES)
def test_each_problem_of_the_file_is_named(tmp_path, data, expected):
    write_params(tmp_path, {"common": {}})
    data = {"defaults": {"parameters_file": "params/common.yaml", **data.pop("defaults", {})}, **data}
    with pytest.raises(SpecError) as refused:
        accounts.load_accounts_file(write_accounts(tmp_path, data))
    text = "\n".join(refused.value.problems)
    for part in expected:
        assert part in text


@pytest.mark.e2e
def test_every_problem_at_once_before_any_call(aws, tmp_path, capsys):
    write_params(tmp_path, {"prod": {"ann": {"description": "Ann", "roles": ["admin"]}}})
    (tmp_path / "params" / "dev.yaml").write_text("iam_users: {bob: {roles: [janitor]}}\naws_profile: dev\n")
    (tmp_path / "params" / "qa.yaml").write_text("iam_users: {}\nexpected_account_id: '999999999999'\n")
    (tmp_path / "params" / "ops.yaml").write_text("iam_users: {}\ncolour: blue\n")
    path = write_accounts(tmp_path, {"accounts": [
        {"id": "111111111111", "name": "prod", "parameters_file": "params/prod.yaml"},
        {"id": "222222222222", "name": "dev", "parameters_file": "params/dev.yaml"},
        {"id": "333333333333", "name": "qa", "parameters_file": "params/qa.yaml"},
        {"id": "444444444444", "name": "ops", "parameters_file": "params/ops.yaml"},
    ]})  # fmt: skip
    out = tmp_path / "runs"

    assert cli.main(["run", "--accounts", str(path), "--out", str(out)]) == 1

    err = capsys.readouterr().err
    assert "refused before starting any notebook" in err
    assert "account dev (222222222222): aws_profile 'dev': with --accounts the credentials come from" in err
    assert "account dev (222222222222): bob: unknown role 'janitor'" in err  # the spec too, at once
    assert "account qa (333333333333): expected_account_id '999999999999' is another account" in err
    assert "account ops (444444444444): unknown parameter 'colour'" in err
    assert "account prod" not in err
    assert aws.calls == [] and parents(out) == []


def test_options_that_need_one_account_or_a_review_are_refused(aws, project, capsys):
    argv = ["run", "--accounts", str(project), "--out", str(project.parent / "runs")]
    assert cli.main([*argv, "--archive", "s3://bucket/prefix"]) == 1
    assert cli.main([*argv, "--plan", str(project.parent)]) == 1
    assert cli.main([*argv, "--approved-by", "alice"]) == 1
    assert cli.main([*argv, "--account", "delta"]) == 1
    assert cli.main([*argv, "--parallel", "0"]) == 1
    err = capsys.readouterr().err
    assert "--archive goes with one account (-f)" in err
    assert "--plan applies each account's reviewed plan: add --apply and --approved-by NAME" in err
    assert "--approved-by goes with --plan" in err
    assert "--account delta: not in the accounts file (it has: alpha (" in err
    assert "--parallel 0: at least 1 account at a time" in err
    assert aws.calls == [] and parents(project.parent / "runs") == []


@pytest.mark.parametrize(
    ("codes", "expected"),
    [([0, 0], 0), ([0, 2], 2), ([2, 2], 2), ([0, 1], 1), ([2, 1], 1), ([1, 1], 1), ([0, 2, 1], 1), ([], 1),
     ([0, 75], 75), ([2, 75], 75), ([75, 1], 1)],  # 75: throttled or unreachable, worth a retry; 1 wins

)
def test_the_aggregate_exit_code_is_the_worst(codes, expected):
    assert fanout.aggregate_exit(codes) == expected


# ----------------------------------------------------------------------------- the organization
def test_from_organization_lists_active_accounts_by_ou_nested_and_by_tag(aws, organization):
    org_client = aws.client("organizations")
    internal = aws.client("organizations", internal=True)
    legacy, data, playground = (organization["accounts"][n] for n in ("legacy", "data", "playground"))
    production = organization["ous"]["Production"]
    nested = internal.create_organizational_unit(ParentId=production, Name="Analytics")["OrganizationalUnit"]["Id"]
    internal.move_account(AccountId=data["id"], SourceParentId=production, DestinationParentId=nested)

    def names(**filters) -> list[str]:
        return [a["Name"] for a in accounts.list_organization_accounts(org_client, **filters)]

    assert names(ous=[production]) == ["data", "legacy"]  # data sits in an OU below Production
    assert names(ous=[nested]) == ["data"]
    assert names(tags={"Team": ["platform"]}) == ["legacy", "playground"]
    assert names(tags={"Team": ["platform"], "Environment": ["dev"]}) == ["playground"]
    under_root = {a["Id"] for a in accounts.list_organization_accounts(org_client, ous=[organization["root_id"]])}
    assert under_root == {ACCOUNT_ID, legacy["id"], data["id"], playground["id"]}  # the management account too
    internal.close_account(AccountId=playground["id"])
    assert names(tags={"Team": ["platform"]}) == ["legacy"]  # a closed (SUSPENDED) account is not run
    assert {c.action for c in aws.calls} == {"ListAccounts", "ListAccountsForParent", "ListChildren",
                                              "ListTagsForResource"}  # fmt: skip


def test_from_organization_pages_and_leaves_out_the_callers_own_account(aws, organization, tmp_path):
    internal = aws.client("organizations", internal=True)
    for i in range(20):
        internal.create_account(AccountName=f"extra-{i:02d}", Email=f"extra{i}@example.com")
    write_params(tmp_path, {"legacy": {}, "data": {}})
    path = write_accounts(tmp_path, {
        "defaults": {"parameters_file": "params/{name}.yaml", "external_id": "shared-ext-id"},
        "accounts": "from_organization",
        "exclude": [organization["accounts"]["data"]["id"]],
    })  # fmt: skip
    found = accounts.load_accounts_file(path)
    aws.clear_calls()

    listed, problems, notes = accounts.organization_accounts(found, aws.client("organizations"), ACCOUNT_ID)

    assert len([c for c in aws.calls if c.action == "ListAccounts"]) == 2  # 24 accounts, 20 a page as AWS gives
    assert {a.name for a in listed} == {"legacy", "playground", *(f"extra-{i:02d}" for i in range(20))}
    assert all(a.external_id == "shared-ext-id" for a in listed)
    (note,) = notes
    assert f"({ACCOUNT_ID}): the caller's own account" in note
    missing = [p for p in problems if "does not exist" in p]
    assert len(missing) == 21 and any(p.startswith("account playground (") for p in missing)


# ----------------------------------------------------------------------------- the fan-out, 01 and 04 alone
@pytest.mark.e2e
def test_accounts_run_in_parallel_each_in_its_own_account(aws, members, project, capsys):
    out = project.parent / "runs"

    code = cli.main(["run", "--accounts", str(project), "01_gather_user_info", "04_verify", "--out", str(out),
                     "--parallel", "3"])  # fmt: skip

    assert code == 1  # gamma cannot be entered; beta has drift; alpha matches
    (parent,) = parents(out)
    assert parent.name.endswith("-accounts")
    rows = summary(parent)
    assert {n: (r["exit_code"], r["outcome"]) for n, r in rows.items()} == {
        "alpha": (0, "converged"), "beta": (2, "drift"), "gamma": (1, "not entered")
    }  # fmt: skip
    assert rows["beta"]["pending"] == ["verification: 2 problem(s)"]
    (refusal,) = rows["gamma"]["problems"]
    assert f"could not assume arn:aws:iam::{members['gamma']}:role/{ACCESS_ROLE}: " in refusal
    assert "(AccessDenied)" in refusal
    assert rows["gamma"]["run_folder"] is None
    with (parent / fanout.SUMMARY_CSV).open(encoding="utf-8") as fh:
        table = {row["name"]: row for row in csv.DictReader(fh)}
    assert table["beta"]["exit_code"] == "2" and table["gamma"]["problems"] == refusal
    for name in ("alpha", "beta"):
        record = run_json(parent, rows[name])
        assert rows[name]["run_folder"].split("-", 1)[1] == f"{name}-{members[name]}-01_gather_user_info+04_verify-plan"
        assert record["account_id"] == members[name] and record["parameters"]["expected_account_id"] == members[name]
        session = f"assumed-role/{ACCESS_ROLE}/iamrunbook-{parent.name}"
        assert record["caller_arn"] == f"arn:aws:sts::{members[name]}:{session}"
        assert set(record["parameters"]) == {"iam_users", "expected_account_id"}  # no credential is a parameter
    assert audit.verify_local(parent) == []  # one chain through both run folders
    assert sorted(bool(run_json(parent, rows[n])["previous_run"]) for n in ("alpha", "beta")) == [False, True]
    assert audit.verify_local(out) == []  # and the out folder holding the fan-out verifies too

    assumed = [c for c in aws.calls if c.action == "AssumeRole"]
    assert sorted(c.params["RoleArn"].split(":")[4] for c in assumed) == sorted(members.values())
    assert {c.params["RoleSessionName"] for c in assumed} == {f"iamrunbook-{parent.name}"}
    assert {c.params["RoleArn"].split(":")[4]: c.params.get("ExternalId") for c in assumed} == {
        members["alpha"]: None, members["beta"]: BETA_EXTERNAL_ID, members["gamma"]: None
    }  # fmt: skip
    assert {c.account_id for c in assumed} == {ACCOUNT_ID}
    assert aws.mutating_calls() == []
    for name in ("alpha", "beta"):
        theirs = [c for c in aws.calls if c.account_id == members[name]]
        assert theirs and all(c.principal.endswith(f"/iamrunbook-{parent.name}") for c in theirs)
    assert {c.account_id for c in aws.calls} == {ACCOUNT_ID, members["alpha"], members["beta"]}
    printed = capsys.readouterr().out
    assert f"accounts folder: {parent}" in printed and "not entered" in printed
    assert f"gamma ({members['gamma']}): could not assume" in printed

    code = cli.main(["run", "--accounts", str(project), "04_verify", "--account", "alpha", "--account", "beta",
                     "--out", str(out)])  # fmt: skip
    assert code == 2
    assert cli.main(["run", "--accounts", str(project), "04_verify", "--account", "alpha", "--out", str(out)]) == 0
    assert [sorted(summary(p)) for p in parents(out)] == [["alpha", "beta", "gamma"], ["alpha", "beta"], ["alpha"]]


@pytest.mark.e2e
def test_credentials_that_land_in_another_account_are_refused_before_any_change(aws, members, tmp_path):
    """The role of beta, given for alpha: the kernel sees beta's account and refuses (expected_account_id)."""
    write_params(tmp_path, {"alpha": {**SPECS["alpha"], **DRIFT}})
    alpha = Account(members["alpha"], "alpha", external_id=BETA_EXTERNAL_ID,
                    parameters_file=str(tmp_path / "params" / "alpha.yaml"))  # fmt: skip
    params = fanout.account_params(alpha, (), True, tmp_path)
    beta_role = f"arn:aws:iam::{members['beta']}:role/{ACCESS_ROLE}"
    notebook = str(ROOT / "notebooks" / "03_import_and_apply.ipynb")
    task = fanout.AccountTask(alpha, beta_role, params, (notebook,), str(tmp_path / "runs"), "wrong-account",
                              "alpha-wrong", str(tmp_path))  # fmt: skip

    (result,) = fanout.run_all([task], parallel=1, echo=lambda line: None)

    assert (result.exit_code, result.outcome) == (1, "error")
    (problem,) = result.problems
    assert (f"refused: these credentials are for account {members['beta']}, but expected_account_id is "
            f"{members['alpha']}. Nothing was changed.") in problem  # fmt: skip
    assert aws.mutating_calls() == []
    assert "bea@example.com" not in aws.iam_backend(members["alpha"]).users
    record = json.loads((tmp_path / "runs" / result.run_folder / "run.json").read_text(encoding="utf-8"))
    assert (record["account_id"], record["parameters"]["expected_account_id"]) == (members["beta"], members["alpha"])


@pytest.mark.e2e
def test_reviewed_plans_are_checked_per_account(aws, members, project):
    """Plan alpha and beta; beta changes after the review: beta is refused, alpha applies its reviewed plan,
    gamma (no reviewed run) is refused without even being entered."""
    write_params(project.parent, {"alpha": {**SPECS["alpha"], **DRIFT}})
    out = project.parent / "runs"
    argv = ["run", "--accounts", str(project), "03_import_and_apply", "--out", str(out)]
    assert cli.main([*argv, "--account", "alpha", "--account", "beta"]) == 2
    (reviewed,) = parents(out)
    aws.client("iam", account_id=members["beta"], internal=True).create_user(UserName="bea@example.com")
    aws.clear_calls()

    code = cli.main([*argv, "--apply", "--plan", str(reviewed), "--approved-by", "alice"])

    assert code == 1
    applied = next(p for p in parents(out) if p != reviewed)
    rows = summary(applied)
    assert {n: r["exit_code"] for n, r in rows.items()} == {"alpha": 0, "beta": 1, "gamma": 1}
    assert rows["gamma"]["problems"] == ["the reviewed folder has no run for this account"]
    assert rows["beta"]["problems"] == [  # the difference, named: the user made by hand is adopted, not created
        '03_import_and_apply: added since the review: <= aws_iam_user.users["bea@example.com"]: adopt existing user: '
        "tag it ManagedBy=iamrunbook",
        '03_import_and_apply: no longer planned: + aws_iam_user.users["bea@example.com"]: create user, tagged',
    ]
    provenance = run_json(applied, rows["alpha"])["reviewed_plan"]
    assert provenance["approved_by"] == "alice" and provenance["run_id"] == summary(reviewed)["alpha"]["run_folder"]
    assert "bea@example.com" in aws.iam_backend(members["alpha"]).users
    assert {c.account_id for c in aws.mutating_calls()} == {members["alpha"]}
    assert len([c for c in aws.calls if c.action == "AssumeRole"]) == 2  # gamma was not entered


# ----------------------------------------------------------------------------- the whole chain, seeded members
MEMBER_SPECS = {
    "legacy": {
        "your-username": {"description": "Account owner", "roles": ["admin", "data_engineer", "infrastructure_admin"]},
        "alice@example.com": {"description": "Alice - Platform Engineer", "roles": ["data_engineer"]},
    },
    "data": {
        "dana": {"description": "Dana - Data Engineer", "roles": ["data_engineer"]},
        "carol@example.com": {"description": "Carol - Data Lead", "roles": ["data_engineer", "admin"]},
    },
    "playground": {"pat@example.com": {"description": "Pat - Platform Engineer", "roles": ["infrastructure_admin"]}},
}


def seeded_project(aws, organization, folder: Path) -> Path:
    """The three seeded members, each with its own spec; playground's stranger has lost, by hand, the inline
    policy no apply removes."""
    playground = aws.client("iam", account_id=organization["accounts"]["playground"]["id"], internal=True)
    playground.delete_user_policy(UserName=STRANGER, PolicyName=STRANGER_POLICY)
    write_params(folder, MEMBER_SPECS)
    listed = [{"id": m["id"], "name": name} for name, m in organization["accounts"].items()]
    return write_accounts(folder, {"defaults": {"parameters_file": "params/{name}.yaml"}, "accounts": listed})


@pytest.mark.e2e
def test_three_accounts_converge_each_to_its_own_spec(aws, organization, tmp_path):
    path = seeded_project(aws, organization, tmp_path)
    out = tmp_path / "runs"
    ids = {name: member["id"] for name, member in organization["accounts"].items()}
    aws.clear_calls()

    assert cli.main(["run", "--accounts", str(path), "--apply", "--out", str(out)]) == 0

    (parent,) = parents(out)
    assert {n: (r["exit_code"], r["outcome"]) for n, r in summary(parent).items()} == {
        n: (0, "converged") for n in MEMBER_SPECS
    }
    for name, spec in MEMBER_SPECS.items():
        users = aws.iam_backend(ids[name]).users
        tagged = {"Key": MANAGED_BY_KEY, "Value": MANAGED_BY_VALUE}
        managed = {u for u, user in users.items() if tagged in (user.tags or [])}
        assert managed == set(spec), name
    assert STRANGER in aws.iam_backend(ids["playground"]).users  # untagged, outside the spec: left alone
    assert "ghost" not in aws.iam_backend(ids["playground"]).users  # tagged ManagedBy, in no spec: removed
    assert sorted(aws.iam_backend().users) == []  # nothing landed in the management account
    by_account: dict[str, set[str]] = {}
    for call in aws.mutating_calls():
        if "UserName" in call.params:
            by_account.setdefault(call.account_id, set()).add(call.params["UserName"])
    for name, touched in ((n, by_account.get(ids[n], set())) for n in MEMBER_SPECS):
        assert touched <= {*MEMBER_SPECS[name], "ghost"}, name  # no account's changes in another
    assert set(by_account) <= set(ids.values())

    assert cli.main(["run", "--accounts", str(path), "--out", str(out)]) == 0  # the drift check finds nothing
    assert audit.verify_local(out) == []


@pytest.mark.e2e
def test_demo_accounts_plans_fixes_applies_and_finds_no_drift(tmp_path, monkeypatch):
    """`iamrunbook demo --accounts` end to end (the plan-only first run needs the simulator)."""
    from iamrunbook.cli import main
    from iamrunbook.sandbox.demo import run_accounts_demo

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    lines: list[str] = []

    assert run_accounts_demo(main, out=tmp_path / "runs", echo=lines.append) == 0

    text = "\n".join(lines)
    assert "plan: {'data': 2, 'legacy': 2, 'playground': 1}" in text
    assert "drift check: {'data': 0, 'legacy': 0, 'playground': 0}" in text
    assert len(parents(tmp_path / "runs")) == 3


# ----------------------------------------------------------------------------- Airflow
def load_dag_module():
    spec = importlib.util.spec_from_file_location("airflow_iamrunbook_dag", DAG_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.e2e
def test_the_airflow_dags_tasks_share_one_folder_one_chain_one_summary(aws, members, project, tmp_path, capsys,
                                                                        monkeypatch):  # fmt: skip
    """Each mapped task's command, run as the task runs it (one account, --into the DAG run's folder), then the
    summary task's: one folder, one chain, one summary; `audit list` and `verify` on OUT see every run."""
    from datetime import datetime, timezone

    py_compile.compile(str(DAG_FILE), doraise=True)
    dag = load_dag_module()
    assert dag.DAG is None and not hasattr(dag, "plan_dag")  # no Airflow here: the guard kept the module importable
    monkeypatch.setenv("IAMRUNBOOK_PYTHON", "/opt/iamrunbook/bin/python")
    out = tmp_path / "airflow-runs"
    folder = dag.shared_folder(datetime(2026, 5, 4, 6, 0, tzinfo=timezone.utc), out)
    assert folder == out.resolve() / "20260504T060000Z-accounts"

    assert cli.main(["accounts", "list", str(project)]) == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [row["name"] for row in listed] == ["alpha", "beta", "gamma"]
    codes = {}
    for row in listed:
        args = dag.account_args(row["id"], folder, accounts_file=project, notebooks=["04_verify"])
        assert dag.iamrunbook_argv(*args)[:3] == ["/opt/iamrunbook/bin/python", "-m", "iamrunbook"]
        codes[row["name"]] = cli.main(args)
    assert codes == {"alpha": 0, "beta": 2, "gamma": 1}  # gamma's trust names another account: not entered
    assert cli.main(["run", "--accounts", str(project), "--account", "alpha", "--into", str(folder),
                     "04_verify"]) == 0  # a cleared task run again: a second run, its row replaced  # fmt: skip
    capsys.readouterr()

    expected = [a for row in listed for a in ("--account", row["id"])] + ["--account", "999999999999"]
    assert cli.main(["accounts", "summary", str(folder), *expected]) == 1
    rows = summary(folder)
    assert {n: (r["exit_code"], r["outcome"]) for n, r in rows.items()} == {
        "alpha": (0, "converged"), "beta": (2, "drift"), "gamma": (1, "not entered"), "999999999999": (1, "no result")
    }  # fmt: skip
    assert json.loads((folder / fanout.SUMMARY_JSON).read_text())["exit_code"] == 1
    # reviewed later, alpha's run is the one its row names (the re-run), not "2 runs"
    assert fanout.reviewed_runs(folder)[members["alpha"]] == [folder / rows["alpha"]["run_folder"]]
    assert [dag.outcome(c, p) for c, p in ((0, "fail"), (2, "skip"), (2, "fail"), (75, "skip"), (1, "skip"))] == [
        "success", "skip", "fail", "retry", "fail"]  # fmt: skip

    assert parents(out) == [folder]  # every task of the DAG run in one folder
    runs = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert len(runs) == 3  # alpha twice, beta once; gamma was never entered
    assert audit.verify_local(out) == []  # one chain: exactly one run starts it
    firsts = [r for r in runs if json.loads((folder / r / "run.json").read_text())["previous_run"] is None]
    assert len(firsts) == 1
    capsys.readouterr()
    assert cli.main(["audit", "list", str(out), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert sorted(row["run"] for row in listing) == sorted(f"{folder.name}/{r}" for r in runs)

    (folder / runs[0] / "run.json").write_text("{}")  # an edited record in the shared folder is found
    assert audit.verify_local(out) != []


def test_the_apply_dag_needs_a_reviewed_plan_in_its_conf(tmp_path):
    dag = load_dag_module()
    (tmp_path / "20260504T060000Z-accounts").mkdir()
    plan, who = dag.reviewed({"plan_run": "20260504T060000Z-accounts", "approved_by": "alice"}, tmp_path)
    assert (plan, who) == ((tmp_path / "20260504T060000Z-accounts").resolve(), "alice")
    args = dag.account_args("111111111111", tmp_path / "x", accounts_file=tmp_path / "a.yaml", plan=plan,
                            approved_by=who)  # fmt: skip
    parsed = cli.build_parser().parse_args(args)
    assert (parsed.apply, parsed.plan, parsed.approved_by) == (True, str(plan), "alice")
    assert parsed.into == str(tmp_path / "x")
    for conf, named in (({}, "plan_run ''"), ({"plan_run": "../etc", "approved_by": "a"}, "plan_run '../etc'"),
                        ({"plan_run": "nope-accounts", "approved_by": "a"}, "no such folder"),
                        ({"plan_run": "20260504T060000Z-accounts", "approved_by": " "}, "approved_by")):  # fmt: skip
        with pytest.raises(ValueError, match=named):
            dag.reviewed(conf, tmp_path)


@pytest.mark.e2e
def test_throttled_or_unreachable_aws_exits_75_for_a_retry(aws, members, project, tmp_path, monkeypatch, capsys):
    """75 only for what may pass by itself (a throttled AssumeRole, an AWS that does not answer); a refused role
    stays 1 (gamma's trust names another account)."""
    out = tmp_path / "runs"
    aws.inject_fault("AssumeRole", code="Throttling", status=400, times=None)  # past botocore's own retries
    argv = ["run", "--accounts", str(project), "--out", str(out), "--into", str(out / "shared"), "04_verify"]
    assert cli.main([*argv, "--account", "alpha"]) == 75
    assert (summary(out / "shared")["alpha"]["exit_code"], summary(out / "shared")["alpha"]["outcome"]) == (
        75, "unreachable")  # fmt: skip
    aws.clear_faults()
    assert cli.main([*argv, "--account", "gamma"]) == 1  # its rows merged beside alpha's: the worst is 1
    rows = summary(out / "shared")
    assert (rows["alpha"]["outcome"], rows["gamma"]["outcome"]) == ("unreachable", "not entered")
    assert json.loads((out / "shared" / fanout.SUMMARY_JSON).read_text())["exit_code"] == 1
    assert "75: throttled or unreachable" in capsys.readouterr().out

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    assert cli.main(["run", "--accounts", str(project), "--out", str(out)]) == 75
    assert cli.main(["accounts", "list", str(project)]) == 75
    assert "could not start the fan-out" in capsys.readouterr().err
    assert cli.main(["run", "-f", str(project), "--into", str(out)]) == 1  # --into goes with --accounts
    assert "--into go with --accounts" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["shared"]
