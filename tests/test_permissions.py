"""Least privilege for the runner: the declared actions are exact, and a whole runbook needs no other.

Each module names the actions it calls (READ_ACTIONS / WRITE_ACTIONS); `permissions` builds the runner
policy from them. Proven here: statically, every client call in the package source is declared by the
module making it (or the module it delegates to) and nothing more is declared; dynamically, a plan-only
run of every notebook makes only reads within the plan-only policy, and an apply run of every notebook
stays within the apply policy. tests/_call_audit.py extends the dynamic check to the whole test session.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import re
import types
from collections import defaultdict
from pathlib import Path

import boto3
import pytest
from keys import self_signed_certificate, ssh_public_key

import iamrunbook
from iamrunbook.base.names import policy_arn
from iamrunbook.cli import cli, permissions
from iamrunbook.cli.runner_scope import OPERATOR_ONLY
from iamrunbook.sandbox import Call, is_mutating, seed
from iamrunbook.sandbox.wire import service_model as _service_model

ROOT = Path(__file__).resolve().parents[1]
#: the default parameters leave these out: grant_via user (no role groups, no expired grants' groups to delete),
#: revoke_role_sessions off
OFF_BY_DEFAULT = {
    "iam:CreateGroup", "iam:AddUserToGroup", "iam:AttachGroupPolicy", "iam:DeleteGroup", "iam:PutRolePolicy",
}
EXAMPLE = ROOT / "parameters" / "example.yaml"
TAG_ON_CREATE = {"create_policy": "iam:TagPolicy", "create_role": "iam:TagRole"}  # client method -> tag action
SERVICES = ("iam", "sts", "cloudtrail", "accessanalyzer")
PREFIX = {"accessanalyzer": "access-analyzer"}  # the IAM action prefix, where it differs from boto3's name
#: modules that declare actions but are not the runbook: seed builds demo accounts, the runner calls no AWS,
#: accounts lists the organization and assumes roles as the fan-out's caller, not as the runner in an account
NOT_THE_RUNBOOK = {"cli.runner", "cli.accounts"}
#: calls a module makes through another module's functions (and so declares), not in its own source
VIA = {
    "flows.session": {"aws.clients"},  # aws.caller_identity
    "aws.credentials": {"aws.deletion"},  # deletion.get_user, holdings, list_service_specific_credentials
    "flows.offboard": {"aws.deletion"},  # deletion.delete_login_profile, delete_user
    "flows.editor": {"aws.sweep"},  # the fresh read_inventory before Apply and Confirm
    "aws.mutations": {"aws.deletion"},  # delete_user's full cleanup
}


def _module(name: str):
    return importlib.import_module(f"iamrunbook.{name}")


def declared(name: str) -> set[str]:
    module = _module(name)
    return set(getattr(module, "READ_ACTIONS", ())) | set(getattr(module, "WRITE_ACTIONS", ()))


def module_names() -> list[str]:
    found = [m.name.removeprefix("iamrunbook.") for m in pkgutil.walk_packages(iamrunbook.__path__, "iamrunbook.")
             if not m.ispkg]  # fmt: skip
    return [name for name in found if name != "__main__" and not name.startswith("sandbox.")]


#: Identity Center's modules call clients whose method names overlap (create_user, create_group): there each
#: call is read with its receiver, and the receiver names the service
RECEIVERS = {"sso": ("sso-admin", "sso"), "store": ("identitystore", "identitystore"), "iam": ("iam", "iam"),
             "org": ("organizations", "organizations")}  # fmt: skip


def called_by_receiver(source: str) -> set[str]:
    pairs = set(re.findall(r"\b(sso|store|iam|org)\.([a-z][a-z0-9_]*)\b", source))  # called, or taken to call
    pairs |= set(re.findall(r'\((sso|store|iam|org|\w+\.(?:sso|store|iam|org)), "([a-z_]+)"', source))
    found = set()
    for receiver, method in pairs:
        service, prefix = RECEIVERS[receiver.rsplit(".", 1)[-1]]
        client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        if method in client.meta.method_to_api_mapping:
            found.add(f"{prefix}:{client.meta.method_to_api_mapping[method]}")
    return found


def called(name: str) -> set[str]:
    """'service:Action' of every boto3 client method the module's source calls, directly or by name."""
    source = Path(_module(name).__file__).read_text(encoding="utf-8")
    if name in permissions.CENTER_MODULES:
        return called_by_receiver(source)
    methods = set(re.findall(r"\.([a-z][a-z0-9_]*)\(", source))
    methods |= set(re.findall(r'get_paginator\("([a-z_]+)"\)', source))
    methods |= set(re.findall(r'\(\w+, "([a-z_]+)"', source))  # aws.paginate(iam, "list_access_keys", ...)
    methods |= set(re.findall(r'"((?:list|get)_[a-z_]+)"', source))  # a table naming the list operation
    methods |= set(re.findall(r'^\s*\("\w+", "\w+", "([a-z_]+)",', source, re.M))  # deletion._REMOVALS rows
    found = set()
    for service in SERVICES:
        client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        mapping = client.meta.method_to_api_mapping
        found |= {f"{PREFIX.get(service, service)}:{mapping[m]}" for m in methods if m in mapping}
    # AWS also checks the tag action when a create request carries tags
    tagged = {method for method in TAG_ON_CREATE if re.search(rf"\.{method}\((?:[^()]|\([^()]*\))*Tags=", source)}
    found |= {TAG_ON_CREATE[method] for method in tagged}
    return found


