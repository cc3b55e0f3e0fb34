"""How notebooks show tables: every value in full, so the audit record never cuts an address or an ARN.

pandas shortens long cells with `...` and hides columns of wide tables by default; an executed notebook
and its HTML export would keep the cut text. `configure` lifts those limits in the kernel, and `table`
turns an empty result into one sentence rather than a header-only table.
"""

from __future__ import annotations

import pandas as pd

#: Rows a notebook shows of one table; the CSV side file holds all of them.
MAX_ROWS = 1000


def configure() -> None:
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_columns", None)
    pd.set_option("display.width", None)
    pd.set_option("display.max_rows", MAX_ROWS)
    pd.set_option("styler.render.max_elements", 1_000_000)


def table(frame: pd.DataFrame | None, empty: str):
    """`frame`, or the sentence `empty` when it has no rows (or there is no table at all)."""
    if frame is None or frame.empty:
        from IPython.display import Markdown

        return Markdown(empty)
    return frame
