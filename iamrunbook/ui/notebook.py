"""The live notebook into a run folder: asked of the Jupyter server that runs this kernel, through its
contents API (the kernel cannot see the notebook itself; the server knows which notebook this kernel serves).

What the server holds is the notebook as last saved: outputs since the last save are not in it, and the note
says so. When no server answers (a console, Voilà, a kernel started elsewhere), nothing is written and the
note says why, for the run record and the operator.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path

from iamrunbook.base import records
from iamrunbook.runs.record_html import export_html

TIMEOUT_SECONDS = 5


def kernel_id() -> str | None:
    """This kernel's id, from its connection file's name (`kernel-<id>.json`), or None outside a kernel."""
    try:
        from ipykernel.connect import get_connection_file

        stem = Path(get_connection_file()).stem
    except (ImportError, RuntimeError, AttributeError):
        return None
    return stem.removeprefix("kernel-") if stem.startswith("kernel-") else None


def _get(server: dict, path: str) -> object:
    request = urllib.request.Request(server["url"].rstrip("/") + "/" + path)
    if server.get("token"):
        request.add_header("Authorization", f"token {server['token']}")
    with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:  # noqa: S310 - the local server
        return json.loads(answer.read().decode("utf-8"))


def _notebook_of(kernel: str) -> tuple[dict, str] | None:
    """The running server and the notebook path whose session holds `kernel`."""
    from jupyter_server.serverapp import list_running_servers

    for server in list_running_servers():
        try:
            sessions = _get(server, "api/sessions")
        except (OSError, ValueError):
            continue
        for session in sessions if isinstance(sessions, list) else []:
            if (session.get("kernel") or {}).get("id") == kernel and session.get("path"):
                return server, session["path"]
    return None


def save_notebook(folder: Path, name: str) -> tuple[str | None, str]:
    """`<name>.ipynb` in `folder` from the server's contents API: (file name, note), or (None, why not)."""
    kernel = kernel_id()
    if kernel is None:
        return None, "this kernel has no Jupyter connection file to find its notebook by"
    try:
        found = _notebook_of(kernel)
    except ImportError:
        return None, "jupyter_server is not installed in this kernel's environment"
    if found is None:
        return None, f"no running Jupyter server has a notebook session for kernel {kernel}"
    server, path = found
    try:
        model = _get(server, "api/contents/" + urllib.parse.quote(path) + "?type=notebook&content=1")
    except (OSError, ValueError) as exc:
        return None, f"the Jupyter server did not return {path}: {exc}"
    target = f"{name}.ipynb"
    records.write(folder, records.NOTEBOOKS, json.dumps(model["content"], indent=1), name=target)
    note = f"{path} as last saved at {model.get('last_modified')}; outputs after that save are not in it"
    try:
        export_html(Path(folder) / target)
    except Exception as exc:  # noqa: BLE001 - the notebook is kept; the record says why it has no HTML copy
        return target, f"{note}; no HTML copy: {type(exc).__name__}: {exc}"
    return target, note
