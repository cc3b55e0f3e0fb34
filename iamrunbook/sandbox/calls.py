"""The embedded AWS's record of what it answered, and the faults it can inject.

A call's parameters are kept as the strict middleware logged them: every secret already replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"

#: Action prefixes that only read. Everything else changes the account (STS aside, see `is_mutating`).
READ_PREFIXES = ("Get", "List", "Describe", "Generate", "Simulate", "Lookup", "Search", "Decode", "Head")
#: Services whose calls never change the account: STS only hands out temporary credentials.
READ_ONLY_SERVICES = frozenset({"sts"})


def is_mutating(service: str, action: str | None, method: str = "POST") -> bool:
    """True for a call that changes the account: not a read, not an STS credential call.

    Generate* (credential report, last-accessed report) starts a report job but changes no entity, so
    it counts as a read. A REST call without an action name is judged by its HTTP method.
    """
    if service in READ_ONLY_SERVICES:
        return False
    if not action:
        return method.upper() not in ("GET", "HEAD", "OPTIONS")
    return not action.startswith(READ_PREFIXES)


@dataclass(frozen=True)
class Call:
    """One request the server answered, with secret parameter values replaced by `REDACTED`.

    `account_id` is the account the request acted on and `principal` the caller's ARN (what STS
    GetCallerIdentity would say for its credentials). `started`/`ended` are the server's epoch seconds
    when the request arrived and when its answer was ready (latency included), so a test can check that
    calls did or did not overlap. `time` is `started` as a datetime.
    """

    seq: int
    service: str
    action: str | None
    params: Mapping[str, Any] = field(hash=False)
    status: int
    error_code: str | None = None
    injected: bool = False
    method: str = "POST"
    time: datetime = field(default_factory=lambda: datetime.now(timezone.utc), compare=False)
    account_id: str = ACCOUNT_ID
    principal: str = ""
    started: float = field(default=0.0, compare=False)
    ended: float = field(default=0.0, compare=False)

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def mutating(self) -> bool:
        return is_mutating(self.service, self.action, self.method)


@dataclass
class Fault:
    """An injected error: the `at`-th matching call and the next `times - 1` ones (None: all after)."""

    action: str | None
    at: int
    code: str
    status: int
    times: int | None
    message: str
    seen: int = 0
    fired: int = 0

    def matches(self, service: str, action: str | None, mutating: bool) -> bool:
        if self.action is None:
            return mutating
        return self.action in (action, f"{service}:{action}")

    def due(self) -> bool:
        """Called after counting the current call in `seen`."""
        if self.seen < self.at:
            return False
        return self.times is None or self.seen < self.at + self.times


def default_message(code: str) -> str:
    if code in ("Throttling", "ThrottlingException"):
        return "Rate exceeded (injected by EmbeddedAws)"
    return f"{code} (injected by EmbeddedAws)"
