"""Effective access: who can assume each configured role, by any path.

The runbook's own attachments are only one way in. An inline policy, a group, AdministratorAccess or a
trust policy that names a user directly grant the same role, so verify asks IAM's own question for every
user and role: may this user call sts:AssumeRole on the role's ARN? The answer follows AWS's evaluation
for a single account: an explicit Deny anywhere wins; an identity policy must allow the call and, when
the user has a permissions boundary, so must the boundary; the role's trust policy must trust the user,
the account or everyone. A trust policy that names the user is a resource-based grant: it needs no
identity policy and a boundary's implicit deny does not limit it (AWS documents this for a user ARN; a
trust in `*` is reported the same way, erring towards showing access). A statement with a Condition is
never counted as a plain yes: it makes the path "conditional" and says which condition. The one condition
evaluated is a temporary grant's `DateLessThan aws:CurrentTime`, against the time of the run: before it the
path is "yes" with its `until`, after it the statement no longer applies (AWS denies).
Out of scope: SCPs, session policies and other condition values (the report names them, it does not
evaluate them).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone

from iamrunbook.base.log import logger
from iamrunbook.base.names import (
    ASSUME_ROLE,
    POLICY_VERSION,
    is_aws_managed,
    name_from_arn,
    partition_of,
    policy_name,
)
from iamrunbook.core.inventory import decode_document, default_document

READ_ACTIONS: tuple[str, ...] = ()  # no AWS calls: it reads the inventory sweep
WRITE_ACTIONS: tuple[str, ...] = ()

TRUST_NAMES_USER = "role trust policy names the user directly"
TRUST_ANY = "role trust policy trusts any principal (*)"
MFA_ONLY = "only with MFA"
VERDICTS = ("yes", "conditional", "no")


@dataclass(frozen=True)
class Grant:
    """One path by which one user can assume one configured role."""

    user: str
    role_key: str
    role_name: str
    verdict: str  # "yes" | "conditional"; "no" only for an expired temporary path (`expired_paths`)
    path: str
    policy_arn: str | None
    conditions: tuple[str, ...] = ()
    #: a temporary path: AWS allows it only before this UTC time (2026-12-31T18:00:00Z)
    until: str | None = None

    @property
    def shown(self) -> str:
        """The verdict as people read it: "yes, until 2026-12-31 18:00 UTC" for a temporary path, "no (expired
        2026-12-31 18:00 UTC)" once AWS denies it."""
        if self.until is None:
            return self.verdict
        when = f"{self.until[:10]} {self.until[11:16]} UTC"
        return f"no (expired {when})" if self.verdict == "no" else f"{self.verdict}, until {when}"


# --- policy language -----------------------------------------------------------------------------
def _as_list(value) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def statements(document) -> list[dict]:
    doc = decode_document(document)
    return [s for s in _as_list(doc.get("Statement")) if isinstance(s, dict)]


def _variables(doc: dict, user: dict, account_id: str) -> dict[str, str] | None:
    """Policy variables resolve only in version 2012-10-17 documents; older ones read `${` literally."""
    if doc.get("Version") != POLICY_VERSION:
        return None
    return {
        "aws:username": user["UserName"],
        "aws:userid": user.get("UserId", ""),
        "aws:principalaccount": account_id,
        "aws:principaltype": "User",
        "*": "*",
        "?": "?",
        "$": "$",
    }


_TOKEN = re.compile(r"\$\{([^}]*)\}|\*|\?|[^*?$]+|\$")


def _pattern(pattern: str, *, arn: bool, variables: dict[str, str] | None) -> re.Pattern | None:
    """A glob as a regex: `*` any run, `?` one character; in ARNs a `*` stays inside its colon-separated
    segment unless it ends the segment. None when a policy variable cannot be resolved: no match."""
    out = []
    for m in _TOKEN.finditer(pattern):
        token, var = m.group(0), m.group(1)
        if var is not None and variables is not None:
            name, _, default = var.partition(",")
            value = variables.get(name.strip().lower(), default.strip().strip("'") if default else None)
            if value is None:
                return None
            out.append(re.escape(value))
        elif token == "*":
            ends_segment = m.end() == len(pattern) or pattern[m.end()] == ":"
            out.append(".*" if not arn or ends_segment else "[^:]*")
        elif token == "?":
            out.append("[^:]" if arn else ".")
        else:
            out.append(re.escape(token))
    return re.compile("".join(out), re.DOTALL if arn else re.DOTALL | re.IGNORECASE)


