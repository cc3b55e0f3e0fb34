"""Offboarding one IAM user: record what they hold, cut access fast, then remove everything and the user.

The flow a notebook runs: `check_offboard` (refuse the wrong user), `credential_inventory` (the record,
taken before anything changes), `revoke_access` (keys off, console password gone), optionally
`revoke_role_sessions`, `recent_events` (what they changed lately), then `delete_user`.

`delete_user` follows the order of Terraform's `force_destroy`, because AWS refuses DeleteUser with
DeleteConflict while any group membership, policy or credential is left. Each step is a small function
in `ORDERED_STEPS`, safe to re-run: `NoSuchEntity` means "already gone", so a run that stopped half way
is finished by running it again. No secret is ever read back into these records: access key ids are
masked, SSH key and certificate bodies are dropped, virtual MFA seeds are never listed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import boto3
import pandas as pd
from botocore.exceptions import BotoCoreError, ClientError, OperationNotPageableError
from botocore.parsers import ResponseParserError

from . import aws
from .errors import AwsActionError, SafetyError, SpecError
from .log import logger

READ_ACTIONS = (
    "iam:GetUser",
    "iam:ListUserTags",
    "iam:ListAccessKeys",
    "iam:GetAccessKeyLastUsed",
    "iam:GetLoginProfile",
    "iam:ListMFADevices",
    "iam:ListSSHPublicKeys",
    "iam:ListSigningCertificates",
    "iam:ListServiceSpecificCredentials",
    "iam:ListGroupsForUser",
    "iam:ListUserPolicies",
    "iam:ListAttachedUserPolicies",
    "cloudtrail:LookupEvents",
)
WRITE_ACTIONS = (
    "iam:UpdateAccessKey",
    "iam:DeleteLoginProfile",
    "iam:PutRolePolicy",
    "iam:RemoveUserFromGroup",
    "iam:DeleteUserPolicy",
    "iam:DetachUserPolicy",
    "iam:DeleteAccessKey",
    "iam:DeleteSSHPublicKey",
    "iam:DeactivateMFADevice",
    "iam:DeleteVirtualMFADevice",
    "iam:DeleteSigningCertificate",
    "iam:DeleteServiceSpecificCredential",
    "iam:DeleteUser",
)

#: The inline role policy name the IAM console uses for "Revoke active sessions".
REVOKE_SESSIONS_POLICY_NAME = "AWSRevokeOlderSessions"

DONE = "done"
GONE = "already gone"
NOTHING = "skipped: nothing to remove"
UNSUPPORTED = "unsupported by this endpoint"

#: What a call can raise when the endpoint cannot serve it (moto in-process raises NotImplementedError;
#: botocore's ResponseParserError is not a BotoCoreError).
_ENDPOINT_ERRORS = (ClientError, BotoCoreError, ResponseParserError, NotImplementedError)

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


# --- small helpers -----------------------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    """Dates as ISO-8601 UTC strings, so the inventory is plain JSON."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat()
    return None


def _user(user_name: str) -> str:
    return f"user {user_name}"


def _is_virtual_mfa(serial: str) -> bool:
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


def _short_reason(exc: BaseException) -> str:
    """A one-line reason for a status text: the error code and message, never an HTML page."""
    if isinstance(exc, ClientError):
        code = aws.error_code(exc)
        message = exc.response.get("Error", {}).get("Message", "")
        if message.lstrip().startswith("<"):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return f"HTTP {status} without an AWS error body"
        return f"{code}: {message}"[:200]
    first_line = (str(exc).splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first_line}"[:200]


def _call(action: str, target: str, call: Callable[[], Any]) -> Step:
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


def _list_or_gone(iam, operation: str, key: str, user_name: str) -> list[dict] | None:
    """A user's paginated list, or None when the user no longer exists."""
    try:
        return aws.paginate(iam, operation, key, UserName=user_name)
    except ClientError as exc:
        if aws.is_not_found(exc):
            return None
        raise AwsActionError(f"{operation} {_user(user_name)}", exc) from exc
    except (BotoCoreError, ResponseParserError) as exc:
        raise AwsActionError(f"{operation} {_user(user_name)}", exc) from exc


def _each(
    action: str,
    user_name: str,
    items: list[dict] | None,
    target: Callable[[dict], str],
    call: Callable[[dict], Any],
) -> list[Step]:
    """Apply `call` to every listed item, one Step each; a vanished user or an empty list is one Step."""
    if items is None:
        return [Step(action, _user(user_name), GONE)]
    if not items:
        return [Step(action, _user(user_name), NOTHING)]
    return [_call(action, target(item), lambda item=item: call(item)) for item in items]


