"""The runner's own policy cannot make anyone an admin: scoped by resource and condition, and proven three ways.

1. Two outside analysers (parliament with its community auditors, cloudsplaining) on every variant the CLI
   prints: no privilege escalation and no resource exposure on Resource "*".
2. A table of escalation attempts, each matched against the printed document with AWS's evaluation
   (sandbox/policy.verdict: action, resource, condition keys, policy variables) and each refused, beside the
   legitimate calls of the same kinds, each allowed.
3. End to end: the whole chain with --apply, the migration, an offboarding and the archive, as an IAM user that
   holds only the printed policy, on the embedded AWS with request authorisation on (sandbox/authorize.py);
   then every escalation attempt with the same credentials, each refused with AccessDenied.
"""

from __future__ import annotations

import json
import re

import pytest
from botocore.exceptions import ClientError
from cloudsplaining.scan.policy_document import PolicyDocument
from parliament import analyze_policy_string

from iamrunbook.base.names import MANAGED_BY_KEY, MANAGED_BY_VALUE
from iamrunbook.cli import cli, permissions
from iamrunbook.cli.runner_scope import OPERATOR_ONLY, RULES, Scope
from iamrunbook.sandbox import authorize
from iamrunbook.sandbox.policy import verdict

ACCOUNT = "123456789012"
ARCHIVE = "s3://audit-bucket/iamrunbook"
#: every variant the CLI can print: name -> (apply, parameters, partition's region)
VARIANTS = {
    "plan": (False, {}),
    "apply": (True, {}),
    "archive": (True, {}),
    "group": (True, {"grant_via": "group", "role_groups": {"admin": "Admins"}}),
    "revoke_role_sessions": (True, {"revoke_role_sessions": True}),
    "aws-us-gov": (True, {"aws_region": "us-gov-west-1", "revoke_role_sessions": True}),
}


def variant(name: str, account: str = ACCOUNT) -> tuple[dict, Scope]:
    apply, params = VARIANTS[name]
    scope = permissions.scope_for(params, account_id=account, archive=ARCHIVE if name != "plan" else None)
    if name == "apply":
        scope = permissions.scope_for(params, account_id=account)
    return permissions.runner_policy(apply, scope), scope


# --------------------------------------------------------------------------- 1. the analysers

#: parliament's findings that are wrong for this policy, each with why. Its community auditors match action
#: names only and ignore Resource and Condition; a finding is accepted only if every action it names is granted
#: solely on specific ARNs or under a condition (checked below, never assumed).
PARLIAMENT_ALLOWED = {
    # AttachUserPolicy / AttachGroupPolicy: only Assume<Role>Policy ARNs, by iam:PolicyARN
    ("PRIVILEGE_ESCALATION", "AttachUserPolicy"),
    ("PRIVILEGE_ESCALATION", "AttachGroupPolicy"),
    # CreatePolicyVersion: only on the Assume<Role>Policy ARNs (README: the rewrite that remains)
    ("PRIVILEGE_ESCALATION", "CreateNewPolicyVersion"),
    # AddUserToGroup: only on the role groups' ARNs
    ("PRIVILEGE_ESCALATION", "AddUserToGroup"),
    # UpdateAccessKey deactivates a leaver's keys (never returns a secret), only on ManagedBy=iamrunbook users
    ("CREDENTIALS_EXPOSURE", None),
    # the writes above, each scoped: "permissions management" is the runbook's purpose
    ("PERMISSIONS_MANAGEMENT_ACTIONS", None),
}


def on_star(policy: dict) -> set[str]:
    """Actions some Allow statement grants on Resource "*" without a condition."""
    return {
        a.lower()
        for s in policy["Statement"]
        if s["Effect"] == "Allow" and "*" in s["Resource"] and not s.get("Condition")
        for a in s["Action"]
    }


@pytest.mark.parametrize("name", VARIANTS)
def test_parliament_finds_no_escalation_and_nothing_on_star(name):
    policy, _ = variant(name)
    for finding in analyze_policy_string(json.dumps(policy), include_community_auditors=True).findings:
        detail = finding.location if isinstance(finding.location, dict) else {}  # parliament keeps them there
        assert finding.issue != "RESOURCE_STAR", finding.detail
        assert (finding.issue, detail.get("type")) in PARLIAMENT_ALLOWED, (finding.issue, detail)
        assert not set(detail.get("actions", ())) & on_star(policy), (finding.issue, detail)