@functools.lru_cache(maxsize=4096)
def _plain_pattern(pattern: str, arn: bool) -> re.Pattern | None:
    """A pattern without policy variables compiles the same for everyone: compiled once (the simulator
    evaluates the same few documents for thousands of users)."""
    return _pattern(pattern, arn=arn, variables=None)


def _any_match(patterns, value: str, *, arn: bool, variables: dict[str, str] | None = None) -> bool:
    for text in map(str, _as_list(patterns)):
        regex = _pattern(text, arn=arn, variables=variables) if "${" in text else _plain_pattern(text, arn)
        if regex is not None and regex.fullmatch(value):
            return True
    return False


def _action_matches(stmt: dict, action: str = ASSUME_ROLE) -> bool:
    """Action names are case-insensitive: `STS:assumerole` and `sts:Assume*` both cover sts:AssumeRole."""
    if "Action" in stmt:
        return _any_match(stmt["Action"], action, arn=False)
    if "NotAction" in stmt:
        return not _any_match(stmt["NotAction"], action, arn=False)
    return False


def _resource_matches(stmt: dict, arn: str, variables: dict[str, str] | None) -> bool:
    if "Resource" in stmt:
        return _any_match(stmt["Resource"], arn, arn=True, variables=variables)
    if "NotResource" in stmt:
        return not _any_match(stmt["NotResource"], arn, arn=True, variables=variables)
    return False


def _principal_kind(stmt: dict, user_arn: str, account_id: str) -> str | None:
    """How a trust statement covers the user: 'user' (names its ARN), 'any' (`*` or a NotPrincipal that
    leaves the user out), 'account' (the account root or id: delegates to identity policies) or None."""
    if "NotPrincipal" in stmt:
        excluded = stmt["NotPrincipal"]
        names = _as_list(excluded.get("AWS")) if isinstance(excluded, dict) else _as_list(excluded)
        return None if user_arn in names else "any"
    principal = stmt.get("Principal")
    values = _as_list(principal.get("AWS")) if isinstance(principal, dict) else _as_list(principal)
    kinds = set()
    for value in values:
        if value == "*":
            kinds.add("any")
        elif value == user_arn:
            kinds.add("user")
        elif value == account_id or value == f"arn:{partition_of(value)}:iam::{account_id}:root":
            kinds.add("account")
    return next((k for k in ("user", "any", "account") if k in kinds), None)


_CURRENT_TIME = "aws:currenttime"
_BEFORE = ("DateLessThan", "DateLessThanEquals")


def _is_until(op: str, key: str) -> bool:
    return op in _BEFORE and key.lower() == _CURRENT_TIME


def statement_until(stmt: dict) -> str | None:
    """The `DateLessThan aws:CurrentTime` value of an Allow statement (a temporary grant's end), or None."""
    for op, block in (stmt.get("Condition") or {}).items():
        for key, values in (block or {}).items() if isinstance(block, dict) else ():
            if _is_until(op, key):
                return min(str(v) for v in _as_list(values))
    return None


