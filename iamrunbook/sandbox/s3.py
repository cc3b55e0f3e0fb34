"""S3 answers moto 5.2.5 lacks, read from moto's own S3 state (GetObjectRetention: moto answers 500)."""

from __future__ import annotations

from typing import Any
from xml.sax.saxutils import escape

from moto.s3.models import s3_backends

from iamrunbook.sandbox.wire import Request, Response, error_response

_NS = "http://s3.amazonaws.com/doc/2006-03-01/"


def object_retention(request: Request, account_id: str) -> Response:
    """GetObjectRetention: the version's lock mode and retain-until date, as AWS returns them."""
    params: dict[str, Any] = request.params if isinstance(request.params, dict) else {}
    backend = s3_backends[account_id]["aws"]
    try:
        key = backend.get_object(params.get("Bucket", ""), params.get("Key", ""), params.get("VersionId"))
    except Exception:  # noqa: BLE001 - moto raises its own NoSuchBucket; AWS answers NoSuchKey alike
        key = None
    if key is None:
        return error_response(request, "NoSuchKey", "The specified key does not exist.", 404)
    if not key.lock_mode:
        message = "The specified object does not have a ObjectLock configuration"
        return error_response(request, "NoSuchObjectLockConfiguration", message, 404)
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Retention xmlns="{_NS}"><Mode>{escape(key.lock_mode)}</Mode>'
        f"<RetainUntilDate>{escape(str(key.lock_until))}</RetainUntilDate></Retention>"
    ).encode()
    return Response(200, [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))], body)
