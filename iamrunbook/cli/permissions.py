"""Least privilege for whoever runs the runbook: the IAM policy a runner role needs, built from the code.

Every module that calls AWS declares READ_ACTIONS and WRITE_ACTIONS next to its calls; this module only
gathers them, so the printed policy cannot drift from what the code does (a test holds them together).
"""

from __future__ import annotations

import importlib
import json

from iamrunbook.base.names import POLICY_VERSION

#: modules whose declared actions the runbook needs, in runbook order
MODULES = (
    *("flows.session", "flows.gather", "aws.sweep", "core.access", "core.plan", "aws.mutations", "flows.apply"),
    *("flows.verify", "flows.legacy", "aws.legacy_backup", "flows.offboard", "aws.credentials", "aws.deletion"),
    *("aws.cloudtrail", "core.terraform", "flows.editor", "runs.audit", "runs.planfile", "runs.archive", "core.cis"),
    *("aws.cis_reads", "aws.securityhub"),
)


def _declared(attr: str) -> set[str]:
    actions: set[str] = set()
    for name in MODULES:
        module = importlib.import_module(f"iamrunbook.{name}")
        actions.update(getattr(module, attr, ()))
    return actions


def required_actions(apply: bool = False, archive: bool = False, security_hub_import: bool = False) -> list[str]:
    """Read actions for a plan-only run; read and write actions for an apply run; with `archive` the S3
    actions of `--archive` (archive.ARCHIVE_ACTIONS); with `security_hub_import` BatchImportFindings."""
    actions = _declared("READ_ACTIONS")
    if security_hub_import:
        from iamrunbook.aws.securityhub import IMPORT_ACTIONS

        actions |= set(IMPORT_ACTIONS)
    if apply:
        actions |= _declared("WRITE_ACTIONS")
    if archive:
        from iamrunbook.runs.archive import ARCHIVE_ACTIONS

        actions |= set(ARCHIVE_ACTIONS)
    return sorted(actions)


def runner_policy(apply: bool = False, archive: bool = False, security_hub_import: bool = False) -> dict:
    """An identity policy document for the runner role, one statement per service. Scope the S3
    statement's Resource to the archive bucket (`arn:aws:s3:::BUCKET`, `arn:aws:s3:::BUCKET/PREFIX/*`)."""
    by_service: dict[str, list[str]] = {}
    for action in required_actions(apply, archive, security_hub_import):
        by_service.setdefault(action.split(":", 1)[0], []).append(action)
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Sid": f"Iamrunbook{service.capitalize()}{'Apply' if apply else 'Plan'}",
                "Effect": "Allow",
                "Action": actions,
                "Resource": "*",
            }
            for service, actions in sorted(by_service.items())
        ],
    }


def runner_policy_json(apply: bool = False, archive: bool = False, security_hub_import: bool = False) -> str:
    return json.dumps(runner_policy(apply, archive, security_hub_import), indent=2)
