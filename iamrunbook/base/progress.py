"""Progress for long steps: a widget bar in a live Jupyter session, one quiet line when headless.

Under `iamrunbook run` (papermill) a bar would be kept in the audit record as stderr noise (pink boxes in
the HTML) or as its first frame; headless, the step prints its final state once, on stdout, when it ends:
`inventory: 3 pages, 2.1 s`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

HEADLESS_ENV = "IAMRUNBOOK_HEADLESS"


def headless() -> bool:
    """True under `iamrunbook run`, papermill jobs and tests: no widget may wait for a click."""
    return os.environ.get(HEADLESS_ENV, "") not in ("", "0", "false")


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" + ("" if n == 1 else "s")


def summary_line(desc: str, count: int, unit: str, seconds: float, extra: str = "") -> str:
    return f"{desc}: {_plural(count, unit)}, {seconds:.1f} s" + (f", {extra}" if extra else "")


def progress(items: Iterable[T], desc: str, unit: str) -> Iterator[T]:
    """Yield `items`; show a bar while live, print one line at the end when headless."""
    if not headless():
        from tqdm.auto import tqdm

        yield from tqdm(items, desc=desc, unit=unit)
        return
    started, count = time.monotonic(), 0
    for item in items:
        count += 1
        yield item
    print(summary_line(desc, count, unit, time.monotonic() - started), flush=True)


class Tally:
    """Progress that its owner advances (the apply executor's scheduling thread), with a note that changes
    as it runs ("parallelism 8, 12 retries"): the note stands beside the bar while live, and ends the one
    line printed when headless. `show=False`: silent."""

    def __init__(self, total: int, desc: str, unit: str, *, show: bool = True) -> None:
        self.desc, self.unit, self.count = desc, unit, 0
        self._started = time.monotonic()
        self._bar = None
        self._show = show
        if show and not headless():
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit)

    def advance(self, note: str) -> None:
        self.count += 1
        if self._bar is not None:
            self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(1)

    def close(self, note: str) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(note)
            self._bar.close()
        elif self._show:
            print(summary_line(self.desc, self.count, self.unit, time.monotonic() - self._started, note), flush=True)
