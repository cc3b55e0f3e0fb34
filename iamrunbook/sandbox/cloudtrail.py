"""CloudTrail LookupEvents for the embedded AWS, answered from its call log (moto 5.2.5 has none).

As AWS: management events of the account asked (an AssumeRole into another account is in both trails),
newest first, at most 50 a page, one LookupAttribute, StartTime/EndTime, 90 days kept. S3 object-level
calls are data events, which LookupEvents never returns. `Username` is the IAM user who called (from the
request's access key), a role session's name, or `moto` for the sandbox's fake key. Seeded events
(`EmbeddedAws.record_event`) are back-dated history; they are not calls and are not in the call log.
Unlike AWS, only successful calls become events.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from iamrunbook.sandbox.calls import REGION, Call
from iamrunbook.sandbox.wire import camel

#: Which request parameter names which kind of resource, for CloudTrail's Resources list.
_RESOURCE_PARAMS = (
    ("UserName", "AWS::IAM::User"),
    ("RoleName", "AWS::IAM::Role"),
    ("RoleArn", "AWS::IAM::Role"),
    ("RoleSessionName", "AWS::STS::AssumedRole"),
    ("GroupName", "AWS::IAM::Group"),
    ("PolicyArn", "AWS::IAM::Policy"),
    ("AccessKeyId", "AWS::IAM::AccessKey"),
    ("Bucket", "AWS::S3::Bucket"),
    ("AccountId", "AWS::Organizations::Account"),
)
_SERVICES = ("iam", "sts", "organizations", "s3", "signin")
_MAX_EVENTS = 50
RETENTION = timedelta(days=90)
_ATTRIBUTES = ("EventId", "EventName", "ReadOnly", "Username", "ResourceType", "ResourceName", "EventSource")


class LookupRefused(ValueError):
    """A request AWS refuses: (code, message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _identity(call: Call) -> tuple[dict[str, Any], str]:
    """CloudTrail's userIdentity and Username for the call's principal ARN."""
    account = call.account_id
    arn = call.principal or f"arn:aws:sts::{account}:user/moto"
    resource = arn.split(":", 5)[-1]
    if resource.startswith("assumed-role/"):
        _, role, session = (resource.split("/") + ["", ""])[:3]
        return {"type": "AssumedRole", "arn": arn, "accountId": account, "sessionContext": {"role": role}}, session
    name = resource.rsplit("/", 1)[-1]
    return {"type": "IAMUser", "arn": arn, "accountId": account, "userName": name}, name


def _event(call: Call) -> dict[str, Any]:
    params = call.params if isinstance(call.params, Mapping) else {}
    resources = [
        {"ResourceType": kind, "ResourceName": str(params[name])}
        for name, kind in _RESOURCE_PARAMS
        if isinstance(params.get(name), str)
    ]
    identity, username = _identity(call)
    detail = {
        "eventVersion": "1.08",
        "userIdentity": identity,
        "eventTime": call.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventSource": f"{call.service}.amazonaws.com",
        "eventName": call.action,
        "awsRegion": REGION,
        "requestParameters": {camel(key): value for key, value in params.items()},
        "readOnly": call.mutating is False,
        "eventType": "AwsApiCall",
        "recipientAccountId": call.account_id,
    }
    if call.service == "signin":  # an Identity Center sign-in: the user is in additionalEventData only
        extra = dict(params.get("additionalEventData") or {})
        identity = {"type": "Unknown", "principalId": str(extra.get("userId", "")), "accountId": call.account_id}
        detail.update(userIdentity=identity, additionalEventData=extra, requestParameters=None,
                      eventType="AwsServiceEvent")  # fmt: skip
        username = ""
    return {
        "EventId": f"embedded-{call.seq:010d}",
        "EventName": call.action,
        "ReadOnly": "false" if call.mutating else "true",
        "EventTime": call.time.timestamp(),
        "EventSource": f"{call.service}.amazonaws.com",
        "Username": username,
        "Resources": resources,
        "CloudTrailEvent": json.dumps(detail, default=str),
    }


def _management(call: Call) -> bool:
    """A management event: S3 object-level calls (a Key, or listing objects) are data events."""
    if not (call.ok and call.action and call.service in _SERVICES):
        return False
    if call.service != "s3":
        return True
    params = call.params if isinstance(call.params, Mapping) else {}
    return "Key" not in params and not call.action.startswith(("ListObject", "DeleteObjects", "ListMultipart"))


def in_trail(call: Call, account_id: str) -> bool:
    """In this account's trail: its own calls, and AssumeRole calls into one of its roles."""
    if call.account_id == account_id:
        return True
    role_arn = call.params.get("RoleArn") if isinstance(call.params, Mapping) else None
    return call.action == "AssumeRole" and isinstance(role_arn, str) and role_arn.split(":")[4:5] == [account_id]


def _matches(event: dict[str, Any], attribute: Mapping[str, Any]) -> bool:
    key, value = attribute.get("AttributeKey"), attribute.get("AttributeValue")
    if key in ("ResourceName", "ResourceType"):
        return any(resource[key] == value for resource in event["Resources"])
    return str(event.get(key, "")) == value


def _checked(params: Mapping[str, Any]) -> tuple[list, float, float]:
    attributes = params.get("LookupAttributes") or []
    if len(attributes) > 1:
        raise LookupRefused("InvalidLookupAttributesException", "You cannot specify more than one lookup attribute.")
    if any(attribute.get("AttributeKey") not in _ATTRIBUTES for attribute in attributes):
        raise LookupRefused("InvalidLookupAttributesException", f"AttributeKey must be one of {', '.join(_ATTRIBUTES)}")
    start = float(params["StartTime"]) if params.get("StartTime") is not None else float("-inf")
    end = float(params["EndTime"]) if params.get("EndTime") is not None else float("inf")
    if start > end:
        raise LookupRefused("InvalidTimeRangeException", "StartTime must be before EndTime.")
    return attributes, start, end


def lookup_events(calls: Iterable[Call], params: Mapping[str, Any], account_id: str) -> dict[str, Any]:
    """LookupEvents over `calls` (the call log plus seeded events). Raises LookupRefused when AWS refuses.

    Parameters appear as the call log keeps them: secrets redacted.
    """
    attributes, start, end = _checked(params)
    oldest = (datetime.now(timezone.utc) - RETENTION).timestamp()
    kept = [call for call in calls if _management(call) and in_trail(call, account_id)]
    kept.sort(key=lambda call: (call.time, call.seq), reverse=True)
    events = [_event(call) for call in kept]
    start = max(start, oldest)
    events = [e for e in events if start <= e["EventTime"] <= end and all(_matches(e, a) for a in attributes)]
    offset = int(params.get("NextToken") or 0)
    size = max(1, min(int(params.get("MaxResults") or _MAX_EVENTS), _MAX_EVENTS))
    page: dict[str, Any] = {"Events": events[offset : offset + size]}
    if offset + size < len(events):
        page["NextToken"] = str(offset + size)
    return page


def seeded_call(
    seq: int, service: str, action: str, params: Mapping[str, Any] | None, moment: datetime, account: str, who: str
) -> Call:
    """A back-dated event as the trail keeps it (a Call that never reached the server)."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    stamp = moment.timestamp()
    return Call(seq, service, action, dict(params or {}), 200, time=moment, account_id=account, principal=who,
                started=stamp, ended=stamp)  # fmt: skip