def _list_service_specific_credentials(iam, user_name: str) -> list[dict]:
    """ListServiceSpecificCredentials has Marker/IsTruncated but no botocore paginator: page by hand."""
    items: list[dict] = []
    kwargs: dict[str, Any] = {"UserName": user_name}
    while True:
        page = iam.list_service_specific_credentials(**kwargs)
        items.extend(page.get("ServiceSpecificCredentials", []))
        if not page.get("IsTruncated") or not page.get("Marker"):
            return items
        kwargs["Marker"] = page["Marker"]


def _get_user(iam, user_name: str) -> dict | None:
    try:
        return iam.get_user(UserName=user_name)["User"]
    except ClientError as exc:
        if aws.is_not_found(exc):
            return None
        raise AwsActionError(f"GetUser {_user(user_name)}", exc) from exc


# --- inventory ---------------------------------------------------------------------------------------


def _access_key_record(iam, key: dict) -> dict:
    last = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"]).get("AccessKeyLastUsed", {})
    return {
        "access_key_id": aws.mask_key_id(key["AccessKeyId"]),
        "status": key.get("Status"),
        "created": _iso(key.get("CreateDate")),
        "last_used": _iso(last.get("LastUsedDate")),
        "last_used_service": last.get("ServiceName"),
        "last_used_region": last.get("Region"),
    }


def _login_profile_record(iam, user_name: str) -> dict:
    try:
        profile = iam.get_login_profile(UserName=user_name)["LoginProfile"]
    except ClientError as exc:
        if aws.is_not_found(exc):
            return {"exists": False, "created": None, "password_reset_required": None}
        raise
    return {
        "exists": True,
        "created": _iso(profile.get("CreateDate")),
        "password_reset_required": profile.get("PasswordResetRequired"),
    }


def _service_specific_record(iam, user_name: str) -> dict:
    try:
        creds = _list_service_specific_credentials(iam, user_name)
    except _ENDPOINT_ERRORS as exc:
        reason = unsupported_reason(exc)
        if reason is None:
            raise
        return {"status": f"{UNSUPPORTED} ({reason})", "items": []}
    items = [
        {
            "credential_id": c.get("ServiceSpecificCredentialId"),
            "service_name": c.get("ServiceName"),
            "service_user_name": c.get("ServiceUserName"),
            "status": c.get("Status"),
            "created": _iso(c.get("CreateDate")),
            "expires": _iso(c.get("ExpirationDate")),
        }
        for c in creds
    ]
    return {"status": "listed", "items": items}


def _empty_inventory(user_name: str) -> dict:
    return {
        "user_name": user_name,
        "exists": False,
        "arn": None,
        "user_id": None,
        "created": None,
        "password_last_used": None,
        "tags": {},
        "access_keys": [],
        "login_profile": {"exists": False, "created": None, "password_reset_required": None},
        "mfa_devices": [],
        "ssh_public_keys": [],
        "signing_certificates": [],
        "service_specific_credentials": {"status": "listed", "items": []},
        "groups": [],
        "inline_policies": [],
        "attached_policies": [],
    }


