"""Effective access, one rule at a time, each from a real account state in in-process moto.

Every case builds an account with boto3 (roles AdminRole, DataEngineerRole, InfrastructureAdminRole, one
user "u" with the case's policies), sweeps it with fetch_details and checks the user's row of the matrix.

Two moto 5.2.5 gaps are bridged here, both so the sweep looks as it does on AWS:
- AWS-managed policies (AdministratorAccess) exist only when moto loads them; loading all ~1,600 costs about
  a second per account, so only the cases that attach one start `mock_aws` with
  config={"iam": {"load_aws_managed_policies": True}} (the same switch as MOTO_IAM_LOAD_MANAGED_POLICIES=true).
- moto ignores CreateUser's PermissionsBoundary and has no PutUserPermissionsBoundary, so its sweep never
  shows a user's boundary. The boundary policy itself is created in moto; an after-call hook on the test's
  client adds the `PermissionsBoundary` field AWS returns in UserDetailList for that user.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from iamrunbook.aws.sweep import fetch_details
from iamrunbook.base.names import policy_document, policy_name
from iamrunbook.core.access import (
    MFA_ONLY,
    TRUST_ANY,
    TRUST_NAMES_USER,
    Grant,
    effective_access,
    unexpected_access,
    user_names,
)
from iamrunbook.flows.reports import access_matrix, access_paths, styled_matrix

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
ROLES = {"admin": "AdminRole", "data_engineer": "DataEngineerRole", "infrastructure_admin": "InfrastructureAdminRole"}
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/AdminRole"
DATA = f"arn:aws:iam::{ACCOUNT}:role/DataEngineerRole"
INFRA = f"arn:aws:iam::{ACCOUNT}:role/InfrastructureAdminRole"
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/u"
ADMIN_ACCESS = "arn:aws:iam::aws:policy/AdministratorAccess"
MFA_TRUE = {"Bool": {"aws:MultiFactorAuthPresent": "true"}}
NO_MFA_FALSE = {"BoolIfExists": {"aws:MultiFactorAuthPresent": "false"}}


def stmt(effect="Allow", action="sts:AssumeRole", resource="*", *, not_action=False, not_resource=False, **extra):
    return {
        "Effect": effect,
        ("NotAction" if not_action else "Action"): action,
        ("NotResource" if not_resource else "Resource"): resource,
        **extra,
    }


def doc(*statements, version="2012-10-17"):
    return {"Version": version, "Statement": list(statements)}


def trust(principal, *, effect="Allow", **extra):
    return {"Effect": effect, "Principal": principal, "Action": "sts:AssumeRole", **extra}


ROOT_TRUST = doc(trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))
ALLOW_ALL = doc(stmt(action="*"))


@dataclass(frozen=True)
class Account:
    """One account state: the policies of user `user` and AdminRole's trust (the other roles trust the account)."""

    attached: dict = field(default_factory=dict)
    inline: dict = field(default_factory=dict)
    group_attached: dict = field(default_factory=dict)
    group_inline: dict = field(default_factory=dict)
    boundary: dict | None = None
    admin_trust: dict = field(default_factory=lambda: ROOT_TRUST)
    aws_managed: tuple[str, ...] = ()
    user: str = "u"


def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials in us-east-1, and no profile or endpoint that could lead boto3 past moto."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_IAM", "AWS_ENDPOINT_URL_STS"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def aws_env(monkeypatch):
    fake_aws_env(monkeypatch)


def aws_like_boundaries(iam, boundaries: dict[str, str]) -> None:
    """Add the UserDetailList `PermissionsBoundary` AWS returns and moto 5.2.5 drops (see module docstring)."""

    def add(parsed, **_):
        for user in parsed.get("UserDetailList", []):
            if user["UserName"] in boundaries:
                user.setdefault(
                    "PermissionsBoundary",
                    {
                        "PermissionsBoundaryType": "PermissionsBoundaryPolicy",
                        "PermissionsBoundaryArn": boundaries[user["UserName"]],
                    },
                )

    iam.meta.events.register("after-call.iam.GetAccountAuthorizationDetails", add)


