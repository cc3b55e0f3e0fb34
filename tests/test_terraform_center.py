"""The Terraform handoff under grant_via: identity_center (core/terraform_center.py), on a hand-built instance:
no IAM user, the provider's import ids, HCL that parses, the addresses core/identity_center.py names, and the
strings escaped by the same hcl_string as the other modes. The real Terraform runs it in
bench/terraform_check.py ("identity center" and "identity center: fresh")."""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import hcl2
import pytest
from hcl2.utils import SerializationOptions

from iamrunbook.base.names import policy_address
from iamrunbook.core import terraform, terraform_center, terraform_hcl
from iamrunbook.core.identity_center import (
    IdentityCenterSettings,
    ic_address,
    store_user,
)
from iamrunbook.core.identity_center_state import Assignment, CenterState, PermissionSet
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.spec import GrantSettings, Spec, UserSpec, load_hcl, load_spec
from iamrunbook.core.terraform import IMPORTS_FILE, STATE_LIST_FILE, write_terraform
from iamrunbook.core.terraform_center import (
    CENTER_MODULE_FILE,
    CENTER_TFVARS_FILE,
    center_addresses,
    center_import_blocks,
    managed_center_addresses,
)

PLAIN = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
INSTANCE = "arn:aws:sso:::instance/ssoins-1234567890abcdef"
STORE = "d-1234567890"
ACCOUNTS = ("111111111111", "222222222222")
ROLES = {"admin": "AdminRole", "ops": "OpsRole", "read_only": "ReadOnlyRole"}
USERS = {
    "alice@example.com": {"description": "Alice Example - Platform", "roles": ["admin", "read_only"]},
    "bob": {"description": "", "roles": ["ops"]},
    "carol@example.com": {"description": "Carol", "roles": []},
}


def ps_arn(n: int) -> str:
    return f"arn:aws:sso:::permissionSet/ssoins-1234567890abcdef/ps-{n:016x}"


@pytest.fixture
def spec() -> Spec:
    settings = GrantSettings(grant_via="identity_center", role_groups={"ops": "Operators"},
                             identity_center=IdentityCenterSettings(accounts=ACCOUNTS, session_duration="PT8H"))
    return load_spec(USERS, roles=ROLES, settings=settings)


@pytest.fixture
def center() -> CenterState:
    """alice and bob exist, admin's group and permission set (with its reference) and ops's group; alice is in
    admin's group (with its id) and bob in Operators (without); admin is assigned in the first account only."""
    admin = PermissionSet("AssumeAdminRole", ps_arn(1), customer_managed=(("AssumeAdminRolePolicy", "/"),))
    ops = PermissionSet("AssumeOpsRole", ps_arn(2), customer_managed=(("Other", "/x/"),))
    return CenterState(
        INSTANCE, STORE, "us-east-1",
        users={"alice@example.com": {"UserId": "u-alice"}, "bob": {"UserId": "u-bob"}},
        groups={"AdminRoleUsers": {"GroupId": "g-admin"}, "Operators": {"GroupId": "g-ops"}},
        memberships=frozenset({("AdminRoleUsers", "alice@example.com"), ("Operators", "bob")}),
        membership_ids={("AdminRoleUsers", "alice@example.com"): "m-1"},
        permission_sets={admin.name: admin, ops.name: ops},
        assignments=frozenset({Assignment(ACCOUNTS[0], "AssumeAdminRole", "GROUP", "AdminRoleUsers"),
                               Assignment(ACCOUNTS[1], "AssumeAdminRole", "USER", "alice@example.com")}),
    )  # fmt: skip


@pytest.fixture
def inventory() -> Inventory:
    """The caller's account with admin's policy only."""
    arn = "arn:aws:iam::111111111111:policy/AssumeAdminRolePolicy"
    policy = {"PolicyName": "AssumeAdminRolePolicy", "Arn": arn, "Path": "/"}
    return Inventory(ACCOUNTS[0], "arn:aws:iam::111111111111:user/me", users={}, groups={}, roles={},
                     policies={arn: policy})  # fmt: skip


def parsed(files: dict[str, Path]) -> dict[str, dict]:
    return {name: hcl2.loads(path.read_text(encoding="utf-8"), serialization_options=PLAIN)
            for name, path in files.items() if name.endswith((".tf", ".tfvars"))}  # fmt: skip


def imports_of(files: dict[str, Path]) -> dict[str, str]:
    blocks = hcl2.loads(files[IMPORTS_FILE].read_text(encoding="utf-8"), serialization_options=PLAIN)
    return {block["to"][2:-1]: block["id"] for block in blocks.get("import", [])}  # python-hcl2 writes `${to}`


