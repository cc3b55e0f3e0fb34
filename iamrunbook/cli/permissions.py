"""Least privilege for whoever runs the runbook: the IAM policy a runner role needs, built from the code.

Every module that calls AWS declares READ_ACTIONS and WRITE_ACTIONS next to its calls; this module gathers
them, so the printed policy cannot drift from what the code does (a test holds them together), and
runner_scope.py puts each on the narrowest resource and condition for the parameters a run uses.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from collections.abc import Mapping
from typing import Any

from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import ASSUME_ROLE, DEFAULT_ROLES, POLICY_VERSION
from iamrunbook.cli.runner_scope import Scope, partition_for_region, scoped_statements
from iamrunbook.cli.runner_scope_center import CENTER_READS, PROVISIONING_ACTIONS, CenterScope
from iamrunbook.core.changes import CENTER_KINDS, KINDS, RETIRE_KINDS
from iamrunbook.core.identity_center import identity_center_settings
from iamrunbook.core.params import validate_params
from iamrunbook.core.spec import iam_name_problem, settings_problems
from iamrunbook.runs.archive import parse_uri

#: modules whose declared actions the runbook needs, in runbook order
MODULES = (
    *("flows.session", "flows.gather", "aws.sweep", "core.access", "core.plan", "aws.mutations", "flows.apply"),
    *("flows.verify", "flows.legacy", "aws.legacy_backup", "flows.offboard", "aws.credentials", "aws.deletion"),
    *("aws.cloudtrail", "core.terraform", "flows.editor", "runs.audit", "runs.planfile", "runs.archive", "core.cis"),
    *("aws.cis_reads", "aws.securityhub"),
)
#: the modules of grant_via: identity_center (their actions reach only that mode's policy); until they are
#: merged, CENTER_READS and the kinds' actions stand for them, and a test holds the two equal after merging
CENTER_MODULES = ("aws.center_sweep", "aws.center_mutations", "flows.center")


def _declared(attr: str) -> set[str]:
    actions: set[str] = set()
    for name in MODULES:
        module = importlib.import_module(f"iamrunbook.{name}")
        actions.update(getattr(module, attr, ()))
    return actions


def center_actions(apply: bool = False) -> set[str]:
    """What grant_via: identity_center adds: its reads; with apply the Identity Center and retiring kinds'
    actions, and what Identity Center does with the caller's credentials in the management account."""
    actions = set(CENTER_READS)
    if apply:
        actions |= {a for kind in (*CENTER_KINDS, *RETIRE_KINDS) for a in KINDS[kind].actions}
        actions |= set(PROVISIONING_ACTIONS)
    return actions


def required_actions(apply: bool = False, archive: bool = False, security_hub_import: bool = False,
                     center: bool = False) -> list[str]:  # fmt: skip
    """Read actions for a plan-only run; read and write actions for an apply run; with `archive` the S3
    actions of `--archive` (archive.ARCHIVE_ACTIONS); with `security_hub_import` BatchImportFindings; with
    `center` those of grant_via: identity_center (center_actions)."""
    actions = _declared("READ_ACTIONS")
    if center:
        actions |= center_actions(apply)
    if security_hub_import:
        from iamrunbook.aws.securityhub import IMPORT_ACTIONS

        actions |= set(IMPORT_ACTIONS)
    if apply:
        actions |= _declared("WRITE_ACTIONS")
    if archive:
        from iamrunbook.runs.archive import ARCHIVE_ACTIONS

        actions |= set(ARCHIVE_ACTIONS)
    return sorted(actions)


def scope_for(
    params: Mapping[str, Any] | None = None,
    account_id: str | None = None,
    archive: str | None = None,
    partition: str | None = None,
    security_hub_import: bool = False,
) -> Scope:
    """The Scope of a run with these parameters (defaults filled in); `account_id` overrides
    expected_account_id; `archive` is `s3://BUCKET/PREFIX`; `partition` defaults to the region's."""
    p = validate_params(dict(params or {}))
    problems = settings_problems(p, p["roles"])  # the Identity Center settings' too
    names = [(f"roles.{k}", v, 64) for k, v in p["roles"].items()]  # IAM: role names 64, policy names 128
    names.append(("legacy_policy_name", p["legacy_policy_name"], 128))
    problems += [problem for where, name, most in names if (problem := iam_name_problem(name, where, most))]
    if problems:
        raise SpecError(problems)
    return Scope(
        partition=partition or partition_for_region(p["aws_region"]),
        account=account_id or p["expected_account_id"] or "*",
        roles=dict(p["roles"]),
        legacy_policy=p["legacy_policy_name"],
        via_group=p["grant_via"] == "group",
        role_groups=dict(p["role_groups"]),
        revoke_role_sessions=p["revoke_role_sessions"],
        archive=parse_uri(archive) if archive else None,
        security_hub_import=security_hub_import or bool(p["security_hub_import"]),
        center=_center_scope(p),
    )