def create_roles(iam, admin_trust=ROOT_TRUST):
    for name in ROLES.values():
        policy = admin_trust if name == "AdminRole" else ROOT_TRUST
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(policy))


def create_policy(iam, name: str, document: dict) -> str:
    return iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"]["Arn"]


def build(iam, account: Account) -> dict:
    """Create the account state in moto, then sweep it the way the runbook does."""
    create_roles(iam, account.admin_trust)
    user = account.user
    if account.boundary is not None:
        arn = create_policy(iam, "Boundary", account.boundary)
        iam.create_user(UserName=user, PermissionsBoundary=arn)
        aws_like_boundaries(iam, {user: arn})
    else:
        iam.create_user(UserName=user)
    for name, document in account.attached.items():
        iam.attach_user_policy(UserName=user, PolicyArn=create_policy(iam, name, document))
    for name, document in account.inline.items():
        iam.put_user_policy(UserName=user, PolicyName=name, PolicyDocument=json.dumps(document))
    for name in account.aws_managed:
        iam.attach_user_policy(UserName=user, PolicyArn=f"arn:aws:iam::aws:policy/{name}")
    if account.group_attached or account.group_inline:
        iam.create_group(GroupName="g")
        iam.add_user_to_group(GroupName="g", UserName=user)
        for name, document in account.group_attached.items():
            iam.attach_group_policy(GroupName="g", PolicyArn=create_policy(iam, name, document))
        for name, document in account.group_inline.items():
            iam.put_group_policy(GroupName="g", PolicyName=name, PolicyDocument=json.dumps(document))
    return fetch_details(iam)


def moto(load_aws_managed: bool = False):
    return mock_aws(config={"iam": {"load_aws_managed_policies": True}} if load_aws_managed else None)