def _parse_time(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def in_time(stmt: dict, now: datetime) -> bool:
    """Whether an Allow statement's time limit (if any) still holds at `now`: DateLessThan is strict."""
    until = statement_until(stmt)
    if until is None:
        return True
    end = _parse_time(until)
    op = next(op for op, block in stmt["Condition"].items() if isinstance(block, dict)
              and any(_is_until(op, k) for k in block))  # fmt: skip
    return end is not None and (now < end if op == "DateLessThan" else now <= end)


def describe_conditions(effect: str, condition) -> tuple[str, ...]:
    """Condition blocks in words: MFA gates as 'only with MFA', the rest as 'Condition <op> <key>'. An Allow's
    `DateLessThan aws:CurrentTime` is evaluated, not described (see `in_time`)."""
    described = []
    for op, block in (condition or {}).items():
        for key, values in (block or {}).items():
            if effect == "Allow" and _is_until(op, key):
                continue
            flags = {str(v).lower() for v in _as_list(values)}
            mfa_gate = key.lower() == "aws:multifactorauthpresent" and (
                (effect == "Allow" and op == "Bool" and flags == {"true"})
                or (effect == "Deny" and op == "BoolIfExists" and flags == {"false"})
            )
            mfa_age = effect == "Allow" and key.lower() == "aws:multifactorauthage" and op == "NumericLessThan"
            if mfa_gate:
                described.append(MFA_ONLY)
            elif mfa_age:
                described.append(f"MFA used less than {', '.join(sorted(flags))} s ago")
            elif effect == "Deny":
                described.append(f"denied when Condition {op} {key}")
            else:
                described.append(f"Condition {op} {key}")
    return tuple(described)


def _merge(*groups: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c for group in groups for c in group))


def _weakest(allows: list[dict], now: datetime | None = None) -> tuple[str, ...] | None:
    """What a set of matching Allow statements requires at `now`: nothing if one is unconditional, else the
    conditions of all of them (any one suffices); None when nothing allows (an expired one does not)."""
    allows = [s for s in allows if in_time(s, now or datetime.now(timezone.utc))]
    if not allows:
        return None
    described = [describe_conditions("Allow", s.get("Condition")) for s in allows]
    return () if any(not d for d in described) else _merge(*described)


# --- one document on its own ---------------------------------------------------------------------
def statement_covers(statement: dict, action: str, resource: str, variables: dict[str, str] | None = None) -> bool:
    """Whether a statement's Action/NotAction and Resource/NotResource cover `action` on `resource`, whatever
    its Effect and Condition: which roles a statement is about, allowing or denying."""
    return _action_matches(statement, action) and _resource_matches(statement, resource, variables)


def document_access(
    document, action: str, resource: str, *, user: dict | None = None, account_id: str = "",
    now: datetime | None = None,
) -> tuple[str, tuple[str, ...]]:
    """One policy document on its own: does it allow `action` on `resource`? ("yes" | "conditional" | "no",
    the conditions in words). Within it an unconditional Deny wins and a conditional one makes the answer
    conditional; nothing outside it (other policies, boundaries, trust) is considered. `user`, a sweep
    user entry, resolves policy variables such as ${aws:username}; without it they match nothing."""
    doc = decode_document(document)
    variables = _variables(doc, user, account_id) if user else None
    matching = [s for s in statements(doc) if statement_covers(s, action, resource, variables)]
    denies = [s for s in matching if s.get("Effect") == "Deny"]
    if any(not s.get("Condition") for s in denies):
        return "no", ()
    allowed = _weakest([s for s in matching if s.get("Effect") == "Allow"], now)
    if allowed is None:
        return "no", ()
    conditions = _merge(allowed, *(describe_conditions("Deny", s["Condition"]) for s in denies))
    return ("conditional" if conditions else "yes"), conditions


# --- the account ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Source:
    """One identity policy of a user, where it comes from and its statements."""

    path: str
    policy_arn: str | None
    statements: tuple[dict, ...]
    variables: dict[str, str] | None

    @classmethod
    def of(cls, path: str, policy_arn: str | None, document, user: dict, account_id: str) -> _Source:
        doc = decode_document(document)
        return cls(path, policy_arn, tuple(statements(doc)), _variables(doc, user, account_id))