def credential_inventory(iam, user_name: str) -> dict:
    """Everything the user holds, as plain JSON for the run folder, with no secret in it.

    Take it before `revoke_access`: afterwards the login profile is gone from the record. A user that
    does not exist gives `exists: False` and empty lists, so a re-run still writes a record.
    """
    user = _get_user(iam, user_name)
    inv = _empty_inventory(user_name)
    if user is None:
        return inv
    try:
        keys = aws.paginate(iam, "list_access_keys", "AccessKeyMetadata", UserName=user_name)
        mfa = aws.paginate(iam, "list_mfa_devices", "MFADevices", UserName=user_name)
        ssh = aws.paginate(iam, "list_ssh_public_keys", "SSHPublicKeys", UserName=user_name)
        certs = aws.paginate(iam, "list_signing_certificates", "Certificates", UserName=user_name)
        groups = aws.paginate(iam, "list_groups_for_user", "Groups", UserName=user_name)
        inline = aws.paginate(iam, "list_user_policies", "PolicyNames", UserName=user_name)
        attached = aws.paginate(iam, "list_attached_user_policies", "AttachedPolicies", UserName=user_name)
        tags = aws.paginate(iam, "list_user_tags", "Tags", UserName=user_name)
        inv.update(
            exists=True,
            arn=user.get("Arn"),
            user_id=user.get("UserId"),
            created=_iso(user.get("CreateDate")),
            password_last_used=_iso(user.get("PasswordLastUsed")),
            tags={t["Key"]: t.get("Value", "") for t in tags},
            access_keys=[_access_key_record(iam, k) for k in keys],
            login_profile=_login_profile_record(iam, user_name),
            mfa_devices=[
                {
                    "serial": d["SerialNumber"],
                    "virtual": _is_virtual_mfa(d["SerialNumber"]),
                    "enabled": _iso(d.get("EnableDate")),
                }
                for d in mfa
            ],
            ssh_public_keys=[
                {
                    "ssh_public_key_id": k["SSHPublicKeyId"],
                    "status": k.get("Status"),
                    "uploaded": _iso(k.get("UploadDate")),
                }
                for k in ssh
            ],
            signing_certificates=[
                {"certificate_id": c["CertificateId"], "status": c.get("Status"), "uploaded": _iso(c.get("UploadDate"))}
                for c in certs
            ],
            service_specific_credentials=_service_specific_record(iam, user_name),
            groups=sorted(g["GroupName"] for g in groups),
            inline_policies=sorted(inline),
            attached_policies=sorted(
                ({"name": p["PolicyName"], "arn": p["PolicyArn"]} for p in attached), key=lambda p: p["arn"]
            ),
        )
    except ClientError as exc:
        raise AwsActionError(f"credential inventory of {_user(user_name)}", exc) from exc
    return inv


_TABLE_COLUMNS = {
    "access_keys": ["access_key_id", "status", "created", "last_used", "last_used_service", "last_used_region"],
    "mfa_devices": ["serial", "virtual", "enabled"],
    "ssh_public_keys": ["ssh_public_key_id", "status", "uploaded"],
    "signing_certificates": ["certificate_id", "status", "uploaded"],
    "service_specific_credentials": [
        "credential_id",
        "service_name",
        "service_user_name",
        "status",
        "created",
        "expires",
    ],
}


def inventory_tables(inv: dict) -> dict[str, pd.DataFrame]:
    """Small tables for a notebook: a summary, one per credential kind, groups, policies and tags."""
    ssc = inv["service_specific_credentials"]
    login = inv["login_profile"]
    summary = pd.DataFrame(
        [
            {
                "what": "access keys",
                "count": len(inv["access_keys"]),
                "note": ", ".join(f"{k['access_key_id']} {k['status']}" for k in inv["access_keys"]),
            },
            {
                "what": "console password",
                "count": int(bool(login["exists"])),
                "note": f"last used {inv['password_last_used'] or 'never'}" if login["exists"] else "",
            },
            {"what": "MFA devices", "count": len(inv["mfa_devices"]), "note": ""},
            {"what": "SSH public keys", "count": len(inv["ssh_public_keys"]), "note": ""},
            {"what": "signing certificates", "count": len(inv["signing_certificates"]), "note": ""},
            {
                "what": "service-specific credentials",
                "count": len(ssc["items"]),
                "note": "" if ssc["status"] == "listed" else ssc["status"],
            },
            {"what": "groups", "count": len(inv["groups"]), "note": ", ".join(inv["groups"])},
            {
                "what": "inline policies",
                "count": len(inv["inline_policies"]),
                "note": ", ".join(inv["inline_policies"]),
            },
            {
                "what": "attached policies",
                "count": len(inv["attached_policies"]),
                "note": ", ".join(p["name"] for p in inv["attached_policies"]),
            },
        ],
        columns=["what", "count", "note"],
    )
    tables = {"summary": summary}
    for name, columns in _TABLE_COLUMNS.items():
        rows = inv[name]["items"] if name == "service_specific_credentials" else inv[name]
        tables[name] = pd.DataFrame(rows, columns=columns)
    tables["policies"] = pd.DataFrame(
        [{"kind": "inline", "name": n, "arn": None} for n in inv["inline_policies"]]
        + [{"kind": "attached", "name": p["name"], "arn": p["arn"]} for p in inv["attached_policies"]],
        columns=["kind", "name", "arn"],
    )
    tables["groups"] = pd.DataFrame({"group": inv["groups"]}, columns=["group"])
    tables["tags"] = pd.DataFrame(sorted(inv["tags"].items()), columns=["key", "value"])
    return tables


