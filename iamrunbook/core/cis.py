"""CIS AWS Foundations Benchmark checks for IAM users, from what one sweep and the credential report hold.

Numbering is CIS v3.0's; v5.0 moved each item down by one, and both are named. Every check reads the
inventory (`get_account_authorization_details`) and the credential report already fetched: no call per
user. The report's dates are ISO-8601, or `N/A` / `no_information` / `not_supported` when there is none.
A user the report does not list (it can be four hours old) is UNKNOWN for the checks that read it, never
PASS: a check that could not look has not passed. The benchmark's numbers are one table (LIMITS, quoted in
LIMITS_DOC); 1.16 per policy is cis_policies.py, the account-level items cis_account.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase

import pandas as pd

from iamrunbook.base import records
from iamrunbook.core.access import statements
from iamrunbook.core.inventory import Inventory, default_document

READ_ACTIONS: tuple[str, ...] = ()
WRITE_ACTIONS: tuple[str, ...] = ()



@dataclass(frozen=True)
class Limit:
    """One number of the benchmark: its value, its unit, and whether a value exactly at it fails."""

    value: int
    unit: str
    fails_at_limit: bool
    text: str  # the benchmark's wording, for the report and for the next version's edit


LIMITS = {
    "unused": Limit(45, "days", True, "1.12: credentials unused for 45 days or greater are disabled"),
    "rotated": Limit(90, "days", False, "1.14: access keys are rotated every 90 days or less"),
    "root_use": Limit(90, "days", False, "1.7: eliminate use of the 'root' user for administrative and daily "
                      "tasks (no number in the benchmark: the runbook looks back over CloudTrail's 90 days)"),
    "password_length": Limit(14, "characters", False, "1.8: IAM password policy requires minimum length of 14 "
                             "or greater"),
    "password_reuse": Limit(24, "passwords", False, "1.9: IAM password policy prevents password reuse (the "
                            "audit: PasswordReusePrevention 24)"),
}  # fmt: skip
LIMITS_DOC = """The CIS AWS Foundations Benchmark v3.0.0's limits, in its words (LIMITS holds them as data):

- 1.7  "Eliminate use of the 'root' user for administrative and daily tasks"
- 1.8  "Ensure IAM password policy requires minimum length of 14 or greater"
- 1.9  "Ensure IAM password policy prevents password reuse" (audit: "PasswordReusePrevention" is 24)
- 1.12 "Ensure credentials unused for 45 days or greater are disabled"
- 1.14 "Ensure access keys are rotated every 90 days or less"

