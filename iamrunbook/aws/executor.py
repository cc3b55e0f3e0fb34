"""The executor: a plan's changes in their safe order, each phase on a bounded pool of threads.

Phases (order.py) run one after another: no change of phase k+1 starts before every change of phase k
has succeeded. Inside a phase, the changes of one entity (`order.entity`: a policy's prune and update, a
user's whole deletion) run one after another in plan order; the others run at once, at most
`parallelism` at a time, in plan order as slots free up. The order gives all changes of a phase one
direction (grants only add access, revocations take only what nobody keeps), which is what lets them run
in any interleaving; a change without a phase is a phase of its own. Apply, the legacy migration and the
offboarding all run through `execute`.

The client: one, shared by every worker. botocore clients are thread-safe (sessions are not: no worker
makes its own). One client also means one adaptive rate limiter (aws.apply_client) that measures the
whole apply's send rate, and one connection pool.

Throttling: botocore retries a throttled call and, in adaptive mode, slows the client. On top of that the
pool shrinks like TCP's congestion window: halved at a throttle (once per window: the throttles of calls
that started before the last halving are the same congestion), grown by one after a window's worth of
changes without one. A change whose every attempt was throttled is tried again after a pause, up to
THROTTLE_ROUNDS times: throttling alone never fails a run while retries remain.

Failure: a change that fails for another reason (or out of retries) stops the run: the changes in flight
finish, nothing new starts, and ApplyError holds what was done and what was not, in plan order (the
failed change is the first failure in plan order). Every change is idempotent: a rerun converges.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from botocore.exceptions import BotoCoreError, ClientError

from iamrunbook.aws.clients import THROTTLING_CODES, is_throttling
from iamrunbook.aws.mutations import AWS
from iamrunbook.base.errors import AwsActionError
from iamrunbook.base.log import logger
from iamrunbook.base.progress import Tally
from iamrunbook.core.changes import Change
from iamrunbook.core.order import entity

#: rounds a change gets, after botocore's own attempts were all throttled, before the run fails
THROTTLE_ROUNDS = 5
THROTTLE_PAUSE_S = 1.0
#: what a failed change raises (AwsActionError: a user deletion stopped part-way, naming its step)
CHANGE_ERRORS = (ClientError, BotoCoreError, AwsActionError)

_worker = threading.local()  # the window epoch the worker's current change started in; whether it was throttled


@dataclass
class ApplyResult:
    done: list[Change] = field(default_factory=list)
    not_done: list[Change] = field(default_factory=list)
    failed: Change | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.failed is None

    def rows(self) -> list[dict]:
        rows = [{"address": c.address, "kind": c.kind, "status": "done"} for c in self.done]
        if self.failed:
            rows.append({"address": self.failed.address, "kind": self.failed.kind, "status": f"FAILED: {self.error}"})
        rows += [{"address": c.address, "kind": c.kind, "status": "not done"} for c in self.not_done]
        return rows


class ApplyError(AwsActionError):
    """A change failed; `result` holds what was done and what was not."""

    def __init__(self, change: Change, cause: Exception, result: ApplyResult):
        super().__init__(f"{change.kind} {change.address}", cause)
        self.change = change
        self.result = result

    def __str__(self) -> str:
        r = self.result
        lines = [
            f"{self.step} failed: {self.cause}",
            f"{len(r.done)} change(s) done, {len(r.not_done) + 1} not done "
            f"(the failed one and {len(r.not_done)} after it).",
        ]
        lines += listed("done", r.done)
        lines += listed("not done", [self.change, *r.not_done])
        lines.append("Fix the cause and run again: every change is idempotent, the rerun converges.")
        return "\n".join(lines)


def listed(label: str, changes: list[Change], limit: int = 20) -> list[str]:
    """The addresses of `changes`, one per line, so the operator sees exactly where the run stopped."""
    if not changes:
        return []
    shown = [f"  {c.symbol:>2} {c.address}" for c in changes[:limit]]
    if len(changes) > limit:
        shown.append(f"  ... and {len(changes) - limit} more")
    return [f"{label}:", *shown]


class Window:
    """How many changes may be in flight: AIMD, as TCP's congestion window. Thread-safe."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = self.size = self.lowest = max(1, ceiling)
        self.epoch = 0  # counts the halvings
        self.retries = 0
        self.throttles = 0
        self._clean = 0  # changes finished without a throttle since the size last moved
        self._lock = threading.Lock()

    def throttled(self, epoch: int) -> None:
        """A throttled attempt by a change that started in `epoch`: halve, unless already halved since."""
        with self._lock:
            self.throttles += 1
            if epoch == self.epoch:
                self.size = max(1, self.size // 2)
                self.lowest = min(self.lowest, self.size)
                self.epoch += 1
                self._clean = 0

    def succeeded(self, epoch: int) -> None:
        """A change finished without a throttle: after `size` of them in one epoch, one more slot."""
        with self._lock:
            if epoch != self.epoch:
                return  # it started at a larger size: it says nothing about this one
            self._clean += 1
            if self._clean >= self.size and self.size < self.ceiling:
                self.size += 1
                self._clean = 0

    def retried(self, count: int = 1) -> None:
        with self._lock:
            self.retries += count

    def note(self) -> str:
        """What the progress shows: 'parallelism 8, 12 retries', or 'parallelism 3 of 8 (down to 1), ...'."""
        size = str(self.size)
        if self.lowest < self.ceiling:
            size += f" of {self.ceiling} (down to {self.lowest})"
        return f"parallelism {size}, {self.retries} retr{'y' if self.retries == 1 else 'ies'}"


class Watch:
    """botocore's events on the shared client while the executor runs: each attempt past a call's first is
    a retry; a throttled attempt tells the window. Handlers return None (a value would replace the call)."""

    def __init__(self, iam, window: Window) -> None:
        self._events, self._window = iam.meta.events, window
        self._id = f"iamrunbook-executor-{id(self)}"
        self._handlers = {"before-call": self._call, "before-send": self._send, "needs-retry": self._answered}

    def __enter__(self) -> Watch:
        for event, handle in self._handlers.items():
            self._events.register(event, handle, unique_id=f"{self._id}-{event}")
        return self

    def __exit__(self, *exc_info: object) -> None:
        for event in self._handlers:
            self._events.unregister(event, unique_id=f"{self._id}-{event}")

    def _call(self, **_) -> None:
        self._window.retried(-1)  # the first attempt of a call is no retry: before-send counts it

    def _send(self, **_) -> None:
        self._window.retried(1)

    def _answered(self, response=None, **_) -> None:
        parsed = response[1] if response else None
        if (parsed or {}).get("Error", {}).get("Code") in THROTTLING_CODES:
            _worker.throttled = True
            self._window.throttled(getattr(_worker, "epoch", self._window.epoch))


def phases(changes: list[Change]) -> list[list[int]]:
    """The indices of `changes`, phase by phase: each run of consecutive changes of one phase; a change
    without a phase stands alone (plan order is then all there is to go by)."""
    groups: list[list[int]] = []
    for i, change in enumerate(changes):
        if groups and change.phase is not None and changes[groups[-1][-1]].phase == change.phase:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def attempt(iam, change: Change, run: Callable, window: Window) -> BaseException | None:
    """Make one change in a worker thread; its error, or None. Throttled through and through: pause, again."""
    for round_ in range(THROTTLE_ROUNDS + 1):
        _worker.epoch, _worker.throttled = window.epoch, False
        try:
            run(iam, change)
        except CHANGE_ERRORS as exc:
            if round_ == THROTTLE_ROUNDS or not is_throttling(exc):
                return exc
            window.retried()
            time.sleep(THROTTLE_PAUSE_S * 2**round_ * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto
            continue
        if not _worker.throttled:
            window.succeeded(_worker.epoch)
        return None
    raise AssertionError("unreachable")


class Run:
    """One execution: the changes, what is done and what failed, by index in plan order."""

    def __init__(self, iam, changes: list[Change], run: Callable, window: Window, tally: Tally) -> None:
        self.iam, self.changes, self.run, self.window, self.tally = iam, changes, run, window, tally
        self.done: set[int] = set()
        self.failures: dict[int, BaseException] = {}

    def phase(self, pool: ThreadPoolExecutor, indices: Iterable[int]) -> None:
        """Every change of one phase, one entity's changes in plan order, the window's size at a time; after
        a failure nothing new starts and the changes in flight finish."""
        chains: dict[Hashable, deque[int]] = {}
        for i in indices:
            chains.setdefault(entity(self.changes[i]), deque()).append(i)
        ready = [chain[0] for chain in chains.values()]
        heapq.heapify(ready)
        running: dict[Future, tuple[int, deque[int]]] = {}
        while running or (ready and not self.failures):
            while ready and not self.failures and len(running) < self.window.size:
                i = heapq.heappop(ready)
                future = pool.submit(attempt, self.iam, self.changes[i], self.run, self.window)
                running[future] = (i, chains[entity(self.changes[i])])
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                i, chain = running.pop(future)
                if self.finished(i, future.result()):
                    chain.popleft()
                    if chain:
                        heapq.heappush(ready, chain[0])

    def finished(self, i: int, error: BaseException | None) -> bool:
        change = self.changes[i]
        if error is not None:
            self.failures[i] = error
            logger.error("%s: %s %s failed: %s", self.tally.desc, change.kind, change.address, error)
            return False
        self.done.add(i)
        self.tally.advance(self.window.note())
        logger.info("%s %s", change.symbol, change.address)
        return True

    def report(self, result: ApplyResult) -> ApplyResult:
        """Fill `result` in plan order; raise ApplyError for the first failure in plan order."""
        result.done.extend(c for i, c in enumerate(self.changes) if i in self.done)
        if not self.failures:
            return result
        first = min(self.failures)
        error = self.failures[first]
        result.failed, result.error = self.changes[first], str(error)
        result.not_done = [c for i, c in enumerate(self.changes) if i not in self.done and i != first]
        logger.error("%s stopped at %s: %s", self.tally.desc, self.changes[first].address, error)
        raise ApplyError(self.changes[first], error, result) from error


def execute(
    iam,
    changes: Iterable[Change],
    result: ApplyResult,
    *,
    desc: str,
    progress: bool,
    parallelism: int = 1,
    run: Callable[[object, Change], object] = AWS,
) -> ApplyResult:
    """Make `changes` phase by phase, up to `parallelism` at once, into `result`; at a failure, once the
    changes in flight have finished, raise ApplyError holding it. `run(iam, change)` makes one change."""
    changes = list(changes)
    window = Window(parallelism)
    tally = Tally(len(changes), desc, "change", show=progress)
    work = Run(iam, changes, run, window, tally)
    with Watch(iam, window), ThreadPoolExecutor(window.ceiling, thread_name_prefix=f"iamrunbook-{desc}") as pool:
        for indices in phases(changes):
            work.phase(pool, indices)
            if work.failures:
                break
    tally.close(window.note() + (", stopped at a failure" if work.failures else ""))
    return work.report(result)
