"""End to end in a real browser: Voilà serves notebook 03, Chromium ticks a role, applies and confirms.

Debian's Chromium (`apt-get install chromium`; .ci/run installs it) is driven by Playwright's Python
package through `executable_path`: no browser is downloaded. Voilà runs the notebook live (not headless)
against the embedded AWS this test process serves, so the editor shows and the account is checked here.
Screenshots land in test-artifacts/ (gitignored) and, for the column check at three widths, in the test's
tmp folder, for people to look at.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from iamrunbook.core.spec import load_spec
from iamrunbook.flows.session import HEADLESS_ENV, RUN_DIR_ENV, START_DIR_ENV
from iamrunbook.runs import audit

pytestmark = pytest.mark.e2e  # every test here runs notebooks in kernels

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "03_import_and_apply.ipynb"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
START_SECONDS = 60  # Voilà listening
RENDER_MS = 180_000  # the notebook executed and the editor shown (an inventory read, a plan, Terraform files)
STEP_MS = 30_000  # one click's effect
APPLY_MS = 90_000  # a fresh read plus a dozen changes
STOP_SECONDS = 20

BOB_ROW = ".iamrb-user-bob_example_com"
LONG_NAME = "carol.with-a-long-name-for-the-grid@example-corporation.com"  # 59 of IAM's 64 characters
WIDTHS = (1024, 1280, 1920)

#: where each header cell and each row's name, checkboxes and description field are, left and right in px
GEOMETRY_JS = """(editor) => {
  const span = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.right]; };
  const tagged = (el, prefix) => [...el.classList].find((c) => c.startsWith(prefix)).slice(prefix.length);
  const head = {};
  for (const cell of editor.querySelectorAll('.iamrb-header [class*="iamrb-head-"]')) {
    head[tagged(cell, 'iamrb-head-')] = span(cell);
  }
  const rows = [...editor.querySelectorAll('.iamrb-user-row')].map((row) => {
    const name = row.querySelector('.iamrb-name');
    const roles = {};
    for (const input of row.querySelectorAll('input[type="checkbox"]')) {
      roles['role-' + tagged(input.closest('[class*="iamrb-role-"]'), 'iamrb-role-')] = span(input);
    }
    return {
      text: name.textContent, title: name.title, clipped: name.scrollWidth > name.clientWidth,
      name: span(name), roles, description: span(row.querySelector('.iamrb-description input')),
      remove: span(row.querySelector('.iamrb-remove')),
    };
  });
  return {head, rows, edge: span(editor)};
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(proc: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"voila exited with {proc.returncode} before listening:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    pytest.fail(f"voila did not listen on 127.0.0.1:{port} within {START_SECONDS}s:\n{log.read_text(errors='replace')}")


def stop(proc: subprocess.Popen) -> int | None:
    """SIGTERM, as a service manager would: Voilà shuts its kernels down and exits."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            return None
    return proc.returncode


def leftover_children(pid: int) -> list[int]:
    """Processes still in the session this test started Voilà in (its kernel, if it was left behind)."""
    import psutil

    return [p.pid for p in psutil.process_iter(["pid"]) if _sid(p.pid) == pid]


def _sid(pid: int) -> int | None:
    try:
        return os.getsid(pid)
    except OSError:
        return None


@pytest.fixture
def voila(aws, legacy_account, tmp_path):
    """Voilà serving notebook 03 on 127.0.0.1 with the env pointing at the embedded AWS (not headless)."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != HEADLESS_ENV}
    env.update(aws.env())
    env.update(
        {
            RUN_DIR_ENV: str(tmp_path / "run"),
            START_DIR_ENV: str(ROOT),
            "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
            "JUPYTER_PLATFORM_DIRS": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    log = tmp_path / "voila.log"
    command = [
        str(Path(sys.executable).with_name("voila")),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--Voila.port_retries=0",
        "--show_tracebacks=True",
        "--NotebookClient.timeout=120",
        str(NOTEBOOK),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_listening(proc, port, log)
        yield {"url": f"http://127.0.0.1:{port}/", "run_dir": tmp_path / "run", "log": log, "proc": proc}
    finally:
        code = stop(proc)
        left = leftover_children(proc.pid)
        if code is None or left:
            os.killpg(proc.pid, signal.SIGKILL)  # only the session this fixture started
            proc.wait(timeout=STOP_SECONDS)
        assert code is not None, f"voila did not stop within {STOP_SECONDS}s of SIGTERM"
        assert not left, f"voila left processes behind: {left}"


def attached(iam, user: str) -> set[str]:
    pages = iam.get_paginator("list_attached_user_policies").paginate(UserName=user)
    return {p["PolicyName"] for page in pages for p in page["AttachedPolicies"]}


def user_names(iam) -> set[str]:
    return {u["UserName"] for page in iam.get_paginator("list_users").paginate() for u in page["Users"]}


@contextmanager
def editor_page(voila, width: int = 1400) -> Iterator:
    """Chromium on the Voilà page, once the editor shows; yields (page, the editor's locator)."""
    assert CHROMIUM.is_file(), (
        f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium); .ci/run does this in CI"
    )
    ARTIFACTS.mkdir(exist_ok=True)
    console: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": width, "height": 1000})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}") if m.type == "error" else None)
            page.set_default_timeout(STEP_MS)
            page.goto(voila["url"], timeout=RENDER_MS, wait_until="domcontentloaded")
            editor = page.locator(".iamrb-editor")
            try:
                expect(editor).to_be_visible(timeout=RENDER_MS)
            except AssertionError:
                page.screenshot(path=ARTIFACTS / "voila_03_failed.png", full_page=True)
                log = voila["log"].read_text(errors="replace")
                raise AssertionError(f"the editor never showed; console: {console}\nvoila log:\n{log}") from None
            yield page, editor
        finally:
            browser.close()


def test_tick_apply_confirm_in_a_real_browser(voila, iam, aws):
    with editor_page(voila) as (page, editor):
        summary = editor.locator(".iamrb-preview .iamrb-summary")
        expect(summary).to_have_text("Plan: 1 to import, 11 to add, 0 to change, 0 to destroy.")
        admin = editor.locator(f"{BOB_ROW} .iamrb-role-admin input[type='checkbox']")
        expect(admin).not_to_be_checked()

        # Tick a role: the preview follows, planned in the kernel without any AWS call.
        aws.clear_calls()
        admin.check()
        expect(summary).to_have_text("Plan: 1 to import, 12 to add, 0 to change, 0 to destroy.")
        expect(editor.locator(".iamrb-preview")).to_contain_text('user_roles["bob@example.com/admin"]')
        assert aws.calls == []

        # Save: the spec (from the iam_users parameter) goes where the operator types, never the run folder.
        save_as = editor.locator(".iamrb-save-as input")
        expect(save_as).to_have_value(str(ROOT / "parameters" / "iam_users.yaml"))  # the lasting place offered
        team = voila["run_dir"].parent / "team.yaml"
        save_as.fill(str(team))
        editor.locator("button.iamrb-save").click()
        status = editor.locator(".iamrb-status")
        expect(status).to_contain_text("Saved 3 user(s)")
        saved = load_spec(iam_users_file=team)
        assert saved.users["bob@example.com"].roles == ("admin", "data_engineer")

        # Apply shows the summary and waits; nothing changes before Confirm.
        editor.locator("button.iamrb-apply").click()
        confirm = editor.locator("button.iamrb-confirm")
        expect(confirm).to_be_visible()
        expect(status).to_contain_text("Plan: 1 to import, 12 to add, 0 to change, 0 to destroy.")
        expect(status).to_contain_text("Nothing has changed yet")
        assert aws.mutating_calls() == []
        assert user_names(iam) == {"your-username"}
        editor.screenshot(path=ARTIFACTS / "voila_03_confirm.png")

        confirm.click()
        expect(status).to_have_text("Applied: 13 change(s) done.", timeout=APPLY_MS)
        expect(editor.locator(".iamrb-result")).to_contain_text('user_roles["bob@example.com/admin"]')
        expect(summary).to_have_text("No changes. Your account matches the spec.")
        expect(confirm).to_be_hidden()
        editor.scroll_into_view_if_needed()
        page.screenshot(path=ARTIFACTS / "voila_03_applied.png", full_page=True)
        editor.screenshot(path=ARTIFACTS / "voila_03_editor.png")

    assert user_names(iam) == {"your-username", "alice@example.com", "bob@example.com"}
    assert attached(iam, "bob@example.com") == {"AssumeAdminRolePolicy", "AssumeDataEngineerRolePolicy"}
    tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName="bob@example.com")["Tags"]}
    assert tags["Roles"] == "admin data_engineer" and tags["ManagedBy"] == "iamrunbook"
    (live,) = voila["run_dir"].parent.glob("*-03_import_and_apply-live")  # the apply is a run in the chain
    assert json.loads((live / "run.json").read_text(encoding="utf-8"))["kind"] == "interactive"
    assert audit.verify_local(live) == [] and (live / "apply_result.json").is_file()
    assert (ARTIFACTS / "voila_03_applied.png").stat().st_size > 10_000


