"""Deleting an IAM user, in the order AWS needs: everything attached first, the user last.

AWS refuses DeleteUser with DeleteConflict while any group membership, policy or credential is left, so
`delete_user` follows Terraform's `force_destroy` order (`ORDERED_STEPS`). Each step is small and safe to
re-run: NoSuchEntity means "already gone", so a run that stopped half way is finished by running it again.
Key ids are masked in every step's target; nothing secret is ever read back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, OperationNotPageableError
from botocore.parsers import ResponseParserError

from iamrunbook.aws import clients as aws
from iamrunbook.base.errors import AwsActionError
from iamrunbook.base.log import logger

READ_ACTIONS = (
    "iam:GetUser",
    "iam:ListAccessKeys",
    "iam:ListMFADevices",
    "iam:ListSSHPublicKeys",
    "iam:ListSigningCertificates",
    "iam:ListServiceSpecificCredentials",
    "iam:ListGroupsForUser",
    "iam:ListUserPolicies",
    "iam:ListAttachedUserPolicies",
)
WRITE_ACTIONS = (
    "iam:RemoveUserFromGroup",
    "iam:DeleteUserPolicy",
    "iam:DetachUserPolicy",
    "iam:DeleteAccessKey",
    "iam:DeleteSSHPublicKey",
    "iam:DeactivateMFADevice",
    "iam:DeleteVirtualMFADevice",
    "iam:DeleteLoginProfile",
    "iam:DeleteSigningCertificate",
    "iam:DeleteServiceSpecificCredential",
    "iam:DeleteUser",
)

DONE = "done"


GONE = "already gone"


NOTHING = "skipped: nothing to remove"


UNSUPPORTED = "unsupported by this endpoint"


#: What a call can raise when the endpoint cannot serve it (moto in-process raises NotImplementedError;
#: botocore's ResponseParserError is not a BotoCoreError).
ENDPOINT_ERRORS = (ClientError, BotoCoreError, ResponseParserError, NotImplementedError)


#: Error codes an endpoint answers with for an action it does not know.
_UNKNOWN_ACTION_CODES = frozenset(
    {"InvalidAction", "UnknownOperation", "UnknownOperationException", "NotImplemented", "UnsupportedOperation"}
)


@dataclass(frozen=True)
class Step:
    """One thing the offboarding did. `target` never holds a secret (key ids are masked)."""

    action: str
    target: str
    outcome: str


class OffboardStopped(AwsActionError):
    """delete_user stopped at a failing step; `steps` holds what was done before it. Re-run to finish."""

    def __init__(self, step: str, cause: Exception, steps: list[Step]):
        super().__init__(step, cause)
        self.steps = list(steps)


def user_target(user_name: str) -> str:
    return f"user {user_name}"


def is_virtual_mfa(serial: str) -> bool:
    """Virtual MFA serials are ARNs `arn:aws:iam::<acct>:mfa/<name>`; hardware/FIDO serials are not."""
    return serial.startswith("arn:") and ":mfa/" in serial


def unsupported_reason(exc: BaseException) -> str | None:
    """Why an endpoint cannot do an action at all (not a permission or a fault), or None.

    moto in-process raises NotImplementedError; moto's server answers an HTML error page (unparseable,
    or HTTP 500 with no AWS error code); an AWS-like endpoint answers InvalidAction or HTTP 501.
    AccessDenied, throttling and InternalFailure are real errors and return None.
    """
    if isinstance(exc, NotImplementedError):
        return "not implemented"
    if isinstance(exc, OperationNotPageableError):
        return "no paginator for this operation"
    if isinstance(exc, ResponseParserError):
        return "the endpoint answered with a non-AWS error page"
    if isinstance(exc, ClientError):
        code = aws.error_code(exc)
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in _UNKNOWN_ACTION_CODES or status == 501:
            return code or "HTTP 501"
        if status == 500 and code.isdigit():
            return f"HTTP {status} without an AWS error code"
    return None


def call_step(action: str, target: str, call: Callable[[], Any]) -> Step:
    """Run one mutating call: NoSuchEntity is "already gone"; anything else stops, naming the step."""
    try:
        call()
    except ClientError as exc:
        if aws.is_not_found(exc):
            return Step(action, target, GONE)
        raise AwsActionError(f"{action} {target}", exc) from exc
    except (BotoCoreError, ResponseParserError) as exc:
        raise AwsActionError(f"{action} {target}", exc) from exc
    return Step(action, target, DONE)


def list_or_gone(iam, operation: str, key: str, user_name: str) -> list[dict] | None:
    """A user's paginated list, or None when the user no longer exists."""
    try:
        return aws.paginate(iam, operation, key, UserName=user_name)
    except ClientError as exc:
        if aws.is_not_found(exc):
            return None
        raise AwsActionError(f"{operation} {user_target(user_name)}", exc) from exc
    except (BotoCoreError, ResponseParserError) as exc:
        raise AwsActionError(f"{operation} {user_target(user_name)}", exc) from exc


