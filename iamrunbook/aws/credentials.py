"""What one user holds, recorded before anything is taken away: keys (masked), password, MFA, SSH keys,
certificates, service-specific credentials, groups and policies, as plain JSON for the run folder.

No secret is ever read into it: access key ids are masked, SSH key and certificate bodies are never
fetched, virtual MFA seeds are never listed.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pandas as pd
from botocore.exceptions import ClientError

from iamrunbook.aws import clients as aws
from iamrunbook.aws.deletion import (
    ENDPOINT_ERRORS,
    HOLDINGS,
    UNSUPPORTED,
    get_user,
    holdings,
    is_virtual_mfa,
    list_service_specific_credentials,
    unsupported_reason,
    user_target,
)

READ_ACTIONS = ("iam:ListUserTags", "iam:GetAccessKeyLastUsed", "iam:GetLoginProfile")  # + deletion.HOLDINGS
WRITE_ACTIONS: tuple[str, ...] = ()


def iso(value: Any) -> str | None:
    """Dates as ISO-8601 UTC strings, so the inventory is plain JSON."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc).isoformat()
    return None


def _access_key_record(iam, key: dict) -> dict:
    last = iam.get_access_key_last_used(AccessKeyId=key["AccessKeyId"]).get("AccessKeyLastUsed", {})
    return {
        "access_key_id": aws.mask_key_id(key["AccessKeyId"]),
        "status": key.get("Status"),
        "created": iso(key.get("CreateDate")),
        "last_used": iso(last.get("LastUsedDate")),
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
        "created": iso(profile.get("CreateDate")),
        "password_reset_required": profile.get("PasswordResetRequired"),
    }


def _service_specific_record(iam, user_name: str) -> dict:
    try:
        creds = list_service_specific_credentials(iam, user_name)
    except ENDPOINT_ERRORS as exc:
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
            "created": iso(c.get("CreateDate")),
            "expires": iso(c.get("ExpirationDate")),
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
    user = get_user(iam, user_name)
    inv = _empty_inventory(user_name)
    if user is None:
        return inv
    with aws.step(f"credential inventory of {user_target(user_name)}"):
        held = {name: holdings(iam, user_name, name) or [] for name in HOLDINGS}
        tags = aws.paginate(iam, "list_user_tags", "Tags", UserName=user_name)
        inv.update(
            exists=True,
            arn=user.get("Arn"),
            user_id=user.get("UserId"),
            created=iso(user.get("CreateDate")),
            password_last_used=iso(user.get("PasswordLastUsed")),
            tags={t["Key"]: t.get("Value", "") for t in tags},
            access_keys=[_access_key_record(iam, k) for k in held["access_keys"]],
            login_profile=_login_profile_record(iam, user_name),
            mfa_devices=[
                {
                    "serial": d["SerialNumber"],
                    "virtual": is_virtual_mfa(d["SerialNumber"]),
                    "enabled": iso(d.get("EnableDate")),
                }  # fmt: skip
                for d in held["mfa_devices"]
            ],
            ssh_public_keys=[
                {
                    "ssh_public_key_id": k["SSHPublicKeyId"],
                    "status": k.get("Status"),
                    "uploaded": iso(k.get("UploadDate")),
                }  # fmt: skip
                for k in held["ssh_public_keys"]
            ],
            signing_certificates=[
                {"certificate_id": c["CertificateId"], "status": c.get("Status"), "uploaded": iso(c.get("UploadDate"))}
                for c in held["signing_certificates"]
            ],
            service_specific_credentials=_service_specific_record(iam, user_name),
            groups=sorted(g["GroupName"] for g in held["groups"]),
            inline_policies=sorted(p["PolicyName"] for p in held["inline_policies"]),
            attached_policies=sorted(
                ({"name": p["PolicyName"], "arn": p["PolicyArn"]} for p in held["attached_policies"]),
                key=lambda p: p["arn"],
            ),
        )
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
