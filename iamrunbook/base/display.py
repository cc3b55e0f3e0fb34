"""How notebooks show tables: every value in full, and every value as text, never as markup.

pandas shortens long cells with `...` and hides columns of wide tables by default; an executed notebook
and its HTML export would keep the cut text. `configure` lifts those limits in the kernel, and `table`
turns an empty result into one sentence rather than a header-only table.

Account data is attacker-controlled (anyone who can edit one policy can name a condition key
`<img onerror=...>`), and an HTML record or a live JupyterLab runs whatever markup reaches it. So this module
is the one way the package turns data into HTML: `styled` (a pandas Styler that escapes cells, headers,
index names and caption), `text` (a sentence), and `escape` for widgets. A plain DataFrame is safe as it is
(pandas escapes its `_repr_html_`). tests/test_markup.py fails when any other module builds a Styler,
calls `to_html` or displays `HTML`/`Markdown`.
"""

from __future__ import annotations

import html

import pandas as pd

#: Rows a notebook shows of one table; the CSV side file holds all of them.
MAX_ROWS = 1000


def configure() -> None:
    pd.set_option("display.max_colwidth", None)
    pd.set_option("display.max_columns", None)
    pd.set_option("display.width", None)
    pd.set_option("display.max_rows", MAX_ROWS)
    pd.set_option("styler.render.max_elements", 1_000_000)
    pd.set_option("styler.format.escape", "html")  # a second guard: a Styler made elsewhere escapes its cells


def escape(value: object) -> str:
    """`value` as HTML text (quotes too, so it is safe inside an attribute)."""
    return html.escape(str(value), quote=True)


class Text:
    """A sentence for a notebook: plain in a terminal and the `.ipynb` text, escaped in HTML."""

    def __init__(self, sentence: str):
        self.sentence = str(sentence)

    def __repr__(self) -> str:
        return self.sentence

    def _repr_html_(self) -> str:
        return f"<p>{escape(self.sentence)}</p>"


def styled(frame: pd.DataFrame, caption: str | None = None):
    """A Styler over `frame` that shows every cell, header, index name and the caption as text.

    Styler's `escape` covers cells and index labels but not the names of the index and columns, nor the
    caption; those are escaped here before pandas sees them. Colour with `.map`/`.apply` on the result; do
    not call `.format` again (it would replace the escaping formatter)."""
    safe = frame.rename_axis(index=_escaped_names(frame.index), columns=_escaped_names(frame.columns))
    styler = safe.style.format(escape="html").format_index(escape="html", axis=0).format_index(escape="html", axis=1)
    return styler.set_caption(escape(caption)) if caption is not None else styler


def _escaped_names(index: pd.Index) -> list:
    return [None if n is None else escape(n) for n in index.names]


def table(frame: pd.DataFrame | None, empty: str):
    """`frame`, or the sentence `empty` when it has no rows (or there is no table at all)."""
    if frame is None or frame.empty:
        return Text(empty)
    return frame
