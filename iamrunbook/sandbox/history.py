"""Back-date an account's history: what an access review reads, written straight into the sandbox.

A fresh moto account has no past: every key was created a moment ago and nothing was ever used. An
access review asks about the past (a key 100 days old, a password unused for 60 days, a role nobody
assumed for 120 days), so these helpers set it directly in moto's state (creation and last-used dates)
and in the sandbox's CloudTrail (`EmbeddedAws.record_event`). moto keeps datetimes naive in UTC; so do they.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

from moto.iam.models import AccessKeyLastUsed

from iamrunbook.sandbox.calls import ACCOUNT_ID, REGION, Call
from iamrunbook.sandbox.credentials import PASSWORD_SET, PROFILE_CREATED


def ago(days: float) -> datetime:
    """`days` before now, naive UTC (moto's convention)."""
    return datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=days)


def _user(aws, user_name: str, account_id: str | None):
    user = aws.iam_backend(account_id).users.get(user_name)
    if user is None:
        raise KeyError(f"no IAM user {user_name!r} in account {account_id or ACCOUNT_ID}")
    return user


def _access_key(user, access_key_id: str | None):
    keys = [key for key in user.access_keys if access_key_id in (None, key.access_key_id)]
    if not keys:
        raise KeyError(f"user {user.name!r} has no access key {access_key_id or ''}".strip())
    return keys[0]


def set_credential_history(
    aws,
    user_name: str,
    *,
    password_last_used_days_ago: float | None = None,
    password_changed_days_ago: float | None = None,
    access_key_id: str | None = None,
    key_created_days_ago: float | None = None,
    key_last_used_days_ago: float | None = None,
    key_service: str = "iam",
    key_region: str = REGION,
    account_id: str | None = None,
) -> str | None:
    """Back-date a user's console password and/or one access key (`access_key_id` None: the first).

    Seen by GetUser (PasswordLastUsed), GetLoginProfile, ListAccessKeys, GetAccessKeyLastUsed and the
    credential report. A later request signed with the key makes it "used now" again, as in AWS.
    Returns the key id when a key was touched.
    """
    user = _user(aws, user_name, account_id)
    if password_last_used_days_ago is not None:
        user.password_last_used = ago(password_last_used_days_ago)
    if password_changed_days_ago is not None:
        setattr(user, PASSWORD_SET, ago(password_changed_days_ago))
        setattr(user, PROFILE_CREATED, ago(password_changed_days_ago))
    if key_created_days_ago is None and key_last_used_days_ago is None and access_key_id is None:
        return None
    key = _access_key(user, access_key_id)
    if key_created_days_ago is not None:
        key.create_date = ago(key_created_days_ago)
    if key_last_used_days_ago is not None:
        key.last_used = AccessKeyLastUsed(timestamp=ago(key_last_used_days_ago), service=key_service, region=key_region)
    return key.access_key_id


def _role_arn(aws, role: str, account_id: str | None) -> tuple[str, object | None]:
    backend = aws.iam_backend(account_id)
    if role.startswith("arn:"):
        found = next((r for r in backend.roles.values() if r.arn == role), None)
        return role, found
    found = next((r for r in backend.roles.values() if r.name == role), None)
    arn = found.arn if found is not None else f"arn:aws:iam::{account_id or ACCOUNT_ID}:role/{role}"
    return arn, found


def seed_assume_role_history(
    aws, history: Iterable[tuple[str, str, float]], *, account_id: str | None = None
) -> list[Call]:
    """CloudTrail AssumeRole events `(user, role name or ARN, days ago)`, each by that user's own credentials.

    The role's RoleLastUsed (GetRole) moves to the newest of them, as AWS tracks it. Events older than
    CloudTrail's 90 days are kept but LookupEvents never returns them: "not assumed for 120 days" shows
    as no event at all, as in a real account.
    """
    events = []
    for user_name, role, days in history:
        arn, found = _role_arn(aws, role, account_id)
        params = {"RoleArn": arn, "RoleSessionName": user_name}
        event = aws.record_event("AssumeRole", user=user_name, params=params, days_ago=days, account_id=account_id)
        events.append(event)
        moment = ago(days)
        if found is not None and (found.last_used is None or found.last_used < moment):
            found.last_used = moment
            found.last_used_region = REGION
    return events


def set_root_history(
    aws,
    *,
    mfa: str | None = None,
    access_key: bool = False,
    password_last_used_days_ago: float | None = None,
    key_last_used_days_ago: float | None = None,
    account_id: str | None = None,
) -> None:
    """The root user's past, which no IAM API can set: MFA (None, "virtual", "hardware"), an active access
    key and when each was last used. Seen by the credential report, GetAccountSummary and the MFA list."""
    from iamrunbook.sandbox.account_state import set_root

    set_root(
        aws.iam_backend(account_id),
        mfa=mfa,
        access_key=access_key,
        password_last_used=None if password_last_used_days_ago is None else ago(password_last_used_days_ago),
        key_last_used=None if key_last_used_days_ago is None else ago(key_last_used_days_ago),
    )
