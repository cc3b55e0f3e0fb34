"""The embedded AWS's clock: the time `aws:CurrentTime` carries. The real time unless a test sets it, so a
test can step past a temporary grant's `until` and watch AWS (here) refuse the same AssumeRole call."""

from __future__ import annotations

import threading
from datetime import datetime, timezone


class Clock:
    def __init__(self) -> None:
        self._fixed: datetime | None = None
        self._lock = threading.Lock()

    def set(self, when: datetime | None) -> None:
        """Fix the time (a timezone-aware datetime), or with None go back to the real clock."""
        if when is not None and when.tzinfo is None:
            raise ValueError("the embedded AWS's clock takes a timezone-aware datetime")
        with self._lock:
            self._fixed = when

    def now(self) -> datetime:
        with self._lock:
            return self._fixed or datetime.now(timezone.utc)
