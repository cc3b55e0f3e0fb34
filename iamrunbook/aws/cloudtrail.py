"""CloudTrail event history, read with LookupEvents: what a user changed lately (05), when every user
last assumed each role (06, one sweep for all users), and who signed in through Identity Center (07).

LookupEvents takes one lookup attribute, keeps 90 days and is throttled to about two calls a second, so
reads are bounded. An endpoint without CloudTrail, or one that refuses, gives a status saying so and an
empty table rather than a failed run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone

import boto3
import pandas as pd
from botocore.exceptions import ClientError

from iamrunbook.aws import clients as aws
from iamrunbook.aws.credentials import iso
from iamrunbook.aws.deletion import ENDPOINT_ERRORS
from iamrunbook.base.errors import SpecError
from iamrunbook.base.log import logger
from iamrunbook.base.progress import progress as show_progress
from iamrunbook.core.review import HISTORY_DAYS, RoleUse

READ_ACTIONS = ("cloudtrail:LookupEvents",)  # 05's events, 06's AssumeRole sweep, 07's sign-ins
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


# --- 06: the one AssumeRole sweep ----------------------------------------------------------------------
ASSUME_ROLE_EVENT = "AssumeRole"
#: LookupEvents' own limits: 90 days of history (core/review.py), at most 50 events a page, about two calls a second.
PAGE_SIZE = 50
SECONDS_PER_CALL = 0.5


def _assumption(event: dict, account_id: str) -> tuple[str, str, datetime] | None:
    """(user, role name, when) of a successful AssumeRole by an IAM user of this account into one of its
    roles; None for a failed call, a role session or service calling, or another account's user or role."""
    try:
        detail = json.loads(event.get("CloudTrailEvent") or "{}")
    except ValueError:
        detail = {}
    if detail.get("errorCode"):
        return None  # AccessDenied and the like are in the trail too: an attempt is not use
    identity = detail.get("userIdentity") or {}
    if identity.get("type", "IAMUser") != "IAMUser" or identity.get("accountId", account_id) != account_id:
        return None
    role_arn = (detail.get("requestParameters") or {}).get("roleArn") or next(
        (r.get("ResourceName") for r in event.get("Resources") or [] if r.get("ResourceType") == "AWS::IAM::Role"), ""
    )
    user = identity.get("userName") or event.get("Username")
    when = event.get("EventTime")
    if not user or not isinstance(when, datetime) or str(role_arn).split(":")[4:5] != [account_id]:
        return None
    return user, str(role_arn).rsplit("/", 1)[-1], when.astimezone(timezone.utc)


def _paced(pages, seconds: float):
    """The pages, at most one call every `seconds` (LookupEvents allows about two a second): the paginator
    asks for the next page when the loop does, so the wait is counted from the page's arrival and comes only
    when there is a next page."""
    for page in pages:
        received = time.monotonic()
        yield page
        if page.get("NextToken"):
            time.sleep(max(0.0, received + seconds - time.monotonic()))