@pytest.mark.parametrize("name", VARIANTS)
def test_cloudsplaining_finds_no_escalation_and_no_exposure(name):
    document = PolicyDocument(variant(name)[0])
    assert document.allows_privilege_escalation == []
    assert document.credentials_exposure == []
    assert document.permissions_management_without_constraints == []
    assert document.allows_data_exfiltration_actions == []
    assert document.infrastructure_modification == []


def test_only_actions_without_resource_level_permissions_are_on_star():
    policy, _ = variant("revoke_role_sessions")
    assert on_star(policy) == {a.lower() for a in RULES if RULES[a][0].__name__ == "_unscoped"}


# --------------------------------------------------------------------------- 2. the escalation table


def iam(scope: Scope, resource: str) -> str:
    return scope.iam(resource).replace("*", ACCOUNT)


def attempt(name: str, action: str, resource: str, **context) -> str | None:
    policy, _ = variant(name)
    keys = {"aws:username": "runner", **{k.lower(): v for k, v in context.items()}}
    return verdict([policy], action, resource, keys)


def policy_arn(name: str) -> str:
    return f"arn:aws:iam::{ACCOUNT}:policy/{name}"


MANAGED = {f"aws:ResourceTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE, f"iam:ResourceTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE}
ADOPTING = {f"aws:RequestTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE}
ADMIN = "arn:aws:iam::aws:policy/AdministratorAccess"
RUNNER = f"arn:aws:iam::{ACCOUNT}:user/runner"

#: (what, variant, action, resource, context): each must be refused
ESCALATIONS = [
    ("attach AdministratorAccess to the runner", "apply", "iam:AttachUserPolicy", RUNNER, {"iam:PolicyARN": ADMIN}),
    ("attach AdministratorAccess to a role group", "group", "iam:AttachGroupPolicy",
     f"arn:aws:iam::{ACCOUNT}:group/Admins", {"iam:PolicyARN": ADMIN}),
    ("attach the legacy policy to the runner", "apply", "iam:AttachUserPolicy", RUNNER,
     {"iam:PolicyARN": policy_arn("AssumeRolesPolicy")}),
    ("attach the legacy policy to a role", "apply", "iam:AttachRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/AdminRole",
     {"iam:PolicyARN": policy_arn("AssumeRolesPolicy")}),
    ("new version of a foreign policy", "apply", "iam:CreatePolicyVersion", policy_arn("TeamPolicy"), {}),
    ("new version of the legacy policy", "apply", "iam:CreatePolicyVersion", policy_arn("AssumeRolesPolicy"), {}),
    ("default version of a foreign policy", "apply", "iam:SetDefaultPolicyVersion", policy_arn("TeamPolicy"), {}),
    ("add the runner to a group that is not a role group", "group", "iam:AddUserToGroup",
     f"arn:aws:iam::{ACCOUNT}:group/Administrators", {}),
    ("add the runner to a group, grant_via user", "apply", "iam:AddUserToGroup",
     f"arn:aws:iam::{ACCOUNT}:group/AdminRoleUsers", {}),
    ("inline policy on a configured role, revoke_role_sessions off", "apply", "iam:PutRolePolicy",
     f"arn:aws:iam::{ACCOUNT}:role/AdminRole", {}),
    ("inline policy on another role, revoke_role_sessions on", "revoke_role_sessions", "iam:PutRolePolicy",
     f"arn:aws:iam::{ACCOUNT}:role/OrganizationAccountAccessRole", {}),
    ("inline policy on the runner", "revoke_role_sessions", "iam:PutUserPolicy", RUNNER, {}),
    ("delete an untagged user", "apply", "iam:DeleteUser", f"arn:aws:iam::{ACCOUNT}:user/carol", {}),
    ("delete a user tagged by someone else", "apply", "iam:DeleteUser", f"arn:aws:iam::{ACCOUNT}:user/carol",
     {f"aws:ResourceTag/{MANAGED_BY_KEY}": "terraform"}),
    ("deactivate an untagged user's key", "apply", "iam:UpdateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/carol", {}),
    ("create a user without the tag", "apply", "iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/mallory",
     {"aws:TagKeys": []}),
    ("tag a user with a key the runbook never writes", "apply", "iam:TagUser", f"arn:aws:iam::{ACCOUNT}:user/carol",
     {"aws:TagKeys": ["ManagedBy", "Team"], f"aws:RequestTag/{MANAGED_BY_KEY}": MANAGED_BY_VALUE}),
    ("create an access key", "apply", "iam:CreateAccessKey", RUNNER, {}),
    ("write to another bucket", "archive", "s3:PutObject", "arn:aws:s3:::other-bucket/iamrunbook/run/x.json", {}),
    ("write to another prefix", "archive", "s3:PutObject", "arn:aws:s3:::audit-bucket/elsewhere/x.json", {}),
    ("list another prefix", "archive", "s3:ListBucket", "arn:aws:s3:::audit-bucket", {"s3:prefix": "elsewhere/"}),
    ("the archive's actions without --archive", "apply", "s3:PutObject", "arn:aws:s3:::audit-bucket/iamrunbook/x", {}),
    ("any write in a plan-only policy", "plan", "iam:AttachUserPolicy", RUNNER,
     {"iam:PolicyARN": policy_arn("AssumeAdminRolePolicy")}),
]  # fmt: skip

#: the legitimate calls of the same kinds: each allowed (so the refusals above are not the matcher failing)
GRANTED = [
    ("apply", "iam:AttachUserPolicy", f"arn:aws:iam::{ACCOUNT}:user/alice",
     {"iam:PolicyARN": policy_arn("AssumeAdminRolePolicy")}),
    ("group", "iam:AttachGroupPolicy", f"arn:aws:iam::{ACCOUNT}:group/Admins",
     {"iam:PolicyARN": policy_arn("AssumeAdminRolePolicy")}),
    ("group", "iam:AddUserToGroup", f"arn:aws:iam::{ACCOUNT}:group/DataEngineerRoleUsers", {}),
    ("apply", "iam:CreatePolicyVersion", policy_arn("AssumeDataEngineerRolePolicy"), {}),
    ("apply", "iam:DeletePolicy", policy_arn("AssumeRolesPolicy"), {}),
    ("apply", "iam:DetachRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/AdminRole",
     {"iam:PolicyARN": policy_arn("AssumeRolesPolicy")}),
    ("revoke_role_sessions", "iam:PutRolePolicy", f"arn:aws:iam::{ACCOUNT}:role/AdminRole", {}),
    ("apply", "iam:DeleteUser", f"arn:aws:iam::{ACCOUNT}:user/carol", MANAGED),
    ("apply", "iam:DetachUserPolicy", f"arn:aws:iam::{ACCOUNT}:user/carol", {**MANAGED, "iam:PolicyARN": ADMIN}),
    ("apply", "iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/dave",
     {"aws:TagKeys": ["Description", "ManagedBy", "Name", "Roles"], **ADOPTING}),
    ("apply", "iam:TagUser", f"arn:aws:iam::{ACCOUNT}:user/carol", {**MANAGED, "aws:TagKeys": ["Roles"]}),
    ("archive", "s3:PutObject", "arn:aws:s3:::audit-bucket/iamrunbook/run-1/run.json", {}),
    ("archive", "s3:ListBucket", "arn:aws:s3:::audit-bucket", {"s3:prefix": "iamrunbook/run-1/"}),
]  # fmt: skip


@pytest.mark.parametrize(("what", "name", "action", "resource", "context"), ESCALATIONS, ids=[e[0] for e in ESCALATIONS])  # noqa: E501
def test_each_escalation_is_refused_by_the_printed_document(what, name, action, resource, context):
    assert attempt(name, action, resource, **context) is None


@pytest.mark.parametrize(("name", "action", "resource", "context"), GRANTED, ids=[f"{g[0]}-{g[1]}" for g in GRANTED])
def test_the_runbooks_own_calls_are_allowed(name, action, resource, context):
    assert attempt(name, action, resource, **context) == "Allow"


# --------------------------------------------------------------------------- the document itself


def test_every_declared_action_has_its_statement_and_no_more():
    policy, scope = variant("group")
    scope = Scope(**{**scope.__dict__, "revoke_role_sessions": True})
    granted = {a for s in permissions.runner_policy(True, scope)["Statement"] for a in s["Action"]}
    assert granted == set(permissions.required_actions(True, archive=True)) - set(OPERATOR_ONLY)
    plan_only = {a for s in variant("plan")[0]["Statement"] for a in s["Action"]}
    assert plan_only == set(permissions.required_actions(False))
    apply_user_mode = {a for s in variant("apply")[0]["Statement"] for a in s["Action"]}
    assert not apply_user_mode & {"iam:PutRolePolicy", "iam:CreateGroup", "iam:AddUserToGroup", "s3:PutObject"}


def test_partition_and_account_come_from_the_parameters():
    policy, _ = variant("aws-us-gov")
    arns = re.findall(r'"(arn:[^"]+)"', json.dumps(policy))
    assert arns and all(a.startswith(("arn:aws-us-gov:iam::123456789012:", "arn:aws-us-gov:s3:::")) for a in arns)
    default = permissions.runner_policy(True)
    assert "arn:aws:iam::*:policy/AssumeAdminRolePolicy" in json.dumps(default)


def test_the_command_prints_json_and_terraform(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("roles: {ops: OpsRole}\nlegacy_policy_name: OldPolicy\nrevoke_role_sessions: true\n")
    argv = ["permissions", "-f", str(params), "--apply", "--account-id", ACCOUNT, "--archive", "s3://b/p"]
    assert cli.main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == permissions.runner_policy(True, permissions.scope_for(
        {"roles": {"ops": "OpsRole"}, "legacy_policy_name": "OldPolicy", "revoke_role_sessions": True},
        account_id=ACCOUNT, archive="s3://b/p"))  # fmt: skip
    text = json.dumps(printed)
    assert f"arn:aws:iam::{ACCOUNT}:policy/AssumeOpsRolePolicy" in text and "policy/OldPolicy" in text
    assert f"arn:aws:iam::{ACCOUNT}:role/OpsRole" in text and "arn:aws:s3:::b/p/*" in text
    assert cli.main([*argv[:3], "--apply", "--archive", "s3://b/p", "--format", "terraform"]) == 0
    hcl = capsys.readouterr().out
    assert hcl.count("statement {") == len(printed["Statement"])
    assert 'data "aws_iam_policy_document" "iamrunbook_runner" {' in hcl
    assert "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:" in hcl
    assert 'variable = "iam:PolicyARN"' in hcl and "arn:aws:" not in hcl
    assert cli.main([*argv, "--format", "terraform"]) == 0  # the account given: only the partition is Terraform's
    as_lists = json.loads(json.dumps(printed))
    for statement in as_lists["Statement"]:  # Terraform's values are always a list
        for pairs in statement.get("Condition", {}).values():
            pairs.update({k: v if isinstance(v, list) else [v] for k, v in pairs.items()})
    assert from_terraform(capsys.readouterr().out) == as_lists


def from_terraform(text: str) -> dict:
    """The JSON document an aws_iam_policy_document renders, in the commercial partition (python-hcl2)."""
    import hcl2

    def plain(value):
        if isinstance(value, list):
            return [plain(v) for v in value]
        return value.strip('"').replace("${data.aws_partition.current.partition}", "aws")

    data = hcl2.loads(text)["data"][0]['"aws_iam_policy_document"']['"iamrunbook_runner"']
    statements = []
    for block in data["statement"]:
        statement = {"Sid": plain(block["sid"]), "Effect": plain(block["effect"]), "Action": plain(block["actions"]),
                     "Resource": plain(block["resources"])}  # fmt: skip
        for c in block.get("condition", []):
            test, variable = plain(c["test"]), plain(c["variable"])
            statement.setdefault("Condition", {}).setdefault(test, {})[variable] = plain(c["values"])
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def test_bad_input_is_refused_with_what_is_allowed(tmp_path, capsys):
    params = tmp_path / "params.yaml"
    params.write_text("grant_via: role\n")
    assert cli.main(["permissions", "-f", str(params)]) == 1
    assert "grant_via" in capsys.readouterr().err
    params.write_text("roles: {admin: 'Admin${x}'}\n")
    assert cli.main(["permissions", "-f", str(params)]) == 1
    assert "invalid roles.admin 'Admin${x}'; allowed:" in capsys.readouterr().err
    assert cli.main(["permissions", "--archive", "bucket/prefix"]) == 1
    assert "s3://BUCKET/PREFIX" in capsys.readouterr().err


def test_the_fanout_callers_policy(tmp_path, capsys):
    accounts = tmp_path / "accounts.yaml"
    (tmp_path / "params.yaml").write_text("{}\n")
    accounts.write_text(
        "defaults: {role_name: RunbookAccess, parameters_file: params.yaml}\n"
        "accounts:\n  - {id: '111111111111', external_id: ext-1}\n  - {id: '222222222222'}\n"
    )
    assert cli.main(["permissions", "--accounts", str(accounts)]) == 0
    statements = json.loads(capsys.readouterr().out)["Statement"]
    assert statements == [
        {"Sid": "EnterAccounts1", "Effect": "Allow", "Action": ["sts:AssumeRole"],
         "Resource": ["arn:aws:iam::222222222222:role/RunbookAccess"]},
        {"Sid": "EnterAccounts2", "Effect": "Allow", "Action": ["sts:AssumeRole"],
         "Resource": ["arn:aws:iam::111111111111:role/RunbookAccess"],
         "Condition": {"StringEquals": {"sts:ExternalId": "ext-1"}}},
        # which account manages the organization: under grant_via: identity_center it runs last (fanout_center.py)
        {"Sid": "ReadOrganization", "Effect": "Allow", "Action": ["organizations:DescribeOrganization"],
         "Resource": "*"},
    ]  # fmt: skip


# --------------------------------------------------------------------------- 3. end to end, enforced

BUCKET, PREFIX = "audit-bucket", "iamrunbook"


@pytest.fixture(scope="module")
def enforced_account(embedded_aws):
    """One account for the module, built on first use (and again only if another module's test reset the
    server in between, as pytest-xdist may interleave modules on one worker)."""
    from aws_env import pointed_at

    state: dict = {}
    with pointed_at(embedded_aws) as aws:
        state["aws"] = aws
        yield state
    if state.get("key"):
        authorize.release(state["key"]["AccessKeyId"])


@pytest.fixture
def runner(enforced_account):
    """The demo account plus a leaver, a foreign policy, a non-role group, another role, an archive bucket; and
    `runner`, an IAM user holding only the printed policy (revoke_role_sessions on, the archive), whose key the
    embedded AWS authorises by resource and condition."""
    state, aws = enforced_account, enforced_account["aws"]
    user = aws.iam_backend(state["account"]).users.get("runner") if state.get("key") else None
    if user is None or not any(k.access_key_id == state["key"]["AccessKeyId"] for k in user.access_keys):
        if state.get("key"):
            authorize.release(state["key"]["AccessKeyId"])
        state.update(build_enforced_account(aws))
    return state


def build_enforced_account(aws) -> dict:
    from test_permissions import EXAMPLE, seed_everything

    from iamrunbook.core.params import load_params_file

    aws.reset()
    admin = aws.client("iam", internal=True)
    made = seed_everything(admin)
    account = made["account_id"]
    params = {**load_params_file(EXAMPLE), "revoke_role_sessions": True}
    scope = permissions.scope_for(params, account_id=account, archive=f"s3://{BUCKET}/{PREFIX}")
    document = permissions.runner_policy_json(True, scope)
    arn = admin.create_policy(PolicyName="IamrunbookRunner", PolicyDocument=document)["Policy"]["Arn"]
    admin.create_user(UserName="runner")
    admin.attach_user_policy(UserName="runner", PolicyArn=arn)
    key = admin.create_access_key(UserName="runner")["AccessKey"]
    admin.create_policy(PolicyName="TeamPolicy", PolicyDocument=json.dumps(seed_policy("s3:ListBucket")))
    admin.create_group(GroupName="Administrators")
    admin.create_role(RoleName="OtherRole", AssumeRolePolicyDocument=json.dumps(seed_policy("sts:AssumeRole")))
    aws.client("s3", internal=True).create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)  # retention too
    authorize.enforce(key["AccessKeyId"])
    return {"key": key, "account": account, "policy_arn": arn, "scope": scope, "params": params}


def seed_policy(action: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}


def as_runner(runner, service: str):
    return runner["aws"].client(service, credentials=runner["key"])


@pytest.mark.e2e
def test_the_whole_chain_runs_as_the_runner_holding_only_the_printed_policy(runner, monkeypatch, tmp_path):
    from test_permissions import EXAMPLE

    aws, key = runner["aws"], runner["key"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    assert as_runner(runner, "sts").get_caller_identity()["Arn"].endswith(":user/runner")
    out, archive = str(tmp_path / "runs"), f"s3://{BUCKET}/{PREFIX}"
    aws.clear_calls()
    assert cli.main(["run", "-f", str(EXAMPLE), "--apply", "--out", out, "--archive", archive]) == 0
    admin = aws.client("iam", internal=True)
    role_policy = f"arn:aws:iam::{runner['account']}:policy/AssumeDataEngineerRolePolicy"
    admin.attach_user_policy(UserName="leaver", PolicyArn=role_policy)
    offboard = ["run", "05_offboard_user", "-f", str(EXAMPLE), "-p", "offboard_user", "leaver", "--out", out]
    assert cli.main([*offboard, "--apply", "-p", "revoke_role_sessions", "true", "--archive", archive]) == 0
    backend = aws.iam_backend(runner["account"])
    assert "leaver" not in backend.users
    assert "AssumeRolesPolicy" not in {p.name for p in backend.managed_policies.values()}  # the migration ran
    assert {"your-username", "alice@example.com", "bob@example.com"} <= set(backend.users)
    assert {c.principal for c in aws.calls} == {f"arn:aws:iam::{runner['account']}:user/runner"}
    tagged = [c for c in aws.calls if c.action == "TagUser" and c.params.get("UserName") == "leaver"]
    assert tagged and tagged[0].seq < min(c.seq for c in aws.calls if c.action == "UpdateAccessKey")
    refused = [c for c in aws.calls if c.status == 403]
    assert refused == [], [(c.action, c.params) for c in refused]
    writes = {f"{c.service}:{c.action}" for c in aws.calls if c.mutating and c.ok}
    assert {"iam:TagUser", "iam:CreateUser", "iam:AttachUserPolicy", "iam:DeletePolicy", "iam:PutRolePolicy",
            "iam:DeleteUser", "iam:RemoveUserFromGroup", "s3:PutObject"} <= writes  # fmt: skip
    objects = as_runner(runner, "s3").list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/")
    assert objects["KeyCount"] > 0
    puts = [c for c in aws.calls if c.action == "PutObject"]
    assert puts and all(c.params.get("ObjectLockMode") == "GOVERNANCE" for c in puts)  # s3:PutObjectRetention too
    runs = sorted(p for p in (tmp_path / "runs").iterdir() if p.is_dir())
    aws.clear_calls()
    assert cli.main(["audit", "verify", str(runs[-1]), "--against", archive]) == 0  # reads the archive back
    assert cli.main(["audit", "verify", f"{archive}/{runs[-1].name}"]) == 0
    assert {c.action for c in aws.calls} >= {"GetObject"} and all(c.ok for c in aws.calls)


def _attempts(runner) -> dict:
    """Each escalation the runner's credentials might try, as a call to make."""
    iam, s3, account = as_runner(runner, "iam"), as_runner(runner, "s3"), runner["account"]
    admin_policy = "arn:aws:iam::aws:policy/AdministratorAccess"
    foreign = f"arn:aws:iam::{account}:policy/TeamPolicy"
    everything = json.dumps(seed_policy("*"))
    return {
        "attach AdministratorAccess to itself": lambda: iam.attach_user_policy(
            UserName="runner", PolicyArn=admin_policy),
        "new default version of a foreign policy": lambda: iam.create_policy_version(
            PolicyArn=foreign, PolicyDocument=everything, SetAsDefault=True),
        "default version of a foreign policy": lambda: iam.set_default_policy_version(
            PolicyArn=foreign, VersionId="v1"),
        "add itself to a group that is not a role group": lambda: iam.add_user_to_group(
            GroupName="Administrators", UserName="runner"),
        "inline policy on a role that is not configured": lambda: iam.put_role_policy(
            RoleName="OtherRole", PolicyName="x", PolicyDocument=everything),
        "inline policy on itself": lambda: iam.put_user_policy(
            UserName="runner", PolicyName="x", PolicyDocument=everything),
        "delete an untagged user": lambda: iam.delete_user(UserName="ci-bot"),
        "deactivate an untagged user's key": lambda: iam.update_access_key(
            UserName="ci-bot", AccessKeyId="AKIAEXAMPLEEXAMPLE12", Status="Inactive"),
        "create a user without the ManagedBy tag": lambda: iam.create_user(UserName="mallory"),
        "write to another bucket": lambda: s3.put_object(Bucket="other-bucket", Key=f"{PREFIX}/x", Body=b"x"),
        "write to another prefix": lambda: s3.put_object(Bucket=BUCKET, Key="elsewhere/x", Body=b"x"),
    }  # fmt: skip


ATTEMPTS = [
    "attach AdministratorAccess to itself",
    "new default version of a foreign policy",
    "default version of a foreign policy",
    "add itself to a group that is not a role group",
    "inline policy on a role that is not configured",
    "inline policy on itself",
    "delete an untagged user",
    "deactivate an untagged user's key",
    "create a user without the ManagedBy tag",
    "write to another bucket",
    "write to another prefix",
]


@pytest.mark.parametrize("what", ATTEMPTS)
def test_each_escalation_is_refused_with_access_denied(runner, what):
    with pytest.raises(ClientError) as refused:
        _attempts(runner)[what]()
    assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_an_inline_role_policy_is_refused_when_revoke_role_sessions_is_off(runner):
    """The same credentials, after their policy is reprinted for revoke_role_sessions off."""
    admin = runner["aws"].client("iam", internal=True)
    scope = Scope(**{**runner["scope"].__dict__, "revoke_role_sessions": False})
    off = permissions.runner_policy_json(True, scope)
    version = admin.create_policy_version(PolicyArn=runner["policy_arn"], PolicyDocument=off, SetAsDefault=True)
    iam, document = as_runner(runner, "iam"), json.dumps(seed_policy("*"))
    try:
        with pytest.raises(ClientError) as refused:
            iam.put_role_policy(RoleName="AdminRole", PolicyName="x", PolicyDocument=document)
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
    finally:
        admin.set_default_policy_version(PolicyArn=runner["policy_arn"], VersionId="v1")
        admin.delete_policy_version(PolicyArn=runner["policy_arn"], VersionId=version["PolicyVersion"]["VersionId"])


# --------------------------------------------------------------------------- the evaluator's semantics


def test_the_evaluator_follows_awss_condition_semantics():
    keys = {"ForAllValues:StringEquals": {"aws:TagKeys": ["Name", "Roles"]}}
    stmt = {"Effect": "Allow", "Action": "iam:TagUser", "Resource": "*", "Condition": keys}
    assert verdict([{"Statement": [stmt]}], "iam:TagUser", "u", {"aws:tagkeys": ["Name"]}) == "Allow"
    assert verdict([{"Statement": [stmt]}], "iam:TagUser", "u", {"aws:tagkeys": ["Name", "Team"]}) is None
    assert verdict([{"Statement": [stmt]}], "iam:TagUser", "u", {}) == "Allow"  # ForAllValues of nothing: true
    own = {"Effect": "Allow", "Action": "iam:GetUser", "Resource": "arn:aws:iam::1:user/${aws:username}"}
    assert verdict([{"Statement": [own]}], "iam:GetUser", "arn:aws:iam::1:user/ann", {"aws:username": "ann"})
    assert verdict([{"Statement": [own]}], "iam:GetUser", "arn:aws:iam::1:user/bob", {"aws:username": "ann"}) is None
    assert verdict([{"Statement": [own]}], "iam:GetUser", "arn:aws:iam::1:user/${aws:username}", {}) is None
    deny = {"Effect": "Deny", "Action": "iam:*", "NotResource": "arn:aws:iam::1:user/ann"}
    both = [{"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}, deny]}]
    assert verdict(both, "iam:GetUser", "arn:aws:iam::1:user/bob", {}) == "Deny"
    assert verdict(both, "iam:GetUser", "arn:aws:iam::1:user/ann", {}) == "Allow"
    by_arn = {"Effect": "Allow", "Action": "*", "Resource": "*",
              "Condition": {"ArnEquals": {"iam:PolicyARN": "arn:aws:iam::*:policy/A"}}}  # fmt: skip
    assert verdict([{"Statement": [by_arn]}], "a:b", "r", {"iam:policyarn": "arn:aws:iam::1:policy/A"}) == "Allow"
    assert verdict([{"Statement": [by_arn]}], "a:b", "r", {"iam:policyarn": "arn:aws:iam::1:x:policy/A"}) is None
    missing = {"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"iam:PolicyARN": "p"}}}
    assert verdict([{"Statement": [missing]}], "iam:AttachUserPolicy", "u", {}) is None  # absent key: no match


def test_offboarding_an_untagged_user_plans_the_tag_as_its_own_first_step():
    from iamrunbook.flows.offboard import Offboarding

    record = {"exists": True, "user_name": "leaver", "tags": {}, "access_keys": [], "login_profile": {"exists": False},
              "groups": [], "inline_policies": [], "attached_policies": [], "ssh_public_keys": [], "mfa_devices": [],
              "signing_certificates": [], "service_specific_credentials": {"items": []}}  # fmt: skip
    planned = Offboarding("leaver", record).planned(False)
    assert planned[0] == {"action": "TagUser", "target": "user leaver"}
    record["tags"] = {MANAGED_BY_KEY: MANAGED_BY_VALUE}
    assert [row["action"] for row in Offboarding("leaver", record).planned(False)] == ["DeleteUser"]


@pytest.mark.e2e
def test_group_mode_applies_as_the_runner_holding_the_group_mode_policy(runner, monkeypatch, tmp_path):
    """grant_via group under enforcement: the role groups are created, users added, Assume*Policy attached to
    the groups, through the WriteRoleGroups and GrantRolesToRoleGroups statements only."""
    from test_permissions import EXAMPLE

    aws, key, admin = runner["aws"], runner["key"], runner["aws"].client("iam", internal=True)
    scope = permissions.scope_for({**runner["params"], "grant_via": "group"}, account_id=runner["account"],
                                  archive=f"s3://{BUCKET}/{PREFIX}")  # fmt: skip
    document = permissions.runner_policy_json(True, scope)
    version = admin.create_policy_version(PolicyArn=runner["policy_arn"], PolicyDocument=document, SetAsDefault=True)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    aws.clear_calls()
    try:
        argv = ["run", "-f", str(EXAMPLE), "-p", "grant_via", "group", "--apply", "--out", str(tmp_path)]
        assert cli.main(argv) == 0
    finally:
        admin.set_default_policy_version(PolicyArn=runner["policy_arn"], VersionId="v1")
        admin.delete_policy_version(PolicyArn=runner["policy_arn"], VersionId=version["PolicyVersion"]["VersionId"])
    assert [c for c in aws.calls if c.status == 403] == []
    writes = {c.action for c in aws.calls if c.mutating and c.ok}
    assert {"CreateGroup", "AddUserToGroup", "AttachGroupPolicy"} <= writes
    assert "AdminRoleUsers" in aws.iam_backend(runner["account"]).groups


def test_without_an_account_the_arns_match_the_callers_account_and_refuse_the_rest():
    policy = permissions.runner_policy(True)  # account "*": what `permissions --apply` prints without -f
    user, own = f"arn:aws:iam::{ACCOUNT}:user/alice", policy_arn("AssumeAdminRolePolicy")
    assert verdict([policy], "iam:AttachUserPolicy", user, {"iam:policyarn": own}) == "Allow"
    assert verdict([policy], "iam:AttachUserPolicy", user, {"iam:policyarn": ADMIN}) is None
    assert verdict([policy], "iam:CreatePolicyVersion", policy_arn("TeamPolicy"), {}) is None