def steps_table(steps: Iterable[Step]) -> pd.DataFrame:
    """Steps as a table, in the order they ran."""
    return pd.DataFrame([asdict(s) for s in steps], columns=["action", "target", "outcome"])


# --- quick revocation --------------------------------------------------------------------------------


def revoke_access(iam, user_name: str) -> list[Step]:
    """Cut the user off now: deactivate every access key, delete the console password. Idempotent.

    Keys are deactivated rather than deleted so the record and a mistaken run stay recoverable;
    `delete_user` removes them. Sessions already issued (STS) keep working until they expire: use
    `revoke_role_sessions` for the roles the user could assume.
    """
    keys = _list_or_gone(iam, "list_access_keys", "AccessKeyMetadata", user_name)
    steps: list[Step] = []
    if keys is None:
        steps.append(Step("UpdateAccessKey", _user(user_name), GONE))
    elif not keys:
        steps.append(Step("UpdateAccessKey", _user(user_name), "skipped: no access keys"))
    for key in keys or []:
        target = aws.mask_key_id(key["AccessKeyId"])
        if key.get("Status") == "Inactive":
            steps.append(Step("UpdateAccessKey", target, "skipped: already inactive"))
            continue
        steps.append(
            _call(
                "UpdateAccessKey",
                target,
                lambda key=key: iam.update_access_key(
                    UserName=user_name, AccessKeyId=key["AccessKeyId"], Status="Inactive"
                ),
            )
        )
    steps.append(_call("DeleteLoginProfile", _user(user_name), lambda: iam.delete_login_profile(UserName=user_name)))
    for step in steps:
        logger.info("revoke_access %s %s: %s", step.action, step.target, step.outcome)
    return steps


def revoke_sessions_policy(issued_before: datetime) -> dict:
    """The console's "revoke active sessions" document: deny everything to tokens issued before a time."""
    if issued_before.tzinfo is None:
        raise SpecError("issued_before must carry a time zone (e.g. datetime.now(timezone.utc))")
    stamp = issued_before.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": ["*"],
                "Resource": ["*"],
                "Condition": {"DateLessThan": {"aws:TokenIssueTime": stamp}},
            }
        ],
    }


def revoke_role_sessions(iam, role_names: Iterable[str], issued_before: datetime) -> list[Step]:
    """Deny every action to sessions of these roles issued before `issued_before` (UTC).

    This affects EVERY session of each role, not only the offboarded user's: everyone who assumed the
    role before that time must assume it again. Re-running overwrites the policy with the new time.
    A role that does not exist is skipped (there is no session to revoke) and shows in the steps.
    """
    document = json.dumps(revoke_sessions_policy(issued_before))
    steps = []
    for role in role_names:
        target = f"role {role}"
        step = _call(
            "PutRolePolicy",
            target,
            lambda role=role: iam.put_role_policy(
                RoleName=role, PolicyName=REVOKE_SESSIONS_POLICY_NAME, PolicyDocument=document
            ),
        )
        if step.outcome == GONE:
            step = Step("PutRolePolicy", target, "skipped: no such role")
        logger.info("revoke_role_sessions %s: %s", target, step.outcome)
        steps.append(step)
    return steps


# --- deletion, in Terraform force_destroy order ------------------------------------------------------


def remove_from_groups(iam, user_name: str) -> list[Step]:
    groups = _list_or_gone(iam, "list_groups_for_user", "Groups", user_name)
    return _each(
        "RemoveUserFromGroup",
        user_name,
        groups,
        lambda g: f"group {g['GroupName']}",
        lambda g: iam.remove_user_from_group(GroupName=g["GroupName"], UserName=user_name),
    )


def delete_inline_policies(iam, user_name: str) -> list[Step]:
    names = _list_or_gone(iam, "list_user_policies", "PolicyNames", user_name)
    items = None if names is None else [{"PolicyName": n} for n in names]
    return _each(
        "DeleteUserPolicy",
        user_name,
        items,
        lambda p: f"policy {p['PolicyName']}",
        lambda p: iam.delete_user_policy(UserName=user_name, PolicyName=p["PolicyName"]),
    )


def detach_managed_policies(iam, user_name: str) -> list[Step]:
    attached = _list_or_gone(iam, "list_attached_user_policies", "AttachedPolicies", user_name)
    return _each(
        "DetachUserPolicy",
        user_name,
        attached,
        lambda p: p["PolicyArn"],
        lambda p: iam.detach_user_policy(UserName=user_name, PolicyArn=p["PolicyArn"]),
    )


