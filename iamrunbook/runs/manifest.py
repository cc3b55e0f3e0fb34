"""Run folders and their manifest, `run.json`: what ran, the outcome, and the sha256 of every file.

Manifests form a hash chain per out folder: each names the previous manifest written there and its
sha256 (`previous_run`), so deleting a run or editing a record breaks a link that `iamrunbook audit
verify` names. The link is chosen and the manifest written under a lock on the out folder, so runs that
finish at the same moment (many accounts at once) still form one chain. The chain proves order and
integrity inside one copy; a copy archived to write-once storage is what proves the newest manifest.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

from iamrunbook.base import records
from iamrunbook.base.records import Shape

RUNS_ENV = "IAMRUNBOOK_RUNS"
#: jupyter_client tells each kernel the process that started it: one Jupyter session, many kernels.
JUPYTER_PARENT_ENV = "JPY_PARENT_PID"


def utc_stamp(moment: datetime | None = None) -> str:
    return (moment or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="seconds")


def new_run_dir(out: str | Path, label: str) -> Path:
    """`<out>/<UTC timestamp>-<label>/`, created; an existing folder is never reused (suffix -2, -3 ...)."""
    base = Path(out)
    base.mkdir(parents=True, exist_ok=True)
    stem = f"{utc_stamp()}-{label}"
    for n in range(1, 1000):
        path = base / (stem if n == 1 else f"{stem}-{n}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path.resolve()
    raise RuntimeError(f"could not create a new run folder under {base}")


#: what marks a project's root folder, looked for from the notebook's folder upwards
PROJECT_MARKERS = ("pyproject.toml", ".git")


def runs_root(cwd: Path) -> Path:
    """Where interactive sessions keep their run folders, wherever the notebook sits: IAMRUNBOOK_RUNS, else
    `runs/` in the project root (the nearest folder up from `cwd` with a pyproject.toml or .git, as the CLI's
    default `runs` from the checkout), else beside a `notebooks/` folder, else in `cwd`."""
    override = os.environ.get(RUNS_ENV)
    if override:
        return Path(override).resolve()
    cwd = cwd.resolve()
    return (project_root(cwd) or (cwd.parent if cwd.name == "notebooks" else cwd)) / "runs"


def project_root(cwd: Path) -> Path | None:
    """The nearest folder from `cwd` upwards with a pyproject.toml or .git, or None."""
    cwd = cwd.resolve()
    return next((p for p in (cwd, *cwd.parents) if any((p / m).exists() for m in PROJECT_MARKERS)), None)


def _session_key() -> str:
    """This Jupyter session: the parent process id and its start time (pids are reused)."""
    pid = os.environ.get(JUPYTER_PARENT_ENV) or str(os.getppid())
    try:
        started = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        started = ""
    return f"{pid}:{started}"


def session_run_dir(cwd: Path) -> Path:
    """One run folder per Jupyter session under runs_root: found again by its session.json, else made."""
    root = runs_root(cwd)
    key = _session_key()
    for marker in sorted(root.glob("*-interactive*/session.json"), reverse=True):
        with contextlib.suppress(OSError, ValueError):
            if json.loads(marker.read_text(encoding="utf-8")).get("session") == key:
                return marker.parent
    folder = new_run_dir(root, "interactive")
    print(f"live run folders go to {root} ({RUNS_ENV} if set, else the project root)")
    started = utc_iso(datetime.now(timezone.utc))
    records.write(folder, records.SESSION, {"session": key, "kind": "interactive", "started": started})
    return folder


def versions() -> dict[str, str]:
    """The versions run.json records: Python and the packages that decide what a run does."""
    found = {"python": sys.version.split()[0]}
    for dist in ("iamrunbook", "boto3", "papermill"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "not installed"
    return found


# --- hashes -----------------------------------------------------------------------------------------
def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


def artifact_hashes(run_dir: Path) -> dict[str, str]:
    """sha256 of every file in the run folder (but run.json itself), by relative POSIX path."""
    return {
        p.relative_to(run_dir).as_posix(): sha256(p)
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.relative_to(run_dir).as_posix() != records.RUN_MANIFEST.name
    }


# --- the manifest -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunManifest(Shape):
    """run.json. Keys are the public record of a run; `artifacts` and `previous_run` make it verifiable."""

    id: str
    kind: str
    parameters: dict
    parameters_file: str | None
    mode: str
    caller_arn: str | None
    account_id: str | None
    versions: dict
    started: str
    finished: str
    notebooks: list[dict]
    plan_summary: dict | None
    legacy_plan_summary: dict | None
    verification_ok: bool | None
    pending: list[str]
    exit_code: int
    artifacts: dict[str, str] = field(default_factory=dict)
    #: a change confirmed in a live session (runs/live.py): who confirmed it; the session, the spec file kept
    approved_by: str | None = None
    live: dict | None = None
    problems: list[str] = field(default_factory=list)
    previous_run: dict | None = None
    reviewed_plan: dict | None = None
    reviewer: str | None = None
    archive: str | None = None

    def to_dict(self) -> dict:
        data = super().to_dict()
        data.setdefault("previous_run", None)  # the first run of a chain says so explicitly
        return data

    @classmethod
    def from_json(cls, text: str) -> RunManifest:
        """A field that was None is left out of the file (Shape.to_dict): it reads back as None, so a run of
        03 alone (no legacy plan, no verification) stays readable, e.g. as a reviewed plan."""
        data = json.loads(text)
        return cls(**{**dict.fromkeys(_NULLABLE), **{k: v for k, v in data.items() if k in _FIELDS}})


_NULLABLE = ("parameters_file", "caller_arn", "account_id", "plan_summary", "legacy_plan_summary", "verification_ok")
_FIELDS = {f.name for f in fields(RunManifest)}


@contextlib.contextmanager
def locked(out: Path) -> Iterator[None]:
    """Serialise the choice of a chain link and the write of a manifest within one out folder (a lock on
    the folder itself, so no lock file sits among the runs)."""
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def manifests(out: Path) -> dict[str, Path]:
    """run id -> run.json of every run folder directly under `out`."""
    return {p.parent.name: p for p in sorted(out.glob(f"*/{records.RUN_MANIFEST.name}"))}


def chain_head(out: Path, exclude: str | None = None) -> tuple[str, Path] | None:
    """The newest manifest of the chain: the one no other names as its previous run."""
    found = {run_id: path for run_id, path in manifests(out).items() if run_id != exclude}
    named: set[str] = set()
    finished: dict[str, str] = {}
    for run_id, path in found.items():
        data = _load(path)
        finished[run_id] = str(data.get("finished", ""))
        named.add(str((data.get("previous_run") or {}).get("id", "")))
    heads = [run_id for run_id in found if run_id not in named]
    if not heads:
        return None
    newest = max(heads, key=lambda run_id: (finished[run_id], run_id))
    return newest, found[newest]


def _load(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_manifest(run_dir: Path, manifest: RunManifest) -> RunManifest:
    """Hash the folder, link the manifest to the chain head of its out folder, write run.json."""
    out = run_dir.parent
    with locked(out):
        head = chain_head(out, exclude=run_dir.name)
        previous = {"id": head[0], "sha256": sha256(head[1])} if head else None
        final = replace(manifest, artifacts=artifact_hashes(run_dir), previous_run=previous)
        records.write(run_dir, records.RUN_MANIFEST, final)
    return final