def _each(
    action: str,
    user_name: str,
    items: list[dict] | None,
    target: Callable[[dict], str],
    call: Callable[[dict], Any],
) -> list[Step]:
    """Apply `call` to every listed item, one Step each; a vanished user or an empty list is one Step."""
    if items is None:
        return [Step(action, user_target(user_name), GONE)]
    if not items:
        return [Step(action, user_target(user_name), NOTHING)]
    return [call_step(action, target(item), lambda item=item: call(item)) for item in items]


def list_service_specific_credentials(iam, user_name: str) -> list[dict]:
    """ListServiceSpecificCredentials has Marker/IsTruncated but no botocore paginator: page by hand."""
    items: list[dict] = []
    kwargs: dict[str, Any] = {"UserName": user_name}
    while True:
        page = iam.list_service_specific_credentials(**kwargs)
        items.extend(page.get("ServiceSpecificCredentials", []))
        if not page.get("IsTruncated") or not page.get("Marker"):
            return items
        kwargs["Marker"] = page["Marker"]


def get_user(iam, user_name: str) -> dict | None:
    try:
        return iam.get_user(UserName=user_name)["User"]
    except ClientError as exc:
        if aws.is_not_found(exc):
            return None
        raise AwsActionError(f"GetUser {user_target(user_name)}", exc) from exc


#: What a user holds, item by item: name -> (list operation, result key, the id field of an item).
HOLDINGS: dict[str, tuple[str, str, str]] = {
    "groups": ("list_groups_for_user", "Groups", "GroupName"),
    "inline_policies": ("list_user_policies", "PolicyNames", "PolicyName"),
    "attached_policies": ("list_attached_user_policies", "AttachedPolicies", "PolicyArn"),
    "access_keys": ("list_access_keys", "AccessKeyMetadata", "AccessKeyId"),
    "ssh_public_keys": ("list_ssh_public_keys", "SSHPublicKeys", "SSHPublicKeyId"),
    "mfa_devices": ("list_mfa_devices", "MFADevices", "SerialNumber"),
    "signing_certificates": ("list_signing_certificates", "Certificates", "CertificateId"),
}


def holdings(iam, user_name: str, name: str) -> list[dict] | None:
    """One kind of what the user holds (HOLDINGS), every page; None when the user no longer exists."""
    operation, key, field = HOLDINGS[name]
    items = list_or_gone(iam, operation, key, user_name)
    if items is not None and key == "PolicyNames":  # the only list of bare names
        items = [{field: n} for n in items]
    return items


#: Removed item by item, in this order: the step's action, what it removes, the IAM call (which takes
#: UserName and the item's id field), how the item is named in the record ("{}" is its id).
_REMOVALS = (
    ("RemoveUserFromGroup", "groups", "remove_user_from_group", "group {}"),
    ("DeleteUserPolicy", "inline_policies", "delete_user_policy", "policy {}"),
    ("DetachUserPolicy", "attached_policies", "detach_user_policy", "{}"),
    ("DeleteAccessKey", "access_keys", "delete_access_key", "key"),
    ("DeleteSSHPublicKey", "ssh_public_keys", "delete_ssh_public_key", "{}"),
    ("DeleteSigningCertificate", "signing_certificates", "delete_signing_certificate", "{}"),
)


def _removal(action: str, name: str, method: str, shown: str) -> Callable[[Any, str], list[Step]]:
    field = HOLDINGS[name][2]

    def target(item: dict) -> str:
        value = item[field]
        return aws.mask_key_id(value) if shown == "key" else shown.format(value)  # key ids are always masked

    def remove(iam, user_name: str) -> list[Step]:
        call = getattr(iam, method)  # e.g. iam.delete_access_key(UserName=..., AccessKeyId=...)
        items = holdings(iam, user_name, name)
        return _each(action, user_name, items, target, lambda item: call(UserName=user_name, **{field: item[field]}))

    remove.__name__ = f"remove_{name}"
    return remove


(
    remove_from_groups,
    delete_inline_policies,
    detach_managed_policies,
    delete_access_keys,
    delete_ssh_public_keys,
    delete_signing_certificates,
) = (_removal(*row) for row in _REMOVALS)


