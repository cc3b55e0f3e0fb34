"""The credential report and login profiles as AWS reports them (moto's differ), built from moto's state.

moto's report has no `<root_account>` row, says `not_supported` where AWS says `N/A`, dates a password by
its user's creation, never fills a key's last-used region and service or a certificate's date. AWS's
rules, per column: password_last_used is `N/A` without a password and `no_information` when never used;
password_last_changed is `N/A` without one; password_next_rotation is `N/A` unless the password policy
expires passwords; access_key_N_* and cert_N_last_rotated are `N/A` when there is no such key or
certificate, or it was never used. Unlike AWS, a report reflects the account when it is read (AWS keeps
a report for four hours).

moto does not record when a password was set: `note_login_profile` stamps it on moto's user object after
each successful CreateLoginProfile/UpdateLoginProfile (the stamp lives and dies with moto's state).
"""

from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import Any
from xml.sax.saxutils import escape

#: AWS's columns, in AWS's order.
COLUMNS = (
    "user", "arn", "user_creation_time", "password_enabled", "password_last_used", "password_last_changed",
    "password_next_rotation", "mfa_active", "access_key_1_active", "access_key_1_last_rotated",
    "access_key_1_last_used_date", "access_key_1_last_used_region", "access_key_1_last_used_service",
    "access_key_2_active", "access_key_2_last_rotated", "access_key_2_last_used_date",
    "access_key_2_last_used_region", "access_key_2_last_used_service", "cert_1_active", "cert_1_last_rotated",
    "cert_2_active", "cert_2_last_rotated",
)  # fmt: skip
NA = "N/A"
PASSWORD_SET = "sandbox_password_set"  # attribute stamped on moto's User: when its password was last set
PROFILE_CREATED = "sandbox_login_profile_created"
ROOT_STATE = "sandbox_root"  # on moto's backend: the root row's columns set by account_state.set_root


def iso(moment: Any) -> str:
    """AWS's report format: 2024-05-01T12:00:00+00:00 (naive datetimes are UTC, as moto keeps them)."""
    moment = getattr(moment, "timestamp", moment)  # moto's AccessKeyLastUsed wraps a datetime
    if callable(moment):
        moment = moment()
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _key_columns(key: Any | None) -> list[str]:
    if key is None:
        return ["false", NA, NA, NA, NA]
    used = key.last_used
    when = iso(used) if used is not None else NA
    region = getattr(used, "region", None) or NA
    service = getattr(used, "service", None) or NA
    return ["true" if key.status == "Active" else "false", iso(key.create_date), when, region, service]


def _cert_columns(cert: Any | None) -> list[str]:
    if cert is None:
        return ["false", NA]
    return ["true" if cert.status == "Active" else "false", iso(cert.upload_date)]


def password_set(user: Any) -> datetime:
    return getattr(user, PASSWORD_SET, None) or user.create_date


def _password_columns(user: Any, max_age: int | None) -> list[str]:
    if not user.password:
        return ["false", NA, NA, NA]
    last_used = iso(user.password_last_used) if user.password_last_used else "no_information"
    changed = password_set(user)
    rotation = iso(changed + timedelta(days=max_age)) if max_age else NA
    return ["true", last_used, iso(changed), rotation]


def _user_row(user: Any, max_age: int | None) -> list[str]:
    keys = list(user.access_keys)[:2] + [None, None]
    certs = list(user.signing_certificates.values())[:2] + [None, None]
    return [
        user.name,
        user.arn,
        iso(user.create_date),
        *_password_columns(user, max_age),
        "true" if user.mfa_devices else "false",
        *_key_columns(keys[0]),
        *_key_columns(keys[1]),
        *_cert_columns(certs[0]),
        *_cert_columns(certs[1]),
    ]


def report_csv(backend: Any, account_id: str, created: datetime) -> str:
    """The credential report, `<root_account>` first: the account root has no keys and no console MFA here."""
    policy = backend.account_password_policy
    max_age = getattr(policy, "max_password_age", None) or None
    root = ["<root_account>", f"arn:aws:iam::{account_id}:root", iso(created), "not_supported", "no_information"]
    root += ["not_supported", "not_supported", "false", *_key_columns(None), *_key_columns(None)]
    root += [*_cert_columns(None), *_cert_columns(None)]
    root = [getattr(backend, ROOT_STATE, {}).get(column, value) for column, value in zip(COLUMNS, root, strict=True)]
    rows = [COLUMNS, root] + [_user_row(user, max_age) for user in backend.users.values()]
    return "".join(",".join(row) + "\n" for row in rows)


def credential_report_result(backend: Any, account_id: str, created: datetime) -> str:
    """The GetCredentialReportResult XML (the CSV base64-encoded, as the wire carries a blob)."""
    content = base64.b64encode(report_csv(backend, account_id, created).encode()).decode()
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"<Content>{content}</Content><ReportFormat>text/csv</ReportFormat><GeneratedTime>{now}</GeneratedTime>"


def login_profile_result(user: Any) -> str:
    """The GetLoginProfileResult XML, dated by the login profile's creation (moto: the user's)."""
    created = getattr(user, PROFILE_CREATED, None) or user.create_date
    return (
        f"<LoginProfile><UserName>{escape(user.name)}</UserName>"
        f"<CreateDate>{iso(created).replace('+00:00', 'Z')}</CreateDate>"
        f"<PasswordResetRequired>{str(bool(user.password_reset_required)).lower()}</PasswordResetRequired>"
        "</LoginProfile>"
    )


def note_login_profile(backend: Any, action: str | None, params: Any) -> None:
    """After a successful call: stamp when a user's password (and login profile) was set, and its reset flag."""
    if action not in ("CreateLoginProfile", "UpdateLoginProfile") or not isinstance(params, dict):
        return
    user = backend.users.get(params.get("UserName", ""))
    if user is None:
        return
    if action == "CreateLoginProfile" or "PasswordResetRequired" in params:  # moto drops the flag
        user.password_reset_required = bool(params.get("PasswordResetRequired", False))
    if action == "UpdateLoginProfile" and not params.get("Password"):
        return
    now = datetime.now(timezone.utc)
    setattr(user, PASSWORD_SET, now)
    if action == "CreateLoginProfile":
        setattr(user, PROFILE_CREATED, now)
