"""Who may assume a role: AWS's evaluation of `sts:AssumeRole`, which moto skips (it lets anyone assume anything).

The role must exist, and its trust policy must allow the caller: by ARN, by account (id or `:root`) or `*`.
An explicit Deny in the trust policy or in the caller's identity policies wins. When the trust policy
names the caller itself (or `*`) in the caller's own account, that grant suffices; otherwise (trust in the
account, or any cross-account call) the caller's identity policies must allow the call too. The sandbox's
fake key is its account's administrator: its identity policies allow everything.

Conditions are evaluated on the keys an AssumeRole request carries (aws:MultiFactorAuthPresent/Age when
a valid MFA device and code are given, aws:PrincipalArn/Account, aws:username, sts:ExternalId,
sts:RoleSessionName, aws:CurrentTime from the server's clock, with the Date operators); a condition on
any other key fails, as in AWS when the key is absent.
Out of scope: SCPs, session policies, permissions boundaries, NotPrincipal.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from iamrunbook.sandbox.identity import Caller

ACTION = "sts:AssumeRole"
Refusal = tuple[str, str, int]


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def statements(document: Any) -> list[dict]:
    """The statements of a policy document given as JSON text (possibly URL-encoded) or a dict."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            document = json.loads(unquote(document))
    return [s for s in _as_list((document or {}).get("Statement")) if isinstance(s, dict)]


def _like(pattern: str, value: str, *, case: bool = True) -> bool:
    """IAM wildcards: `*` any run, `?` one character (fnmatch's [] classes escaped)."""
    pattern = pattern.replace("[", "[[]")
    if not case:
        pattern, value = pattern.lower(), value.lower()
    return fnmatch.fnmatchcase(value, pattern)


def _arn_like(pattern: str, value: str) -> bool:
    """ArnEquals and ArnLike alike (AWS): each of the six colon-separated parts matched on its own, wildcards
    included, so a `*` never spans a colon."""
    wanted, have = pattern.split(":", 5), value.split(":", 5)
    return len(wanted) == len(have) == 6 and all(_like(w, h) for w, h in zip(wanted, have, strict=True))


def _covers(stmt: dict, key: str, value: str, *, case: bool) -> bool:
    if key in stmt:
        return any(_like(str(p), value, case=case) for p in _as_list(stmt[key]))
    negated = "Not" + key
    if negated in stmt:
        return not any(_like(str(p), value, case=case) for p in _as_list(stmt[negated]))
    return False


def _principal(stmt: dict, caller: Caller) -> str | None:
    """How a trust statement names the caller: "self" (its ARN, or `*`), "account", or None."""
    principal = stmt.get("Principal")
    if principal == "*":
        return "self"
    named = [str(p) for p in _as_list(principal.get("AWS"))] if isinstance(principal, dict) else []
    own = {caller.arn, caller.role_arn or caller.arn}
    if any(p == "*" or p in own for p in named):
        return "self"
    if any(p in (caller.account_id, f"arn:aws:iam::{caller.account_id}:root") for p in named):
        return "account"
    return None


def _date(text: str) -> datetime:
    """ISO 8601 (2026-12-31T18:00:00Z) or epoch seconds, as IAM's Date operators take them."""
    if text.isdigit():
        return datetime.fromtimestamp(int(text), timezone.utc)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


_OPERATORS = {
    "DateEquals": lambda want, have: _date(have) == _date(want),
    "DateNotEquals": lambda want, have: _date(have) != _date(want),
    "DateLessThan": lambda want, have: _date(have) < _date(want),
    "DateLessThanEquals": lambda want, have: _date(have) <= _date(want),
    "DateGreaterThan": lambda want, have: _date(have) > _date(want),
    "DateGreaterThanEquals": lambda want, have: _date(have) >= _date(want),
    "StringEquals": lambda want, have: have == want,
    "StringNotEquals": lambda want, have: have != want,
    "StringEqualsIgnoreCase": lambda want, have: have.lower() == want.lower(),
    "StringLike": lambda want, have: _like(want, have),
    "StringNotLike": lambda want, have: not _like(want, have),
    "ArnEquals": lambda want, have: _arn_like(want, have),
    "ArnLike": lambda want, have: _arn_like(want, have),
    "ArnNotEquals": lambda want, have: not _arn_like(want, have),
    "ArnNotLike": lambda want, have: not _arn_like(want, have),
    "Bool": lambda want, have: have.lower() == want.lower(),
    "NumericLessThan": lambda want, have: float(have) < float(want),
    "NumericLessThanEquals": lambda want, have: float(have) <= float(want),
    "NumericGreaterThan": lambda want, have: float(have) > float(want),
    "NumericGreaterThanEquals": lambda want, have: float(have) >= float(want),
}


def _values(have: Any) -> list[str]:
    return [str(v) for v in have] if isinstance(have, list | tuple) else [str(have)]


