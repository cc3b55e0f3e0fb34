"""`iamrunbook run --accounts` under grant_via: identity_center: the Identity Center part runs once, in the
management account, after each member has made its own Assume*Policy policies (issue 31, item 1).

The organization fixture's three members and its management account (given the three roles and an access role,
so that the fan-out enters it as it enters the members) all run the same spec. The server's call log says which
account made which call: no member calls the identity store or sso-admin, and a member's Terraform handoff holds
only its policies.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from iamrunbook.base.names import policy_name
from iamrunbook.cli import cli, fanout, fanout_center
from iamrunbook.cli.accounts import Account
from iamrunbook.core.identity_center import permission_set_name
from iamrunbook.sandbox import ACCOUNT_ID
from iamrunbook.sandbox.org import ACCESS_ROLE, ADMIN_POLICY_ARN
from iamrunbook.sandbox.seed import ROLE_NAMES, seed_roles

SPEC = {
    "alice@example.com": {"description": "Alice - Platform Engineer", "roles": ["data_engineer", "admin"]},
    "bob@example.com": {"description": "Bob - Data Engineer", "roles": ["data_engineer"]},
}
CENTER_SERVICES = ("sso", "identitystore")


def center_project(aws, organization, folder: Path) -> tuple[Path, dict[str, str]]:
    """accounts.yaml listing the members and the management account, each with the same spec in this mode."""
    iam = aws.client("iam", internal=True)
    trust = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, "Action": "sts:AssumeRole"}
    iam.create_role(RoleName=ACCESS_ROLE, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17",
                                                                              "Statement": [trust]}))  # fmt: skip
    iam.attach_role_policy(RoleName=ACCESS_ROLE, PolicyArn=ADMIN_POLICY_ARN)
    seed_roles(iam, account_id=ACCOUNT_ID)
    ids = {name: member["id"] for name, member in organization["accounts"].items()} | {"management": ACCOUNT_ID}
    (folder / "params.yaml").write_text(yaml.safe_dump({"iam_users": SPEC, "grant_via": "identity_center"}))
    listed = [{"id": account_id, "name": name} for name, account_id in ids.items()]
    path = folder / "accounts.yaml"
    path.write_text(yaml.safe_dump({"defaults": {"parameters_file": "params.yaml"}, "accounts": listed}))
    return path, ids


def test_the_management_account_gets_every_account_unless_its_parameters_say(tmp_path):
    a, m = Account("111111111111", "a"), Account("222222222222", "m")
    center = {"grant_via": "identity_center"}
    params, notes = fanout_center.center_params([a, m], {a.id: center, m.id: center}, m.id)
    assert params[m.id]["identity_center_accounts"] == [a.id, m.id] and "identity_center_accounts" not in params[a.id]
    assert notes == []
    given = {**center, "identity_center_accounts": [m.id]}
    assert fanout_center.center_params([a, m], {a.id: center, m.id: given}, m.id)[0][m.id] == given
    assert fanout_center.center_params([a, m], {a.id: {}, m.id: {}}, m.id)[0] == {a.id: {}, m.id: {}}  # user mode
    _, (note,) = fanout_center.center_params([a], {a.id: center}, m.id)
    assert f"the management account {m.id} is not in the fan-out" in note
    ran: list[list[str]] = []
    tasks = [fanout.AccountTask(acc, "", {}, (), "", "", "", "") for acc in (m, a)]
    fanout_center.in_order(tasks, m.id, lambda some: ran.append([t.account.id for t in some]) or some)
    assert ran == [[a.id], [m.id]]  # the members' tasks at once, then the management account's


@pytest.mark.e2e
def test_members_make_their_policies_and_the_management_account_assigns_into_each(aws, organization, tmp_path):
    path, ids = center_project(aws, organization, tmp_path)
    out = tmp_path / "runs"
    aws.clear_calls()

    code = cli.main(["run", "--accounts", str(path), "03_import_and_apply", "--apply", "--out", str(out),
                     "--parallel", "3"])  # fmt: skip

    (parent,) = [p for p in out.iterdir() if p.is_dir()]
    rows = {row["name"]: row for row in json.loads((parent / fanout.SUMMARY_JSON).read_text())["accounts"]}
    assert code == 0, rows
    for account_id in ids.values():
        policies = {p.name for p in aws.iam_backend(account_id).managed_policies.values()}
        assert {policy_name(role) for role in ROLE_NAMES.values()} <= policies, account_id
    members = set(ids.values()) - {ACCOUNT_ID}
    assert not [c for c in aws.calls if c.account_id in members and c.service in CENTER_SERVICES]
    sso = aws.client("sso-admin", internal=True)
    instance = sso.list_instances()["Instances"][0]["InstanceArn"]
    for role in ROLE_NAMES.values():
        ps = next(arn for arn in sso.list_permission_sets(InstanceArn=instance)["PermissionSets"]
                  if sso.describe_permission_set(InstanceArn=instance, PermissionSetArn=arn)["PermissionSet"]["Name"]
                  == permission_set_name(role))  # fmt: skip
        for account_id in ids.values():
            found = sso.list_account_assignments(InstanceArn=instance, AccountId=account_id, PermissionSetArn=ps)
            assert len(found["AccountAssignments"]) == 1, (role, account_id)
    started = min(c.started for c in aws.calls if c.account_id == ACCOUNT_ID and c.service in CENTER_SERVICES)
    assert all(c.ended <= started for c in aws.calls if c.account_id in members)  # members finished first

    handoffs = {folder: "\n".join(f.read_text(encoding="utf-8") for f in (folder / "terraform").glob("*.tf"))
                for folder in parent.iterdir() if (folder / "terraform").is_dir()}  # fmt: skip
    assert len(handoffs) == len(ids)
    center = [text for text in handoffs.values() if "aws_ssoadmin_account_assignment" in text]
    assert len(center) == 1 and "aws_iam_user" not in center[0]  # the management account's
    members_tf = [text for text in handoffs.values() if "aws_ssoadmin_account_assignment" not in text]
    assert all("aws_iam_policy" in text and "aws_identitystore" not in text and "aws_iam_user" not in text
               for text in members_tf)  # fmt: skip

    code = cli.main(["run", "--accounts", str(path), "04_verify", "--out", str(out)])
    assert code == 0
