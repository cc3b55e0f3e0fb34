"""AWS rules moto skips: one small check per IAM action, looked up in a table.

Each check reads moto's backend (the state behind the server) and returns `(code, message, status)` when
real AWS would refuse the call, or None to let moto answer it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

from iamrunbook.sandbox.identity_center import reserved_role_refusal

Refusal = tuple[str, str, int]

_IN_USE = "DeleteConflict"


def _conflict(what: str) -> Refusal:
    return _IN_USE, f"Cannot delete entity, must {what} first.", 409


def _first_conflict(checks: Iterable[tuple[bool, str]]) -> Refusal | None:
    """The first thing still attached, in the order AWS reports them."""
    return next((_conflict(what) for present, what in checks if present), None)


def _delete_policy(backend, params: dict) -> Refusal | None:
    policy = backend.managed_policies.get(params.get("PolicyArn", ""))
    if policy is None:
        return None
    holders = itertools.chain(backend.users.values(), backend.groups.values(), backend.roles.values())
    if any(policy.arn in holder.managed_policies for holder in holders):
        return _IN_USE, "Cannot delete a policy attached to entities.", 409
    if len(policy.versions) > 1:
        return (
            _IN_USE,
            "This policy has more than one version. Before you delete a policy, you must delete the "
            "policy's versions. The default version is deleted with the policy.",
            409,
        )
    return None


def _delete_user(backend, params: dict) -> Refusal | None:
    """DeleteUser while anything is left on the user: what Terraform's force_destroy removes first."""
    user = backend.users.get(params.get("UserName", ""))
    if user is None:
        return None
    return _first_conflict(
        [
            (any(user in group.users for group in backend.groups.values()), "remove users from group"),
            (bool(user.policies), "delete policies"),
            (bool(user.managed_policies), "detach all policies"),
            (bool(user.access_keys), "delete access keys"),
            (bool(user.ssh_public_keys), "delete SSH public keys"),
            (bool(user.mfa_devices), "delete MFA device"),
            (user.password is not None, "delete login profile"),
            (bool(user.signing_certificates), "delete signing certificates"),
            (bool(getattr(user, "service_specific_credentials", None)), "delete service specific credentials"),
        ]
    )


def _delete_group(backend, params: dict) -> Refusal | None:
    group = backend.groups.get(params.get("GroupName", ""))
    if group is None:
        return None
    return _first_conflict(
        [
            (bool(group.users), "remove users from group"),
            (bool(group.managed_policies), "detach all policies"),
            (bool(group.policies), "delete policies"),
        ]
    )


def _delete_virtual_mfa_device(backend, params: dict) -> Refusal | None:
    device = backend.virtual_mfa_devices.get(params.get("SerialNumber", ""))
    if device is not None and device.user is not None:
        return _IN_USE, "MFA device is in use; deactivate it before deleting it.", 409
    return None


def _unique_name(kind: str, existing: Callable[[Any], Iterable[str]]) -> Callable[[Any, dict], Refusal | None]:
    """IAM names are unique regardless of case: 'Bob' and 'bob' cannot both exist."""

    def check(backend, params: dict) -> Refusal | None:
        name = params.get(f"{kind}Name", "")
        lowered = name.lower()
        if name and any(other.lower() == lowered for other in existing(backend)):
            return "EntityAlreadyExists", f"{kind} with name {name} already exists.", 409
        return None

    return check


#: IAM action -> its check.
RULES: dict[str, Callable[[Any, dict], Refusal | None]] = {
    "DeletePolicy": _delete_policy,
    "DeleteUser": _delete_user,
    "DeleteGroup": _delete_group,
    "DeleteVirtualMFADevice": _delete_virtual_mfa_device,
    "CreateUser": _unique_name("User", lambda backend: backend.users.keys()),
    "CreateGroup": _unique_name("Group", lambda backend: backend.groups.keys()),
    "CreateRole": _unique_name("Role", lambda backend: (role.name for role in backend.roles.values())),
}


def refusal(backend, action: str | None, params: Any) -> Refusal | None:
    """(code, message, status) when real AWS would refuse this call and moto would not."""
    reserved = reserved_role_refusal(backend, action, params)
    if reserved is not None:
        return reserved
    check = RULES.get(action or "")
    if check is None or not isinstance(params, dict):
        return None
    return check(backend, params)


def validation_refusal(problems: list[str]) -> tuple[str, str, int]:
    """Every parameter AWS's model refuses, in one ValidationError, as AWS words it."""
    count = len(problems)
    message = f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(problems)
    return "ValidationError", message, 400
