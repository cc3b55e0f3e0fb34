"""Account data is text, never markup or a formula: the one HTML helper (base/display.py), the one CSV writer
(base/records.py), and a rule that no other module builds HTML from a table."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pandas as pd
from hostile import FORMULAS, IMG, MARKUP, TAG, formula_cells, planted_markup

from iamrunbook.base import display, records
from iamrunbook.flows import reports

PACKAGE = Path(__file__).resolve().parents[1] / "iamrunbook"
#: How HTML is made from data. Only base/display.py may do it; ipywidgets' HTML is built in ui/ with escape.
FORBIDDEN = re.compile(r"\.style\.(map|apply|format|set_caption|to_html)|\bStyler\b|\.to_html\(|"
                       r"from IPython\.display import .*\b(HTML|Markdown)\b")  # fmt: skip


def test_only_the_display_module_turns_tables_into_html():
    found = [
        f"{path.relative_to(PACKAGE)}:{n}: {line.strip()}"
        for path in PACKAGE.rglob("*.py")
        if path.name != "display.py" and "sandbox" not in path.parts
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert found == []


def _delta_with(value: str) -> pd.DataFrame:
    row = dict.fromkeys(reports.DELTA_COLUMNS, value) | {"change": "removed", "in_spec": False}
    return pd.DataFrame([row], columns=reports.DELTA_COLUMNS)


def test_styled_tables_show_account_data_as_text():
    """02's privilege delta rendered a condition key as markup (issue 25): every cell, header and name escapes."""
    for value in MARKUP:
        page = reports.styled_delta(_delta_with(value)).to_html()
        assert planted_markup(page) == [] and "background-color: #c62828" in page
        matrix = pd.DataFrame("yes", index=pd.Index([value], name=TAG), columns=pd.Index([value], name=IMG))
        assert planted_markup(reports.styled_matrix(matrix).to_html()) == []
        assert planted_markup(display.styled(matrix, caption=value).to_html()) == []
    assert planted_markup("<p>" + IMG + "</p>") == ["<img>", "img[onerror]"]  # the finder finds


def test_an_empty_table_is_an_escaped_sentence():
    shown = display.table(pd.DataFrame(), f"Nobody holds {TAG}.")
    assert planted_markup(shown._repr_html_()) == [] and repr(shown) == f"Nobody holds {TAG}."
    frame = pd.DataFrame({"a": [IMG]})
    assert display.table(frame, "none") is frame and planted_markup(frame._repr_html_()) == []


def test_csv_side_files_neutralise_formulas_json_keeps_raw(tmp_path):
    values = [*FORMULAS, "\tx", "\rx", "alice", "a=b"]
    frame = pd.DataFrame({"user": values, "n": range(len(values))})
    frame.insert(2, "-n", [-1] * len(values))
    records.write(tmp_path, records.LEGACY_HOLDERS, frame[["user", "n"]].set_axis(["kind", "name"], axis=1))
    records.write(tmp_path, records.EFFECTIVE_ACCESS, frame)
    with (tmp_path / records.EFFECTIVE_ACCESS.name).open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    assert formula_cells(rows) == []
    assert rows[0] == ["user", "n", "'-n"] and [r[0] for r in rows[1:]] == [f"'{v}" for v in values[:6]] + values[6:]
    assert [r[2] for r in rows[1:]] == ["-1"] * len(values)  # numbers are numbers
    records.write(tmp_path, records.OFFBOARD_CREDENTIALS, {"user": "=1+2"}, name="offboard_=1+2_credentials.json")
    assert json.loads((tmp_path / "offboard_=1+2_credentials.json").read_text())["user"] == "=1+2"


def test_every_csv_of_the_package_goes_through_the_one_writer():
    writers = [
        f"{path.relative_to(PACKAGE)}:{n}"
        for path in PACKAGE.rglob("*.py")
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\.to_csv\(|csv\.writer\(|DictWriter\(", line)
    ]
    assert writers == ["base/records.py:" + str(_line_of("neutral_csv(content).to_csv("))]


def _line_of(text: str) -> int:
    lines = (PACKAGE / "base" / "records.py").read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)
