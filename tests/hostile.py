"""Hostile account data and how to find it as markup: the strings planted in an account, and a parser that
names any element or attribute they became (as text they are fine)."""

from __future__ import annotations

from html.parser import HTMLParser

#: Runs when rendered as markup: changes the page title (a browser test watches for it).
OWNED = "owned-by-account-data"
IMG = f"<img src=x onerror=\"document.title='{OWNED}'\">"
TAG = "<iamrbx-planted onclick=alert(1)>"
MARKUP = (IMG, TAG)
#: Legal IAM user names and tag values that a spreadsheet would run as formulas.
FORMULAS = ("=1+2", "+x", "-x", "@SUM1")


class _Planted(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag, attrs):
        source = dict(attrs).get("src") or ""
        if tag == "iamrbx-planted" or (tag == "img" and not source.startswith("data:")):
            self.found.append(f"<{tag}>")
        self.found += [f"{tag}[{name}]" for name, _ in attrs if name.startswith("on")]


def planted_markup(page: str) -> list[str]:
    """Every element or handler attribute in `page` that a planted string became."""
    parser = _Planted()
    parser.feed(page)
    parser.close()
    return parser.found


def formula_cells(rows) -> list[str]:
    """Text cells that would run as a formula in a spreadsheet (a number such as -1 is a number)."""
    return [c for row in rows for c in row
            if isinstance(c, str) and c.startswith(("=", "+", "-", "@", "\t", "\r")) and not _number(c)]  # fmt: skip


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True