def _condition_holds(operator: str, key: str, wanted: Any, context: Mapping[str, Any]) -> bool:
    """One condition, as AWS evaluates it; a multi-valued key (aws:TagKeys) with ForAllValues (every value
    matches; none: true) or ForAnyValue (some value matches)."""
    if_exists = operator.endswith("IfExists")
    qualifier, _, base = operator.removesuffix("IfExists").rpartition(":")
    have = context.get(key.lower())
    if base == "Null":
        return (have is None) == (str(wanted).lower() == "true")
    test = _OPERATORS.get(base)
    if test is None:
        return False
    matches = lambda value: any(test(str(want), value) for want in _as_list(wanted))  # noqa: E731
    try:
        if qualifier == "ForAllValues":
            return all(matches(value) for value in _values(have or []))
        if have is None:
            return if_exists
        return any(matches(value) for value in _values(have))
    except ValueError:
        return False


def _conditions_hold(stmt: dict, context: Mapping[str, Any]) -> bool:
    condition = stmt.get("Condition") or {}
    return all(
        _condition_holds(operator, key, wanted, context)
        for operator, pairs in condition.items()
        if isinstance(pairs, dict)
        for key, wanted in pairs.items()
    )


def _substituted(stmt: dict, key: str, context: Mapping[str, Any]) -> dict:
    """The statement with policy variables (`${aws:username}`) in `key` replaced from the request; a variable
    the request lacks matches nothing, as in AWS."""
    if "${" not in json.dumps(stmt.get(key, "")):
        return stmt

    def fill(pattern: str) -> str:
        def one(match: re.Match) -> str:
            value = context.get(match.group(1).lower())
            return str(value) if isinstance(value, str) else "\0"  # NUL: never in an ARN

        return re.sub(r"\$\{([^}]+)\}", one, pattern)

    return {**stmt, key: [fill(str(p)) for p in _as_list(stmt[key])]}


def verdict(documents: Iterable[Any], action: str, resource: str, context: Mapping[str, Any]) -> str | None:
    """Deny, Allow or None (implicit deny) for `action` on `resource` by identity policies: an explicit Deny
    wins, else any Allow whose action, resource and conditions all match."""
    found = None
    for document in documents:
        for stmt in statements(document):
            if not (_covers(stmt, "Action", action, case=False) and _conditions_hold(stmt, context)):
                continue
            for key in ("Resource", "NotResource"):
                stmt = _substituted(stmt, key, context) if key in stmt else stmt
            if not _covers(stmt, "Resource", resource, case=True):
                continue
            if stmt.get("Effect") == "Deny":
                return "Deny"
            found = found or ("Allow" if stmt.get("Effect") == "Allow" else None)
    return found


def _applies(stmt: dict, context: Mapping[str, str]) -> bool:
    return _covers(stmt, "Action", ACTION, case=False) and _conditions_hold(stmt, context)


def _identity(documents: Iterable[Any], resource: str, context: Mapping[str, str]) -> str | None:
    """Deny, Allow or None (implicit deny) for sts:AssumeRole on `resource` by identity policies."""
    return verdict(documents, ACTION, resource, context)


def _trust(document: Any, caller: Caller, resource: str, context: Mapping[str, str]) -> str | None:
    """Deny, "self" (names the caller), "account" (trusts its account) or None, from the trust policy."""
    verdict = None
    for stmt in statements(document):
        how = _principal(stmt, caller)
        if how is None or not _applies(stmt, context):
            continue
        if stmt.get("Effect") == "Deny":
            return "Deny"
        if stmt.get("Effect") == "Allow" and verdict != "self":
            verdict = how
    return verdict


def context_keys(
    caller: Caller, params: Mapping[str, Any], mfa_ok: bool, age: float | None, now: datetime | None = None
) -> dict[str, str]:
    """The condition keys an AssumeRole request carries (lower case, as IAM compares them)."""
    keys = {
        "aws:currenttime": (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:principalarn": caller.role_arn or caller.arn,
        "aws:principalaccount": caller.account_id,
        "aws:principaltype": {"user": "User", "role": "AssumedRole"}.get(caller.kind, "Account"),
        "sts:rolesessionname": str(params.get("RoleSessionName", "")),
    }
    if caller.user_name:
        keys["aws:username"] = caller.user_name
    if params.get("ExternalId") is not None:
        keys["sts:externalid"] = str(params["ExternalId"])
    if mfa_ok:
        keys["aws:multifactorauthpresent"] = "true"
        keys["aws:multifactorauthage"] = str(int(age or 0))
    return keys


def assume_role_refusal(
    caller: Caller,
    role: Any,
    role_arn: str,
    identity_documents: Iterable[Any] | None,
    context: Mapping[str, str],
) -> Refusal | None:
    """AccessDenied unless AWS would let `caller` assume `role` (None: the role does not exist).

    `identity_documents` None means the caller's identity policies allow everything (the fake admin).
    """
    denied = ("AccessDenied", f"User: {caller.arn} is not authorized to perform: {ACTION} on resource: {role_arn}", 403)
    if role is None:
        return denied
    trust = _trust(role.assume_role_policy_document, caller, role_arn, context)
    identity = "Allow" if identity_documents is None else _identity(identity_documents, role_arn, context)
    if trust in (None, "Deny") or identity == "Deny":
        return denied
    same_account = caller.account_id == role_arn.split(":")[4]
    if trust == "self" and same_account:
        return None
    return None if identity == "Allow" else denied
