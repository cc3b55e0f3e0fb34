"""nbval runs every notebook here against the strict embedded AWS, seeded with the legacy account.

Each notebook's kernel is a new process that inherits this process's environment when nbval starts it
(in the notebook's first cell's setup). So before that: reset the server, seed the legacy account, and
point AWS_* (endpoint, fake credentials, region), IAMRUNBOOK_HEADLESS and IAMRUNBOOK_RUN_DIR at the
server and a temporary folder. The environment is restored after the notebook's last cell, so tests that
run later in the same session see none of it. The notebooks themselves carry no test-only code.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from iamrunbook.flows.session import HEADLESS_ENV, RUN_DIR_ENV, START_DIR_ENV
from iamrunbook.sandbox import EmbeddedAws, seed

_state: dict = {"server": None, "saved": None, "tmp": None}


def _is_notebook_cell(item: pytest.Item) -> bool:
    return item.path.suffix == ".ipynb" and hasattr(item.parent, "kernel")


def _server() -> EmbeddedAws:
    if _state["server"] is None:
        _state["server"] = EmbeddedAws(load_aws_managed_policies=True).start()
        _state["tmp"] = Path(tempfile.mkdtemp(prefix="iamrunbook-nbval-"))
    return _state["server"]


def _notebook_env(server: EmbeddedAws, notebook: Path) -> dict[str, str]:
    run_dir = _state["tmp"] / notebook.stem
    run_dir.mkdir(parents=True, exist_ok=True)
    return {
        **server.env(),
        HEADLESS_ENV: "1",
        RUN_DIR_ENV: str(run_dir),
        START_DIR_ENV: str(notebook.parent),
    }


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Before the kernel of a notebook starts (its first cell's setup): fresh legacy account and env."""
    if not _is_notebook_cell(item) or item.parent.kernel is not None or _state["saved"] is not None:
        return
    server = _server()
    env = _notebook_env(server, item.path)
    # Nothing from the developer's shell (AWS_PROFILE, real keys) may reach a notebook kernel.
    names = {n for n in os.environ if n.startswith("AWS_")} | set(env)
    _state["saved"] = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ.pop(name, None)
    os.environ.update(env)
    server.reset()
    seed.seed_legacy_account(server.client("iam", internal=True))


@pytest.hookimpl(trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """After a notebook's last cell: give the environment back."""
    if not _is_notebook_cell(item) or (nextitem is not None and nextitem.parent is item.parent):
        return
    saved = _state["saved"] or {}
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    _state["saved"] = None


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _state["server"] is not None:
        _state["server"].stop()
        _state["server"] = None
    if _state["tmp"] is not None:
        shutil.rmtree(_state["tmp"], ignore_errors=True)
        _state["tmp"] = None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every cell nbval runs is end to end (a kernel per notebook): README's fast loop leaves them out."""
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(pytest.mark.e2e)