def delete_access_keys(iam, user_name: str) -> list[Step]:
    keys = _list_or_gone(iam, "list_access_keys", "AccessKeyMetadata", user_name)
    return _each(
        "DeleteAccessKey",
        user_name,
        keys,
        lambda k: aws.mask_key_id(k["AccessKeyId"]),
        lambda k: iam.delete_access_key(UserName=user_name, AccessKeyId=k["AccessKeyId"]),
    )


def delete_ssh_public_keys(iam, user_name: str) -> list[Step]:
    keys = _list_or_gone(iam, "list_ssh_public_keys", "SSHPublicKeys", user_name)
    return _each(
        "DeleteSSHPublicKey",
        user_name,
        keys,
        lambda k: k["SSHPublicKeyId"],
        lambda k: iam.delete_ssh_public_key(UserName=user_name, SSHPublicKeyId=k["SSHPublicKeyId"]),
    )


def delete_virtual_mfa_devices(iam, user_name: str) -> list[Step]:
    """Deactivate, then delete each virtual device (found by its `:mfa/` serial ARN, not by a listing
    of all virtual devices, which on some endpoints carries the seed)."""
    devices = _list_or_gone(iam, "list_mfa_devices", "MFADevices", user_name)
    if devices is None:
        return [Step("DeleteVirtualMFADevice", _user(user_name), GONE)]
    virtual = [d["SerialNumber"] for d in devices if _is_virtual_mfa(d["SerialNumber"])]
    if not virtual:
        return [Step("DeleteVirtualMFADevice", _user(user_name), NOTHING)]
    steps = []
    for serial in virtual:
        steps.append(
            _call(
                "DeactivateMFADevice",
                serial,
                lambda serial=serial: iam.deactivate_mfa_device(UserName=user_name, SerialNumber=serial),
            )
        )
        steps.append(
            _call(
                "DeleteVirtualMFADevice",
                serial,
                lambda serial=serial: iam.delete_virtual_mfa_device(SerialNumber=serial),
            )
        )
    return steps


def deactivate_other_mfa_devices(iam, user_name: str) -> list[Step]:
    """Hardware and FIDO devices cannot be deleted through IAM, only taken off the user."""
    devices = _list_or_gone(iam, "list_mfa_devices", "MFADevices", user_name)
    others = None if devices is None else [d for d in devices if not _is_virtual_mfa(d["SerialNumber"])]
    return _each(
        "DeactivateMFADevice",
        user_name,
        others,
        lambda d: d["SerialNumber"],
        lambda d: iam.deactivate_mfa_device(UserName=user_name, SerialNumber=d["SerialNumber"]),
    )


def delete_login_profile(iam, user_name: str) -> list[Step]:
    return [_call("DeleteLoginProfile", _user(user_name), lambda: iam.delete_login_profile(UserName=user_name))]


def delete_signing_certificates(iam, user_name: str) -> list[Step]:
    certs = _list_or_gone(iam, "list_signing_certificates", "Certificates", user_name)
    return _each(
        "DeleteSigningCertificate",
        user_name,
        certs,
        lambda c: c["CertificateId"],
        lambda c: iam.delete_signing_certificate(UserName=user_name, CertificateId=c["CertificateId"]),
    )


def delete_service_specific_credentials(iam, user_name: str) -> list[Step]:
    """Skipped where the endpoint lacks the API (moto 5.2.5); AccessDenied and faults still stop the run."""
    action = "DeleteServiceSpecificCredential"
    try:
        creds: list[dict] | None = _list_service_specific_credentials(iam, user_name)
    except ClientError as exc:
        if aws.is_not_found(exc):
            creds = None
        elif (reason := unsupported_reason(exc)) is not None:
            return [Step(action, _user(user_name), f"skipped: {UNSUPPORTED} ({reason})")]
        else:
            raise AwsActionError(f"ListServiceSpecificCredentials {_user(user_name)}", exc) from exc
    except (BotoCoreError, ResponseParserError, NotImplementedError) as exc:
        if (reason := unsupported_reason(exc)) is None:
            raise AwsActionError(f"ListServiceSpecificCredentials {_user(user_name)}", exc) from exc
        return [Step(action, _user(user_name), f"skipped: {UNSUPPORTED} ({reason})")]
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
    return [_call("DeleteUser", _user(user_name), lambda: iam.delete_user(UserName=user_name))]


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
    if _get_user(iam, user_name) is None:
        return [Step("DeleteUser", _user(user_name), GONE)]
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