"45 days or greater" fails at exactly 45 days; "90 days or less" passes at exactly 90; "14 or greater"
passes at 14; a reuse memory of 24 passes. A new benchmark version is one edit of LIMITS.
"""
UNUSED_DAYS = LIMITS["unused"].value
ROTATE_DAYS = LIMITS["rotated"].value
PASS, FAIL, UNKNOWN, WARN = "PASS", "FAIL", "UNKNOWN", "WARN"
NOT_CHECKED = "not checked"
#: the checks that read the credential report (the others read the sweep)
REPORT_CHECKS = ("mfa", "initial_keys", "unused", "one_key", "rotated")
#: `Action` values that mean every action of every service
ALL_ACTIONS = frozenset({"*", "*:*"})


@dataclass(frozen=True)
class Check:
    id: str  # CIS v3.0
    v5: str
    title: str
    fix: str

    @property
    def cis(self) -> str:
        return f"{self.id} (v5: {self.v5})"


CHECKS = {
    "mfa": Check("1.10", "1.9", "MFA for every user with a console password",
                 "enable an MFA device for the user, or remove the console password"),
    "initial_keys": Check("1.11", "1.10", "no access keys set up with a console user and never used",
                          "delete the never-used access key; create keys only when the user needs them"),
    "unused": Check("1.12", "1.11", f"credentials unused for {UNUSED_DAYS} days or more are disabled",
                    "delete the unused console password and deactivate the unused access keys"),
    "one_key": Check("1.13", "1.12", "at most one active access key per user",
                     "deactivate (then delete) all but one access key"),
    "rotated": Check("1.14", "1.13", f"access keys rotated within {ROTATE_DAYS} days",
                     "create a new key, move the user's software to it, deactivate the old one"),
    "groups_only": Check("1.15", "1.14", "permissions only through groups",
                         "grant through groups (grant_via: group) and detach policies from the user"),
    "no_admin": Check("1.16", "1.15", "no policy allowing *:* attached",
                      "detach the full-administrator policy; grant only what the job needs"),
}  # fmt: skip


def parse_date(value: str | None) -> datetime | None:
    """A credential-report date, or None for N/A, no_information, not_supported and empty."""
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _older(value: str | None, days: int, now: datetime, *, inclusive: bool = True) -> bool:
    """Whether the report date is `days` old or more (`inclusive`), or more than `days` old."""
    moment = parse_date(value)
    if moment is None:
        return False
    age = now - moment
    return age >= timedelta(days=days) if inclusive else age > timedelta(days=days)


def _yes(value: str | None) -> bool:
    return str(value).lower() == "true"


def _unused(row: dict, now: datetime) -> list[str]:
    """What is enabled but unused for UNUSED_DAYS: never used counts from when it was made."""
    found = []
    if _yes(row.get("password_enabled")):
        last = row.get("password_last_used")
        since = last if parse_date(last) else row.get("password_last_changed") or row.get("user_creation_time")
        if _older(since, UNUSED_DAYS, now):
            found.append(f"console password unused since {since}")
    for n in (1, 2):
        if _yes(row.get(f"access_key_{n}_active")):
            last = row.get(f"access_key_{n}_last_used_date")
            since = last if parse_date(last) else row.get(f"access_key_{n}_last_rotated")
            if _older(since, UNUSED_DAYS, now, inclusive=LIMITS["unused"].fails_at_limit):
                found.append(f"access key {n} unused since {since}")
    return found


def _active_keys(row: dict) -> list[int]:
    return [n for n in (1, 2) if _yes(row.get(f"access_key_{n}_active"))]


def _report_findings(row: dict, now: datetime) -> Iterator[tuple[str, str | None]]:
    """(check, finding or None) for the checks that read one credential-report row."""
    console = _yes(row.get("password_enabled"))
    yield "mfa", ("console password without MFA" if console and not _yes(row.get("mfa_active")) else None)
    active = _active_keys(row)
    never = [n for n in active if parse_date(row.get(f"access_key_{n}_last_used_date")) is None]
    yield "initial_keys", ("; ".join(f"access key {n} never used, beside a console password" for n in never)
                           if console and never else None)  # fmt: skip
    unused = _unused(row, now)
    yield "unused", ("; ".join(unused) or None)
    yield "one_key", (f"{len(active)} active access keys" if len(active) > 1 else None)
    # "rotated every 90 days or less": a key exactly 90 days old still passes; "45 days or greater" fails at 45
    fails_at = LIMITS["rotated"].fails_at_limit
    old = [n for n in active if _older(row.get(f"access_key_{n}_last_rotated"), ROTATE_DAYS, now, inclusive=fails_at)]
    yield "rotated", ("; ".join(f"access key {n} created {row.get(f'access_key_{n}_last_rotated')}" for n in old)
                      or None)  # fmt: skip


ADMIN, NEAR_ADMIN = "full admin", "near admin"
#: the IAM actions that let a holder grant themselves anything else: a NotAction that leaves any of these
#: allowed on every resource is full administrator access in effect
ESCALATION = (
    *("iam:AttachUserPolicy", "iam:AttachGroupPolicy", "iam:AttachRolePolicy", "iam:PutUserPolicy"),
    *("iam:PutGroupPolicy", "iam:PutRolePolicy", "iam:CreatePolicyVersion", "iam:AddUserToGroup"),
    *("iam:UpdateAssumeRolePolicy", "iam:CreateAccessKey", "iam:CreateLoginProfile"),
)


def _listed(stmt: dict, key: str) -> list[str] | None:
    if key not in stmt:
        return None
    value = stmt[key]
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def _covers(patterns: list[str], action: str) -> bool:
    return any(fnmatchcase(action.lower(), p.lower()) for p in patterns)


def _iam_resource(pattern: str) -> bool:
    """Whether a NotResource entry may leave out IAM's own resources (then the statement is not judged admin)."""
    parts = pattern.split(":")
    return len(parts) < 3 or fnmatchcase("iam", parts[2].lower())