# --------------------------------------------------------------------------- the declarations


def test_every_declaring_module_feeds_the_policy():
    declaring = {
        n for n in module_names() if hasattr(_module(n), "READ_ACTIONS") or hasattr(_module(n), "WRITE_ACTIONS")
    }
    assert declaring - NOT_THE_RUNBOOK <= set(permissions.MODULES) | set(permissions.CENTER_MODULES)
    for name in set(permissions.MODULES) - declaring:
        assert called(name) == set(), f"{name} calls AWS but declares nothing"
    assert declared("cli.runner") == set()


def test_only_the_aws_edge_calls_aws_without_declaring():
    silent = {n for n in module_names() if called(n) and not declared(n) and n not in NOT_THE_RUNBOOK}
    assert silent == {"aws.clients"}
    assert called("aws.clients") == {"sts:GetCallerIdentity"} <= declared("flows.session")


@pytest.mark.parametrize("name", [*permissions.MODULES, *permissions.CENTER_MODULES, "sandbox.seed"])
def test_declarations_are_exact(name):
    own = called(name)
    through = set().union(*(called(other) for other in VIA.get(name, ())))
    assert own - declared(name) == set(), "called but not declared"
    assert declared(name) - own - through == set(), "declared but never called"


@pytest.mark.parametrize("name", [*permissions.MODULES, "sandbox.seed"])
def test_reads_read_and_writes_write(name):
    module = _module(name)
    for action in getattr(module, "READ_ACTIONS", ()):
        assert not is_mutating(*action.split(":")), action
    for action in getattr(module, "WRITE_ACTIONS", ()):
        assert is_mutating(*action.split(":")), action
    for action in declared(name):
        service, operation = action.split(":")
        assert operation in _service_model(service).operation_names, f"{action}: no such operation"


def test_required_actions_and_the_runner_policy():
    plan_only, with_apply = permissions.required_actions(False), permissions.required_actions(True)
    assert plan_only == sorted(set(plan_only)) and with_apply == sorted(set(with_apply))
    assert set(plan_only) < set(with_apply)
    assert not any(is_mutating(*a.split(":")) for a in plan_only)
    assert set(with_apply) - set(plan_only) == set().union(
        *(set(getattr(_module(n), "WRITE_ACTIONS", ())) for n in permissions.MODULES)
    )
    for apply in (False, True):
        policy = permissions.runner_policy(apply)
        assert policy["Version"] == "2012-10-17"
        assert all(s["Effect"] == "Allow" and s["Resource"] for s in policy["Statement"])
        actions = {a for s in policy["Statement"] for a in s["Action"]}
        assert actions == set(permissions.required_actions(apply)) - set(OPERATOR_ONLY) - OFF_BY_DEFAULT
        assert json.loads(permissions.runner_policy_json(apply)) == policy


def test_permissions_command_prints_exactly_the_runner_policy(capsys):
    assert cli.main(["permissions"]) == 0
    assert json.loads(capsys.readouterr().out) == permissions.runner_policy(False)
    assert cli.main(["permissions", "--apply"]) == 0
    assert json.loads(capsys.readouterr().out) == permissions.runner_policy(True)


# --------------------------------------------------------------------------- a whole runbook, observed