def assume_role_sweep(
    session: boto3.Session, account_id: str, days: int = HISTORY_DAYS, *, seconds_per_call: float = SECONDS_PER_CALL
) -> RoleUse:
    """Every AssumeRole event of the last `days` (at most the 90 CloudTrail keeps) in one paginated sweep,
    for all users at once: the call count grows with the events (50 a page), never with the users.

    This region's event history only: AssumeRole through the global STS endpoint is logged in us-east-1,
    through a regional endpoint in that region.
    """
    until = datetime.now(timezone.utc)
    since = until - timedelta(days=min(days, HISTORY_DAYS))
    last: dict[tuple[str, str], datetime] = {}
    pages = events = 0
    try:
        paginator = aws.client(session, "cloudtrail").get_paginator("lookup_events")
        found = paginator.paginate(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": ASSUME_ROLE_EVENT}],
            StartTime=since, EndTime=until, PaginationConfig={"PageSize": PAGE_SIZE},
        )  # fmt: skip
        for page in show_progress(_paced(found, seconds_per_call), desc="CloudTrail AssumeRole pages", unit="page"):
            pages += 1
            for event in page.get("Events", []):
                events += 1
                seen = _assumption(event, account_id)
                if seen is not None:
                    key = (seen[0].lower(), seen[1].lower())
                    last[key] = max(last.get(key, seen[2]), seen[2])
    except ENDPOINT_ERRORS as exc:
        status = f"CloudTrail AssumeRole history incomplete ({pages} page(s) read): {_short_reason(exc)}"
        logger.warning(status)
        return RoleUse(last, since, until, pages, events, complete=False, status=status)
    status = f"{events} AssumeRole events from {since:%Y-%m-%d} to {until:%Y-%m-%d} in {pages} page(s)"
    if days > HISTORY_DAYS:
        status += f"; CloudTrail keeps {HISTORY_DAYS} days, so older use of the {days} asked is not seen"
    return RoleUse(last, since, until, pages, events, status=status)


# --- 07: Identity Center sign-ins ----------------------------------------------------------------------
SIGN_IN_EVENT, SIGN_IN_SOURCE = "UserAuthentication", "signin.amazonaws.com"


def _signed_in(event: dict, by_name: Mapping[str, str], by_id: Mapping[str, str]) -> tuple[str, datetime] | None:
    """(UserName, when) of a finished Identity Center sign-in by a user of `store_users`, else None. The user
    is in additionalEventData (UserName, userId), never in userIdentity.userName; a failed attempt is no use."""
    try:
        detail = json.loads(event.get("CloudTrailEvent") or "{}")
    except ValueError:
        return None
    source = event.get("EventSource") or detail.get("eventSource")
    outcome = (detail.get("serviceEventDetails") or {}).get(SIGN_IN_EVENT, "Success")
    if source != SIGN_IN_SOURCE or detail.get("errorCode") or detail.get("errorMessage") or outcome != "Success":
        return None
    extra = detail.get("additionalEventData") or {}
    user = by_name.get(str(extra.get("UserName", "")).lower()) or by_id.get(str(extra.get("userId", "")))
    when = event.get("EventTime")
    if user is None or not isinstance(when, datetime):
        return None
    return user, when.astimezone(timezone.utc)


def center_sign_ins(session: boto3.Session, home_region: str, since: datetime,
                    store_users: Mapping[str, str]) -> dict[str, str]:  # fmt: skip
    """UserName -> ISO time of the user's last finished Identity Center sign-in since `since`.

    `store_users` maps the identity store's UserName -> UserId. The events are `signin.amazonaws.com`
    `UserAuthentication` in the Identity Center home region (one paginated sweep, paced like the AssumeRole
    one). A trail that cannot be read gives no sign-ins (so nobody is retired on its word), with a warning.
    """
    since = since if since.tzinfo else since.replace(tzinfo=timezone.utc)
    by_name = {name.lower(): name for name in store_users}
    by_id = {user_id: name for name, user_id in store_users.items()}
    last: dict[str, datetime] = {}
    try:
        trail = session.client("cloudtrail", region_name=home_region, config=aws.CLIENT_CONFIG)
        found = trail.get_paginator("lookup_events").paginate(
            LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": SIGN_IN_EVENT}],
            StartTime=since, EndTime=datetime.now(timezone.utc), PaginationConfig={"PageSize": PAGE_SIZE},
        )  # fmt: skip
        for page in _paced(found, SECONDS_PER_CALL):
            for event in page.get("Events", []):
                seen = _signed_in(event, by_name, by_id)
                if seen is not None and seen[1] >= since:
                    last[seen[0]] = max(last.get(seen[0], seen[1]), seen[1])
    except ENDPOINT_ERRORS as exc:
        logger.warning("Identity Center sign-ins not read from CloudTrail in %s: %s", home_region, _short_reason(exc))
        return {}
    return {user: iso(when) or "" for user, when in sorted(last.items())}