def statement_verdict(stmt: dict) -> str | None:
    """ADMIN, NEAR_ADMIN or None for one statement, judged by effect.

    Full admin: Allow every action (`*`, `*:*`, in a list or alone) on every resource (`*` in Resource),
    or on everything but a few resources (`NotResource` that leaves IAM in: the holder can grant themselves
    the rest), or every action but some (`NotAction`) that still leaves an IAM escalation action allowed.
    Near admin: `NotAction` on every resource that leaves out every escalation action (`iam:*`, as
    PowerUserAccess does). `s3:*` on `*`, or `*` on one bucket, is neither."""
    if stmt.get("Effect") != "Allow":
        return None
    resources, not_resources = _listed(stmt, "Resource"), _listed(stmt, "NotResource")
    everywhere = "*" in (resources or []) or (not_resources is not None and not any(map(_iam_resource, not_resources)))
    if not everywhere:
        return None
    actions, not_actions = _listed(stmt, "Action"), _listed(stmt, "NotAction")
    if actions is not None:
        return ADMIN if ALL_ACTIONS & set(actions) else None
    if not_actions is None or ALL_ACTIONS & set(not_actions):
        return None
    return NEAR_ADMIN if all(_covers(not_actions, a) for a in ESCALATION) else ADMIN


def admin_statements(document) -> list[tuple[int, dict, str]]:
    """(1-based index, statement, verdict) of each statement that grants full or near admin."""
    found = []
    for n, stmt in enumerate(statements(document), start=1):
        verdict = statement_verdict(stmt)
        if verdict:
            found.append((n, stmt, verdict))
    return found


def full_admin(document) -> bool:
    """CIS 1.16's test, by effect: some statement grants full administrator access (statement_verdict)."""
    return any(verdict == ADMIN for _, _, verdict in admin_statements(document))


def _admin_policies(entity: dict, inv: Inventory, inline_key: str) -> list[str]:
    """The policies of a user or group that allow every action on every resource."""
    found = []
    for ref in entity.get("AttachedManagedPolicies", []):
        policy = inv.policies.get(ref["PolicyArn"])
        if policy is not None and full_admin(default_document(policy)):
            found.append(f"attached {ref['PolicyArn'].rsplit('/', 1)[-1]}")
    for inline in entity.get(inline_key, []):
        if full_admin(inline["PolicyDocument"]):
            found.append(f"inline {inline['PolicyName']}")
    return found


def _entity_findings(user: dict, inv: Inventory) -> Iterator[tuple[str, str | None]]:
    direct = [f"attached {p['PolicyArn'].rsplit('/', 1)[-1]}" for p in user.get("AttachedManagedPolicies", [])]
    direct += [f"inline {p['PolicyName']}" for p in user.get("UserPolicyList", [])]
    yield "groups_only", ("directly on the user: " + ", ".join(direct) if direct else None)
    admin = _admin_policies(user, inv, "UserPolicyList")
    for group in user.get("GroupList", []):
        entity = inv.group_named(group) or {}
        admin += [f"group {group}: {p}" for p in _admin_policies(entity, inv, "GroupPolicyList")]
    yield "no_admin", ("allows *:* via " + ", ".join(admin) if admin else None)


def _row(key: str, user: str, status: str, finding: str = "") -> dict:
    check = CHECKS[key]
    fix = check.fix if status == FAIL else ""
    return {"check": check.title, "cis": check.cis, "user": user, "status": status, "finding": finding, "fix": fix}


def findings(inv: Inventory, now: datetime | None = None) -> list[dict]:
    """One row per user and check: PASS, FAIL with the finding and the fix, or UNKNOWN when the credential
    report (not fetched, or older than the user) cannot say."""
    now = now or datetime.now(timezone.utc)
    report = {r.get("user", "").lower(): r for r in inv.credential_report or ()}
    rows = []
    for name, user in sorted(inv.users.items(), key=lambda item: item[0].lower()):
        found: dict[str, str | None] = dict(_entity_findings(user, inv))
        row = report.get(name.lower())
        if row is not None:
            found.update(_report_findings(row, now))
        why = "no credential report was read" if inv.credential_report is None else "not in the credential report yet"
        for key in CHECKS:
            if key in found:
                rows.append(_row(key, name, FAIL if found[key] else PASS, found[key] or ""))
            elif key in REPORT_CHECKS:
                rows.append(_row(key, name, UNKNOWN, why))
    return rows


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=records.CIS_CHECKS.columns)


def summary(rows: list[dict]) -> pd.DataFrame:
    """Per check: how many users pass, fail and could not be checked."""
    counts: dict[str, dict] = {}
    for row in rows:
        entry = counts.setdefault(row["cis"], {"cis": row["cis"], "check": row["check"], PASS: 0, FAIL: 0, UNKNOWN: 0})
        entry[row["status"]] += 1
    return pd.DataFrame(list(counts.values()), columns=["cis", "check", PASS, FAIL, UNKNOWN])


def failing(rows: list[dict], keep: Callable[[dict], bool] = lambda row: True) -> pd.DataFrame:
    return frame([r for r in rows if r["status"] == FAIL and keep(r)])