def test_columns_line_up_at_three_widths(voila, tmp_path):
    """One grid template for the header and every row: each checkbox sits in its header's column and no
    name runs into the first checkbox, at 1,024, 1,280 and 1,920 px; a long name is cut, whole in its title."""
    with editor_page(voila, WIDTHS[0]) as (page, editor):
        new_user = editor.locator(".iamrb-new-user input")
        new_user.fill(LONG_NAME)
        new_user.press("Enter")  # Enter adds the user, as the Add button does
        long_row = editor.locator(".iamrb-user-carol_with-a-long-name-for-the-grid_example-corporation_com")
        expect(long_row).to_be_visible()
        expect(new_user).to_have_value("")
        long_row.locator(".iamrb-role-data_engineer input[type='checkbox']").check()
        expect(editor.locator(".iamrb-preview")).to_contain_text(f'user_roles["{LONG_NAME}/data_engineer"]')

        for width in WIDTHS:
            page.set_viewport_size({"width": width, "height": 1800})  # the whole editor in view
            shot = tmp_path / f"editor_{width}px.png"
            editor.screenshot(path=shot)
            assert shot.stat().st_size > 10_000
            geometry = editor.evaluate(GEOMETRY_JS)
            head, rows = geometry["head"], geometry["rows"]
            assert [r["text"] for r in rows] == ["your-username", "alice@example.com", "bob@example.com", LONG_NAME]
            for row in rows:
                assert set(row["roles"]) == {k for k in head if k.startswith("role-")}, width
                for key, (left, right) in row["roles"].items():
                    assert head[key][0] <= left and right <= head[key][1], (width, row["text"], key, head[key])
                first_box = min(left for left, _ in row["roles"].values())
                assert row["name"][1] <= first_box, (width, row["text"], row["name"], first_box)
                assert head["user"][0] <= row["name"][0], (width, row["text"])
                description = head["description"]
                assert description[0] <= row["description"][0] and row["description"][1] <= description[1], width
                assert row["title"] == row["text"]  # the whole name as a tooltip, cut or not
                assert row["remove"][1] <= geometry["edge"][1], (width, row["remove"], geometry["edge"])  # issue 25
            cut = {r["text"] for r in rows if r["clipped"]}
            assert cut <= {LONG_NAME}, width
            if width == WIDTHS[0]:
                assert cut == {LONG_NAME}  # too long for the user column at 1,024 px: cut with an ellipsis
