"""CIS AWS Foundations v3.0 account-level IAM items (v5.0 numbers beside): the root user, the password
policy, 1.16 over every principal, the support role, server certificates, IAM Access Analyzer.

Pure: `AccountFacts` holds what aws/cis_reads.py read (the credential report's `<root_account>` row,
GetAccountSummary, GetAccountPasswordPolicy, the root's virtual MFA devices, ListServerCertificates,
ListAnalyzers). A read that could not be made is a `NotRead` with its reason, and every check that
needs it says "not checked: <reason>": never PASS for a check that was not run. 1.18 (instance roles)
reads EC2, not IAM, and is not checked here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pandas as pd

from iamrunbook.base import records
from iamrunbook.core import cis
from iamrunbook.core.cis import FAIL, LIMITS, NOT_CHECKED, PASS, Check
from iamrunbook.core.cis_policies import PolicyFinding

SUPPORT_POLICY = "AWSSupportAccess"
ROOT_ROW = "<root_account>"


@dataclass(frozen=True)
class NotRead:
    """A read that was not made or was refused: why, for the finding's status."""

    reason: str


@dataclass
class AccountFacts:
    summary: dict | NotRead = field(default_factory=lambda: NotRead("GetAccountSummary was not read"))
    password_policy: dict | None | NotRead = field(default_factory=lambda: NotRead("no password policy read"))
    root_virtual_mfa: list[str] | NotRead = field(default_factory=lambda: NotRead("no virtual MFA list read"))
    server_certificates: list[dict] | NotRead = field(default_factory=lambda: NotRead("no certificate list read"))
    analyzers: list[dict] | NotRead = field(default_factory=lambda: NotRead("no analyzer list read"))
    region: str = ""


CHECKS = {
    "root_keys": Check("1.4", "1.3", "no 'root' user access key exists",
                       "delete the root user's access keys (signed in as root: Security credentials)"),
    "root_mfa": Check("1.5", "1.4", "MFA is enabled for the 'root' user", "enable an MFA device for the root user"),
    "root_hardware_mfa": Check("1.6", "1.5", "hardware MFA is enabled for the 'root' user",
                               "give the root user a hardware MFA device or security key instead of a virtual MFA"),
    "root_use": Check("1.7", "1.6", "no use of the 'root' user for administrative and daily tasks",
                      "use IAM users or roles; keep the root user for the tasks only it can do"),
    "password_length": Check("1.8", "1.7", f"password policy requires at least {LIMITS['password_length'].value} "
                             "characters", f"set MinimumPasswordLength to {LIMITS['password_length'].value} or more"),
    "password_reuse": Check("1.9", "1.8", "password policy prevents password reuse",
                            f"set PasswordReusePrevention to {LIMITS['password_reuse'].value}"),
    "no_admin_anywhere": Check("1.16", "1.15", "no policy allowing *:* attached to any user, group or role",
                               cis.CHECKS["no_admin"].fix),
    "support_role": Check("1.17", "1.16", "a support role is created to manage incidents with AWS Support",
                          f"attach {SUPPORT_POLICY} to a role the incident responders can assume"),
    "expired_certificates": Check("1.19", "1.18", "expired SSL/TLS certificates stored in IAM are removed",
                                  "delete the expired server certificate (iam delete-server-certificate)"),
    "access_analyzer": Check("1.20", "1.19", "IAM Access Analyzer is enabled", "create an analyzer in the region"),
}  # fmt: skip


def _row(key: str, resource: str, status: str, finding: str = "") -> dict:
    check = CHECKS[key]
    return {"check": check.title, "cis": check.cis, "resource": resource, "status": status, "finding": finding,
            "fix": check.fix if status == FAIL else ""}  # fmt: skip


def _not_checked(reason: str) -> str:
    return f"{NOT_CHECKED}: {reason}"


def _root_keys(root: dict | None, summary: dict | NotRead) -> tuple[str, str]:
    active = [n for n in (1, 2) if root and cis._yes(root.get(f"access_key_{n}_active"))]
    present = None if isinstance(summary, NotRead) else int(summary.get("AccountAccessKeysPresent", 0))
    if root is None and present is None:
        return _not_checked(f"no credential report root row; {summary.reason}"), ""
    if active or present:
        seen = [f"access key {n} active (credential report)" for n in active]
        return FAIL, "; ".join(seen + ["AccountAccessKeysPresent: 1 (account summary)"] * bool(present))
    return PASS, ""


def _root_mfa(root: dict | None, summary: dict | NotRead) -> bool | None:
    if not isinstance(summary, NotRead):
        return bool(int(summary.get("AccountMFAEnabled", 0)))
    return cis._yes(root.get("mfa_active")) if root else None


def _root_use(root: dict | None, now: datetime) -> tuple[str, str]:
    if root is None:
        return _not_checked("no credential report root row"), ""
    limit = LIMITS["root_use"]
    used = []
    for column in ("password_last_used", "access_key_1_last_used_date", "access_key_2_last_used_date"):
        moment = cis.parse_date(root.get(column))
        age, days = (now - moment if moment else None), timedelta(days=limit.value)
        if age is not None and (age < days or (age == days and limit.fails_at_limit)):
            used.append(f"{column} {root.get(column)}")
    return (FAIL, f"root used within {limit.value} days: " + ", ".join(used)) if used else (PASS, "")


