"""Progress bars for long steps: a widget in a live Jupyter session, plain text when headless.

Under `iamrunbook run` (papermill) a widget bar would be stored as its first frame ("0%") in the audit
record; the text bar writes its final state to the cell's output instead.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TypeVar

T = TypeVar("T")

HEADLESS_ENV = "IAMRUNBOOK_HEADLESS"


def headless() -> bool:
    """True under `iamrunbook run`, papermill jobs and tests: no widget may wait for a click."""
    return os.environ.get(HEADLESS_ENV, "") not in ("", "0", "false")


def progress(items: Iterable[T], desc: str, unit: str) -> Iterable[T]:
    if headless():
        from tqdm.std import tqdm
    else:
        from tqdm.auto import tqdm
    return tqdm(items, desc=desc, unit=unit)
