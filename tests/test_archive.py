"""The archive to write-once storage, on moto's S3 through the embedded AWS: every object with its sha256, a
retention on a bucket with Object Lock (S3 refuses to delete a locked version), an interrupted upload
finished by `iamrunbook audit archive`, and `audit verify` of an archived run and against a local copy."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from iamrunbook.cli import cli
from iamrunbook.runs import archive
from iamrunbook.sandbox import seed

pytestmark = pytest.mark.e2e  # every test here runs notebooks in kernels

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "parameters" / "example.yaml"
LOCKED, PLAIN = "audit-locked", "audit-plain"


@pytest.fixture
def s3(session, iam):
    seed.seed_roles(iam)
    client = session.client("s3")
    client.create_bucket(Bucket=LOCKED, ObjectLockEnabledForBucket=True)
    client.create_bucket(Bucket=PLAIN)
    return client


def newest(out: Path) -> Path:
    return max((p for p in out.iterdir() if p.is_dir()), key=lambda p: p.name)


def archived_run(out: Path, uri: str, *extra: str) -> tuple[int, Path]:
    code = cli.main(["run", "04_verify", "-f", str(EXAMPLE), "--out", str(out), "--archive", uri, *extra])
    return code, newest(out)


def keys(s3, bucket: str, prefix: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []))


def test_every_object_carries_its_checksum_and_a_retention(aws, s3, tmp_path, capsys):
    code, run_dir = archived_run(tmp_path / "runs", f"s3://{LOCKED}/iam", "--retention-days", "30")
    assert code == 2  # the run's own exit code (drift), whatever the archive did
    files = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file())
    assert keys(s3, LOCKED, f"iam/{run_dir.name}/") == [f"iam/{run_dir.name}/{f}" for f in files]
    soon = datetime.now(timezone.utc) + timedelta(days=30)
    for name in files:
        head = s3.head_object(Bucket=LOCKED, Key=f"iam/{run_dir.name}/{name}", ChecksumMode="ENABLED")
        digest = base64.b64encode(hashlib.sha256((run_dir / name).read_bytes()).digest()).decode()
        assert head["ChecksumSHA256"] == digest, name
        assert head["ObjectLockMode"] == "GOVERNANCE"
        assert abs((head["ObjectLockRetainUntilDate"] - soon).total_seconds()) < 120
    key = f"iam/{run_dir.name}/run.json"
    version = s3.head_object(Bucket=LOCKED, Key=key)["VersionId"]
    with pytest.raises(ClientError, match="AccessDenied"):
        s3.delete_object(Bucket=LOCKED, Key=key, VersionId=version)
    assert "locked until" in capsys.readouterr().out


def test_a_bucket_without_object_lock_gets_no_retention(aws, s3, tmp_path):
    code, run_dir = archived_run(tmp_path / "runs", f"s3://{PLAIN}/x")
    assert code == 2
    head = s3.head_object(Bucket=PLAIN, Key=f"x/{run_dir.name}/run.json", ChecksumMode="ENABLED")
    assert "ObjectLockMode" not in head and head["ChecksumSHA256"]


def test_an_interrupted_upload_fails_the_run_and_audit_archive_finishes_it(aws, s3, tmp_path, capsys):
    aws.inject_fault("s3:PutObject", at=3, times=None, code="InternalError", status=500)
    code, run_dir = archived_run(tmp_path / "runs", f"s3://{LOCKED}/iam")
    assert code == 1
    err = capsys.readouterr().err
    assert f"archive FAILED: s3://{LOCKED}/iam/{run_dir.name}/" in err and "upload failed" in err
    assert "iamrunbook audit archive" in err and run_dir.is_dir()  # the local folder is kept
    assert f"iam/{run_dir.name}/run.json" not in keys(s3, LOCKED, "iam/")  # the manifest goes last
    aws.clear_faults()
    assert cli.main(["audit", "archive", str(run_dir), f"s3://{LOCKED}/iam"]) == 0
    again = archive.upload(run_dir, f"s3://{LOCKED}/iam")
    assert again.uploaded == [] and len(again.skipped) == len(list(run_dir.rglob("*.*")))  # idempotent
    assert cli.main(["audit", "verify", f"s3://{LOCKED}/iam/{run_dir.name}"]) == 0


def test_audit_verify_of_an_archive_and_against_a_local_copy(aws, s3, tmp_path, capsys):
    code, run_dir = archived_run(tmp_path / "runs", f"s3://{LOCKED}/iam")
    uri = f"s3://{LOCKED}/iam/{run_dir.name}"
    assert cli.main(["audit", "verify", uri]) == 0
    assert cli.main(["audit", "verify", str(run_dir), "--against", f"s3://{LOCKED}/iam"]) == 0
    capsys.readouterr()
    # someone replaces the archived verification (a new version: the locked one stays underneath)
    s3.put_object(Bucket=LOCKED, Key=f"iam/{run_dir.name}/verification.json", Body=b'{"ok": true}')
    assert cli.main(["audit", "verify", uri]) == 1
    assert f"{uri}/verification.json: modified (sha256 " in capsys.readouterr().out
    (run_dir / "04_verify.html").write_text("<html>edited</html>", encoding="utf-8")
    assert cli.main(["audit", "verify", str(run_dir), "--against", f"s3://{LOCKED}/iam"]) == 1
    out = capsys.readouterr().out
    assert f"{run_dir.name}/04_verify.html: differs from the archived copy" in out
    assert f"{run_dir.name}/04_verify.html: modified (sha256" in out  # and the local manifest says so too


def test_the_archive_needs_only_the_declared_s3_actions(aws, s3, tmp_path):
    aws.clear_calls()
    archived_run(tmp_path / "runs", f"s3://{LOCKED}/iam")
    cli.main(["audit", "verify", f"s3://{LOCKED}/iam/{newest(tmp_path / 'runs').name}"])
    made = {c.action for c in aws.calls if c.service == "s3"}
    assert made and made <= set(archive.ARCHIVE_OPERATIONS)
    policy = json.loads(archive_policy(f"s3://{LOCKED}/iam"))
    s3_actions = {a for s in policy["Statement"] for a in s["Action"] if a.startswith("s3:")}
    assert s3_actions == {a for op in made for a in archive.ARCHIVE_OPERATIONS[op]} | {"s3:PutObjectRetention"}
    s3_resources = [r for s in policy["Statement"] if s["Action"][0].startswith("s3:") for r in s["Resource"]]
    assert s3_resources and all(f":::{LOCKED}" in r for r in s3_resources)  # that bucket only


def archive_policy(uri: str) -> str:
    from iamrunbook.cli.permissions import runner_policy_json, scope_for

    return runner_policy_json(scope=scope_for(archive=uri))