def _sources(user: dict, groups: Mapping[str, dict], documents: Mapping[str, dict], account_id: str):
    def attached(entity: dict, prefix: str):
        for ref in entity.get("AttachedManagedPolicies", []):
            arn = ref["PolicyArn"]
            if documents.get(arn) is None:
                logger.warning("policy %s attached to %s is not in the sweep: not evaluated", arn, user["UserName"])
                continue
            yield prefix + f"attached policy {name_from_arn(arn)}", arn, documents[arn]

    def inline(entity: dict, key: str, prefix: str):
        for p in entity.get(key, []):
            yield prefix + f"inline policy {p['PolicyName']}", None, p["PolicyDocument"]

    found = [*attached(user, ""), *inline(user, "UserPolicyList", "")]
    for group_name in user.get("GroupList", []):
        group = groups.get(group_name, {})
        found += [*attached(group, f"group {group_name}: "), *inline(group, "GroupPolicyList", f"group {group_name}: ")]
    return [_Source.of(path, arn, doc, user, account_id) for path, arn, doc in found]


def _identity_matches(source: _Source, effect: str, arn: str) -> list[dict]:
    return [
        s
        for s in source.statements
        if s.get("Effect") == effect and _action_matches(s) and _resource_matches(s, arn, source.variables)
    ]


def _until(allows: list[dict], now: datetime) -> str | None:
    """When a path's access ends: None when a statement that applies now has no end, else the latest end."""
    ends = [statement_until(s) for s in allows if in_time(s, now)]
    return None if not ends or None in ends else max(ends)


def _user_grants(
    user: dict, key: str, role: dict, sources, boundary, account_id: str, now: datetime
) -> list[Grant]:
    """Every path by which `user` can assume `role`, or none when an unconditional Deny stands."""
    name, user_arn, arn = user["UserName"], user["Arn"], role["Arn"]
    trust = [
        (s, kind)
        for s in statements(role.get("AssumeRolePolicyDocument", {}))
        if _action_matches(s) and (kind := _principal_kind(s, user_arn, account_id))
    ]
    denies = [s for src in [*sources, *boundary] for s in _identity_matches(src, "Deny", arn)]
    denies += [s for s, _ in trust if s.get("Effect") == "Deny"]
    if any(not s.get("Condition") for s in denies):
        return []
    deny_conditions = _merge(*(describe_conditions("Deny", s["Condition"]) for s in denies))
    trust_allows = [(s, kind) for s, kind in trust if s.get("Effect") == "Allow"]

    def grant(path: str, policy_arn: str | None, *conditions: tuple[str, ...], until: str | None = None) -> Grant:
        merged = _merge(*conditions, deny_conditions)
        verdict = "conditional" if merged else "yes"
        return Grant(name, key, role["RoleName"], verdict, path, policy_arn, merged, until)

    grants = []
    trusted = _weakest([s for s, _ in trust_allows], now)
    bounded = _weakest([s for src in boundary for s in _identity_matches(src, "Allow", arn)], now) if boundary else ()
    if trusted is not None and bounded is not None:
        for src in sources:
            allows = _identity_matches(src, "Allow", arn)
            allowed = _weakest(allows, now)
            if allowed is not None:
                grants.append(grant(src.path, src.policy_arn, allowed, bounded, trusted, until=_until(allows, now)))
    for kind, path in (("user", TRUST_NAMES_USER), ("any", TRUST_ANY)):
        direct = _weakest([s for s, k in trust_allows if k == kind], now)
        if direct is not None:
            grants.append(grant(path, None, direct))
    return grants


def _lookups(details: Mapping) -> tuple[dict, dict, dict]:
    """A sweep's policy documents by ARN, groups by name and roles by name."""
    documents = {p["Arn"]: default_document(p) for p in details.get("Policies", [])}
    return (documents, {g["GroupName"]: g for g in details.get("GroupDetailList", [])},
            {r["RoleName"]: r for r in details.get("RoleDetailList", [])})  # fmt: skip


def _expired_grants(user: dict, key: str, role: dict, sources, now: datetime) -> list[Grant]:
    """The paths whose every Allow for `role` is a temporary grant past its until: AWS denies them now, and
    01 shows them as such rather than dropping them."""
    found = []
    for src in sources:
        allows = _identity_matches(src, "Allow", role["Arn"])
        ends = [statement_until(s) for s in allows]
        if allows and None not in ends and not any(in_time(s, now) for s in allows):
            found.append(Grant(user["UserName"], key, role["RoleName"], "no", src.path, src.policy_arn, (), max(ends)))
    return found


