"""Issue 25: an account seeded with hostile strings, run headless once (the chain, 05 and 06, plan only), and
every record checked: no element or handler in any HTML record comes from account data (parsed, then opened in
Chromium, where the planted `document.title` change never happens), no CSV cell runs as a formula, and the
live widgets show the same data as text."""

from __future__ import annotations

import csv
from pathlib import Path

import ipywidgets
import pytest
from aws_env import pointed_at
from hostile import FORMULAS, IMG, OWNED, formula_cells, planted_markup

from iamrunbook.base.names import MANAGED_BY_KEY, MANAGED_BY_VALUE
from iamrunbook.cli import runner
from iamrunbook.sandbox import seed

pytestmark = pytest.mark.e2e  # notebooks in kernels, a Jupyter server or Chromium

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "parameters" / "example.yaml"
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def hostile_runs(tmp_path_factory, embedded_aws):
    """One plan-only run of the chain, one of 05 (offboarding a formula-named user) and one of 06."""
    out = tmp_path_factory.mktemp("hostile") / "runs"
    params = {"iam_users_file": str(EXAMPLE)}
    with pointed_at(embedded_aws):
        seed.seed_hostile_account(embedded_aws.client("iam", internal=True), IMG, FORMULAS)
        runs = [runner.run(params=params, out=out),
                runner.run(["05_offboard_user"], {**params, "offboard_user": FORMULAS[0]}, out=out),
                runner.run(["06_access_review"], params, out=out)]  # fmt: skip
    for run in runs:
        assert run.failure is None and run.exit_code in (0, 2), (run.failure, run.problems)
    return [run.run_dir for run in runs]


def test_no_html_record_holds_markup_from_the_account(hostile_runs):
    pages = [page for run_dir in hostile_runs for page in sorted(run_dir.glob("*.html"))]
    assert len(pages) == 6
    for page in pages:
        assert planted_markup(page.read_text(encoding="utf-8")) == [], page.name
    delta = (hostile_runs[0] / "02_delete_legacy_policy.html").read_text(encoding="utf-8")
    assert "aws:PrincipalTag/&lt;img src=x onerror=" in delta  # the key 02's Styler rendered as markup, as text


def test_chromium_runs_no_planted_handler(hostile_runs):
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.is_file(), f"{CHROMIUM} is missing: apt-get install -y chromium"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            for record in (p for run_dir in hostile_runs for p in sorted(run_dir.glob("*.html"))):
                page.goto(record.as_uri(), wait_until="load")
                page.wait_for_timeout(200)  # an onerror fires once the broken image fails to load
                assert page.title() != OWNED and page.evaluate("document.querySelectorAll('img').length") == 0
        finally:
            browser.close()


def test_no_csv_cell_runs_as_a_formula(hostile_runs):
    neutralised = 0
    for run_dir in hostile_runs:
        for path in run_dir.rglob("*.csv"):
            with path.open(encoding="utf-8", newline="") as fh:
                rows = list(csv.reader(fh))
            assert formula_cells(rows) == [], path.name
            neutralised += sum(cell == f"'{f}" for row in rows for cell in row for f in FORMULAS)
    assert neutralised >= 20  # the planted names and tags were written, as text


def shown_html(widget) -> str:
    own = widget.value if isinstance(widget, ipywidgets.HTML) else ""
    return own + "".join(shown_html(child) for child in getattr(widget, "children", ()))


def test_the_widgets_show_account_data_as_text(aws, session, tmp_path):
    from iamrunbook.flows import review as review_view
    from iamrunbook.flows.session import open_runbook
    from iamrunbook.ui.review import ReviewWidget
    from iamrunbook.ui.widgets import RoleMatrixEditor

    iam = aws.client("iam", internal=True)
    seed.seed_hostile_account(iam, IMG, FORMULAS)
    iam.tag_user(UserName=FORMULAS[0], Tags=[{"Key": MANAGED_BY_KEY, "Value": MANAGED_BY_VALUE}])  # to be deleted
    rb = open_runbook({"iam_users_file": str(EXAMPLE)}, tmp_path, session=session)
    editor = RoleMatrixEditor(rb.spec(), rb.inventory(), tmp_path / "spec.yaml", iam=rb.iam, sts=rb.sts)
    view = ReviewWidget(review_view.ReviewDraft(review_view.Review.read(rb), {}, IMG), rb)
    view.save_button.click()  # "Not saved": the message names what is missing
    for widget in (editor, view):
        shown = shown_html(widget)
        assert shown and planted_markup(shown) == []
    assert f'users[&quot;{FORMULAS[0]}&quot;]' in shown_html(editor)  # the plan preview names it, as text
