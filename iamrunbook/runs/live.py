"""A change made in a live session is a run like a headless one: its own run folder, linked into the chain.

A headless run of 02, 03, 05 or 06 leaves a run folder whose run.json `iamrunbook audit` lists and verifies.
A live Confirm (or a live signature in 06) changes the account just as much, so it leaves the same: a new
run folder beside the session's, in the same out folder (one chain), holding the records that step writes,
the spec file with its sha256, who confirmed (`approved_by`), and the notebook when the front end could save
it (else the reason, in run.json and on screen). The session folder keeps the session's working files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from iamrunbook.base import records
from iamrunbook.runs import manifest

#: run.json's `kind` for a change confirmed in a live session
LIVE_KIND = "interactive"

#: What a headless run of each changing step writes about its change; a live change copies the ones the
#: session wrote (its own plan and result may be given instead, e.g. the plan 03's editor applied).
STEP_RECORDS: dict[str, tuple[records.Record, ...]] = {
    "02_delete_legacy_policy": (records.LEGACY_DELTA, records.LEGACY_BACKUP, records.LEGACY_PLAN,
                                records.LEGACY_RESULT),
    "03_import_and_apply": (records.PLAN, records.APPLY_RESULT),
    "05_offboard_user": (records.OFFBOARD_CREDENTIALS, records.OFFBOARD),
    "06_access_review": (records.ACCESS_REVIEW, records.ACCESS_REVIEW_TABLE, records.PROPOSED_YAML,
                         records.PROPOSED_TFVARS, records.PROPOSED_DIFF, records.REVIEWED_YAML),
}  # fmt: skip


@dataclass(frozen=True)
class LiveChange:
    """One confirmed change: the step, whether it finished, who confirmed it, the session's parameters."""

    step: str
    ok: bool
    approved_by: str
    identity: records.Identity
    parameters: Mapping[str, Any]
    started: datetime
    spec_file: Path | None = None
    files: Mapping[records.Record, Any] = field(default_factory=dict)


def spec_copy(folder: Path, spec_file: Path | None) -> tuple[str | None, str | None]:
    """The spec file into the run folder (`spec/<name>`): its path as recorded and its sha256."""
    if spec_file is None or not Path(spec_file).is_file():
        return None, None
    written = records.write(folder, records.SPEC_FILE, Path(spec_file).read_bytes(), name=f"spec/{spec_file.name}")
    return str(spec_file), manifest.sha256(written)


def prepare(session_dir: Path, change: LiveChange) -> Path:
    """A new run folder beside the session's with the identity, the step's records and the spec file."""
    folder = manifest.new_run_dir(session_dir.parent, f"{change.step}-live")
    records.write(folder, records.IDENTITY, change.identity)
    given = {record.name for record in change.files}
    for record in STEP_RECORDS[change.step]:
        if record.name in given:
            continue
        for path in sorted(session_dir.glob(record.name)):
            records.write(folder, record, path.read_bytes(), name=path.relative_to(session_dir).as_posix())
    for record, content in change.files.items():
        records.write(folder, record, content)
    return folder


def finish(folder: Path, change: LiveChange, session: str, notebook: str | None, note: str) -> manifest.RunManifest:
    """run.json for a prepared folder, linked into the chain of its out folder (under the folder lock)."""
    spec_file, spec_sha = spec_copy(folder, change.spec_file)
    identity = change.identity
    plan = records.read(folder, records.PLAN) if change.step == "03_import_and_apply" else None
    legacy = records.read(folder, records.LEGACY_PLAN) if change.step == "02_delete_legacy_policy" else None
    review = records.read(folder, records.ACCESS_REVIEW) if change.step == "06_access_review" else None
    status = "succeeded" if change.ok else "failed"
    return manifest.write_manifest(folder, manifest.RunManifest(
        id=folder.name, kind=LIVE_KIND, parameters=dict(change.parameters), parameters_file=None, mode="apply",
        caller_arn=identity.caller_arn, account_id=identity.account_id,
        versions=manifest.versions(), started=manifest.utc_iso(change.started),
        finished=manifest.utc_iso(datetime.now(timezone.utc)),
        notebooks=[{"name": change.step, "status": status, "output": notebook, "html": None, "note": note}],
        plan_summary=plan.summary() if plan is not None else None,
        legacy_plan_summary=legacy.summary() if legacy is not None else None, verification_ok=None,
        pending=[], exit_code=0 if change.ok else 1, approved_by=change.approved_by,
        reviewer=getattr(review, "reviewer", None),
        live={"session": session, "spec_file": spec_file, "spec_sha256": spec_sha},
    ))  # fmt: skip