# (id, account state, expected row for u: (admin, data_engineer, infrastructure_admin),
#  expected (role_key, path, conditions) of one of u's grants, or None)
CASES = [
    ("exact-resource", Account(attached={"AssumeAdminRolePolicy": doc(stmt(resource=ADMIN))}),
     ("yes", "no", "no"), ("admin", "attached policy AssumeAdminRolePolicy", ())),
    ("action-star", Account(attached={"P": ALLOW_ALL}), ("yes", "yes", "yes"), None),
    ("action-sts-star", Account(attached={"P": doc(stmt(action="sts:*"))}), ("yes", "yes", "yes"), None),
    ("action-sts-assume-star", Account(attached={"P": doc(stmt(action=["s3:GetObject", "sts:Assume*"]))}),
     ("yes", "yes", "yes"), None),
    ("action-case-insensitive", Account(attached={"P": doc(stmt(action="STS:assumerole", resource=ADMIN))}),
     ("yes", "no", "no"), None),
    ("action-question-mark", Account(attached={"P": doc(stmt(action="sts:AssumeRol?"))}), ("yes", "yes", "yes"), None),
    ("other-sts-actions", Account(attached={"P": doc(stmt(action=["sts:AssumeRoleWithSAML", "sts:TagSession"]))}),
     ("no", "no", "no"), None),
    ("not-action-iam", Account(attached={"P": doc(stmt(action="iam:*", not_action=True))}),
     ("yes", "yes", "yes"), None),
    ("not-action-sts", Account(attached={"P": doc(stmt(action=["sts:*"], not_action=True))}),
     ("no", "no", "no"), None),
    ("resource-prefix", Account(attached={"P": doc(stmt(resource="arn:aws:iam::*:role/Admin*"))}),
     ("yes", "no", "no"), None),
    ("resource-infix", Account(attached={"P": doc(stmt(resource=f"arn:aws:iam::{ACCOUNT}:role/*Admin*"))}),
     ("yes", "no", "yes"), None),
    ("resource-question-mark", Account(attached={"P": doc(stmt(resource=f"arn:aws:iam::{ACCOUNT}:role/AdminRol?"))}),
     ("yes", "no", "no"), None),
    ("resource-list", Account(attached={"P": doc(stmt(resource=[DATA, INFRA]))}), ("no", "yes", "yes"), None),
    ("resource-account-question-marks", Account(attached={"P": doc(stmt(resource="arn:aws:iam::1234567890??:role/*"))}),
     ("yes", "yes", "yes"), None),
    ("resource-other-account", Account(attached={"P": doc(stmt(resource=f"arn:aws:iam::{OTHER_ACCOUNT}:role/*"))}),
     ("no", "no", "no"), None),
    ("resource-other-service", Account(attached={"P": doc(stmt(resource="arn:aws:s3:::*"))}), ("no", "no", "no"), None),
    ("not-resource", Account(attached={"P": doc(stmt(resource=ADMIN, not_resource=True))}), ("no", "yes", "yes"), None),
    ("statement-as-dict", Account(attached={"P": {"Version": "2012-10-17", "Statement": stmt(resource=DATA)}}),
     ("no", "yes", "no"), None),
    ("policy-variable",
     Account(user="Admin", attached={"P": doc(stmt(resource="arn:aws:iam::*:role/${aws:username}Role"))}),
     ("yes", "no", "no"), None),
    ("policy-variable-unknown",
     Account(attached={"P": doc(stmt(resource="arn:aws:iam::*:role/${aws:PrincipalTag/team}*"))}),
     ("no", "no", "no"), None),
    ("deny-overrides-allow", Account(attached={"P": ALLOW_ALL}, inline={"no-admin": doc(stmt("Deny", resource=ADMIN))}),
     ("no", "yes", "yes"), None),
    ("group-deny-overrides-user-allow",
     Account(attached={"P": ALLOW_ALL}, group_inline={"deny-sts": doc(stmt("Deny", action="sts:*"))}),
     ("no", "no", "no"), None),
    ("conditional-deny-mfa",
     Account(attached={"P": doc(stmt(), stmt("Deny", action="*", Condition=NO_MFA_FALSE))}),
     ("conditional", "conditional", "conditional"), ("data_engineer", "attached policy P", (MFA_ONLY,))),
    ("conditional-deny-other",
     Account(attached={"P": ALLOW_ALL},
             inline={"office": doc(stmt("Deny", Condition={"NotIpAddress": {"aws:SourceIp": "192.0.2.0/24"}}))}),
     ("conditional", "conditional", "conditional"),
     ("admin", "attached policy P", ("denied when Condition NotIpAddress aws:SourceIp",))),
    ("allow-with-mfa", Account(inline={"mfa": doc(stmt(resource=ADMIN, Condition=MFA_TRUE))}),
     ("conditional", "no", "no"), ("admin", "inline policy mfa", (MFA_ONLY,))),
    ("allow-with-other-condition",
     Account(inline={"region": doc(stmt(Condition={"StringEquals": {"aws:RequestedRegion": "eu-west-1"}}))}),
     ("conditional", "conditional", "conditional"),
     ("infrastructure_admin", "inline policy region", ("Condition StringEquals aws:RequestedRegion",))),
    ("unconditional-statement-wins",
     Account(attached={"P": doc(stmt(resource=ADMIN, Condition=MFA_TRUE), stmt(resource=ADMIN))}),
     ("yes", "no", "no"), ("admin", "attached policy P", ())),
    ("boundary-allows", Account(attached={"P": ALLOW_ALL}, boundary=doc(stmt(action="sts:AssumeRole"))),
     ("yes", "yes", "yes"), None),
    ("boundary-denies-implicitly", Account(attached={"P": ALLOW_ALL}, boundary=doc(stmt(action="s3:*"))),
     ("no", "no", "no"), None),
    ("boundary-narrower-than-policy", Account(attached={"P": ALLOW_ALL}, boundary=doc(stmt(resource=ADMIN))),
     ("yes", "no", "no"), None),
    ("boundary-explicit-deny",
     Account(attached={"P": ALLOW_ALL}, boundary=doc(stmt(action="*"), stmt("Deny", resource=ADMIN))),
     ("no", "yes", "yes"), None),
    ("boundary-with-mfa", Account(attached={"P": ALLOW_ALL}, boundary=doc(stmt(Condition=MFA_TRUE))),
     ("conditional", "conditional", "conditional"), ("admin", "attached policy P", (MFA_ONLY,))),
    ("trust-other-account-only",
     Account(attached={"P": ALLOW_ALL}, admin_trust=doc(trust({"AWS": f"arn:aws:iam::{OTHER_ACCOUNT}:root"}))),
     ("no", "yes", "yes"), None),
    ("trust-service-only", Account(attached={"P": ALLOW_ALL}, admin_trust=doc(trust({"Service": "ec2.amazonaws.com"}))),
     ("no", "yes", "yes"), None),
    ("trust-bare-account-id", Account(attached={"P": ALLOW_ALL}, admin_trust=doc(trust({"AWS": ACCOUNT}))),
     ("yes", "yes", "yes"), None),
    ("trust-names-user", Account(admin_trust=doc(trust({"AWS": USER_ARN}))),
     ("yes", "no", "no"), ("admin", TRUST_NAMES_USER, ())),
    ("trust-names-user-beats-boundary",
     Account(admin_trust=doc(trust({"AWS": [f"arn:aws:iam::{OTHER_ACCOUNT}:root", USER_ARN]})),
             boundary=doc(stmt(action="s3:*"))),
     ("yes", "no", "no"), ("admin", TRUST_NAMES_USER, ())),
    ("trust-names-user-but-denied",
     Account(admin_trust=doc(trust({"AWS": USER_ARN})), inline={"deny": doc(stmt("Deny", action="sts:AssumeRole"))}),
     ("no", "no", "no"), None),
    ("trust-everyone", Account(admin_trust=doc(trust("*"))), ("yes", "no", "no"), ("admin", TRUST_ANY, ())),
    ("trust-with-mfa",
     Account(attached={"P": ALLOW_ALL},
             admin_trust=doc(trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, Condition=MFA_TRUE))),
     ("conditional", "yes", "yes"), ("admin", "attached policy P", (MFA_ONLY,))),
    ("trust-denies-user",
     Account(attached={"P": ALLOW_ALL},
             admin_trust=doc(trust({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}), trust({"AWS": USER_ARN}, effect="Deny"))),
     ("no", "yes", "yes"), None),
    ("group-attached", Account(group_attached={"GroupAssume": doc(stmt(resource=DATA))}),
     ("no", "yes", "no"), ("data_engineer", "group g: attached policy GroupAssume", ())),
    ("group-inline", Account(group_inline={"ops": doc(stmt(resource=INFRA))}),
     ("no", "no", "yes"), ("infrastructure_admin", "group g: inline policy ops", ())),
    ("aws-managed-administrator-access", Account(aws_managed=("AdministratorAccess",)),
     ("yes", "yes", "yes"), ("admin", "attached policy AdministratorAccess", ())),
]  # fmt: skip


