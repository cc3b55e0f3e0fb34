"""The boto3 edge: sessions, clients, pagination and error classification.

Every function that talks to AWS takes a client as its first argument, so notebooks, tests and the
embedded demo pass in whatever session they built. Credentials never travel through here as values:
they come from a profile or the environment (boto3's default chain).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from iamrunbook.base.errors import AwsActionError

T = TypeVar("T")

NOT_FOUND = "NoSuchEntity"
ALREADY_EXISTS = "EntityAlreadyExists"

#: botocore's standard retry mode retries throttling and transient 5xx with backoff.
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5})
#: Apply's client: botocore's adaptive mode adds client-side rate limiting to the standard retries (a token
#: bucket that slows every thread of the client once IAM throttles); the same number of attempts.
APPLY_RETRIES = {"mode": "adaptive", "max_attempts": 5}
#: The error codes AWS throttles with (IAM and STS: Throttling); botocore retries them all.
THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled", "TooManyRequestsException",
     "RequestLimitExceeded", "SlowDown"}
)  # fmt: skip


def make_session(aws_profile: str | None = None, aws_region: str = "us-east-1") -> boto3.Session:
    """A session from the default credential chain, or from a named profile."""
    return boto3.Session(profile_name=aws_profile, region_name=aws_region)


def client(session: boto3.Session, service: str):
    """A client with standard retries; honours AWS_ENDPOINT_URL* from the environment."""
    return session.client(service, config=CLIENT_CONFIG)


def apply_client(session: boto3.Session, parallelism: int = 1):
    """The IAM client apply shares between its worker threads: adaptive retries, and a connection pool at
    least as large as the pool of workers (botocore's default of 10 would make threads past it reconnect)."""
    config = Config(retries=APPLY_RETRIES, max_pool_connections=max(10, parallelism))
    return session.client("iam", config=config)


#: Identity Center (sso-admin and identitystore together) allows about 20 requests a second, not raisable.
CENTER_RATE = 20.0
CENTER_BURST = 10


class Pacer:
    """At most `rate` requests a second on average, `burst` at once, across every thread and client it paces.

    A request may start at its slot: slots are `1/rate` apart, and up to `burst` of them may be taken ahead of
    time. Waiting happens outside the lock, so one thread's wait does not hold up the bookkeeping of others.
    """

    def __init__(self, rate: float = CENTER_RATE, burst: int = CENTER_BURST) -> None:
        self.interval, self.burst = 1.0 / rate, max(1, burst)
        self._next = 0.0  # the earliest time the next request could start if there were no burst
        self._lock = threading.Lock()
        self.waited = 0.0

    def wait(self, **_: Any) -> None:
        """botocore's before-send handler: returns None, so the request goes on as it was."""
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now - (self.burst - 1) * self.interval)
            self._next = slot + self.interval
            delay = slot - now
            self.waited += max(0.0, delay)
        if delay > 0:
            time.sleep(delay)


PACE_ID = "iamrunbook-pace"


def pace(service_client, pacer: Pacer) -> None:
    """Every request the client sends (retries too) waits for `pacer`; a client already paced keeps its pacer."""
    service_client.meta.events.register("before-send", pacer.wait, unique_id=PACE_ID)


def center_client(session: boto3.Session, service: str, region: str, pacer: Pacer, parallelism: int = 1):
    """An sso-admin or identitystore client in the Identity Center home region: standard retries (throttling
    included), a pool as large as the workers, and the instance's request rate."""
    config = CLIENT_CONFIG.merge(Config(max_pool_connections=max(10, parallelism)))
    made = session.client(service, region_name=region, config=config)
    pace(made, pacer)
    return made


def error_code(exc: BaseException) -> str:
    """The AWS error code on the wire ('NoSuchEntity', 'Throttling', ...), or '' for other errors."""
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code", "")
    return ""


def is_not_found(exc: BaseException) -> bool:
    return error_code(exc) == NOT_FOUND


def is_throttling(exc: BaseException | None) -> bool:
    """True when AWS refused the call for its rate (also when wrapped, as a user deletion's step wraps it)."""
    for _ in range(4):  # the error, and what it wraps
        if exc is None or error_code(exc) in THROTTLING_CODES:
            return exc is not None
        exc = getattr(exc, "cause", None) or exc.__cause__
    return False


def paginate(iam, operation: str, key: str, **kwargs: Any) -> list[dict]:
    """All items of a paginated list operation."""
    paginator = iam.get_paginator(operation)
    items: list[dict] = []
    for page in paginator.paginate(**kwargs):
        items.extend(page.get(key, []))
    return items


# --- error intent: what a failure means for the step that made the call ------------------------------
def _tolerate(code: str, call: Callable[[], T]) -> T | None:
    try:
        return call()
    except ClientError as exc:
        if error_code(exc) == code:
            return None
        raise


def gone_ok(call: Callable[[], T]) -> T | None:
    """Run `call`; NoSuchEntity means the thing is already gone, which is what a removal wanted (None)."""
    return _tolerate(NOT_FOUND, call)


def exists_ok(call: Callable[[], T]) -> T | None:
    """Run `call`; EntityAlreadyExists means an earlier, interrupted run made it already (None)."""
    return _tolerate(ALREADY_EXISTS, call)


def retry_not_found(call: Callable[[], T], attempts: int = 5, delay: float = 0.5) -> T:
    """Run `call`, retrying briefly on NoSuchEntity: IAM is eventually consistent after a create."""
    for attempt in range(attempts):
        try:
            return call()
        except ClientError as exc:
            if not is_not_found(exc) or attempt == attempts - 1:
                raise
            time.sleep(delay * (2**attempt))
    raise AssertionError("unreachable")


@contextmanager
def step(name: str) -> Iterator[None]:
    """Any AWS failure inside becomes an AwsActionError naming the step, so the operator knows where."""
    try:
        yield
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        raise AwsActionError(name, exc) from exc


def caller_identity(session: boto3.Session) -> dict:
    """STS GetCallerIdentity: Arn and Account of whoever runs the runbook."""
    ident = client(session, "sts").get_caller_identity()
    return {"Arn": ident["Arn"], "Account": ident["Account"], "UserId": ident.get("UserId", "")}


def mask_key_id(key_id: str) -> str:
    """Access key ids are shown as first 4 and last 4 characters only."""
    if not key_id or len(key_id) <= 8:
        return "****"
    return f"{key_id[:4]}{'*' * (len(key_id) - 8)}{key_id[-4:]}"
