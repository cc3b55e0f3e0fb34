"""The legacy policy's holders and its backup: the AWS reads and file I/O of the migration.

The backup is taken before any change: the policy's every version, its default and its holders, written
to the run folder (`legacy_policy_backup.json`, never overwritten: a rerun's gets a number). `restore_legacy`
turns one back into the policy and its attachments.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from iamrunbook.aws.clients import exists_ok, gone_ok
from iamrunbook.base import records
from iamrunbook.base.errors import SafetyError
from iamrunbook.base.log import logger
from iamrunbook.base.names import name_from_arn, version_number
from iamrunbook.base.records import Shape
from iamrunbook.core.inventory import decode_document
from iamrunbook.core.migration import HOLDER_KINDS, Holder

if TYPE_CHECKING:
    from iamrunbook.core.migration import MigrationPlan

READ_ACTIONS = ("iam:ListEntitiesForPolicy", "iam:GetPolicyVersion")
#: restore_legacy's calls
WRITE_ACTIONS = (
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:AttachUserPolicy",
    "iam:AttachGroupPolicy",
    "iam:AttachRolePolicy",
)

BACKUP_FORMAT = 1
@dataclass(frozen=True)
class Backup(Shape):
    """legacy_policy_backup.json: enough to recreate the policy exactly and attach it again."""

    policy_name: str
    arn: str
    versions: list[dict]
    holders: list[dict]
    default_version_id: str | None = None
    path: str = "/"
    description: str = ""
    taken_at: str = ""
    format: int = BACKUP_FORMAT



def list_holders(iam, policy_arn: str | None) -> tuple[Holder, ...]:
    """Every user, group and role the policy is attached to (ListEntitiesForPolicy, every page)."""
    if policy_arn is None:
        return ()
    found: list[Holder] = []

    def read() -> None:
        for page in iam.get_paginator("list_entities_for_policy").paginate(PolicyArn=policy_arn):
            found.extend(Holder("user", e["UserName"]) for e in page.get("PolicyUsers", []))
            found.extend(Holder("group", e["GroupName"]) for e in page.get("PolicyGroups", []))
            found.extend(Holder("role", e["RoleName"]) for e in page.get("PolicyRoles", []))

    gone_ok(read)  # deleted since the sweep: nobody holds it
    return tuple(sorted(set(found), key=lambda h: (HOLDER_KINDS.index(h.kind), h.name)))


def backup_record(iam, policy: dict, holders: Iterable[Holder]) -> dict:
    """Everything needed to recreate the policy: every version's document, the default, its holders."""
    arn = policy["Arn"]
    versions = []
    for v in sorted(policy.get("PolicyVersionList", []), key=version_number):
        document = v.get("Document")
        if document is None:  # the sweep always has it; a hand-built inventory may not
            document = iam.get_policy_version(PolicyArn=arn, VersionId=v["VersionId"])["PolicyVersion"]["Document"]
        versions.append(
            {
                "version_id": v["VersionId"],
                "is_default": bool(v.get("IsDefaultVersion")),
                "create_date": str(v.get("CreateDate", "")),
                "document": decode_document(document),
            }
        )
    return {
        "format": BACKUP_FORMAT,
        "taken_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "policy_name": name_from_arn(arn),
        "arn": arn,
        "path": policy.get("Path", "/"),
        "description": policy.get("Description") or "",
        "default_version_id": policy.get("DefaultVersionId")
        or next((v["version_id"] for v in versions if v["is_default"]), None),
        "versions": versions,
        "holders": [{"kind": h.kind, "name": h.name} for h in holders],
    }


def backup(iam, policy: dict | None, holders: Iterable[Holder], run_dir: str | Path) -> Path | None:
    """Write the backup into the run folder before any change; None when there is no policy.

    An earlier backup in the same folder is never overwritten (it was taken before more of the policy was
    gone): the new one gets a numbered name and that is the path returned.
    """
    if policy is None:
        return None
    folder = Path(run_dir)
    name, n = "legacy_policy_backup.json", 1
    while (folder / name).exists():
        n += 1
        name = f"legacy_policy_backup-{n}.json"
    path = records.write(folder, records.LEGACY_BACKUP, backup_record(iam, policy, holders), name=name)
    logger.info("legacy policy backup written to %s", path)
    return path


def read_backup(path: str | Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def check_backup(path: str | Path | None, mplan: MigrationPlan) -> dict:
    """Refuse to change anything unless a readable backup of this very policy exists."""
    if path is None or not Path(path).is_file():
        raise SafetyError(f"refused before any change: no backup of {mplan.legacy_name} at {path}; write it first")
    try:
        record = read_backup(path)
    except (OSError, ValueError) as exc:
        raise SafetyError(f"refused before any change: the backup {path} is unreadable: {exc}") from exc
    default = next((v for v in record.get("versions", []) if v.get("is_default")), None)
    if record.get("arn") != mplan.policy_arn or not default or not default.get("document"):
        raise SafetyError(
            f"refused before any change: {path} is not a backup of {mplan.policy_arn} with its default document"
        )
    return record


def attach_holder(iam, holder: Holder, policy_arn: str) -> bool:
    """Attach a policy to a user, group or role; False when the entity no longer exists."""
    calls = {
        "user": lambda: iam.attach_user_policy(UserName=holder.name, PolicyArn=policy_arn),
        "group": lambda: iam.attach_group_policy(GroupName=holder.name, PolicyArn=policy_arn),
        "role": lambda: iam.attach_role_policy(RoleName=holder.name, PolicyArn=policy_arn),
    }
    return gone_ok(calls[holder.kind]) is not None


def restore_legacy(iam, record: Mapping) -> list[str]:
    """Recreate the policy from a backup: its versions in order, the same default, attached to its holders.

    Version ids restart at v1 (IAM numbers them). If the policy exists already its versions are left as
    they are and only the attachments are restored. Returns what was done, one line each.
    """
    name = record["policy_name"]
    versions = record["versions"]
    done: list[str] = []
    kwargs = {"Description": record["description"]} if record.get("description") else {}
    created = exists_ok(
        lambda: iam.create_policy(
            PolicyName=name,
            Path=record.get("path") or "/",
            PolicyDocument=json.dumps(versions[0]["document"]),
            **kwargs,
        )
    )
    if created is None:
        arn = record["arn"]
        done.append(f"{name} exists already: its versions are left as they are")
    else:
        arn = created["Policy"]["Arn"]
        new_ids = {versions[0]["version_id"]: created["Policy"].get("DefaultVersionId", "v1")}
        for v in versions[1:]:
            made = iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(v["document"]))
            new_ids[v["version_id"]] = made["PolicyVersion"]["VersionId"]
        default = new_ids[record["default_version_id"]]
        if default != new_ids[versions[0]["version_id"]]:
            iam.set_default_policy_version(PolicyArn=arn, VersionId=default)
        done.append(f"created {name} with {len(versions)} version(s), default {default}")
    for raw in record.get("holders", []):
        holder = Holder(raw["kind"], raw["name"])
        done.append(f"attached to {holder}" if attach_holder(iam, holder, arn) else f"{holder} is gone: skipped")
    return done