def test_no_iam_user_and_every_file_parses(spec, center, inventory, tmp_path):
    files = write_terraform(tmp_path, spec, inventory, center=center)
    assert {CENTER_MODULE_FILE, CENTER_TFVARS_FILE, IMPORTS_FILE, STATE_LIST_FILE} <= set(files)
    for path in files.values():
        assert "aws_iam_user" not in path.read_text(encoding="utf-8"), path.name
    module = parsed(files)[CENTER_MODULE_FILE]
    kinds = {f"{kind}.{name}" for block in module["resource"] for kind, named in block.items() for name in named}
    assert kinds == {"aws_iam_policy.assume_role", "aws_identitystore_user.this", "aws_identitystore_group.role",
                     "aws_identitystore_group_membership.this", "aws_ssoadmin_permission_set.role",
                     "aws_ssoadmin_customer_managed_policy_attachment.role", "aws_ssoadmin_account_assignment.role"}


def test_import_ids_are_the_providers(spec, center, inventory, tmp_path):
    imports = imports_of(write_terraform(tmp_path, spec, inventory, center=center))
    assert imports == {
        policy_address("admin"): "arn:aws:iam::111111111111:policy/AssumeAdminRolePolicy",
        ic_address("user", "alice@example.com"): f"{STORE}/u-alice",
        ic_address("user", "bob"): f"{STORE}/u-bob",
        ic_address("group", "admin"): f"{STORE}/g-admin",
        ic_address("group", "ops"): f"{STORE}/g-ops",
        ic_address("membership", "admin", "alice@example.com"): f"{STORE}/m-1",
        ic_address("permission_set", "admin"): f"{ps_arn(1)},{INSTANCE}",
        ic_address("permission_set", "ops"): f"{ps_arn(2)},{INSTANCE}",
        ic_address("policy_reference", "admin"): f"AssumeAdminRolePolicy,/,{ps_arn(1)},{INSTANCE}",
        ic_address("assignment", "admin", ACCOUNTS[0]): f"g-admin,GROUP,{ACCOUNTS[0]},AWS_ACCOUNT,{ps_arn(1)},"
                                                        f"{INSTANCE}",
    }
    shapes = {  # the provider's import id formats (provider 5.100)
        "aws_identitystore_user": r"d-\w+/[\w-]+", "aws_identitystore_group": r"d-\w+/[\w-]+",
        "aws_identitystore_group_membership": r"d-\w+/[\w-]+",
        "aws_ssoadmin_permission_set": r"arn:aws:sso:::permissionSet/[^,]+,arn:aws:sso:::instance/[^,]+",
        "aws_ssoadmin_customer_managed_policy_attachment": r"[\w+=,.@-]+,/([^,]*/)?,arn:[^,]+,arn:[^,]+",
        "aws_ssoadmin_account_assignment": r"[\w-]+,(GROUP|USER),\d{12},AWS_ACCOUNT,arn:[^,]+,arn:[^,]+",
        "aws_iam_policy": r"arn:aws:iam::\d{12}:policy/.+",
    }  # fmt: skip
    for address, id_ in imports.items():
        assert re.fullmatch(shapes[address.split(".")[0]], id_), (address, id_)


def test_addresses_are_the_helpers_and_the_state_list_terraforms(spec, center, inventory, tmp_path):
    files = write_terraform(tmp_path, spec, inventory, center=center)
    listed = files[STATE_LIST_FILE].read_text(encoding="utf-8").splitlines()
    managed = managed_center_addresses(spec, ACCOUNTS)
    assert listed == sorted(listed, key=terraform_hcl.state_list_order)
    assert sorted(a for a in listed if not a.startswith("data.")) == sorted(managed)
    membership = 'aws_identitystore_group_membership.this["admin/alice@example.com"]'
    assert ic_address("membership", "admin", "alice@example.com") == membership
    assert ic_address("assignment", "ops", ACCOUNTS[1]) == f'aws_ssoadmin_account_assignment.role["ops/{ACCOUNTS[1]}"]'
    assert len(managed) == len(ROLES) * (1 + 3 + len(ACCOUNTS)) + len(USERS) + 3  # policy, group, ps, ref; memberships
    assert set(imports_of(files)) <= set(managed)


def test_center_addresses_list_what_exists_even_without_an_import_id(spec, center, inventory, caplog):
    with caplog.at_level(logging.WARNING):
        blocks = center_import_blocks(spec, inventory, center)
    bob = ic_address("membership", "ops", "bob")
    assert bob not in {b.to for b in blocks} and "MembershipId" in caplog.text
    found = center_addresses(spec, inventory, center)
    assert found == sorted([*(b.to for b in blocks), bob])
    # the USER assignment in the second account and the foreign reference are not the runbook's resources
    assert ic_address("assignment", "admin", ACCOUNTS[1]) not in found


