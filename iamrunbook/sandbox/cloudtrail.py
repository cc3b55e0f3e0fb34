"""CloudTrail LookupEvents for the embedded AWS, answered from its call log (moto 5.2.5 has none)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from .calls import ACCOUNT_ID, REGION, Call
from .wire import camel

#: Which request parameter names which kind of resource, for CloudTrail's Resources list.
_RESOURCE_PARAMS = (
    ("UserName", "AWS::IAM::User"),
    ("RoleName", "AWS::IAM::Role"),
    ("GroupName", "AWS::IAM::Group"),
    ("PolicyArn", "AWS::IAM::Policy"),
    ("AccessKeyId", "AWS::IAM::AccessKey"),
)
CALLER_NAME = "moto"  # moto's caller identity is arn:aws:sts::123456789012:user/moto
_MAX_EVENTS = 50


def _event(call: Call) -> dict[str, Any]:
    params = call.params if isinstance(call.params, Mapping) else {}
    resources = [
        {"ResourceType": kind, "ResourceName": str(params[name])}
        for name, kind in _RESOURCE_PARAMS
        if isinstance(params.get(name), str)
    ]
    read_only = "false" if call.mutating else "true"
    detail = {
        "eventVersion": "1.08",
        "userIdentity": {
            "type": "IAMUser",
            "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/{CALLER_NAME}",
            "accountId": ACCOUNT_ID,
            "userName": CALLER_NAME,
        },
        "eventTime": call.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": f"{call.service}.amazonaws.com",
        "eventName": call.action,
        "awsRegion": REGION,
        "requestParameters": {camel(key): value for key, value in params.items()},
        "readOnly": call.mutating is False,
        "eventType": "AwsApiCall",
        "recipientAccountId": ACCOUNT_ID,
    }
    return {
        "EventId": f"embedded-{call.seq:010d}",
        "EventName": call.action,
        "ReadOnly": read_only,
        "EventTime": call.time.timestamp(),
        "EventSource": f"{call.service}.amazonaws.com",
        "Username": CALLER_NAME,
        "Resources": resources,
        "CloudTrailEvent": json.dumps(detail, default=str),
    }


def _event_matches(event: dict[str, Any], attribute: Mapping[str, Any]) -> bool:
    key, value = attribute.get("AttributeKey"), attribute.get("AttributeValue")
    if key in ("ResourceName", "ResourceType"):
        return any(resource[key] == value for resource in event["Resources"])
    return str(event.get(key, "")) == value


def lookup_events(calls: Iterable[Call], params: Mapping[str, Any]) -> dict[str, Any]:
    """CloudTrail LookupEvents, answered from the call log (moto 5.2.5 does not implement it).

    Successful IAM and STS calls become management events, newest first, filtered by the one
    LookupAttribute AWS allows, StartTime/EndTime (epoch seconds), and paged by MaxResults/NextToken.
    Parameters appear as the call log keeps them: secrets redacted.
    """
    events = [_event(call) for call in calls if call.ok and call.action and call.service in ("iam", "sts")]
    events.reverse()
    for attribute in params.get("LookupAttributes") or []:
        events = [event for event in events if _event_matches(event, attribute)]
    if params.get("StartTime") is not None:
        events = [event for event in events if event["EventTime"] >= float(params["StartTime"])]
    if params.get("EndTime") is not None:
        events = [event for event in events if event["EventTime"] <= float(params["EndTime"])]
    start = int(params.get("NextToken") or 0)
    size = max(1, min(int(params.get("MaxResults") or _MAX_EVENTS), _MAX_EVENTS))
    page: dict[str, Any] = {"Events": events[start : start + size]}
    if start + size < len(events):
        page["NextToken"] = str(start + size)
    return page