def _center_scope(params: Mapping[str, Any]) -> CenterScope | None:
    settings = identity_center_settings(params)
    if settings is None:
        return None
    return CenterScope(settings.instance_arn, settings.identity_store_id, settings.accounts)


def scope_notes(scope: Scope) -> list[str]:
    """What the policy for this scope could not narrow, and why (empty outside grant_via: identity_center)."""
    return scope.center.notes(scope.account) if scope.center else []


def runner_policy(apply: bool = False, scope: Scope | None = None) -> dict:
    """The runner's identity policy: every action a plan-only (or apply) run needs, each on its rule's resources
    and conditions (runner_scope.RULES); with `scope.archive` the S3 actions of `--archive` on that prefix."""
    scope = scope or Scope(roles=dict(DEFAULT_ROLES))
    actions = required_actions(apply, archive=scope.archive is not None, security_hub_import=scope.security_hub_import,
                               center=scope.center is not None)  # fmt: skip
    return {"Version": POLICY_VERSION, "Statement": scoped_statements(scope, actions)}


def runner_policy_json(apply: bool = False, scope: Scope | None = None) -> str:
    return json.dumps(runner_policy(apply, scope), indent=2)


def fanout_policy(accounts_file: str, partition: str = "aws") -> dict:
    """The fan-out caller's policy (`run --accounts`): sts:AssumeRole on the configured role in each listed
    account, with its ExternalId when one is set; `from_organization` reads the organization first, and
    DescribeOrganization tells grant_via identity_center which account is the management account."""
    from iamrunbook.cli.accounts import READ_ACTIONS as FANOUT_READS
    from iamrunbook.cli.accounts import load_accounts_file

    loaded = load_accounts_file(accounts_file)
    by_external: dict[str | None, list[str]] = {}
    if loaded.from_organization:
        role = loaded.defaults["role_name"]
        by_external[loaded.defaults["external_id"]] = [f"arn:{partition}:iam::*:role/{role}"]
    for account in loaded.accounts:
        by_external.setdefault(account.external_id, []).append(account.role_arn(partition))
    statements = []
    for i, (external_id, arns) in enumerate(sorted(by_external.items(), key=lambda kv: kv[0] or ""), 1):
        statement = {"Sid": f"EnterAccounts{i}", "Effect": "Allow", "Action": [ASSUME_ROLE], "Resource": sorted(arns)}
        if external_id:
            statement["Condition"] = {"StringEquals": {"sts:ExternalId": external_id}}
        statements.append(statement)
    # DescribeOrganization: under grant_via identity_center the management account runs after the members
    reads = sorted(a for a in FANOUT_READS if a.startswith("organizations:"))
    if not loaded.from_organization:
        reads = ["organizations:DescribeOrganization"]
    statements.append({"Sid": "ReadOrganization", "Effect": "Allow", "Action": reads, "Resource": "*"})
    return {"Version": POLICY_VERSION, "Statement": statements}


def _hcl(value: Any) -> str:
    """A string or list of strings as HCL (JSON string syntax; the only `${` are the partition's and account's)."""
    return json.dumps(value)


def terraform_document(policy: dict, name: str = "iamrunbook_runner") -> str:
    """The policy as an `aws_iam_policy_document` data source, so the runner role can live in the same Terraform."""
    lines = [f'data "aws_iam_policy_document" "{name}" {{']
    for s in policy["Statement"]:
        lines += ["  statement {", f"    sid       = {_hcl(s['Sid'])}", f"    effect    = {_hcl(s['Effect'])}",
                  f"    actions   = {_hcl(s['Action'])}", f"    resources = {_hcl(s['Resource'])}"]  # fmt: skip
        for test, pairs in s.get("Condition", {}).items():
            for variable, values in pairs.items():
                values = values if isinstance(values, list) else [values]
                lines += ["    condition {", f"      test     = {_hcl(test)}", f"      variable = {_hcl(variable)}",
                          f"      values   = {_hcl(values)}", "    }"]  # fmt: skip
        lines.append("  }")
    lines.append("}")
    return "\n".join(lines)


#: What the Terraform form puts where the JSON form has the partition and (when not given) the account.
TF_PARTITION = "${data.aws_partition.current.partition}"
TF_ACCOUNT = "${data.aws_caller_identity.current.account_id}"


def render(apply: bool, scope: Scope, fmt: str = "json") -> str:
    """The policy as printed: JSON, or Terraform with the partition (and account) from data sources."""
    if fmt == "json":
        return runner_policy_json(apply, scope)
    account = TF_ACCOUNT if scope.account == "*" else scope.account
    tf_scope = dataclasses.replace(scope, partition=TF_PARTITION, account=account)
    return (
        "# needs data.aws_partition.current and data.aws_caller_identity.current in the same configuration\n"
        + terraform_document(runner_policy(apply, tf_scope))
    )
