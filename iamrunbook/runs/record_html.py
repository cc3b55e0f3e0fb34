"""The HTML copy of an executed notebook, for readers without Jupyter: self-contained and offline.

One owner for headless runs (cli/runner.py) and live sessions (ui/notebook.py) alike; the template,
html/record.html.j2, loads no script from any network and shows every value in full.
"""

from __future__ import annotations

from pathlib import Path

RECORD_TEMPLATE = Path(__file__).resolve().parent / "html" / "record.html.j2"


def export_html(notebook: Path) -> Path:
    """`<notebook>.html` beside the notebook, through the record template."""
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", template_file=str(RECORD_TEMPLATE))
    body, _ = exporter.from_filename(str(notebook))
    path = notebook.with_suffix(".html")
    path.write_text(body, encoding="utf-8")
    return path
