"""The spec: who gets which roles. Loaded from parameters, a YAML file or a Terraform tfvars file.

Validation collects every problem before reporting, one line each, naming the user, the bad value and
what is allowed, so an operator fixes a spec in one pass. An invalid spec never reaches AWS.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import hcl2
import yaml
from hcl2.utils import SerializationOptions
from lark import Tree
from lark.exceptions import LarkError

from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import DEFAULT_ROLES, group_name, policy_name
from iamrunbook.core.identity_center import IdentityCenterSettings, identity_center_problems, identity_center_settings
from iamrunbook.core.temporary import DEFAULT_MAX_TEMPORARY_DAYS, TempGrant, temporary_grants, temporary_problems

# botocore's IAM model: userNameType / roleNameType are 1-64 of [\w+=,.@-] (ASCII word characters).
_IAM_NAME = re.compile(r"[\w+=,.@-]+", re.ASCII)
_ROLE_KEY = re.compile(r"[a-z][a-z0-9_]*")
_TAG_VALUE_EXTRA = set("_.:/=+-@")
MAX_DESCRIPTION = 256
USER_FIELDS = ("description", "roles", "temporary")


@dataclass(frozen=True)
class UserSpec:
    """One user of the spec: roles held for good, and temporary grants that AWS ends by itself."""

    name: str
    description: str
    roles: tuple[str, ...]
    temporary: tuple[TempGrant, ...] = ()  # in the spec's order

    def active(self, now: datetime) -> tuple[TempGrant, ...]:
        """The temporary grants still valid at `now` (the run's time)."""
        return tuple(t for t in self.temporary if not t.expired(now))


GRANT_VIA = ("user", "group", "identity_center")


@dataclass(frozen=True)
class GrantSettings:
    """How the spec's grants are made: attached to each user (the seed's model) or through one IAM group per
    role (CIS 1.15), and which roles may only be assumed with MFA."""

    grant_via: str = "user"
    #: role key -> group name, overriding `<RoleName>Users`
    role_groups: Mapping[str, str] = field(default_factory=dict)
    #: role keys whose Assume*Policy requires aws:MultiFactorAuthPresent
    require_mfa: frozenset[str] = frozenset()
    mfa_max_age_seconds: int | None = None
    #: under grant_via: identity_center, where its Identity Center part runs
    identity_center: IdentityCenterSettings | None = None

    @property
    def via_group(self) -> bool:
        return self.grant_via == "group"

    def group_name(self, role_key: str, role_name: str) -> str:
        return self.role_groups.get(role_key) or group_name(role_name)

    def mfa(self, role_key: str) -> bool:
        return role_key in self.require_mfa


@dataclass(frozen=True)
class Spec:
    """A validated spec. `roles` maps role key -> IAM role name; `users` maps username -> UserSpec."""

    roles: Mapping[str, str]
    users: Mapping[str, UserSpec]
    source: str | None = field(default=None, compare=False)
    settings: GrantSettings = field(default_factory=GrantSettings)
    #: the time of the run: temporary grants valid then are granted, the others have expired
    now: datetime = field(default_factory=lambda: datetime.now(timezone.utc), compare=False)

    def user_named(self, name: str) -> UserSpec | None:
        """The spec's entry for an IAM user name; IAM names are case-insensitive."""
        if name in self.users:
            return self.users[name]
        folded = name.lower()
        return next((u for n, u in self.users.items() if n.lower() == folded), None)

    def groups(self) -> dict[str, str]:
        """role key -> IAM group name, under `grant_via: group` (empty otherwise)."""
        if not self.settings.via_group:
            return {}
        return {key: self.settings.group_name(key, role) for key, role in self.roles.items()}

    def grants(self) -> set[tuple[str, str]]:
        """Every (username, role key) pair the spec grants now, for good or until a time not yet passed."""
        return {(u.name, key) for u in self.users.values() for key in (*u.roles, *(t.role for t in u.active(self.now)))}

    def policy_names(self) -> dict[str, str]:
        """role key -> Assume<RoleName>Policy."""
        return {key: policy_name(role) for key, role in self.roles.items()}

    def to_mapping(self) -> dict[str, dict[str, Any]]:
        """The `iam_users` mapping, as it would be written back to a file."""
        return {
            u.name: {"description": u.description, "roles": list(u.roles)}
            | ({"temporary": [t.as_dict() for t in u.temporary]} if u.temporary else {})
            for u in self.users.values()
        }


# --- reading files -------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """YAML keeps the last of duplicate keys silently; a spec must not. Every duplicate is recorded."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self.duplicates: list[str] = []


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: SafeLoader reports it below
            continue
        if first is not None:
            loader.duplicates.append(
                f"duplicate key {key!r} at line {key_node.start_mark.line + 1} "
                f"(first at line {first + 1}): each user and setting may appear once"
            )
        else:
            seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_yaml(text: str, source: str = "<yaml>") -> Any:
    """Parse YAML, refusing duplicate keys (all of them reported), with errors that name the file and line."""
    loader = _StrictLoader(text)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: malformed YAML: {exc}") from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise SpecError([f"{source}: {d}" for d in loader.duplicates])
    return data


def _hcl_key(node: Tree) -> str:
    tokens = [str(t) for t in node.scan_values(lambda v: not isinstance(v, Tree))]
    return "".join(t for t in tokens if t not in ('"', "=")).strip()


def _hcl_duplicates(tree: Tree) -> list[str]:
    """Duplicate keys inside any HCL object, and duplicate top-level attributes."""
    problems = []
    for node in tree.iter_subtrees():
        if node.data not in ("object", "body"):
            continue
        child_kind = "object_elem" if node.data == "object" else "attribute"
        seen: set[str] = set()
        for child in node.children:
            if isinstance(child, Tree) and child.data == child_kind:
                key = _hcl_key(child.children[0])
                if key in seen:
                    problems.append(f"duplicate key {key!r}: each user and setting may appear once")
                seen.add(key)
    return problems


def load_hcl(text: str, source: str = "<tfvars>") -> dict:
    """Parse a tfvars file with a real HCL parser; string quotes are stripped on purpose."""
    try:
        tree = hcl2.parses_to_tree(text)
        data = hcl2.loads(text, serialization_options=SerializationOptions(strip_string_quotes=True))
    except (LarkError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpecError(f"{source}: malformed HCL: {first}") from None
    dups = _hcl_duplicates(tree)
    if dups:
        raise SpecError([f"{source}: {d}" for d in dups])
    return data


def read_users_file(path: str | Path, base_dir: str | Path | None = None) -> tuple[Any, str]:
    """The `iam_users` value held by a .yaml/.yml or .tfvars/.hcl file, and the resolved path."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        p = Path(base_dir or Path.cwd()) / p
    if not p.is_file():
        raise SpecError(f"iam_users_file: {path} does not exist (resolved to {p})")
    text = p.read_text(encoding="utf-8")
    if p.suffix in (".tfvars", ".hcl", ".tf"):
        data = load_hcl(text, str(p))
    elif p.suffix in (".yaml", ".yml", ".json"):
        data = load_yaml(text, str(p))
    else:
        raise SpecError(f"iam_users_file: {path} has an unknown extension; allowed: .yaml, .yml, .tfvars")
    if not isinstance(data, Mapping) or "iam_users" not in data:
        raise SpecError(f"iam_users_file: {p} holds no top-level `iam_users`")
    return data["iam_users"], str(p)


# --- validation ----------------------------------------------------------------------------------


def tag_value_problem(value: str) -> str | None:
    """Why AWS would refuse `value` as a tag value, or None. Pattern [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*."""
    if len(value) > MAX_DESCRIPTION:
        return f"is {len(value)} characters long; at most {MAX_DESCRIPTION} allowed"
    bad = sorted({c for c in value if c not in _TAG_VALUE_EXTRA and unicodedata.category(c)[0] not in "LZN"})
    if bad:
        shown = " ".join(repr(c) for c in bad)
        return f"contains {shown}; allowed: letters, digits, spaces and _ . : / = + - @"
    return None


def iam_name_problem(name: Any, kind: str = "user name", max_length: int = 64) -> str | None:
    if not isinstance(name, str):
        return f"{kind} must be a string, got {type(name).__name__}"
    if not 1 <= len(name) <= max_length or not _IAM_NAME.fullmatch(name):
        return f"invalid {kind} {name!r}; allowed: 1-{max_length} characters of letters, digits and + = , . @ _ -"
    return None


def _shown(value: str, limit: int = 60) -> str:
    """A value quoted for a message, shortened so a 300-character description stays one readable line."""
    return repr(value) if len(value) <= limit else repr(value[: limit - 3] + "...")


def _suggest(value: str, allowed: list[str]) -> str:
    normal = value.strip().lower().replace("-", "_").replace(" ", "_")
    match = difflib.get_close_matches(normal, allowed, n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


def validate_roles(roles: Any) -> list[str]:
    if not isinstance(roles, Mapping) or not roles:
        return ["roles: must be a mapping of role key -> IAM role name, e.g. {admin: AdminRole}"]
    problems = []
    for key, name in roles.items():
        if not isinstance(key, str) or not _ROLE_KEY.fullmatch(key):
            problems.append(
                f"roles: invalid role key {key!r}; allowed: lower-case letters, digits and _, starting with a letter"
            )
        problem = iam_name_problem(name, "role name")
        if problem:
            problems.append(f"roles.{key}: {problem}")
        elif len(policy_name(name)) > 128:
            problems.append(f"roles.{key}: policy name {policy_name(name)!r} would exceed 128 characters")
    return problems


def validate_users(
    iam_users: Any,
    roles: Mapping[str, str],
    now: datetime | None = None,
    max_temporary_days: int = DEFAULT_MAX_TEMPORARY_DAYS,
) -> list[str]:
    if not isinstance(iam_users, Mapping):
        return [f"iam_users: must be a mapping of username -> {{description, roles}}, got {type(iam_users).__name__}"]
    valid = sorted(roles)
    valid_text = ", ".join(valid)
    problems = []
    seen_folded: dict[str, str] = {}
    for name, entry in iam_users.items():
        problem = iam_name_problem(name)
        if problem:
            problems.append(f"{name}: {problem}")
        elif "," in name:
            problems.append(f"{name}: user names with ',' cannot carry the Name tag (AWS refuses ',' in tags)")
        if isinstance(name, str):
            folded = name.lower()  # IAM user names are unique regardless of case
            if folded in seen_folded:
                problems.append(f"{name}: same IAM user as {seen_folded[folded]!r} (names are case-insensitive)")
            seen_folded.setdefault(folded, name)
        if not isinstance(entry, Mapping):
            problems.append(f"{name}: must be a mapping with keys description and roles")
            continue
        for extra in sorted(set(entry) - set(USER_FIELDS), key=str):
            problems.append(f"{name}: unknown field {extra!r}; allowed: {', '.join(USER_FIELDS)}")
        description = entry.get("description")
        if description is None:  # absent, or `description:` left empty in YAML: no description
            description = ""
        if not isinstance(description, str):
            problems.append(f"{name}: description must be a string, got {type(description).__name__}")
        else:
            problem = tag_value_problem(description)
            if problem:
                problems.append(f"{name}: description {_shown(description)} {problem}")
        user_roles = entry.get("roles", [])
        if not isinstance(user_roles, (list, tuple)):
            problems.append(
                f"{name}: roles must be a list of role keys, got {type(user_roles).__name__} "
                f"{user_roles!r}; valid roles: {valid_text}"
            )
            continue
        for key in user_roles:
            if not isinstance(key, str):
                problems.append(f"{name}: role {key!r} must be a string; valid roles: {valid_text}")
            elif key not in roles:
                problems.append(f"{name}: unknown role {key!r}{_suggest(key, valid)}; valid roles: {valid_text}")
        dups = sorted({k for k in user_roles if isinstance(k, str) and list(user_roles).count(k) > 1})
        if dups:
            problems.append(f"{name}: role(s) listed twice: {', '.join(dups)}")
        if entry.get("temporary") is not None:
            when = now or datetime.now(timezone.utc)
            problems += temporary_problems(name, entry["temporary"], roles, user_roles, when, max_temporary_days)
    return problems


def settings_problems(params: Mapping[str, Any], roles: Mapping[str, str]) -> list[str]:
    """Every problem with grant_via, role_groups, require_mfa, mfa_max_age_seconds and the Identity Center
    settings, one line each."""
    problems = []
    via = params.get("grant_via", "user")
    if via not in GRANT_VIA:
        problems.append(f"grant_via: {via!r} is not allowed; allowed: {', '.join(GRANT_VIA)}")
    groups = params.get("role_groups") or {}
    if not isinstance(groups, Mapping):
        problems.append("role_groups: must be a mapping of role key -> IAM group name")
        groups = {}
    for key, name in groups.items():
        if key not in roles:
            problems.append(f"role_groups: unknown role key {key!r}; valid roles: {', '.join(sorted(roles))}")
        problem = iam_name_problem(name, "group name", 128)
        if problem:
            problems.append(f"role_groups.{key}: {problem}")
    names = [str(n).lower() for n in groups.values()]
    if len(set(names)) != len(names):
        problems.append("role_groups: two roles share a group; each role needs its own group")
    mfa = params.get("require_mfa", False)
    if isinstance(mfa, list):
        for key in mfa:
            if key not in roles:
                problems.append(f"require_mfa: unknown role key {key!r}; valid roles: {', '.join(sorted(roles))}")
    elif not isinstance(mfa, bool):
        problems.append(f"require_mfa: expected true, false or a list of role keys, got {mfa!r}")
    age = params.get("mfa_max_age_seconds")
    if age is not None and (isinstance(age, bool) or not isinstance(age, int) or age < 1):
        problems.append(f"mfa_max_age_seconds: expected a whole number of seconds, 1 or more, got {age!r}")
    return problems + identity_center_problems(params, roles)


def grant_settings(params: Mapping[str, Any], roles: Mapping[str, str]) -> GrantSettings:
    """The GrantSettings the parameters ask for; raises SpecError listing every problem."""
    problems = settings_problems(params, roles)
    if problems:
        raise SpecError(problems)
    mfa = params.get("require_mfa", False)
    keys = frozenset(roles) if mfa is True else frozenset(mfa or ())
    return GrantSettings(
        grant_via=params.get("grant_via", "user"),
        role_groups=dict(params.get("role_groups") or {}),
        require_mfa=keys,
        mfa_max_age_seconds=params.get("mfa_max_age_seconds"),
        identity_center=identity_center_settings(params),
    )


def load_spec(
    iam_users: Mapping | None = None,
    iam_users_file: str | Path | None = None,
    roles: Mapping[str, str] | None = None,
    base_dir: str | Path | None = None,
    settings: GrantSettings | None = None,
    *,
    now: datetime | None = None,
    max_temporary_days: int = DEFAULT_MAX_TEMPORARY_DAYS,
) -> Spec:
    """Build a validated Spec from exactly one of `iam_users` or `iam_users_file`; `now` is the time of the
    run (temporary grants are judged against it)."""
    if iam_users is not None and iam_users_file:
        raise SpecError("give either iam_users or iam_users_file, not both: one source of truth for the spec")
    source = None
    if iam_users_file:
        iam_users, source = read_users_file(iam_users_file, base_dir)
    if iam_users is None:
        raise SpecError("no spec: set iam_users (a mapping) or iam_users_file (a .yaml or .tfvars path)")
    roles = dict(DEFAULT_ROLES if roles is None else roles)
    problems = validate_roles(roles)
    now = now or datetime.now(timezone.utc)
    problems += validate_users(iam_users, roles if not problems else {k: k for k in roles}, now, max_temporary_days)
    if problems:
        raise SpecError(problems)
    users = {
        name: UserSpec(name, entry.get("description", "") or "", tuple(entry.get("roles", [])),
                       temporary_grants(entry.get("temporary")))  # fmt: skip
        for name, entry in iam_users.items()
    }
    return Spec(roles=roles, users=users, source=source, settings=settings or GrantSettings(), now=now)
