"""CIS AWS Foundations Benchmark checks for IAM users, from what one sweep and the credential report hold.

Numbering is CIS v3.0's; v5.0 moved each item down by one, and both are named. Every check reads the
inventory (`get_account_authorization_details`) and the credential report already fetched: no call per
user. The report's dates are ISO-8601, or `N/A` / `no_information` / `not_supported` when there is none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pandas as pd

from . import records
from .access import document_access
from .inventory import Inventory, default_document

READ_ACTIONS: tuple[str, ...] = ()
WRITE_ACTIONS: tuple[str, ...] = ()

UNUSED_DAYS = 45
ROTATE_DAYS = 90
PASS, FAIL = "PASS", "FAIL"


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


def _older(value: str | None, days: int, now: datetime) -> bool:
    moment = parse_date(value)
    return moment is not None and now - moment >= timedelta(days=days)


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
            if _older(since, UNUSED_DAYS, now):
                found.append(f"access key {n} unused since {since}")
    return found


def _report_findings(row: dict, now: datetime) -> Iterator[tuple[str, str | None]]:
    """(check, finding or None) for the checks that read one credential-report row."""
    console = _yes(row.get("password_enabled"))
    yield "mfa", ("console password without MFA" if console and not _yes(row.get("mfa_active")) else None)
    unused = _unused(row, now)
    yield "unused", ("; ".join(unused) or None)
    active = [n for n in (1, 2) if _yes(row.get(f"access_key_{n}_active"))]
    yield "one_key", (f"{len(active)} active access keys" if len(active) > 1 else None)
    old = [n for n in active if _older(row.get(f"access_key_{n}_last_rotated"), ROTATE_DAYS, now)]
    yield "rotated", ("; ".join(f"access key {n} created {row.get(f'access_key_{n}_last_rotated')}" for n in old)
                      or None)  # fmt: skip


def _admin_policies(entity: dict, inv: Inventory, inline_key: str) -> list[str]:
    """The policies of a user or group that allow every action on every resource."""
    found = []
    for ref in entity.get("AttachedManagedPolicies", []):
        policy = inv.policies.get(ref["PolicyArn"])
        if policy is not None and document_access(default_document(policy), "*", "*")[0] != "no":
            found.append(f"attached {ref['PolicyArn'].rsplit('/', 1)[-1]}")
    for inline in entity.get(inline_key, []):
        if document_access(inline["PolicyDocument"], "*", "*")[0] != "no":
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


def findings(inv: Inventory, now: datetime | None = None) -> list[dict]:
    """One row per user and check: PASS, or FAIL with the finding and the fix."""
    now = now or datetime.now(timezone.utc)
    report = {r.get("user", "").lower(): r for r in inv.credential_report or ()}
    rows = []
    for name, user in sorted(inv.users.items(), key=lambda item: item[0].lower()):
        found: list[tuple[str, str | None]] = list(_entity_findings(user, inv))
        found += list(_report_findings(report.get(name.lower(), {}), now))
        for key, finding in sorted(found, key=lambda f: list(CHECKS).index(f[0])):
            check = CHECKS[key]
            rows.append({"check": check.title, "cis": check.cis, "user": name, "status": FAIL if finding else PASS,
                         "finding": finding or "", "fix": check.fix if finding else ""})  # fmt: skip
    return rows


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=records.CIS_CHECKS.columns)


def summary(rows: list[dict]) -> pd.DataFrame:
    """Per check: how many users pass and fail."""
    counts: dict[str, dict] = {}
    for row in rows:
        entry = counts.setdefault(row["cis"], {"cis": row["cis"], "check": row["check"], PASS: 0, FAIL: 0})
        entry[row["status"]] += 1
    return pd.DataFrame(list(counts.values()), columns=["cis", "check", PASS, FAIL])


def failing(rows: list[dict], keep: Callable[[dict], bool] = lambda row: True) -> pd.DataFrame:
    return frame([r for r in rows if r["status"] == FAIL and keep(r)])
