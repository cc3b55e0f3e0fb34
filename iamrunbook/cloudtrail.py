"""CloudTrail event history: what a user changed lately (05), read with LookupEvents.

LookupEvents takes one lookup attribute, keeps 90 days and is throttled to about two calls a second, so
reads are bounded. An endpoint without CloudTrail, or one that refuses, gives a status saying so and an
empty table rather than a failed run.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import boto3
import pandas as pd
from botocore.exceptions import ClientError

from . import aws
from .credentials import iso
from .deletion import ENDPOINT_ERRORS
from .errors import SpecError
from .log import logger

READ_ACTIONS = ("cloudtrail:LookupEvents",)
WRITE_ACTIONS: tuple[str, ...] = ()


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
        "time": iso(event.get("EventTime")),
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
    except ENDPOINT_ERRORS as exc:
        status = f"CloudTrail not available from this endpoint: {_short_reason(exc)}"
        logger.warning(status)
        return status, pd.DataFrame(columns=_EVENT_COLUMNS)
    period = f"{days} day" if days == 1 else f"{days} days"
    status = f"{len(rows)} write events by {user_name} in the last {period} ({scanned} events scanned"
    status += ", older events not read)" if stopped else ")"
    return status, pd.DataFrame(rows, columns=_EVENT_COLUMNS)