@pytest.mark.parametrize(("account", "row", "path"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_effective_access_rules(aws_env, account, row, path):
    with moto(load_aws_managed=bool(account.aws_managed)):
        details = build(boto3.client("iam", region_name="us-east-1"), account)

    grants = effective_access(details, ROLES, ACCOUNT)
    matrix = access_matrix(grants, user_names(details), ROLES)

    assert tuple(matrix.loc[account.user]) == row
    assert {g.user for g in grants} <= {account.user}
    if path is not None:
        role_key, text, conditions = path
        found = [g for g in grants if g.role_key == role_key and g.path == text]
        assert len(found) == 1, access_paths(grants)
        assert found[0].conditions == conditions
        assert found[0].verdict == ("conditional" if conditions else "yes")


def test_policy_variables_are_literal_in_2008_documents(aws_env):
    """moto refuses `2008-10-17` documents, which older AWS accounts still hold: the swept 2012 policy is
    relabelled, and `${aws:username}` then means those characters, so it matches no role."""
    account = Account(user="Admin", inline={"own": doc(stmt(resource="arn:aws:iam::*:role/${aws:username}Role"))})
    with moto():
        details = build(boto3.client("iam", region_name="us-east-1"), account)
    assert [g.role_key for g in effective_access(details, ROLES, ACCOUNT)] == ["admin"]
    details["UserDetailList"][0]["UserPolicyList"][0]["PolicyDocument"]["Version"] = "2008-10-17"
    assert effective_access(details, ROLES, ACCOUNT) == []


def test_moto_sweep_has_no_user_boundary_without_the_hook(aws_env):
    """Why the hook exists: if moto starts returning user boundaries, this fails and the hook can go."""
    with moto():
        iam = boto3.client("iam", region_name="us-east-1")
        arn = create_policy(iam, "Boundary", doc(stmt(action="s3:*")))
        iam.create_user(UserName="u", PermissionsBoundary=arn)
        details = fetch_details(iam)
    assert "PermissionsBoundary" not in details["UserDetailList"][0]


def team_account(iam) -> None:
    """alice: the runbook's policy for admin plus a group path to it; bob: the runbook's data_engineer policy
    without a spec grant; mallory: inline sts:AssumeRole on *; carol: AdministratorAccess; dave: nothing;
    erin: the runbook's infrastructure policy plus a conditional inline path to the same role."""
    create_roles(iam)
    arns = {key: create_policy(iam, policy_name(role), policy_document(ACCOUNT, role)) for key, role in ROLES.items()}
    for user in ("alice", "bob", "carol", "dave", "erin", "mallory"):
        iam.create_user(UserName=user)
    iam.attach_user_policy(UserName="alice", PolicyArn=arns["admin"])
    iam.create_group(GroupName="admins")
    iam.add_user_to_group(GroupName="admins", UserName="alice")
    iam.put_group_policy(
        GroupName="admins", PolicyName="assume-admin", PolicyDocument=json.dumps(doc(stmt(resource=ADMIN)))
    )
    iam.attach_user_policy(UserName="bob", PolicyArn=arns["data_engineer"])
    iam.put_user_policy(UserName="mallory", PolicyName="foo", PolicyDocument=json.dumps(doc(stmt())))
    iam.attach_user_policy(UserName="carol", PolicyArn=ADMIN_ACCESS)
    iam.attach_user_policy(UserName="erin", PolicyArn=arns["infrastructure_admin"])
    iam.put_user_policy(
        UserName="erin", PolicyName="mfa", PolicyDocument=json.dumps(doc(stmt(resource=INFRA, Condition=MFA_TRUE)))
    )


@pytest.fixture(scope="module")
def team():
    """Built once: loading the AWS-managed policies makes this account the slow one."""
    with pytest.MonkeyPatch.context() as monkeypatch, moto(load_aws_managed=True):
        fake_aws_env(monkeypatch)
        iam = boto3.client("iam", region_name="us-east-1")
        team_account(iam)
        details = fetch_details(iam)
    return details, effective_access(details, ROLES, ACCOUNT)


GRANTED = {("alice", "admin"), ("carol", "admin"), ("erin", "infrastructure_admin")}


def test_unexpected_access_names_every_foreign_path(team):
    _, grants = team
    found = {(g.user, g.role_key, g.path) for g in unexpected_access(grants, GRANTED)}
    assert found == {
        ("alice", "admin", "group admins: inline policy assume-admin"),
        ("bob", "data_engineer", "attached policy AssumeDataEngineerRolePolicy"),
        ("carol", "admin", "attached policy AdministratorAccess"),
        ("carol", "data_engineer", "attached policy AdministratorAccess"),
        ("carol", "infrastructure_admin", "attached policy AdministratorAccess"),
        ("erin", "infrastructure_admin", "inline policy mfa"),
        ("mallory", "admin", "inline policy foo"),
        ("mallory", "data_engineer", "inline policy foo"),
        ("mallory", "infrastructure_admin", "inline policy foo"),
    }


def test_runbook_path_is_expected_only_for_its_own_role(team):
    _, grants = team
    alice_runbook = next(g for g in grants if g.user == "alice" and g.path.startswith("attached"))
    assert alice_runbook == Grant(
        "alice", "admin", "AdminRole", "yes", "attached policy AssumeAdminRolePolicy",
        f"arn:aws:iam::{ACCOUNT}:policy/AssumeAdminRolePolicy", (),
    )  # fmt: skip
    assert unexpected_access([alice_runbook], {("alice", "admin")}) == []
    # IAM user names are case-insensitive: "Alice" in a spec is the IAM user alice.
    assert unexpected_access([alice_runbook], {("Alice", "admin")}) == []
    assert unexpected_access([alice_runbook], {("alice", "data_engineer")}) == [alice_runbook]


def test_matrix_every_user_and_yes_wins_over_conditional(team):
    details, grants = team
    matrix = access_matrix(grants, user_names(details), ROLES)
    assert list(matrix.index) == ["alice", "bob", "carol", "dave", "erin", "mallory"]
    assert list(matrix.columns) == list(ROLES)
    assert matrix.loc["carol"].tolist() == ["yes", "yes", "yes"]
    assert matrix.loc["dave"].tolist() == ["no", "no", "no"]
    assert matrix.loc["erin"].tolist() == ["no", "no", "yes"]
    only_conditional = [g for g in grants if g.verdict == "conditional"]
    assert access_matrix(only_conditional, ["erin"], ROLES).loc["erin"].tolist() == ["no", "no", "conditional"]


def test_paths_one_row_per_grant(team):
    _, grants = team
    paths = access_paths(grants)
    assert list(paths.columns) == ["user", "role_key", "role_name", "verdict", "path", "conditions"]
    assert len(paths) == len(grants) == 11
    erin = paths[(paths.user == "erin") & (paths.path == "inline policy mfa")].iloc[0]
    assert (erin.role_name, erin.verdict, erin.conditions) == ("InfrastructureAdminRole", "conditional", MFA_ONLY)
    assert access_paths([]).empty


def test_styled_matrix_colours_each_verdict(team):
    details, grants = team
    erin_conditional_only = [g for g in grants if not (g.user == "erin" and g.verdict == "yes")]
    html = styled_matrix(access_matrix(erin_conditional_only, user_names(details), ROLES)).to_html()
    for colour in ("#2e7d32", "#ffb300", "#e0e0e0"):
        assert f"background-color: {colour}" in html


def test_documents_as_json_or_url_encoded_strings(team):
    """Policy documents as the raw API sends them (URL-encoded JSON) or as JSON text give the same answer."""
    details, grants = team

    def recode(value, encode):
        if isinstance(value, dict):
            return {
                k: encode(v) if k in ("PolicyDocument", "Document", "AssumeRolePolicyDocument") else recode(v, encode)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [recode(v, encode) for v in value]
        return value

    for encode in (json.dumps, lambda d: urllib.parse.quote(json.dumps(d))):
        recoded = recode(details, encode)
        assert isinstance(recoded["RoleDetailList"][0]["AssumeRolePolicyDocument"], str)
        assert effective_access(recoded, ROLES, ACCOUNT) == grants


def test_role_missing_from_account_gives_no_grants(aws_env):
    with moto():
        iam = boto3.client("iam", region_name="us-east-1")
        create_roles(iam)
        iam.create_user(UserName="u")
        iam.put_user_policy(UserName="u", PolicyName="all", PolicyDocument=json.dumps(ALLOW_ALL))
        details = fetch_details(iam)
    roles = {**ROLES, "ghost": "GhostRole"}
    grants = effective_access(details, roles, ACCOUNT)
    assert {g.role_key for g in grants} == set(ROLES)
    assert access_matrix(grants, user_names(details), roles).loc["u", "ghost"] == "no"


def test_fetch_details_sweeps_every_page():
    iam = boto3.client("iam", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    asked = {"Filter": ["User", "Role", "Group", "LocalManagedPolicy"], "MaxItems": 1000}
    empty = {"UserDetailList": [], "GroupDetailList": [], "RoleDetailList": [], "Policies": []}
    with Stubber(iam) as stub:
        stub.add_response(
            "get_account_authorization_details",
            {**empty, "UserDetailList": [{"UserName": "alice"}], "IsTruncated": True, "Marker": "m1"},
            asked,
        )
        stub.add_response(
            "get_account_authorization_details",
            {**empty, "UserDetailList": [{"UserName": "bob"}], "RoleDetailList": [{"RoleName": "AdminRole"}]},
            {**asked, "Marker": "m1"},
        )
        details = fetch_details(iam)
        stub.assert_no_pending_responses()
    assert [u["UserName"] for u in details["UserDetailList"]] == ["alice", "bob"]
    assert [r["RoleName"] for r in details["RoleDetailList"]] == ["AdminRole"]
    assert set(details) == {"UserDetailList", "GroupDetailList", "RoleDetailList", "Policies"}