def seed_everything(iam) -> dict:
    """The demo account, plus a leaver outside the spec holding one of everything offboarding removes."""
    made = seed.seed_demo_account(iam)
    iam.create_user(UserName="leaver")
    iam.create_group(GroupName="contractors")
    iam.add_user_to_group(GroupName="contractors", UserName="leaver")
    iam.put_user_policy(
        UserName="leaver",
        PolicyName="scratch",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}
        ),
    )
    iam.create_access_key(UserName="leaver")
    iam.create_login_profile(UserName="leaver", Password=seed.new_password())
    iam.upload_ssh_public_key(UserName="leaver", SSHPublicKeyBody=ssh_public_key())
    iam.upload_signing_certificate(UserName="leaver", CertificateBody=self_signed_certificate("leaver"))
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="leaver")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(
        UserName="leaver", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
    )
    return made


def actions(calls) -> set[str]:
    return {f"{c.service}:{c.action}" for c in calls}


@pytest.mark.e2e
def test_a_whole_runbook_needs_only_the_declared_actions(aws, iam, tmp_path):
    made = seed_everything(iam)
    out = str(tmp_path / "runs")
    offboard = ["run", "05_offboard_user", "-f", str(EXAMPLE), "-p", "offboard_user", "leaver", "--out", out]
    aws.clear_calls()

    # Plan only, on the account as found (legacy policy and all): every notebook, no write at all.
    assert cli.main(["run", "-f", str(EXAMPLE), "--out", out]) == 2
    assert cli.main(offboard) == 2
    plan_calls = aws.calls
    assert aws.mutating_calls() == []
    assert actions(plan_calls) - set(permissions.required_actions(apply=False)) == set()
    assert {"iam:GetAccountAuthorizationDetails", "iam:ListEntitiesForPolicy", "cloudtrail:LookupEvents"} <= actions(
        plan_calls
    )

    # Apply: the chain, then (after a role is attached by hand, drift the leaver holds) the offboarding.
    aws.clear_calls()
    assert cli.main(["run", "-f", str(EXAMPLE), "--apply", "--out", out]) == 0
    role_policy = policy_arn(made["account_id"], "AssumeDataEngineerRolePolicy")
    aws.client("iam", internal=True).attach_user_policy(UserName="leaver", PolicyArn=role_policy)
    assert cli.main([*offboard, "--apply", "-p", "revoke_role_sessions", "true"]) == 0
    apply_calls = aws.calls
    assert "leaver" not in aws.iam_backend().users
    assert actions(apply_calls) - set(permissions.required_actions(apply=True)) == set()
    writes = actions(c for c in apply_calls if c.mutating)
    assert writes >= {
        "iam:CreatePolicy",
        "iam:TagUser",
        "iam:CreateUser",
        "iam:AttachUserPolicy",
        "iam:DetachUserPolicy",
        "iam:DeletePolicy",
        "iam:UpdateAccessKey",
        "iam:PutRolePolicy",
        "iam:RemoveUserFromGroup",
        "iam:DeleteUserPolicy",
        "iam:DeleteAccessKey",
        "iam:DeleteSSHPublicKey",
        "iam:DeactivateMFADevice",
        "iam:DeleteVirtualMFADevice",
        "iam:DeleteLoginProfile",
        "iam:DeleteSigningCertificate",
        "iam:DeleteUser",
    }


# --------------------------------------------------------------------------- the suite-wide audit


def test_the_session_audit_is_on_and_catches_an_undeclared_action(request, monkeypatch):
    import _call_audit

    assert request.config.pluginmanager.has_plugin("_call_audit")
    for name, empty in (("_seen", defaultdict(set)), ("_servers", []), ("_last_seq", {})):
        monkeypatch.setattr(_call_audit, name, empty)  # a private ledger: the session's own stays untouched
    server = types.SimpleNamespace(
        calls=[
            Call(1, "iam", "CreateUser", {}, 200),  # the runbook's (apply.py)
            Call(2, "iam", "CreateGroup", {}, 200),  # a test's (TEST_SETUP_ACTIONS)
            Call(3, "iam", "GetSSHPublicKey", {}, 200),  # nobody's
            Call(4, "iam", "FrobnicateUser", {}, 400),  # no such operation: no permission either
        ]
    )
    _call_audit._harvest(server)
    _call_audit._harvest(server)  # read twice, counted once
    assert _call_audit.undeclared() == {"iam:GetSSHPublicKey": {_call_audit._current["test"]}}
    assert _call_audit._current["test"] == request.node.nodeid
