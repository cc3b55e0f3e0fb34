"""The runbook's parameters: one set for every notebook, each with its default and allowed types.

Papermill only warns about parameters a notebook does not declare; scheduled jobs deserve an error, so
names and types are checked here, by the runner before any kernel starts and again by each notebook.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from iamrunbook.base.errors import SpecError
from iamrunbook.base.names import DEFAULT_ROLES
from iamrunbook.core.spec import load_yaml

_NONE = type(None)

#: name -> (default, allowed types, what it is)
PARAMETERS: dict[str, tuple[Any, tuple[type, ...], str]] = {
    "aws_profile": (None, (str, _NONE), "AWS profile; None uses the default credential chain"),
    "aws_region": ("us-east-1", (str,), "region for the STS and IAM clients"),
    "expected_account_id": (None, (str, _NONE), "refuse to run against any other account"),
    "roles": (dict(DEFAULT_ROLES), (dict,), "role key -> IAM role name"),
    "iam_users": (None, (dict, _NONE), "the spec: username -> {description, roles}"),
    "iam_users_file": (None, (str, _NONE), "a .yaml or .tfvars file holding iam_users"),
    "legacy_policy_name": ("AssumeRolesPolicy", (str,), "the bundled policy to migrate away from"),
    "legacy_detach_unmanaged": (False, (bool,), "also detach the legacy policy from entities not in the spec"),
    "apply": (False, (bool,), "false: plan only; true: make the changes"),
    "max_deletions": (3, (int,), "refuse a run that deletes more users than this"),
    "offboard_user": (None, (str, _NONE), "the user 05_offboard_user removes"),
    "revoke_role_sessions": (False, (bool,), "offboarding also revokes sessions of roles the user can assume"),
    "grant_via": ("user", (str,), "user: attach each Assume*Policy to users; group: one IAM group per role"),
    "role_groups": ({}, (dict,), "role key -> IAM group name under grant_via: group (default <RoleName>Users)"),
    "require_mfa": (False, (bool, list), "true, false or a list of role keys whose assumption needs MFA"),
    "mfa_max_age_seconds": (None, (int, _NONE), "with require_mfa: the MFA sign-in may be at most this old"),
    "allow_without_mfa_device": (False, (bool,), "apply even if a user granted an MFA-required role has no MFA"),
    "apply_parallelism": (8, (int,), "how many changes of one phase apply at once"),
    "reviewed_plan": (None, (str, _NONE), "a plan-only run folder (or its plan.json) to apply exactly"),
    "review_days": (90, (int,), "06_access_review: the period of use looked at (CloudTrail keeps 90 days)"),
    "reviewer": (None, (str, _NONE), "06_access_review: who reviewed; required for a signed review"),
    "review_decisions_file": (None, (str, _NONE), "06_access_review: YAML of user -> keep / remove role / offboard"),
    "security_hub_import": (False, (bool,), "01/06: also send the CIS findings to Security Hub (BatchImportFindings)"),
    "identity_center": (None, (dict, _NONE), "grant_via: identity_center: instance_arn, identity_store_id, "
                        "home_region, session_duration (None: found with ListInstances)"),
    "identity_center_accounts": (None, (list, _NONE), "grant_via: identity_center: target account ids "
                                 "(None: the caller's account)"),
    "retire_iam_users": ({}, (dict,), "07_migrate_to_identity_center: user -> reason, retired without a sign-in"),
    "retire_grace_days": (7, (int,), "07_migrate_to_identity_center: days between disabling and deleting an IAM user"),
    "max_temporary_days": (30, (int,), "a temporary grant's until may be at most this many days from now"),
}


def _type_names(types: tuple[type, ...]) -> str:
    return " or ".join(
        "null" if t is _NONE else {"str": "string", "dict": "mapping"}.get(t.__name__, t.__name__) for t in types
    )


def check_params(params: Mapping[str, Any]) -> list[str]:
    """Every unknown name and wrong type, one line each."""
    problems = []
    for name, value in params.items():
        if name not in PARAMETERS:
            problems.append(f"unknown parameter {name!r}; allowed: {', '.join(PARAMETERS)}")
            continue
        types = PARAMETERS[name][1]
        # bool is an int in Python; max_deletions: true is a mistake, not 1.
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            problems.append(f"parameter {name}: expected {_type_names(types)}, got {type(value).__name__} {value!r}")
    if isinstance(params.get("max_deletions"), int) and params["max_deletions"] < 0:
        problems.append("parameter max_deletions: must be 0 or more")
    lows = (("apply_parallelism", 1), ("review_days", 1), ("max_temporary_days", 1), ("retire_grace_days", 0))
    for name, low in lows:
        value = params.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value < low:
            problems.append(f"parameter {name}: must be {low} or more")
    if params.get("iam_users") is not None and params.get("iam_users_file"):
        problems.append("give either iam_users or iam_users_file, not both: one source of truth for the spec")
    return problems


def validate_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults filled in for what is not given; raises SpecError listing every problem."""
    problems = check_params(params)
    if problems:
        raise SpecError(problems)
    # Deep copies: a run that edits its `roles` must not change the default for the next run.
    merged = {name: copy.deepcopy(default) for name, (default, _, _) in PARAMETERS.items()}
    merged.update(params)
    return merged


def load_params_file(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"parameters file {path} does not exist")
    data = load_yaml(p.read_text(encoding="utf-8"), str(p))
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise SpecError(f"{path}: a parameters file is a YAML mapping of parameter names to values")
    return dict(data)


def from_namespace(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters as a notebook holds them (its globals after papermill injected its cell)."""
    return {name: namespace[name] for name in PARAMETERS if name in namespace}
