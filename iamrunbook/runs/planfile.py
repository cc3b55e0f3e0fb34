"""Reviewed plans: apply exactly the plan somebody reviewed, or nothing (Terraform's `plan -out` and
`apply PLANFILE`).

A plan-only run folder is the reviewed plan: its `plan.json` (and, for the chain, `legacy_migration_plan.json`;
for an offboarding, `offboard.json`), vouched for by the sha256 its `run.json` recorded. Applying it plans
afresh and compares: any change added, removed or altered, another account or another roles map refuses
the run before any call, with the difference named. The runner checks before the first notebook starts,
and 02, 03 and 05 check again right before they change anything, then apply the saved plan itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import astuple, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from iamrunbook.base import records
from iamrunbook.base.errors import SafetyError, SpecError
from iamrunbook.core.changes import Change
from iamrunbook.runs import manifest

READ_ACTIONS: tuple[str, ...] = ()
WRITE_ACTIONS: tuple[str, ...] = ()

#: The runner tells kernels the largest age it accepts (seconds); live sessions use the default.
MAX_AGE_ENV = "IAMRUNBOOK_MAX_PLAN_AGE"
DEFAULT_MAX_AGE = timedelta(hours=24)
#: The records that are the plan, per plan of a notebook that changes the account (`<notebook>/<part>` when a
#: notebook has two, as 07's phases); alternatives in order, where a mode writes its own (03 in Identity Center).
PLAN_RECORDS = {
    "02_delete_legacy_policy": (records.LEGACY_PLAN,),
    "03_import_and_apply": (records.PLAN, records.CENTER_PLAN),
    "05_offboard_user": (records.OFFBOARD,),
    "07_migrate_to_identity_center": (records.CENTER_PLAN,),
    "07_migrate_to_identity_center/retire": (records.RETIRE_PLAN,),
}


def plan_keys(notebook: str) -> list[str]:
    return [key for key in PLAN_RECORDS if key.split("/")[0] == notebook]
_IDENTITY = ("kind", "address", "target_kind", "target_name", "policy_arn", "version_id", "user")


def parse_age(text: str) -> timedelta:
    """`24h`, `90m`, `2d`, `3600s` (or plain seconds)."""
    match = re.fullmatch(r"\s*(\d+)\s*([smhd]?)\s*", text or "")
    if not match:
        raise SpecError(f"--max-plan-age {text!r}: expected a number with s, m, h or d, e.g. 24h")
    unit = {"": "seconds", "s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
    return timedelta(**{unit: int(match[1])})


@dataclass(frozen=True)
class Reviewed:
    """A plan-only run, loaded and checked: its manifest and its plan records."""

    run_dir: Path
    manifest: dict
    plans: dict[str, Any]  # plan key (PLAN_RECORDS) -> its plan record (Plan, MigrationPlan, OffboardRecord, ...)
    #: plan key -> the file it was read from
    sources: dict[str, str] = field(default_factory=dict)

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("id") or self.run_dir.name)

    @property
    def notebooks(self) -> list[str]:
        return [n["name"] for n in self.manifest.get("notebooks", [])]

    def files(self) -> dict[str, str]:
        artifacts = self.manifest.get("artifacts", {})
        return {self.sources[key]: artifacts.get(self.sources[key]) for key in self.plans}

    def provenance(self, approved_by: str, max_age: timedelta) -> dict:
        """What run.json records: which plan, its hashes, who approved it, how old it was."""
        main = self.files().get(records.PLAN.name) or next(iter(self.files().values()), None)
        return {
            "run_id": self.run_id,
            "path": str(self.run_dir),
            "sha256": main,
            "files": self.files(),
            "approved_by": approved_by,
            "planned": self.manifest.get("finished"),
            "max_age_seconds": int(max_age.total_seconds()),
        }


def resolve(path: str | Path) -> Path:
    """The run folder of `--plan RUN_DIR` or `--plan RUN_DIR/plan.json`."""
    p = Path(path).expanduser().resolve()
    return p.parent if p.is_file() else p


def load(path: str | Path, *, max_age: timedelta = DEFAULT_MAX_AGE, now: datetime | None = None) -> Reviewed:
    """The reviewed run, refused (SpecError, every problem) unless it is an intact, recent plan-only run."""
    run_dir = resolve(path)
    data = records.read(run_dir, records.RUN_MANIFEST)
    if data is None:
        raise SpecError(f"--plan {path}: {run_dir} holds no readable run.json: not a run folder of iamrunbook run")
    found = data.to_dict()
    problems = []
    if found["mode"] != "plan":
        problems.append(
            f"--plan {path}: run {found['id']} was an {found['mode']} run; a reviewed plan is a plan-only run"
        )
    if found["exit_code"] not in (0, 2):
        problems.append(
            f"--plan {path}: run {found['id']} ended with exit code {found['exit_code']}; it planned nothing"
        )
    plans, sources = {}, {}
    for key in (k for n in found["notebooks"] for k in plan_keys(n["name"])):
        present = [r for r in PLAN_RECORDS[key] if (run_dir / r.name).is_file()]
        record = (present or PLAN_RECORDS[key])[0]
        if not present:
            problems.append(f"--plan {path}: {record.name} is missing")
        elif manifest.sha256(run_dir / record.name) != found["artifacts"].get(record.name):
            problems.append(f"--plan {path}: {record.name} was modified after the plan was made (sha256 differs)")
        else:
            plans[key], sources[key] = records.read(run_dir, record), record.name
    if not plans and not problems:
        notebooks = dict.fromkeys(key.split("/")[0] for key in PLAN_RECORDS)
        problems.append(f"--plan {path}: run {found['id']} ran none of {', '.join(notebooks)}")
    planned = datetime.fromisoformat(found["finished"])
    age = (now or datetime.now(timezone.utc)) - planned
    if age > max_age:
        problems.append(f"--plan {path}: the plan is {_hours(age)} old, older than --max-plan-age {_hours(max_age)}")
    if problems:
        raise SpecError(problems)
    return Reviewed(run_dir, found, plans, sources)


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


# --- differences ------------------------------------------------------------------------------------
def _key(change: Change) -> tuple:
    return tuple(getattr(change, name) for name in _IDENTITY)


def change_diff(label: str, saved: tuple[Change, ...], fresh: tuple[Change, ...]) -> list[str]:
    """Changes added, removed or altered between the reviewed plan and a fresh one, one line each."""
    before = {_key(c): c for c in saved}
    after = {_key(c): c for c in fresh}
    lines = [f"{label}: added since the review: {c.line().strip()}" for k, c in after.items() if k not in before]
    lines += [f"{label}: no longer planned: {c.line().strip()}" for k, c in before.items() if k not in after]
    for key in before.keys() & after.keys():
        old, new = before[key], after[key]
        if astuple(old) != astuple(new):
            altered = [f.name for f in fields(Change) if getattr(old, f.name) != getattr(new, f.name)]
            details = "; ".join(f"{n}: {getattr(old, n)!r} -> {getattr(new, n)!r}" for n in altered)
            lines.append(f"{label}: altered: {new.address} ({new.kind}): {details}")
    order_changed = not lines and [_key(c) for c in saved] != [_key(c) for c in fresh]
    return lines + ([f"{label}: the same changes in another order"] if order_changed else [])


def plan_diff(label: str, saved, fresh) -> list[str]:
    """A Plan or MigrationPlan against a fresh one: the account, the roles map, then every change."""
    lines = []
    if saved.account_id != fresh.account_id:
        lines.append(f"{label}: account {fresh.account_id}, but the plan was reviewed for account {saved.account_id}")
    if getattr(saved, "roles", None) != getattr(fresh, "roles", None):
        lines.append(f"{label}: roles {fresh.roles}, but the plan was reviewed with roles {saved.roles}")
    return lines + change_diff(label, tuple(saved.changes), tuple(fresh.changes))


def offboard_diff(saved: records.OffboardRecord, user: str | None, planned: list[dict]) -> list[str]:
    lines = [] if saved.user == user else [f"offboarding: user {user}, but the review was of {saved.user}"]
    before = [f"{s['action']} {s['target']}" for s in saved.planned or []]
    after = [f"{s['action']} {s['target']}" for s in planned]
    lines += [f"offboarding: added since the review: {s}" for s in after if s not in before]
    lines += [f"offboarding: no longer planned: {s}" for s in before if s not in after]
    return lines


def refuse(saved: Reviewed, lines: list[str]) -> None:
    if lines:
        head = f"the reviewed plan {saved.run_id} differs from a fresh plan; refused before any change:"
        raise SafetyError("\n".join([head, *(f"  {line}" for line in lines)]))


# --- in the notebooks: apply the saved plan, if a fresh one is the same --------------------------------
def given(rb) -> Reviewed | None:
    """The reviewed plan a run applies (`reviewed_plan`), checked, or None when there is none."""
    path = rb.params.get("reviewed_plan")
    if not path:
        return None
    max_age = timedelta(seconds=float(os.environ.get(MAX_AGE_ENV) or DEFAULT_MAX_AGE.total_seconds()))
    return load(path, max_age=max_age)


def bind(rb, notebook: str, fresh):
    """The plan this notebook applies: the saved one when a reviewed plan is given and a fresh plan is
    the same (else SafetyError naming every difference), the fresh one otherwise."""
    saved = given(rb)
    if saved is None:
        return fresh
    if notebook not in saved.plans:
        refuse(saved, [f"{notebook} was not part of the reviewed run ({', '.join(saved.notebooks)})"])
    refuse(saved, plan_diff(notebook, saved.plans[notebook], fresh))
    print(f"applying the reviewed plan {saved.run_id} (a fresh plan is the same)")
    return saved.plans[notebook]


def bind_offboard(rb, offboarding) -> None:
    """Refuse an offboarding that would not remove exactly what the reviewed one planned to."""
    saved = given(rb)
    if saved is None:
        return
    notebook = "05_offboard_user"
    if notebook not in saved.plans:
        refuse(saved, [f"{notebook} was not part of the reviewed run ({', '.join(saved.notebooks)})"])
    planned = offboarding.planned(rb.params["revoke_role_sessions"])
    refuse(saved, offboard_diff(saved.plans[notebook], offboarding.user, planned))
    print(f"applying the reviewed offboarding {saved.run_id} (a fresh record plans the same)")


def show(rb, fresh) -> None:
    """A live session given a reviewed plan: the saved plan and how a fresh one differs."""
    saved = given(rb)
    print(f"reviewed plan {saved.run_id} (planned {saved.manifest.get('finished')}):")
    print(saved.plans["03_import_and_apply"].to_text())
    lines = plan_diff("03_import_and_apply", saved.plans["03_import_and_apply"], fresh)
    print("\n".join(["a fresh plan differs:", *lines]) if lines else "a fresh plan is the same: Confirm applies it")
