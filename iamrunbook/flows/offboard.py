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
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

import pandas as pd

from iamrunbook.aws import clients as aws
from iamrunbook.aws.cloudtrail import recent_events
from iamrunbook.aws.credentials import credential_inventory, inventory_tables
from iamrunbook.aws.deletion import (
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
from iamrunbook.aws.executor import ApplyResult, execute
from iamrunbook.base import records
from iamrunbook.base.errors import SafetyError, SpecError
from iamrunbook.base.log import logger
from iamrunbook.base.names import (
    MANAGED_BY_KEY,
    MANAGED_BY_VALUE,
    POLICY_VERSION,
    caller_user_name,
    same_name,
    user_address,
)
from iamrunbook.core.changes import Change
from iamrunbook.runs import planfile

READ_ACTIONS = ("iam:ListAccessKeys",)
WRITE_ACTIONS = ("iam:TagUser", "iam:UpdateAccessKey", "iam:PutRolePolicy")  # deletion.py declares the rest

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


def adopt_for_offboarding(iam, user_name: str) -> list[Step]:
    """Tag a user the runbook did not make ManagedBy=iamrunbook, as a step of its own: the runner's policy
    removes credentials from, and deletes, only users carrying that tag (README, "The runner's policy")."""
    tag = [{"Key": MANAGED_BY_KEY, "Value": MANAGED_BY_VALUE}]
    return [call_step("TagUser", user_target(user_name), lambda: iam.tag_user(UserName=user_name, Tags=tag))]


def untagged(record: dict) -> bool:
    return record["tags"].get(MANAGED_BY_KEY) != MANAGED_BY_VALUE


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


# --- the flow 05 runs --------------------------------------------------------------------------------
@dataclass
class Offboarding:
    """One offboarding: the user, the record taken before anything changes, and the roles they reach."""

    user: str | None
    record: dict | None = None
    roles_held: list[str] = field(default_factory=list)

    @classmethod
    def start(cls, rb) -> Offboarding:
        """Refuse the wrong user first (in the spec, or the operator); None: nothing to do."""
        user = rb.params["offboard_user"]
        if user is None:
            print("offboard_user is not set: nothing to do.")
            return cls(None)
        check_offboard(user, set(rb.spec().users), rb.caller_arn)
        print(f"offboarding {user} ({'APPLY' if rb.apply else 'plan only: nothing will change'})")
        return cls(user)

    @property
    def exists(self) -> bool:
        return bool(self.record and self.record["exists"])

    def take_record(self, rb) -> dict[str, pd.DataFrame]:
        """What they hold, written to offboard_<user>_credentials.json; the tables to show."""
        if self.user is None:
            return {}
        self.record = credential_inventory(rb.iam, self.user)
        rb.write(records.OFFBOARD_CREDENTIALS, self.record, name=f"offboard_{self.user}_credentials.json")
        print(f"{self.user}: {'exists' if self.exists else 'already gone'}")
        return inventory_tables(self.record)

    def reach(self, rb) -> pd.DataFrame:
        """The roles they can assume now, by any path: the sessions `revoke_role_sessions` would end."""
        from iamrunbook.core.access import effective_access
        from iamrunbook.flows.reports import access_paths

        grants = []
        if self.exists:
            inventory = rb.inventory()
            everyone = effective_access(inventory.details(), rb.params["roles"], inventory.account_id)
            grants = [g for g in everyone if g.user == self.record["user_name"]]
        self.roles_held = sorted({g.role_name for g in grants})
        print(f"roles: {', '.join(self.roles_held) or 'none'}")
        return access_paths(grants)

    def steps(self, rb) -> list[Step]:
        """Cut access now, optionally revoke role sessions, delete the user: every call that changes it. The
        deletion is the one-change plan `ensure_safe` proves, made by the executor as apply makes a plan's."""
        done = adopt_for_offboarding(rb.iam, self.user) if untagged(self.record) else []
        done += revoke_access(rb.iam, self.user)
        if rb.params["revoke_role_sessions"]:
            done += revoke_role_sessions(rb.iam, self.roles_held, datetime.now(timezone.utc))

        def run(iam, change) -> None:
            done.extend(delete_user(iam, change.user))

        execute(aws.apply_client(rb.session), [self.deletion(self.user)], ApplyResult(), desc="offboard",
                progress=True, run=run)  # fmt: skip
        return done

    @staticmethod
    def deletion(name: str) -> Change:
        """Offboarding as a plan: the one change "delete this user"."""
        return Change("delete_user", user_address(name), "offboard", user=name)

    def planned(self, revoke_sessions: bool) -> list[dict]:
        """The offboarding as data, from the record: what each step will remove, in the order it will.
        A reviewed offboarding applies only if a fresh record plans exactly this."""
        if not self.exists:
            return []
        r = self.record
        rows = [("TagUser", f"user {self.user}")] if untagged(r) else []
        rows += [("UpdateAccessKey", k["access_key_id"]) for k in r["access_keys"] if k.get("status") == "Active"]
        rows += [("DeleteLoginProfile", f"user {self.user}")] if r["login_profile"]["exists"] else []
        rows += [("PutRolePolicy", f"role {role}") for role in self.roles_held] if revoke_sessions else []
        rows += [("RemoveUserFromGroup", f"group {g}") for g in r["groups"]]
        rows += [("DeleteUserPolicy", f"policy {p}") for p in r["inline_policies"]]
        rows += [("DetachUserPolicy", p["arn"]) for p in r["attached_policies"]]
        rows += [("DeleteAccessKey", k["access_key_id"]) for k in r["access_keys"]]
        rows += [("DeleteSSHPublicKey", k["ssh_public_key_id"]) for k in r["ssh_public_keys"]]
        rows += [("DeactivateMFADevice", d["serial"]) for d in r["mfa_devices"]]
        rows += [("DeleteVirtualMFADevice", d["serial"]) for d in r["mfa_devices"] if d["virtual"]]
        rows += [("DeleteSigningCertificate", c["certificate_id"]) for c in r["signing_certificates"]]
        rows += [
            ("DeleteServiceSpecificCredential", c["credential_id"]) for c in r["service_specific_credentials"]["items"]
        ]
        rows.append(("DeleteUser", f"user {self.user}"))
        return [{"action": action, "target": target} for action, target in rows]

    def ensure_safe(self, rb) -> None:
        """The offboarding is the one-change plan "delete this user": proven by the simulator like any plan,
        so it never takes a role from someone the spec keeps, or from the operator."""
        from iamrunbook.core.simulate import ensure_safe

        inventory = rb.inventory()
        name = (inventory.user_named(self.user) or {}).get("UserName", self.user)
        ensure_safe(inventory, [self.deletion(name)], rb.spec(), rb.caller_arn)

    def write(self, rb, steps: list[Step], applied: bool) -> None:
        rows = steps_table(steps).to_dict("records")
        planned = self.planned(rb.params["revoke_role_sessions"])
        rb.write(records.OFFBOARD, records.OffboardRecord(self.user, self.exists, applied, rows, planned))


def offboard(rb, o: Offboarding) -> pd.DataFrame:
    """05's change: the headless/live decision (rb.carry_out); "already gone" needs no step at all."""
    if o.user is None:
        return steps_table([])
    if not o.exists:
        o.write(rb, [], rb.apply)
        print("already gone: nothing to do")
        return steps_table([])

    def go() -> pd.DataFrame:
        planfile.bind_offboard(rb, o)  # refused unless it removes exactly what a reviewed offboarding planned
        o.ensure_safe(rb)
        done = o.steps(rb)
        o.write(rb, done, True)
        return steps_table(done)

    o.write(rb, [], False)  # the record says "not applied" until the steps have run
    return rb.carry_out(f"Offboard {o.user}", go, step="05_offboard_user")