def test_tfvars_hold_the_instance_and_store_users_as_store_user_derives_them(spec, center, tmp_path):
    files = write_terraform(tmp_path, spec, None, center=center)
    tfvars = parsed(files)[CENTER_TFVARS_FILE]
    assert tfvars["identity_center"] == {"instance_arn": INSTANCE, "identity_store_id": STORE,
                                         "session_duration": "PT8H", "accounts": list(ACCOUNTS)}  # fmt: skip
    for name, user in spec.users.items():
        wanted = store_user(name, user.description)
        got = tfvars["store_users"][name]
        assert (got["display_name"], got["given_name"], got["family_name"]) == (
            wanted["DisplayName"], wanted["Name"]["GivenName"], wanted["Name"]["FamilyName"])
        assert got.get("email") == (wanted["Emails"][0]["Value"] if "Emails" in wanted else None)
    imported = imports_of(files)  # no inventory: no policy is known to exist; the instance's part is
    assert policy_address("admin") not in imported and ic_address("group", "admin") in imported
    assert parsed(files)["iam_users.auto.tfvars"]["iam_users"]["bob"]["roles"] == ["ops"]


def test_without_a_read_the_instance_comes_from_the_settings_and_only_policies_import(spec, inventory, tmp_path):
    files = write_terraform(tmp_path, spec, inventory)
    assert list(imports_of(files)) == [policy_address("admin")]
    assert parsed(files)[CENTER_TFVARS_FILE]["identity_center"]["instance_arn"] == ""  # the variable refuses it


def test_the_callers_account_when_no_accounts_are_given(spec, inventory, tmp_path):
    spec = replace(spec, settings=replace(spec.settings, identity_center=IdentityCenterSettings()))
    files = write_terraform(tmp_path, spec, inventory)
    assert parsed(files)[CENTER_TFVARS_FILE]["identity_center"]["accounts"] == [ACCOUNTS[0]]
    assert ic_address("assignment", "admin", ACCOUNTS[0]) in files[STATE_LIST_FILE].read_text(encoding="utf-8")


HOSTILE = 'Eve "the" ${var.x} %{ if true } - \n\\ tab\t end'


def test_hostile_strings_are_escaped_by_the_one_hcl_string(center, tmp_path):
    assert terraform.hcl_string is terraform_hcl.hcl_string is terraform_center.hcl_string
    roles = {"admin": "AdminRole"}
    users = {"eve": UserSpec("eve", HOSTILE, ("admin",)), "x@y.z": UserSpec("x@y.z", "X ${Y} - z", ())}
    settings = GrantSettings(grant_via="identity_center", role_groups={"admin": 'Ad"${min}%{x}\nGroup'})
    spec = Spec(roles, users, settings=settings)
    files = write_terraform(tmp_path, spec, None, center=center)
    tfvars_text = files[CENTER_TFVARS_FILE].read_text(encoding="utf-8")
    module_text = files[CENTER_MODULE_FILE].read_text(encoding="utf-8")
    assert '"Ad\\"$${min}%%{x}\\nGroup"' in module_text  # quote, both template markers and the newline escaped
    assert '"Eve \\"the\\" $${var.x} %%{ if true }"' in tfvars_text
    tfvars = terraform_hcl.unescape_templates(load_hcl(files[CENTER_TFVARS_FILE].read_text(encoding="utf-8")))
    assert tfvars["store_users"]["eve"]["display_name"] == store_user("eve", HOSTILE)["DisplayName"]
    assert tfvars["store_users"]["x@y.z"]["given_name"] == "X"
    module = terraform_hcl.unescape_templates(load_hcl(files[CENTER_MODULE_FILE].read_text(encoding="utf-8")))
    assert module["locals"][0]["role_groups"]["admin"]["name"] == 'Ad"${min}%{x}\nGroup'


def test_temporary_grants_are_not_written(tmp_path):
    until = (datetime.now(timezone.utc) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:00Z")
    grant = {"role": "admin", "until": until, "reason": "X"}
    users = {"alice": {"description": "A", "roles": [], "temporary": [grant]}}
    spec = load_spec(users, roles={"admin": "AdminRole"}, settings=GrantSettings(grant_via="identity_center"))
    files = write_terraform(tmp_path, spec, None)
    assert "temporary" not in files[CENTER_MODULE_FILE].read_text(encoding="utf-8")
    assert "membership" not in files[STATE_LIST_FILE].read_text(encoding="utf-8")


def test_a_member_accounts_handoff_holds_only_its_policies(spec, inventory, tmp_path):
    files = write_terraform(tmp_path, spec, inventory, member=True)
    text = "\n".join(path.read_text(encoding="utf-8") for path in files.values())
    assert "aws_iam_user" not in text and "aws_identitystore" not in text and "aws_ssoadmin" not in text
    resources = parsed(files)[terraform_center.CENTER_MODULE_FILE]["resource"]
    assert [next(iter(r)) for r in resources] == ["aws_iam_policy"]
    assert set(imports_of(files)) <= {policy_address(key) for key in spec.roles} and imports_of(files)
    state = files[STATE_LIST_FILE].read_text(encoding="utf-8").split()
    assert {policy_address(key) for key in spec.roles} <= set(state) and not any("identitystore" in a for a in state)
