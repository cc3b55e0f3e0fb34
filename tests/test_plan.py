"""Plan: a pure function of spec and inventory. Most tests build the Inventory by hand (no AWS at all);
the last ones plan against the embedded AWS, as the runbook does."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from iamrunbook.aws.clients import client
from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import DEFAULT_ROLES, policy_arn, policy_document, user_tags
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.plan import KINDS, Change, Plan, make_plan
from iamrunbook.core.spec import load_spec
from iamrunbook.sandbox import seed

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT = "123456789012"
CALLER = f"arn:aws:sts::{ACCOUNT}:user/moto"
EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)
ADMIN_ARN = policy_arn(ACCOUNT, "AssumeAdminRolePolicy")
DATA_ARN = policy_arn(ACCOUNT, "AssumeDataEngineerRolePolicy")
INFRA_ARN = policy_arn(ACCOUNT, "AssumeInfrastructureAdminRolePolicy")
ARNS = {"admin": ADMIN_ARN, "data_engineer": DATA_ARN, "infrastructure_admin": INFRA_ARN}

EXAMPLE_PLAN_LINES = [
    '   + aws_iam_policy.assume_role["admin"]: create AssumeAdminRolePolicy (sts:AssumeRole on AdminRole)',
    '   + aws_iam_policy.assume_role["data_engineer"]: '
    "create AssumeDataEngineerRolePolicy (sts:AssumeRole on DataEngineerRole)",
    '   + aws_iam_policy.assume_role["infrastructure_admin"]: '
    "create AssumeInfrastructureAdminRolePolicy (sts:AssumeRole on InfrastructureAdminRole)",
    '   + aws_iam_user.users["your-username"]: create user, tagged',
    '   + aws_iam_user.users["alice@example.com"]: create user, tagged',
    '   + aws_iam_user.users["bob@example.com"]: create user, tagged',
    '   + aws_iam_user_policy_attachment.user_roles["your-username/admin"]: grant AdminRole',
    '   + aws_iam_user_policy_attachment.user_roles["your-username/data_engineer"]: grant DataEngineerRole',
    '   + aws_iam_user_policy_attachment.user_roles["your-username/infrastructure_admin"]: '
    "grant InfrastructureAdminRole",
    '   + aws_iam_user_policy_attachment.user_roles["alice@example.com/data_engineer"]: grant DataEngineerRole',
    '   + aws_iam_user_policy_attachment.user_roles["alice@example.com/infrastructure_admin"]: '
    "grant InfrastructureAdminRole",
    '   + aws_iam_user_policy_attachment.user_roles["bob@example.com/data_engineer"]: grant DataEngineerRole',
    "",
    "Plan: 0 to import, 12 to add, 0 to change, 0 to destroy.",
]


# --- a hand-built account ----------------------------------------------------------------------------


def role(name: str, attached=()) -> dict:
    return {
        "RoleName": name,
        "Arn": f"arn:aws:iam::{ACCOUNT}:role/{name}",
        "AttachedManagedPolicies": [{"PolicyArn": a} for a in attached],
    }


def user(name: str, tags: dict | None = None, attached=()) -> dict:
    return {
        "UserName": name,
        "Arn": f"arn:aws:iam::{ACCOUNT}:user/{name}",
        "Tags": [{"Key": k, "Value": v} for k, v in (tags or {}).items()],
        "AttachedManagedPolicies": [{"PolicyArn": a} for a in attached],
        "GroupList": [],
        "UserPolicyList": [],
    }


def managed_user(name: str, description: str, keys: tuple[str, ...]) -> dict:
    return user(name, user_tags(name, description, keys), [ARNS[k] for k in keys])


def group(name: str, attached=()) -> dict:
    return {"GroupName": name, "AttachedManagedPolicies": [{"PolicyArn": a} for a in attached]}


def policy(key: str, documents: list[dict] | None = None, default: int | None = None, ids=None) -> dict:
    """An Assume*Policy with the given versions (default: the right document only)."""
    role_name = DEFAULT_ROLES[key]
    documents = documents or [policy_document(ACCOUNT, role_name)]
    default = len(documents) - 1 if default is None else default
    ids = ids or [f"v{i + 1}" for i in range(len(documents))]
    versions = [
        {
            "VersionId": vid,
            "IsDefaultVersion": i == default,
            "Document": doc,
            "CreateDate": EPOCH + timedelta(days=i),
        }
        for i, (vid, doc) in enumerate(zip(ids, documents, strict=True))
    ]
    return {"Arn": ARNS[key], "DefaultVersionId": ids[default], "PolicyVersionList": versions}


def account(users=(), groups=(), roles=None, policies=None, caller=CALLER) -> Inventory:
    """An Inventory holding the three roles, the three right policies, and what is given."""
    roles = [role(n) for n in DEFAULT_ROLES.values()] if roles is None else roles
    policies = [policy(k) for k in DEFAULT_ROLES] if policies is None else policies
    return Inventory(
        ACCOUNT,
        caller,
        {u["UserName"]: u for u in users},
        {g["GroupName"]: g for g in groups},
        {r["RoleName"]: r for r in roles},
        {p["Arn"]: p for p in policies},
    )


def example_spec():
    return load_spec(iam_users_file=ROOT / "parameters" / "example.yaml")


def converged_users() -> list[dict]:
    return [
        managed_user(
            "your-username", "Account owner - full access", ("admin", "data_engineer", "infrastructure_admin")
        ),
        managed_user("alice@example.com", "Alice - Platform Engineer", ("data_engineer", "infrastructure_admin")),
        managed_user("bob@example.com", "Bob - Data Engineer", ("data_engineer",)),
    ]


def kinds(plan: Plan) -> list[tuple[str, str]]:
    return [(c.kind, c.address) for c in plan.changes]


# --- the example spec on an account holding only the three roles --------------------------------------


def test_example_spec_on_fresh_account_text():
    plan = make_plan(example_spec(), account(policies=[]))
    assert plan.to_text().splitlines() == EXAMPLE_PLAN_LINES
    assert plan.summary() == {"import": 0, "add": 12, "change": 0, "destroy": 0}
    assert plan.summary_line() == "Plan: 0 to import, 12 to add, 0 to change, 0 to destroy."
    assert not plan.is_empty
    assert plan.deletions() == []
    assert plan.account_id == ACCOUNT and plan.caller_arn == CALLER
    assert plan.roles == DEFAULT_ROLES


def test_example_plan_changes_carry_what_apply_needs():
    plan = make_plan(example_spec(), account(policies=[]))
    create = plan.changes[0]
    assert create.kind == "create_policy"
    assert create.policy_name == "AssumeAdminRolePolicy"
    assert create.policy_arn == ADMIN_ARN
    assert create.description == "Allows assuming AdminRole"
    assert create.tags == (("Name", "AssumeAdminRolePolicy"),)
    assert json.loads(create.document) == {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": f"arn:aws:iam::{ACCOUNT}:role/AdminRole"}
        ],
    }
    owner = next(c for c in plan.changes if c.kind == "create_user" and c.user == "your-username")
    assert dict(owner.tags) == {
        "Name": "your-username",
        "Description": "Account owner - full access",
        "Roles": "admin data_engineer infrastructure_admin",
        "ManagedBy": "iamrunbook",
    }
    attach = next(c for c in plan.changes if c.kind == "attach")
    assert (attach.user, attach.role_key, attach.policy_arn) == ("your-username", "admin", ADMIN_ARN)


def test_roles_tag_uses_a_separator_aws_accepts():
    plan = make_plan(example_spec(), account(policies=[]))
    for change in plan.changes:
        if change.kind == "create_user":
            roles = dict(change.tags)["Roles"]
            assert "," not in roles
            assert roles == " ".join(example_spec().users[change.user].roles)


def test_apply_order_is_safe():
    plan = make_plan(
        example_spec(),
        account(
            users=[managed_user("gone", "Gone", ("admin",)), user("mallory", attached=[ADMIN_ARN])],
            policies=[policy("admin", [{"Version": "2012-10-17", "Statement": []}])],
        ),
    )
    order = [list(KINDS).index(c.kind) for c in plan.changes]
    assert order == sorted(order)
    first_attach = next(i for i, c in enumerate(plan.changes) if c.kind == "attach")
    assert all(c.kind != "detach" for c in plan.changes[:first_attach])  # attach the new before detaching
    assert plan.changes[-1].kind == "delete_user"


def test_converged_account_gives_empty_plan():
    plan = make_plan(example_spec(), account(users=converged_users()))
    assert plan.is_empty
    assert plan.changes == ()
    assert plan.to_text() == "No changes. Your account matches the spec."
    assert plan.summary_line().startswith("No changes.")
    assert plan.to_frame().empty


def test_json_round_trip():
    inv = account(
        users=[
            user("your-username", attached=[ADMIN_ARN]),
            managed_user("gone", "Gone", ("admin",)),
            managed_user("alice@example.com", "Alice", ("data_engineer", "infrastructure_admin")),
            user("mallory", attached=[DATA_ARN]),
        ],
        groups=[group("ops", [INFRA_ARN])],
        policies=[
            policy("admin"),
            policy("data_engineer", [{"Version": "2012-10-17", "Statement": []}] * 5, default=4),
        ],
    )
    plan = make_plan(example_spec(), inv)
    assert {c.kind for c in plan.changes} == set(KINDS)  # every kind is in this plan
    text = plan.to_json()
    data = json.loads(text)
    assert data["summary"] == plan.summary()
    assert data["roles"] == DEFAULT_ROLES
    again = Plan.from_json(text)
    assert again == plan
    assert again.to_text() == plan.to_text()


def test_frame():
    plan = make_plan(example_spec(), account(policies=[]))
    frame = plan.to_frame()
    assert list(frame.columns) == ["symbol", "kind", "address", "reason"]
    assert len(frame) == 12
    assert frame.iloc[0].to_dict() == {
        "symbol": "+",
        "kind": "create_policy",
        "address": 'aws_iam_policy.assume_role["admin"]',
        "reason": "create AssumeAdminRolePolicy (sts:AssumeRole on AdminRole)",
    }


def test_symbols():
    assert {k: Change(k, "a", "r").symbol for k in KINDS} == {
        "create_policy": "+",
        "prune_policy_version": "~",
        "update_policy": "~",
        "create_user": "+",
        "import_user": "<=",
        "tag_user": "~",
        "attach": "+",
        "detach": "-",
        "delete_user": "-",
    }


def test_missing_role_is_a_clear_error():
    inv = account(roles=[role("AdminRole"), role("InfrastructureAdminRole")], policies=[])
    with pytest.raises(SpecError) as err:
        make_plan(example_spec(), inv)
    assert err.value.problems == [
        f"role 'data_engineer': IAM role 'DataEngineerRole' does not exist in account {ACCOUNT}; "
        "create it first or fix `roles`"
    ]


def test_every_missing_role_is_reported():
    with pytest.raises(SpecError) as err:
        make_plan(example_spec(), account(roles=[], policies=[]))
    assert len(err.value.problems) == 3


# --- users ---------------------------------------------------------------------------------------------


def test_existing_user_is_imported_not_recreated():
    legacy = policy_arn(ACCOUNT, "AssumeRolesPolicy")
    inv = account(users=[user("your-username", {"Team": "ops"}, attached=[legacy, ADMIN_ARN])])
    spec = load_spec(
        {"your-username": {"description": "Owner", "roles": ["admin", "data_engineer"]}},
    )
    plan = make_plan(spec, inv)
    assert kinds(plan) == [
        ("import_user", 'aws_iam_user.users["your-username"]'),
        ("attach", 'aws_iam_user_policy_attachment.user_roles["your-username/data_engineer"]'),
    ]
    imported = plan.changes[0]
    assert imported.symbol == "<="
    assert dict(imported.tags) == {
        "Name": "your-username",
        "Description": "Owner",
        "Roles": "admin data_engineer",
        "ManagedBy": "iamrunbook",
    }
    assert plan.summary() == {"import": 1, "add": 1, "change": 0, "destroy": 0}
    assert plan.to_text().splitlines()[0] == (
        '  <= aws_iam_user.users["your-username"]: adopt existing user: tag it ManagedBy=iamrunbook'
    )


def test_import_reconciles_attachments():
    inv = account(users=[user("bob", attached=[ADMIN_ARN, DATA_ARN])])
    plan = make_plan(load_spec({"bob": {"description": "Bob", "roles": ["data_engineer"]}}), inv)
    assert kinds(plan) == [
        ("import_user", 'aws_iam_user.users["bob"]'),
        ("detach", 'aws_iam_user_policy_attachment.user_roles["bob/admin"]'),
    ]
    detach = plan.changes[1]
    assert (detach.target_kind, detach.target_name, detach.policy_arn) == ("user", "bob", ADMIN_ARN)


def test_user_names_match_regardless_of_case():
    inv = account(users=[managed_user("Bob", "Bob", ("admin",))])
    plan = make_plan(load_spec({"bob": {"description": "Bob", "roles": ["admin"]}}), inv)
    assert [c.kind for c in plan.changes] == ["tag_user"]  # the Name tag; never a second user
    assert plan.changes[0].user == "Bob"
    assert dict(plan.changes[0].tags) == {"Name": "bob"}


def test_changed_description_and_roles_update_only_the_tags_that_differ():
    inv = account(users=[managed_user("bob@example.com", "Bob", ("data_engineer",))])
    spec = load_spec({"bob@example.com": {"description": "Bob - Lead", "roles": ["data_engineer", "admin"]}})
    plan = make_plan(spec, inv)
    assert kinds(plan) == [
        ("tag_user", 'aws_iam_user.users["bob@example.com"]'),
        ("attach", 'aws_iam_user_policy_attachment.user_roles["bob@example.com/admin"]'),
    ]
    assert dict(plan.changes[0].tags) == {"Description": "Bob - Lead", "Roles": "data_engineer admin"}
    assert plan.changes[0].reason == "update tags Description, Roles"


def test_untagged_user_outside_the_spec_is_never_touched():
    legacy = policy_arn(ACCOUNT, "AssumeRolesPolicy")
    bystanders = [
        user("ci-bot", {"Team": "ci"}, attached=["arn:aws:iam::aws:policy/ReadOnlyAccess"]),
        user("legacy-admin", attached=[legacy]),
        user("plain"),
    ]
    plan = make_plan(example_spec(), account(users=[*converged_users(), *bystanders]))
    assert plan.is_empty


def test_user_tagged_by_someone_else_is_not_deleted():
    other = user("svc", {"ManagedBy": "terraform"})
    assert make_plan(load_spec({}), account(users=[other])).is_empty


def test_managed_user_removed_from_the_spec_is_deleted():
    users = converged_users()
    spec = load_spec({k: v for k, v in example_spec().to_mapping().items() if k != "bob@example.com"})
    plan = make_plan(spec, account(users=users))
    assert kinds(plan) == [("delete_user", 'aws_iam_user.users["bob@example.com"]')]
    assert plan.deletions() == list(plan.changes)
    assert plan.summary() == {"import": 0, "add": 0, "change": 0, "destroy": 1}
    assert plan.to_text().splitlines()[0].startswith('   - aws_iam_user.users["bob@example.com"]: ')


def test_empty_roles_list_detaches_everything_but_keeps_the_user():
    inv = account(users=[managed_user("bob", "Bob", ("admin", "data_engineer"))])
    plan = make_plan(load_spec({"bob": {"description": "Bob", "roles": []}}), inv)
    assert kinds(plan) == [
        ("tag_user", 'aws_iam_user.users["bob"]'),
        ("detach", 'aws_iam_user_policy_attachment.user_roles["bob/admin"]'),
        ("detach", 'aws_iam_user_policy_attachment.user_roles["bob/data_engineer"]'),
    ]
    assert dict(plan.changes[0].tags) == {"Roles": ""}


# --- drift ---------------------------------------------------------------------------------------------


def test_assume_policy_attached_by_hand_is_drift():
    users = converged_users()
    users[2] = managed_user("bob@example.com", "Bob - Data Engineer", ("data_engineer",))
    users[2]["AttachedManagedPolicies"].append({"PolicyArn": ADMIN_ARN})  # by hand, not granted
    inv = account(
        users=[*users, user("mallory", attached=[INFRA_ARN, "arn:aws:iam::aws:policy/ReadOnlyAccess"])],
        groups=[group("admins", [ADMIN_ARN, "arn:aws:iam::aws:policy/IAMReadOnlyAccess"])],
        roles=[*(role(n) for n in DEFAULT_ROLES.values()), role("ci", [DATA_ARN])],
    )
    plan = make_plan(example_spec(), inv)
    assert kinds(plan) == [
        ("detach", 'aws_iam_user_policy_attachment.user_roles["bob@example.com/admin"]'),
        ("detach", 'aws_iam_user_policy_attachment.user_roles["mallory/infrastructure_admin"]'),
        ("detach", "group/admins/AssumeAdminRolePolicy"),
        ("detach", "role/ci/AssumeDataEngineerRolePolicy"),
    ]
    targets = [(c.target_kind, c.target_name, c.policy_arn) for c in plan.changes]
    assert targets == [
        ("user", "bob@example.com", ADMIN_ARN),
        ("user", "mallory", INFRA_ARN),
        ("group", "admins", ADMIN_ARN),
        ("role", "ci", DATA_ARN),
    ]
    assert plan.summary() == {"import": 0, "add": 0, "change": 0, "destroy": 4}
    assert all("drift" in c.reason or "no longer granted" in c.reason for c in plan.changes)


def test_hand_edited_policy_document_is_restored():
    edited = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
    }
    inv = account(
        users=converged_users(),
        policies=[policy("admin", [policy_document(ACCOUNT, "AdminRole"), edited]), policy("data_engineer"),
                  policy("infrastructure_admin")],
    )  # fmt: skip
    plan = make_plan(example_spec(), inv)
    assert kinds(plan) == [("update_policy", 'aws_iam_policy.assume_role["admin"]')]
    change = plan.changes[0]
    assert change.policy_arn == ADMIN_ARN
    assert json.loads(change.document) == policy_document(ACCOUNT, "AdminRole")
    assert plan.summary() == {"import": 0, "add": 0, "change": 1, "destroy": 0}


def test_statement_as_object_is_the_same_document():
    same = policy_document(ACCOUNT, "AdminRole")
    same = {**same, "Statement": same["Statement"][0]}
    inv = account(
        users=converged_users(),
        policies=[policy("admin", [same]), policy("data_engineer"), policy("infrastructure_admin")],
    )
    assert make_plan(example_spec(), inv).is_empty


def test_url_encoded_document_is_decoded_before_comparing():
    from urllib.parse import quote

    encoded = quote(json.dumps(policy_document(ACCOUNT, "AdminRole")))
    inv = account(
        users=converged_users(),
        policies=[policy("admin", [encoded]), policy("data_engineer"), policy("infrastructure_admin")],
    )
    assert make_plan(example_spec(), inv).is_empty


def test_five_versions_prune_the_oldest_non_default_first():
    bad = {"Version": "2012-10-17", "Statement": []}
    good = policy_document(ACCOUNT, "AdminRole")
    # v1 (default, edited) is the oldest, so the oldest NON-default is v2.
    inv = account(
        users=converged_users(),
        policies=[policy("admin", [bad, good, bad, bad, bad], default=0), policy("data_engineer"),
                  policy("infrastructure_admin")],
    )  # fmt: skip
    plan = make_plan(example_spec(), inv)
    assert kinds(plan) == [
        ("prune_policy_version", 'aws_iam_policy.assume_role["admin"]'),
        ("update_policy", 'aws_iam_policy.assume_role["admin"]'),
    ]
    assert plan.changes[0].version_id == "v2"
    assert plan.changes[0].policy_arn == ADMIN_ARN


def test_four_versions_need_no_pruning():
    bad = {"Version": "2012-10-17", "Statement": []}
    inv = account(
        users=converged_users(),
        policies=[policy("admin", [bad] * 4), policy("data_engineer"), policy("infrastructure_admin")],
    )
    assert [c.kind for c in make_plan(example_spec(), inv).changes] == ["update_policy"]


def test_pruning_compares_version_numbers_not_strings():
    """Versions created in the same second: v7 is older than v10 (a string sort says otherwise)."""
    bad = {"Version": "2012-10-17", "Statement": []}
    pol = policy("admin", [bad] * 5, default=0, ids=["v6", "v10", "v9", "v8", "v7"])
    for version in pol["PolicyVersionList"]:
        version["CreateDate"] = EPOCH
    inv = account(users=converged_users(), policies=[pol, policy("data_engineer"), policy("infrastructure_admin")])
    plan = make_plan(example_spec(), inv)
    assert plan.changes[0].kind == "prune_policy_version"
    assert plan.changes[0].version_id == "v7"


# --- against the embedded AWS ------------------------------------------------------------------------


def test_plan_from_a_real_inventory(aws, session, iam):
    seed.seed_roles(iam)
    inv = read_inventory(iam, client(session, "sts"))
    plan = make_plan(example_spec(), inv)
    assert plan.to_text().splitlines() == EXAMPLE_PLAN_LINES
    assert plan.caller_arn == CALLER
    assert aws.mutating_calls() == [c for c in aws.calls if c.action == "CreateRole"]  # planning changed nothing


def test_plan_on_the_legacy_account_imports_the_owner(aws, session, iam, legacy_account):
    inv = read_inventory(iam, client(session, "sts"))
    plan = make_plan(example_spec(), inv)
    assert plan.summary_line() == "Plan: 1 to import, 11 to add, 0 to change, 0 to destroy."
    imported = [c for c in plan.changes if c.kind == "import_user"]
    assert [c.user for c in imported] == ["your-username"]
    # The legacy AssumeRolesPolicy is not an Assume<Role>Policy: left for the legacy migration step.
    assert all(c.policy_arn != legacy_account["policy_arn"] for c in plan.changes)