def root_rows(root: dict | None, facts: AccountFacts, now: datetime) -> list[dict]:
    """1.4 - 1.7 from the report's root row and the account summary."""
    rows = [_row("root_keys", "root", *_root_keys(root, facts.summary))]
    mfa = _root_mfa(root, facts.summary)
    if mfa is None:
        rows.append(_row("root_mfa", "root", _not_checked("neither the account summary nor the report says")))
    else:
        rows.append(_row("root_mfa", "root", PASS if mfa else FAIL, "" if mfa else "the root user has no MFA"))
    if mfa is False:
        rows.append(_row("root_hardware_mfa", "root", FAIL, "the root user has no MFA at all"))
    elif mfa is None or isinstance(facts.root_virtual_mfa, NotRead):
        why = facts.root_virtual_mfa.reason if isinstance(facts.root_virtual_mfa, NotRead) else "root MFA unknown"
        rows.append(_row("root_hardware_mfa", "root", _not_checked(why)))
    else:
        virtual = facts.root_virtual_mfa
        rows.append(_row("root_hardware_mfa", "root", FAIL if virtual else PASS,
                         f"virtual MFA device {', '.join(virtual)}" if virtual else ""))  # fmt: skip
    rows.append(_row("root_use", "root", *_root_use(root, now)))
    return rows


def password_rows(policy: dict | None | NotRead) -> list[dict]:
    """1.8 and 1.9 from GetAccountPasswordPolicy (None: the account has none, so AWS's default applies)."""
    if isinstance(policy, NotRead):
        return [_row(key, "password policy", _not_checked(policy.reason)) for key in ("password_length",
                                                                                      "password_reuse")]  # fmt: skip
    policy = policy or {}
    length, reuse = policy.get("MinimumPasswordLength"), policy.get("PasswordReusePrevention")
    need_length, need_reuse = LIMITS["password_length"].value, LIMITS["password_reuse"].value
    none = "no password policy: AWS's default applies" if not policy else ""
    return [
        _row("password_length", "password policy", PASS if (length or 0) >= need_length else FAIL,
             "" if (length or 0) >= need_length else none or f"minimum length {length}"),
        _row("password_reuse", "password policy", PASS if (reuse or 0) >= need_reuse else FAIL,
             "" if (reuse or 0) >= need_reuse else none or f"remembers {reuse or 0} passwords"),
    ]  # fmt: skip


def support_rows(roles: dict[str, dict]) -> list[dict]:
    """1.17: some role has AWSSupportAccess attached (read from the sweep: no extra call)."""
    holders = sorted(name for name, role in roles.items() if any(
        ref["PolicyArn"].endswith(f":policy/{SUPPORT_POLICY}") for ref in role.get("AttachedManagedPolicies", [])))
    if holders:
        return [_row("support_role", "role " + ", ".join(holders), PASS)]
    return [_row("support_role", "account", FAIL, f"no role has {SUPPORT_POLICY} attached")]


def certificate_rows(certs: list[dict] | NotRead, now: datetime) -> list[dict]:
    """1.19: one row per server certificate; expired (now at or past its Expiration) fails."""
    if isinstance(certs, NotRead):
        return [_row("expired_certificates", "account", _not_checked(certs.reason))]
    if not certs:
        return [_row("expired_certificates", "account", PASS, "no server certificates")]
    rows = []
    for cert in certs:
        expires = cert["Expiration"]
        expires = expires if expires.tzinfo else expires.replace(tzinfo=timezone.utc)
        expired = now >= expires
        rows.append(_row("expired_certificates", f"server certificate {cert['ServerCertificateName']}",
                         FAIL if expired else PASS, f"{'expired' if expired else 'expires'} {expires:%Y-%m-%d}"))
    return rows


def analyzer_rows(analyzers: list[dict] | NotRead, region: str) -> list[dict]:
    """1.20: an ACTIVE analyzer in the region the runbook reads (the benchmark asks for every region)."""
    resource = f"region {region}"
    if isinstance(analyzers, NotRead):
        return [_row("access_analyzer", resource, _not_checked(analyzers.reason))]
    active = [a["name"] for a in analyzers if a.get("status") == "ACTIVE"]
    return [_row("access_analyzer", resource, PASS if active else FAIL,
                 f"active: {', '.join(active)}" if active else "no active analyzer")]  # fmt: skip


def admin_rows(policies: list[PolicyFinding]) -> list[dict]:
    """1.16 over every principal: one row per policy granting full admin, or one PASS."""
    failing = [p for p in policies if p.status == FAIL]
    return [_row("no_admin_anywhere", p.label, FAIL, "attached to " + "; ".join(p.attached_to)) for p in failing] or [
        _row("no_admin_anywhere", "account", PASS, f"{len(policies)} attached policies, none grants *:*")
    ]


def findings(root: dict | None, facts: AccountFacts, roles: dict[str, dict], policies: list[PolicyFinding],
             now: datetime | None = None) -> list[dict]:  # fmt: skip
    """Every account-level row, in the benchmark's order."""
    now = now or datetime.now(timezone.utc)
    return [*root_rows(root, facts, now), *password_rows(facts.password_policy), *admin_rows(policies),
            *support_rows(roles), *certificate_rows(facts.server_certificates, now),
            *analyzer_rows(facts.analyzers, facts.region)]  # fmt: skip


def root_row(report: list[dict] | None) -> dict | None:
    return next((r for r in report or () if r.get("user") == ROOT_ROW), None)


def frame(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=records.CIS_ACCOUNT.columns)
