"""The live notebook into a live change's run folder: asked of a real Jupyter server through its contents API
(ui/notebook.py). The kernel id, which a live kernel reads from its connection file, is the session's here."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import nbformat
import pytest

from iamrunbook.ui import notebook

pytestmark = pytest.mark.e2e  # notebooks in kernels, a Jupyter server or Chromium

START_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _call(url: str, token: str, method: str = "GET", body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


@pytest.fixture
def jupyter(tmp_path, monkeypatch):
    """A Jupyter server over tmp_path/work, its runtime files in tmp_path/runtime, stopped afterwards."""
    work, runtime, port, token = tmp_path / "work", tmp_path / "runtime", _free_port(), secrets.token_hex(16)
    work.mkdir()
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    command = [sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.root_dir={work}", f"--IdentityProvider.token={token}", "--ServerApp.port_retries=0",
               "--allow-root"]
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}
    with (tmp_path / "server.log").open("wb") as log:
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + START_SECONDS
        while not list(runtime.glob("jpserver-*.json")):
            assert time.monotonic() < deadline and proc.poll() is None, (tmp_path / "server.log").read_text()
            time.sleep(0.3)
        yield {"url": url, "token": token, "work": work}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # only the session this fixture started
            proc.wait(timeout=30)


def test_the_notebook_of_this_kernel_is_saved_into_the_run_folder(jupyter, tmp_path, monkeypatch):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("rb = start(globals())")])
    nbformat.write(nb, jupyter["work"] / "03_import_and_apply.ipynb")
    asked = {"path": "03_import_and_apply.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
    session = _call(jupyter["url"] + "api/sessions", jupyter["token"], "POST", asked)
    monkeypatch.setattr(notebook, "kernel_id", lambda: session["kernel"]["id"])
    folder = tmp_path / "run"
    name, note = notebook.save_notebook(folder, "03_import_and_apply")
    assert name == "03_import_and_apply.ipynb" and "as last saved" in note
    saved = nbformat.read(folder / name, as_version=4)
    assert [c.source for c in saved.cells] == ["rb = start(globals())"]
    assert "no HTML copy" not in note  # and its HTML copy beside it, as a headless run leaves
    copy = (folder / "03_import_and_apply.html").read_text(encoding="utf-8")
    assert copy.startswith("<!DOCTYPE html>") and "globals" in copy  # the cell, syntax-highlighted

    monkeypatch.setattr(notebook, "kernel_id", lambda: "not-a-kernel-of-this-server")
    assert notebook.save_notebook(tmp_path / "other", "x") == (
        None, "no running Jupyter server has a notebook session for kernel not-a-kernel-of-this-server")
    monkeypatch.setattr(notebook, "kernel_id", lambda: None)
    assert notebook.save_notebook(tmp_path / "other", "x")[0] is None and not (tmp_path / "other").exists()
