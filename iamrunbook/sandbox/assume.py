"""`sts:AssumeRole` through the embedded AWS: refused where AWS would refuse it, before moto answers.

Finds the role and the caller's identity policies in moto's state (per account) and asks `policy` whether
AWS would allow the call; also checks the MFA device and the requested session duration.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from iamrunbook.sandbox.identity import Caller
from iamrunbook.sandbox.policy import Refusal, assume_role_refusal, context_keys

_MFA_FAILED = ("AccessDenied", "MultiFactorAuthentication failed, unable to validate MFA code.", 403)


def _default_document(policy: Any) -> str:
    return next(version.document for version in policy.versions if version.is_default)


def _documents(holders: list[Any]) -> Iterator[Any]:
    for holder in holders:
        yield from holder.policies.values()
        yield from (_default_document(policy) for policy in holder.managed_policies.values())


def _role_by_arn(backend: Any, arn: str) -> Any:
    return next((role for role in backend.roles.values() if role.arn == arn), None)


def identity_documents(caller: Caller, backend: Any) -> list[Any] | None:
    """The identity policies of the caller (None: the fake key, allowed everything)."""
    if caller.kind == "user":
        user = backend.users.get(caller.user_name)
        if user is None:
            return []
        groups = [group for group in backend.groups.values() if user in group.users]
        return list(_documents([user, *groups]))
    if caller.kind == "role":
        role = _role_by_arn(backend, caller.role_arn or "")
        return list(_documents([role])) if role is not None else []
    return None


def _mfa_valid(caller: Caller, params: dict, backend: Any) -> bool | None:
    """True: a valid MFA device and code were given; False: none given; None: given but invalid."""
    serial = params.get("SerialNumber")
    if not serial or not params.get("TokenCode"):
        return False
    if caller.kind != "user":
        return True  # the fake administrator and role sessions: the device cannot be checked
    user = backend.users.get(caller.user_name)
    return True if user is not None and serial in user.mfa_devices else None


def assume_role_check(
    caller: Caller, params: Any, iam_backend: Callable[[str], Any], now: datetime | None = None
) -> Refusal | None:
    """(code, message, status) when AWS would refuse this AssumeRole call, else None (moto answers it).
    `now`: the time of the request (aws:CurrentTime), the server's clock."""
    if not isinstance(params, dict):
        return None
    role_arn = str(params.get("RoleArn", ""))
    parts = role_arn.split(":", 5)
    role = None
    if len(parts) == 6 and parts[5].startswith("role/"):
        role = _role_by_arn(iam_backend(parts[4]), role_arn)
    own = iam_backend(caller.account_id)
    mfa = _mfa_valid(caller, params, own)
    if mfa is None:
        return _MFA_FAILED
    context = context_keys(caller, params, mfa, 0 if mfa else None, now)
    refused = assume_role_refusal(caller, role, role_arn, identity_documents(caller, own), context)
    if refused is None and int(params.get("DurationSeconds") or 0) > int(role.max_session_duration or 3600):
        message = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
        return "ValidationError", message, 400
    return refused