# --- safety ------------------------------------------------------------------------------------------


def _caller_user_name(caller_arn: str) -> str | None:
    """The IAM user name in `arn:<partition>:iam::<acct>:user/<path/>name`, else None (roles, root)."""
    parts = caller_arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] not in ("iam", "sts"):
        return None
    resource = parts[5]
    if not resource.startswith("user/"):
        return None
    return resource.rsplit("/", 1)[-1]


def check_offboard(user_name: str, spec_user_names: set[str], caller_arn: str) -> None:
    """Refuse to offboard a user the spec would recreate, or the identity running the runbook.

    IAM user names are unique regardless of case, so the comparisons ignore case.
    """
    problems = []
    wanted = user_name.casefold()
    if any(name.casefold() == wanted for name in spec_user_names):
        problems.append(
            f"{user_name} is still in iam_users: the next run would recreate them — remove them from iam_users first"
        )
    caller = _caller_user_name(caller_arn)
    if caller is not None and caller.casefold() == wanted:
        problems.append(
            f"{user_name} is the identity running this runbook ({caller_arn}): offboard them with another identity"
        )
    if problems:
        raise SafetyError("\n".join(problems))


# --- CloudTrail --------------------------------------------------------------------------------------

_EVENT_COLUMNS = ["time", "event_name", "event_source", "source_ip", "access_key", "error_code", "resources"]
_ACCESS_KEY_RESOURCE = "AWS::IAM::AccessKey"


def _resource_name(resource: dict) -> str:
    """CloudTrail names an access key resource by its full id; shown masked like every other key id."""
    name = resource.get("ResourceName", "")
    return aws.mask_key_id(name) if resource.get("ResourceType") == _ACCESS_KEY_RESOURCE else name


def _event_row(event: dict) -> dict | None:
    """A write event as a table row, or None for a read-only one."""
    detail: dict = {}
    try:
        detail = json.loads(event.get("CloudTrailEvent") or "{}")
    except ValueError:
        detail = {}
    read_only = event.get("ReadOnly", detail.get("readOnly"))
    if str(read_only).lower() == "true":
        return None
    return {
        "time": _iso(event.get("EventTime")),
        "event_name": event.get("EventName"),
        "event_source": event.get("EventSource") or detail.get("eventSource"),
        "source_ip": detail.get("sourceIPAddress"),
        "access_key": aws.mask_key_id(event["AccessKeyId"]) if event.get("AccessKeyId") else None,
        "error_code": detail.get("errorCode"),
        "resources": ", ".join(_resource_name(r) for r in event.get("Resources") or []),
    }


def recent_events(
    session: boto3.Session,
    user_name: str,
    days: int = 90,
    max_events: int = 50,
    max_scanned: int = 1000,
) -> tuple[str, pd.DataFrame]:
    """The user's recent write events from CloudTrail event history (this region, at most 90 days).

    LookupEvents takes one lookup attribute, so read-only events are filtered out here. Scanning
    stops after `max_scanned` events (LookupEvents is throttled to a few calls a second). When the
    endpoint has no CloudTrail or refuses the call, returns a status saying so and an empty table.
    """
    if days < 1 or max_events < 1:
        raise SpecError("days and max_events must be at least 1")
    end = datetime.now(timezone.utc)
    rows: list[dict] = []
    scanned = 0
    stopped = False
    try:
        cloudtrail = aws.client(session, "cloudtrail")
        pages = cloudtrail.get_paginator("lookup_events").paginate(
            LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": user_name}],
            StartTime=end - timedelta(days=days),
            EndTime=end,
        )
        for page in pages:
            for event in page.get("Events", []):
                scanned += 1
                row = _event_row(event)
                if row is not None and len(rows) < max_events:
                    rows.append(row)
            if len(rows) >= max_events or scanned >= max_scanned:
                stopped = bool(page.get("NextToken"))
                break
    except _ENDPOINT_ERRORS as exc:
        status = f"CloudTrail not available from this endpoint: {_short_reason(exc)}"
        logger.warning(status)
        return status, pd.DataFrame(columns=_EVENT_COLUMNS)
    period = f"{days} day" if days == 1 else f"{days} days"
    status = f"{len(rows)} write events by {user_name} in the last {period} ({scanned} events scanned"
    status += ", older events not read)" if stopped else ")"
    return status, pd.DataFrame(rows, columns=_EVENT_COLUMNS)
