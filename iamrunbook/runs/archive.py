"""Archive run folders to write-once storage (S3 with Object Lock), and check an archive against a manifest.

Every object is uploaded with its sha256 (`ChecksumAlgorithm=SHA256` and the value itself, so S3 refuses a
body that arrived changed), `run.json` last: an archive with its manifest is complete. On a bucket with
Object Lock each object gets a retention date, and S3 refuses to delete a locked version before it. An
upload is idempotent: objects already there with the same checksum are skipped, so a rerun of
`iamrunbook audit archive` after an interrupted upload finishes it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from iamrunbook.aws import clients as aws
from iamrunbook.base import records
from iamrunbook.base.errors import RunbookError, SpecError
from iamrunbook.runs.audit import Finding

READ_ACTIONS: tuple[str, ...] = ()
WRITE_ACTIONS: tuple[str, ...] = ()
#: The S3 operations `--archive` and `audit verify s3://...` call -> the IAM action that allows each (S3's
#: action names are not its API names). A put that sets a retention also needs s3:PutObjectRetention.
ARCHIVE_OPERATIONS = {
    "PutObject": ("s3:PutObject", "s3:PutObjectRetention"),
    "HeadObject": ("s3:GetObject",),
    "GetObject": ("s3:GetObject",),
    "ListObjectsV2": ("s3:ListBucket",),
    "GetObjectLockConfiguration": ("s3:GetBucketObjectLockConfiguration",),
}
ARCHIVE_ACTIONS = tuple(sorted({action for actions in ARCHIVE_OPERATIONS.values() for action in actions}))


class ArchiveError(RunbookError):
    """An upload failed: names the object; the local folder is kept and the upload can be finished."""


@dataclass
class Archived:
    uri: str
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    retain_until: str | None = None

    def summary(self) -> str:
        lock = f", locked until {self.retain_until}" if self.retain_until else ", bucket without Object Lock"
        return f"archived to {self.uri}: {len(self.uploaded)} uploaded, {len(self.skipped)} already there{lock}"


def parse_uri(uri: str) -> tuple[str, str]:
    """`s3://BUCKET/PREFIX` -> (bucket, prefix without slashes at either end)."""
    if not uri.startswith("s3://") or not uri[5:].split("/", 1)[0]:
        raise SpecError(f"{uri!r}: an archive is s3://BUCKET/PREFIX")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.strip("/")


def _key(prefix: str, *parts: str) -> str:
    return "/".join(p for p in (prefix, *parts) if p)


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def hex_to_b64(digest: str) -> str:
    return base64.b64encode(bytes.fromhex(digest)).decode()


def s3_client(session=None):
    return aws.client(session or aws.make_session(), "s3")


def object_lock(s3, bucket: str) -> bool:
    try:
        config = s3.get_object_lock_configuration(Bucket=bucket)["ObjectLockConfiguration"]
    except ClientError as exc:
        if aws.error_code(exc) == "ObjectLockConfigurationNotFoundError":
            return False
        raise
    return config.get("ObjectLockEnabled") == "Enabled"


def _stored_checksum(s3, bucket: str, key: str) -> str | None:
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as exc:
        if aws.error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return head.get("ChecksumSHA256")


def upload(run_dir: Path, uri: str, *, retention_days: int = 400, lock_mode: str = "GOVERNANCE", s3=None) -> Archived:
    """Upload every file of the run folder under `<prefix>/<run id>/`, run.json last."""
    run_dir = Path(run_dir).resolve()
    if not (run_dir / records.RUN_MANIFEST.name).is_file():
        raise ArchiveError(f"{run_dir} has no run.json: only a finished run is archived")
    bucket, prefix = parse_uri(uri)
    s3 = s3 or s3_client()
    done = Archived(f"s3://{_key(bucket, prefix, run_dir.name)}")
    files = sorted(p for p in run_dir.rglob("*") if p.is_file())
    files.sort(key=lambda p: p.name == records.RUN_MANIFEST.name)  # the manifest last: it completes the archive
    try:
        lock = {}
        if object_lock(s3, bucket):
            until = datetime.now(timezone.utc) + timedelta(days=retention_days)
            lock = {"ObjectLockMode": lock_mode, "ObjectLockRetainUntilDate": until}
            done.retain_until = until.isoformat(timespec="seconds")
    except (ClientError, BotoCoreError) as exc:
        raise ArchiveError(f"cannot read the Object Lock configuration of bucket {bucket}: {exc}") from exc
    for path in files:
        relative = path.relative_to(run_dir).as_posix()
        key = _key(prefix, run_dir.name, relative)
        body = path.read_bytes()
        checksum = b64_sha256(body)
        try:
            if _stored_checksum(s3, bucket, key) == checksum:
                done.skipped.append(relative)
                continue
            s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256", ChecksumSHA256=checksum,
                          **lock)  # fmt: skip
        except (ClientError, BotoCoreError) as exc:
            raise ArchiveError(f"s3://{bucket}/{key}: upload failed ({exc})") from exc
        done.uploaded.append(relative)
    return done


# --- verifying an archive -----------------------------------------------------------------------------
def _objects(s3, bucket: str, prefix: str) -> dict[str, str]:
    """key (relative to prefix/) -> stored SHA256 checksum (base64), every page."""
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for item in page.get("Contents", []):
            found[item["Key"][len(prefix) + 1 :]] = _stored_checksum(s3, bucket, item["Key"])
    return found


def _download(s3, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")["Body"].read()


def verify_remote(uri: str, s3=None) -> list[Finding]:
    """An archived run (s3://BUCKET/PREFIX/RUN) against its own manifest: each object's content is read
    and hashed, and must equal what run.json recorded; objects not in it are extra."""
    bucket, prefix = parse_uri(uri)
    s3 = s3 or s3_client()
    try:
        manifest = json.loads(_download(s3, bucket, _key(prefix, records.RUN_MANIFEST.name)))
        stored = _objects(s3, bucket, prefix)
        findings = []
        recorded = dict(manifest.get("artifacts") or {})
        for name, digest in sorted(recorded.items()):
            if name not in stored:
                findings.append(Finding(f"{uri}/{name}", "missing", "missing"))
                continue
            actual = hashlib.sha256(_download(s3, bucket, _key(prefix, name))).hexdigest()
            if actual != digest:
                findings.append(Finding(f"{uri}/{name}", f"modified (sha256 {actual}, recorded {digest})"))
        extra = sorted(set(stored) - set(recorded) - {records.RUN_MANIFEST.name})
        findings += [Finding(f"{uri}/{name}", "extra: not in run.json", "extra") for name in extra]
    except (ClientError, BotoCoreError, ValueError) as exc:
        raise RunbookError(f"{uri}: cannot read the archive ({exc})") from exc
    return findings


def compare(run_dir: Path, uri: str, s3=None) -> list[Finding]:
    """A local run folder against its archived copy under `uri` (s3://BUCKET/PREFIX): file by file,
    run.json included, by sha256."""
    bucket, prefix = parse_uri(uri)
    s3 = s3 or s3_client()
    run_dir = Path(run_dir).resolve()
    remote_prefix = _key(prefix, run_dir.name)
    try:
        stored = _objects(s3, bucket, remote_prefix)
    except (ClientError, BotoCoreError) as exc:
        raise RunbookError(f"{uri}: cannot list the archive ({exc})") from exc
    local = {p.relative_to(run_dir).as_posix(): p for p in sorted(run_dir.rglob("*")) if p.is_file()}
    findings = []
    for name, path in local.items():
        if name not in stored:
            findings.append(Finding(f"{run_dir.name}/{name}", "not in the archive", "missing"))
        elif stored[name] != b64_sha256(path.read_bytes()):
            findings.append(Finding(f"{run_dir.name}/{name}", "differs from the archived copy"))
    findings += [
        Finding(f"{run_dir.name}/{name}", "in the archive but not in the local folder", "extra")
        for name in sorted(set(stored) - set(local))
    ]
    return findings
