"""Offboarding one IAM user: refuse the wrong user, record what they hold, cut access fast, then remove
everything and the user.

The flow 05 runs: `check_offboard` (refuse a user the spec would recreate, or the operator),
`credentials.credential_inventory` (the record, taken before anything changes), `revoke_access` (keys
off, console password gone), optionally `revoke_role_sessions`, `cloudtrail.recent_events` (what they
changed lately), then `deletion.delete_user`. Every step is idempotent: "already gone" is success.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime, timezone

import pandas as pd

from . import aws
from .cloudtrail import recent_events
from .credentials import credential_inventory, inventory_tables
from .deletion import (
    GONE,
    ORDERED_STEPS,
    OffboardStopped,
    Step,
    call_step,
    delete_login_profile,
    delete_user,
    list_or_gone,
    unsupported_reason,
    user_target,
)
from .errors import SafetyError, SpecError
from .log import logger
from .names import POLICY_VERSION, caller_user_name, same_name

READ_ACTIONS = ("iam:ListAccessKeys",)
WRITE_ACTIONS = ("iam:UpdateAccessKey", "iam:DeleteLoginProfile", "iam:PutRolePolicy")

__all__ = [
    "ORDERED_STEPS",
    "OffboardStopped",
    "Step",
    "check_offboard",
    "credential_inventory",
    "delete_user",
    "inventory_tables",
    "recent_events",
    "revoke_access",
    "revoke_role_sessions",
    "steps_table",
    "unsupported_reason",
]

#: The inline role policy name the IAM console uses for "Revoke active sessions".
REVOKE_SESSIONS_POLICY_NAME = "AWSRevokeOlderSessions"


def steps_table(steps: Iterable[Step]) -> pd.DataFrame:
    """Steps as a table, in the order they ran."""
    return pd.DataFrame([asdict(s) for s in steps], columns=["action", "target", "outcome"])


def revoke_access(iam, user_name: str) -> list[Step]:
    """Cut the user off now: deactivate every access key, delete the console password. Idempotent.

    Keys are deactivated rather than deleted so the record and a mistaken run stay recoverable;
    `delete_user` removes them. Sessions already issued (STS) keep working until they expire: use
    `revoke_role_sessions` for the roles the user could assume.
    """
    keys = list_or_gone(iam, "list_access_keys", "AccessKeyMetadata", user_name)
    steps: list[Step] = []
    if keys is None:
        steps.append(Step("UpdateAccessKey", user_target(user_name), GONE))
    elif not keys:
        steps.append(Step("UpdateAccessKey", user_target(user_name), "skipped: no access keys"))
    for key in keys or []:
        target = aws.mask_key_id(key["AccessKeyId"])
        if key.get("Status") == "Inactive":
            steps.append(Step("UpdateAccessKey", target, "skipped: already inactive"))
            continue
        steps.append(
            call_step(
                "UpdateAccessKey",
                target,
                lambda key=key: iam.update_access_key(
                    UserName=user_name, AccessKeyId=key["AccessKeyId"], Status="Inactive"
                ),
            )
        )
    steps += delete_login_profile(iam, user_name)
    for step in steps:
        logger.info("revoke_access %s %s: %s", step.action, step.target, step.outcome)
    return steps


def revoke_sessions_policy(issued_before: datetime) -> dict:
    """The console's "revoke active sessions" document: deny everything to tokens issued before a time."""
    if issued_before.tzinfo is None:
        raise SpecError("issued_before must carry a time zone (e.g. datetime.now(timezone.utc))")
    stamp = issued_before.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Deny",
                "Action": ["*"],
                "Resource": ["*"],
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": stamp}},
            }
        ],
    }


def revoke_role_sessions(iam, role_names: Iterable[str], issued_before: datetime) -> list[Step]:
    """Deny every action to sessions of these roles issued before `issued_before` (UTC).

    This affects EVERY session of each role, not only the offboarded user's: everyone who assumed the
    role before that time must assume it again. Re-running overwrites the policy with the new time.
    A role that does not exist is skipped (there is no session to revoke) and shows in the steps.
    """
    document = json.dumps(revoke_sessions_policy(issued_before))
    steps = []
    for role in role_names:
        target = f"role {role}"
        step = call_step(
            "PutRolePolicy",
            target,
            lambda role=role: iam.put_role_policy(
                RoleName=role, PolicyName=REVOKE_SESSIONS_POLICY_NAME, PolicyDocument=document
            ),
        )
        if step.outcome == GONE:
            step = Step("PutRolePolicy", target, "skipped: no such role")
        logger.info("revoke_role_sessions %s: %s", target, step.outcome)
        steps.append(step)
    return steps


def check_offboard(user_name: str, spec_user_names: set[str], caller_arn: str) -> None:
    """Refuse to offboard a user the spec would recreate, or the identity running the runbook.

    IAM user names are unique regardless of case, so the comparisons ignore case.
    """
    problems = []
    if any(same_name(name, user_name) for name in spec_user_names):
        problems.append(
            f"{user_name} is still in iam_users: the next run would recreate them — remove them from iam_users first"
        )
    if same_name(caller_user_name(caller_arn), user_name):
        problems.append(
            f"{user_name} is the identity running this runbook ({caller_arn}): offboard them with another identity"
        )
    if problems:
        raise SafetyError("\n".join(problems))
