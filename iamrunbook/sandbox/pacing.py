"""Latency and rate limits, so the embedded AWS is as slow and as strict about bursts as a real account.

moto answers in about a millisecond; AWS in tens to hundreds, and IAM throttles bursts (`Throttling`,
HTTP 400, which botocore retries with backoff). Code that is fast against moto can still be slow, or
throttled, against AWS. `Pacing` says how slow and how strict; `Pacer` applies it to each request.

Which calls are paced: all of them by default (the benchmark times a whole adoption, reads included);
`reads=False` paces only mutating calls (IAM's write quotas are far lower than its read quotas). The
token bucket holds `max_tps` tokens (a one-second burst) and refills at `max_tps` a second; a call that
finds it empty is throttled at once, without latency and without reaching moto.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, replace

#: What each service answers past its rate (IAM and STS: `Throttling`, HTTP 400). botocore retries them all.
THROTTLE_ERRORS: dict[str, tuple[str, str, int]] = {
    "s3": ("SlowDown", "Please reduce your request rate.", 503),
    "organizations": ("TooManyRequestsException", "AWS Organizations can't complete your request.", 400),
    "cloudtrail": ("ThrottlingException", "Rate exceeded", 400),
}
THROTTLING = ("Throttling", "Rate exceeded", 400)


def throttle_error(service: str) -> tuple[str, str, int]:
    return THROTTLE_ERRORS.get(service, THROTTLING)


@dataclass(frozen=True)
class Pacing:
    """How the server paces calls: latency (+ uniform random jitter), a rate limit, and which calls."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    max_tps: float | None = None
    reads: bool = True  # False: only mutating calls are delayed and limited

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.jitter_ms < 0 or (self.max_tps is not None and self.max_tps <= 0):
            raise ValueError("latency_ms and jitter_ms must be >= 0, max_tps > 0 or None")

    def applies_to(self, mutating: bool) -> bool:
        return mutating or self.reads


class Pacer:
    """Thread-safe: the latency is slept in the request's own thread, so concurrent calls overlap."""

    def __init__(self, pacing: Pacing) -> None:
        self._lock = threading.Lock()
        self._pacing = pacing
        self._tokens = pacing.max_tps or 0.0
        self._refilled = time.monotonic()
        self.throttled = 0

    @property
    def pacing(self) -> Pacing:
        return self._pacing

    def configure(self, **changes) -> Pacing:
        """Change some settings (e.g. `max_tps=20`); returns the previous ones. The bucket starts full."""
        with self._lock:
            previous = self._pacing
            self._pacing = replace(previous, **changes)
            self._tokens = self._pacing.max_tps or 0.0
            self._refilled = time.monotonic()
        return previous

    def admit(self, mutating: bool) -> bool:
        """Take a token for this call; False when the bucket is empty (answer `Throttling`)."""
        with self._lock:
            rate = self._pacing.max_tps
            if rate is None or not self._pacing.applies_to(mutating):
                return True
            now = time.monotonic()
            self._tokens = min(rate, self._tokens + (now - self._refilled) * rate)
            self._refilled = now
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            self.throttled += 1
            return False

    def delay(self, mutating: bool) -> None:
        """Sleep this call's latency: `latency_ms` plus a random 0..`jitter_ms`."""
        pacing = self._pacing
        if not pacing.applies_to(mutating):
            return
        seconds = (pacing.latency_ms + random.uniform(0, pacing.jitter_ms)) / 1000  # noqa: S311 - not crypto
        if seconds > 0:
            time.sleep(seconds)
