"""S3 for the audit archive through the embedded AWS: Object Lock, checksums, operation names, faults, no bodies."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from iamrunbook.aws import clients as aws_edge
from iamrunbook.sandbox import FAKE_ACCESS_KEY_ID, FAKE_SECRET_ACCESS_KEY, REDACTED

BUCKET = "iamrunbook-audit"


@pytest.fixture
def s3(session):
    return session.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 3}))


@pytest.fixture
def locked_bucket(s3):
    s3.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    return BUCKET


def _until(days: int = 1) -> datetime:
    return (datetime.now(timezone.utc) + timedelta(days=days)).replace(microsecond=0)


def _put_locked(s3, key: str, body: bytes, days: int = 1):
    return s3.put_object(
        Bucket=BUCKET,
        Key=key,
        Body=body,
        ObjectLockMode="COMPLIANCE",
        ObjectLockRetainUntilDate=_until(days),
        ChecksumAlgorithm="SHA256",
    )


def test_object_lock_is_kept_reported_and_enforced(aws, s3, locked_bucket):
    config = s3.get_object_lock_configuration(Bucket=BUCKET)["ObjectLockConfiguration"]
    assert config["ObjectLockEnabled"] == "Enabled"
    until = _until()
    put = _put_locked(s3, "runs/1/audit.json", b'{"run": 1}')
    head = s3.head_object(Bucket=BUCKET, Key="runs/1/audit.json")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    assert head["ObjectLockRetainUntilDate"] == until
    with pytest.raises(ClientError) as caught:
        s3.delete_object(Bucket=BUCKET, Key="runs/1/audit.json", VersionId=put["VersionId"])
    assert caught.value.response["Error"]["Code"] == "AccessDenied"
    assert s3.get_object(Bucket=BUCKET, Key="runs/1/audit.json")["Body"].read() == b'{"run": 1}'
    # Without a version id, a delete only adds a delete marker: the locked version stays.
    s3.delete_object(Bucket=BUCKET, Key="runs/1/audit.json")
    versions = s3.list_object_versions(Bucket=BUCKET, Prefix="runs/1/")
    assert [v["VersionId"] for v in versions["Versions"]] == [put["VersionId"]]
    assert len(versions["DeleteMarkers"]) == 1


def test_retention_can_be_read_and_extended(aws, s3, locked_bucket):
    put = _put_locked(s3, "runs/2/audit.json", b"{}")
    later = _until(30)
    s3.put_object_retention(
        Bucket=BUCKET, Key="runs/2/audit.json", Retention={"Mode": "COMPLIANCE", "RetainUntilDate": later}
    )
    retention = s3.get_object_retention(Bucket=BUCKET, Key="runs/2/audit.json", VersionId=put["VersionId"])
    assert retention["Retention"]["Mode"] == "COMPLIANCE"
    assert retention["Retention"]["RetainUntilDate"] >= later - timedelta(seconds=1)
    (call,) = [c for c in aws.calls if c.action == "PutObjectRetention"]
    assert call.params["Retention"]["Mode"] == "COMPLIANCE"  # the XML payload is decoded into the log


def test_sha256_checksum_is_recorded_and_returned(aws, s3, locked_bucket):
    body = b'{"run": 3, "changes": []}'
    expected = base64.b64encode(hashlib.sha256(body).digest()).decode()
    put = _put_locked(s3, "runs/3/audit.json", body)
    assert put["ChecksumSHA256"] == expected
    head = s3.head_object(Bucket=BUCKET, Key="runs/3/audit.json", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == expected
    (call,) = [c for c in aws.calls if c.action == "PutObject"]
    assert call.params["ChecksumAlgorithm"] == "SHA256"
    assert call.params["ChecksumSHA256"] == expected


def test_rest_calls_are_logged_by_operation_name(aws, s3, locked_bucket):
    _put_locked(s3, "runs/4/a b/audit.json", b"{}")
    s3.head_object(Bucket=BUCKET, Key="runs/4/a b/audit.json")
    s3.get_object(Bucket=BUCKET, Key="runs/4/a b/audit.json")["Body"].read()
    aws_edge.paginate(s3, "list_objects_v2", "Contents", Bucket=BUCKET, Prefix="runs/")
    s3.get_object_lock_configuration(Bucket=BUCKET)
    s3.copy_object(Bucket=BUCKET, Key="copy.json", CopySource={"Bucket": BUCKET, "Key": "runs/4/a b/audit.json"})
    s3.delete_object(Bucket=BUCKET, Key="copy.json")
    s3.list_buckets()
    assert [(c.service, c.action, c.ok) for c in aws.calls] == [
        ("s3", "CreateBucket", True),
        ("s3", "PutObject", True),
        ("s3", "HeadObject", True),
        ("s3", "GetObject", True),
        ("s3", "ListObjectsV2", True),
        ("s3", "GetObjectLockConfiguration", True),
        ("s3", "CopyObject", True),
        ("s3", "DeleteObject", True),
        ("s3", "ListBuckets", True),
    ]
    by_action = {c.action: c for c in aws.calls}
    assert by_action["PutObject"].params["Key"] == "runs/4/a b/audit.json"  # URL-decoded, as boto3 named it
    assert by_action["CreateBucket"].params == {"Bucket": BUCKET, "ObjectLockEnabledForBucket": True}
    assert by_action["PutObject"].mutating and not by_action["HeadObject"].mutating


def test_a_fault_can_interrupt_an_upload(aws, s3, locked_bucket):
    fault = aws.inject_fault("s3:PutObject", code="InternalError", status=500, times=None)
    with pytest.raises(ClientError) as caught:
        _put_locked(s3, "runs/5/audit.json", b"{}")
    assert caught.value.response["Error"]["Code"] == "InternalError"
    assert fault.fired == s3.meta.config.retries["total_max_attempts"]  # every attempt botocore made
    aws.clear_faults()
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=BUCKET, Key="runs/5/audit.json")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404  # nothing was stored
    aws.inject_fault("s3:PutObject", code="SlowDown", status=503)
    assert _put_locked(s3, "runs/5/audit.json", b"{}")["ResponseMetadata"]["RetryAttempts"] == 1


def test_s3_throttles_with_slow_down(aws, locked_bucket):
    single = boto3.client(
        "s3",
        endpoint_url=aws.endpoint,
        region_name="us-east-1",
        aws_access_key_id=FAKE_ACCESS_KEY_ID,
        aws_secret_access_key=FAKE_SECRET_ACCESS_KEY,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    aws.set_pacing(max_tps=1)
    single.list_buckets()
    with pytest.raises(ClientError) as caught:
        single.list_buckets()
    response = caught.value.response
    assert (response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"]) == ("SlowDown", 503)


def test_no_body_and_no_secret_reaches_the_log(aws, s3, locked_bucket):
    body = base64.b64encode(os.urandom(24))  # random: no literal to find by accident
    customer_key = os.urandom(32)
    _put_locked(s3, "runs/6/audit.json", body)
    s3.get_object(Bucket=BUCKET, Key="runs/6/audit.json")["Body"].read()
    with contextlib.suppress(ClientError):  # whether moto keeps SSE-C objects does not matter: the log must not
        s3.put_object(
            Bucket=BUCKET, Key="sse.bin", Body=body, SSECustomerAlgorithm="AES256", SSECustomerKey=customer_key
        )
    recorded = repr(aws.calls)
    assert body.decode() not in recorded
    assert base64.b64encode(customer_key).decode() not in recorded
    sse = next(c for c in aws.calls if c.params.get("Key") == "sse.bin")
    assert sse.params["SSECustomerKey"] == REDACTED


def test_object_calls_are_data_events_bucket_calls_management_events(aws, session, s3, locked_bucket):
    _put_locked(s3, "runs/7/audit.json", b"{}")
    events = aws_edge.client(session, "cloudtrail").lookup_events()["Events"]
    assert [e["EventName"] for e in events] == ["CreateBucket"]
    assert events[0]["Resources"] == [{"ResourceType": "AWS::S3::Bucket", "ResourceName": BUCKET}]