def expired_paths(
    details: Mapping, roles: Mapping[str, str], account_id: str, now: datetime | None = None
) -> list[Grant]:
    """Every expired temporary path ("no (expired ...)" in `Grant.shown`): not access, so kept apart from
    `effective_access`, whose every Grant is a way in."""
    now = now or datetime.now(timezone.utc)
    documents, groups, present = _lookups(details)
    found = []
    for user in sorted(details.get("UserDetailList", []), key=lambda u: u["UserName"]):
        sources = _sources(user, groups, documents, account_id)
        found += [g for key, name in roles.items() if name in present
                  for g in _expired_grants(user, key, present[name], sources, now)]  # fmt: skip
    return found


def effective_access(
    details: Mapping,
    roles: Mapping[str, str],
    account_id: str,
    users: Iterable[str] | None = None,
    now: datetime | None = None,
) -> list[Grant]:
    """Every (user, configured role) path of access in a get_account_authorization_details sweep.

    `users` (names, any case) limits the answer to those users: the simulator re-evaluates only the
    users a step can affect. None evaluates everyone. `now`: the time of the run (default: the clock)."""
    now = now or datetime.now(timezone.utc)
    documents, groups, present = _lookups(details)
    for key, name in roles.items():
        if name not in present:
            logger.info("role %s (%s) is not in the account: nobody can assume it", name, key)
    entries = details.get("UserDetailList", [])
    if users is not None:
        wanted = {name.lower() for name in users}
        entries = [u for u in entries if u["UserName"].lower() in wanted]
    grants: list[Grant] = []
    for user in sorted(entries, key=lambda u: u["UserName"]):
        sources = _sources(user, groups, documents, account_id)
        boundary_arn = (user.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn")
        boundary = []
        if boundary_arn and documents.get(boundary_arn) is None:
            logger.warning("boundary %s of %s is not in the sweep: not applied", boundary_arn, user["UserName"])
        elif boundary_arn:
            boundary = [_Source.of("permissions boundary", boundary_arn, documents[boundary_arn], user, account_id)]
        for key, name in roles.items():
            if name in present:
                grants += _user_grants(user, key, present[name], sources, boundary, account_id, now)
    return grants


# --- reports --------------------------------------------------------------------------------------
def user_names(details: Mapping) -> list[str]:
    return sorted(u["UserName"] for u in details.get("UserDetailList", []))


def is_runbook_path(grant: Grant, groups: Mapping[str, str] | None = None) -> bool:
    """The path the runbook creates: its customer-managed Assume<RoleName>Policy, attached to the user, or
    (`groups`: role key -> group, under grant_via: group) to the role's own group."""
    own = f"attached policy {policy_name(grant.role_name)}"
    group = (groups or {}).get(grant.role_key)
    paths = {own, f"group {group}: {own}"} if group else {own}
    stamp = r"Until\d{8}T\d{4}Z"  # a temporary grant's own policy, and under grant_via: group its pair's group
    temporary = rf"group {re.escape(group)}{stamp}: " if group else ""
    if re.fullmatch(rf"{temporary}{re.escape(own)}{stamp}", grant.path):
        paths.add(grant.path)
    return grant.path in paths and grant.policy_arn is not None and not is_aws_managed(grant.policy_arn)


def unexpected_access(
    grants: Iterable[Grant], granted: set[tuple[str, str]], groups: Mapping[str, str] | None = None
) -> list[Grant]:
    """Paths the spec does not grant: an ungranted pair, or a granted one reached another way.
    IAM user names are case-insensitive, so the comparison is too."""
    allowed = {(user.lower(), key) for user, key in granted}
    return [g for g in grants if (g.user.lower(), g.role_key) not in allowed or not is_runbook_path(g, groups)]
