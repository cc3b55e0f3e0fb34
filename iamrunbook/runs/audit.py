"""The audit trail: check that run records were not altered, and list them for an auditor.

`verify` recomputes the sha256 of every file of every run against its manifest (`run.json`'s
`artifacts`) and follows the hash chain (`previous_run`): a modified, missing or extra file, a deleted
run and an edited manifest are each named. The chain proves order and integrity of one copy; the newest
manifest has no successor to vouch for it, which is what the write-once archive (archive.py) is for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd

from iamrunbook.base import records
from iamrunbook.runs import manifest

READ_ACTIONS: tuple[str, ...] = ()
WRITE_ACTIONS: tuple[str, ...] = ()


@dataclass(frozen=True)
class Finding:
    """One thing wrong with the record: `where` is the run folder or file, relative to what was checked;
    `kind` is modified, missing, extra, unreadable or chain."""

    where: str
    what: str
    kind: str = "modified"

    def line(self) -> str:
        return f"{self.where}: {self.what}"

    def as_dict(self) -> dict:
        return {"where": self.where, "kind": self.kind, "what": self.what}


def _load(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def run_dirs(target: Path) -> list[Path]:
    """The run folders under `target` (an out folder), or `target` itself when it is one."""
    if (target / records.RUN_MANIFEST.name).is_file():
        return [target]
    return sorted(p for p in target.iterdir() if p.is_dir() and not p.name.startswith("."))


def check_files(run_dir: Path, recorded: dict[str, str], label: str) -> list[Finding]:
    """Every file against the manifest's hashes: modified, missing, or not in the manifest at all."""
    found = manifest.artifact_hashes(run_dir)
    problems = []
    for name, digest in sorted(recorded.items()):
        if name not in found:
            problems.append(Finding(f"{label}/{name}", "missing", "missing"))
        elif found[name] != digest:
            problems.append(Finding(f"{label}/{name}", f"modified (sha256 {found[name]}, recorded {digest})"))
    extra = sorted(set(found) - set(recorded))
    problems += [Finding(f"{label}/{name}", "extra: not in run.json", "extra") for name in extra]
    return problems


def check_chain(target: Path, label: str) -> list[Finding]:
    """Each manifest's `previous_run` must name an existing run whose run.json has that sha256; the chain
    must be one line (no run named twice, one head)."""
    paths = manifest.manifests(target)
    problems, named = [], {}
    for run_id, path in paths.items():
        link = (_load(path) or {}).get("previous_run")
        if not link:
            continue
        previous = str(link.get("id"))
        where = f"{label}/{run_id}/{records.RUN_MANIFEST.name}"
        if previous in named:
            problems.append(Finding(where, f"previous_run {previous} is also claimed by {named[previous]}", "chain"))
        named[previous] = run_id
        if previous not in paths:
            problems.append(Finding(f"{label}/{previous}", f"missing run (named as previous by {run_id})", "missing"))
        elif manifest.sha256(paths[previous]) != link.get("sha256"):
            problems.append(Finding(f"{label}/{previous}/{records.RUN_MANIFEST.name}",
                                    f"modified: {run_id} recorded sha256 {link.get('sha256')}"))  # fmt: skip
    firsts = [r for r, p in paths.items() if not (_load(p) or {}).get("previous_run")]
    if len(firsts) > 1:
        problems.append(
            Finding(label, f"{len(firsts)} runs start a chain ({', '.join(firsts)}): expected one", "chain")
        )
    return problems


def verify_local(target: Path) -> list[Finding]:
    """Every run folder under `target` (or `target` as one run) and the chain between them."""
    target = target.resolve()
    label = target.name
    single = (target / records.RUN_MANIFEST.name).is_file()
    problems: list[Finding] = []
    for run_dir in run_dirs(target):
        where = label if single else f"{label}/{run_dir.name}"
        data = _load(run_dir / records.RUN_MANIFEST.name)
        if data is None and not single and manifest.manifests(run_dir):
            # an out folder of its own (the parent folder of `run --accounts`): its runs and its one chain
            problems += [replace(f, where=f"{label}/{f.where}") for f in verify_local(run_dir)]
            continue
        if data is None:
            if not (run_dir / records.SESSION.name).is_file():  # an interactive session keeps no manifest
                problems.append(Finding(where, "no readable run.json", "unreadable"))
            continue
        problems += check_files(run_dir, dict(data.get("artifacts") or {}), where)
    if not single:
        problems += check_chain(target, label)
    return problems


# --- listing ----------------------------------------------------------------------------------------
def _summary(counts: dict | None) -> str:
    if not counts:
        return ""
    return " ".join(f"{symbol}{counts.get(key, 0)}" for symbol, key in (("<=", "import"), ("+", "add"),
                                                                        ("~", "change"), ("-", "destroy")))  # fmt: skip


def listing(target: Path, within: str = "") -> list[dict]:
    """One row per run: when, caller, mode, exit code, plan summary, approved plan and approver. The runs of an
    accounts folder (`run --accounts`) are listed too, as `<accounts folder>/<run>`."""
    rows = []
    for run_dir in run_dirs(target.resolve()):
        data = _load(run_dir / records.RUN_MANIFEST.name)
        if data is None and not within and manifest.manifests(run_dir):
            rows += listing(run_dir, within=f"{run_dir.name}/")
        if data is None:
            continue
        reviewed = data.get("reviewed_plan") or {}
        rows.append(
            {
                "run": within + (data.get("id") or run_dir.name),
                "kind": data.get("kind", "run"),
                "started": data.get("started"),
                "caller": data.get("caller_arn"),
                "account": data.get("account_id"),
                "mode": data.get("mode"),
                "exit_code": data.get("exit_code"),
                "plan": _summary(data.get("plan_summary")),
                "approved_plan": reviewed.get("run_id"),
                "approved_by": data.get("approved_by") or reviewed.get("approved_by"),
                "reviewer": data.get("reviewer"),
            }
        )
    return sorted(rows, key=lambda r: (str(r["started"]), r["run"]))


def listing_frame(rows: Iterable[dict]) -> pd.DataFrame:
    columns = ["started", "run", "kind", "caller", "mode", "exit_code", "plan", "approved_plan", "approved_by"]
    columns.append("reviewer")
    return pd.DataFrame(list(rows), columns=columns).fillna("")