def delete_virtual_mfa_devices(iam, user_name: str) -> list[Step]:
    """Deactivate, then delete each virtual device (found by its `:mfa/` serial ARN, not by a listing
    of all virtual devices, which on some endpoints carries the seed)."""
    devices = holdings(iam, user_name, "mfa_devices")
    if devices is None:
        return [Step("DeleteVirtualMFADevice", user_target(user_name), GONE)]
    virtual = [d["SerialNumber"] for d in devices if is_virtual_mfa(d["SerialNumber"])]
    if not virtual:
        return [Step("DeleteVirtualMFADevice", user_target(user_name), NOTHING)]
    steps = []
    for serial in virtual:
        steps.append(
            call_step(
                "DeactivateMFADevice",
                serial,
                lambda serial=serial: iam.deactivate_mfa_device(UserName=user_name, SerialNumber=serial),
            )
        )
        steps.append(
            call_step(
                "DeleteVirtualMFADevice",
                serial,
                lambda serial=serial: iam.delete_virtual_mfa_device(SerialNumber=serial),
            )
        )
    return steps


def deactivate_other_mfa_devices(iam, user_name: str) -> list[Step]:
    """Hardware and FIDO devices cannot be deleted through IAM, only taken off the user."""
    devices = holdings(iam, user_name, "mfa_devices")
    others = None if devices is None else [d for d in devices if not is_virtual_mfa(d["SerialNumber"])]
    return _each(
        "DeactivateMFADevice",
        user_name,
        others,
        lambda d: d["SerialNumber"],
        lambda d: iam.deactivate_mfa_device(UserName=user_name, SerialNumber=d["SerialNumber"]),
    )


def delete_login_profile(iam, user_name: str) -> list[Step]:
    call = lambda: iam.delete_login_profile(UserName=user_name)  # noqa: E731
    return [call_step("DeleteLoginProfile", user_target(user_name), call)]


def delete_service_specific_credentials(iam, user_name: str) -> list[Step]:
    """Skipped where the endpoint lacks the API (moto 5.2.5); AccessDenied and faults still stop the run."""
    action = "DeleteServiceSpecificCredential"
    try:
        creds: list[dict] | None = list_service_specific_credentials(iam, user_name)
    except ClientError as exc:
        if aws.is_not_found(exc):
            creds = None
        elif (reason := unsupported_reason(exc)) is not None:
            return [Step(action, user_target(user_name), f"skipped: {UNSUPPORTED} ({reason})")]
        else:
            raise AwsActionError(f"ListServiceSpecificCredentials {user_target(user_name)}", exc) from exc
    except (BotoCoreError, ResponseParserError, NotImplementedError) as exc:
        if (reason := unsupported_reason(exc)) is None:
            raise AwsActionError(f"ListServiceSpecificCredentials {user_target(user_name)}", exc) from exc
        return [Step(action, user_target(user_name), f"skipped: {UNSUPPORTED} ({reason})")]
    return _each(
        action,
        user_name,
        creds,
        lambda c: f"{c.get('ServiceName')} {c['ServiceSpecificCredentialId']}",
        lambda c: iam.delete_service_specific_credential(
            UserName=user_name, ServiceSpecificCredentialId=c["ServiceSpecificCredentialId"]
        ),
    )


def delete_user_entity(iam, user_name: str) -> list[Step]:
    return [call_step("DeleteUser", user_target(user_name), lambda: iam.delete_user(UserName=user_name))]


#: The order AWS needs (Terraform's force_destroy): everything attached first, the user last.
ORDERED_STEPS: tuple[tuple[str, Callable[[Any, str], list[Step]]], ...] = (
    ("groups", remove_from_groups),
    ("inline_policies", delete_inline_policies),
    ("attached_policies", detach_managed_policies),
    ("access_keys", delete_access_keys),
    ("ssh_public_keys", delete_ssh_public_keys),
    ("virtual_mfa_devices", delete_virtual_mfa_devices),
    ("other_mfa_devices", deactivate_other_mfa_devices),
    ("login_profile", delete_login_profile),
    ("signing_certificates", delete_signing_certificates),
    ("service_specific_credentials", delete_service_specific_credentials),
    ("user", delete_user_entity),
)


def delete_user(iam, user_name: str) -> list[Step]:
    """Remove everything the user holds, then the user, in ORDERED_STEPS order. Safe to re-run.

    Call `check_offboard` first. A user that does not exist gives one "already gone" step. A failing
    step raises OffboardStopped (an AwsActionError) holding the steps done so far; running again
    finishes the job.
    """
    if get_user(iam, user_name) is None:
        return [Step("DeleteUser", user_target(user_name), GONE)]
    steps: list[Step] = []
    for name, step in ORDERED_STEPS:
        try:
            done = step(iam, user_name)
        except AwsActionError as exc:
            logger.error("delete_user %s stopped at %s: %s", user_name, name, exc)
            raise OffboardStopped(exc.step, exc.cause, steps) from exc.cause
        for s in done:
            logger.info("delete_user %s %s: %s", s.action, s.target, s.outcome)
        steps.extend(done)
    return steps
