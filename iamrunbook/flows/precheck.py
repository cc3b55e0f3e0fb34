"""The reviewed-plan precheck: before `--plan` applies anything, plan afresh exactly as the notebooks do and
name every difference from the reviewed run (Terraform's `apply PLANFILE` refusing a stale plan).

It reads only, into a scratch folder; runs/planfile.py loads the reviewed run and compares.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path

from iamrunbook.base import records
from iamrunbook.base.progress import HEADLESS_ENV
from iamrunbook.flows import apply, legacy
from iamrunbook.flows.offboard import Offboarding
from iamrunbook.flows.session import open_runbook
from iamrunbook.runs.planfile import Reviewed, offboard_diff, plan_diff


@contextlib.contextmanager
def _headless():
    before = os.environ.get(HEADLESS_ENV)
    os.environ[HEADLESS_ENV] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(HEADLESS_ENV, None)
        else:
            os.environ[HEADLESS_ENV] = before


def precheck(saved: Reviewed, params: dict, notebooks: list[str], start_dir: Path) -> list[str]:
    """Plan afresh exactly as the notebooks do (into a scratch folder, reads only) and compare with the
    reviewed run. Returns every difference, one line each; empty when the reviewed plan may be applied."""
    lines = []
    if notebooks != saved.notebooks:
        lines.append(f"this run would run {', '.join(notebooks)}; the reviewed run ran {', '.join(saved.notebooks)}")
    plain = {**params, "apply": False, "reviewed_plan": None}
    quiet = contextlib.redirect_stdout(io.StringIO())  # the notebooks' own prints; progress is headless too
    with tempfile.TemporaryDirectory(prefix="iamrb-precheck-") as scratch, quiet, _headless():
        rb = open_runbook(plain, scratch, start_dir=start_dir)
        migration = None
        if "02_delete_legacy_policy" in saved.plans:
            migration = legacy.Migration.read(rb)
            lines += plan_diff("02_delete_legacy_policy", saved.plans["02_delete_legacy_policy"], migration.plan(rb))
        if "03_import_and_apply" in saved.plans:
            inventory = migration.inventory if migration else rb.inventory()
            fresh = apply.record_plan(rb, rb.spec(), inventory)
            lines += plan_diff("03_import_and_apply", saved.plans["03_import_and_apply"], fresh)
        if "05_offboard_user" in saved.plans:
            o = Offboarding.start(rb)
            o.take_record(rb)
            o.reach(rb)
            lines += offboard_diff(saved.plans["05_offboard_user"], o.user, o.planned(plain["revoke_role_sessions"]))
        if "07_migrate_to_identity_center" in saved.plans:
            lines += _center(rb, saved)
    return lines


def _center(rb, saved: Reviewed) -> list[str]:
    """07's two plans, afresh: phase 1's, then phase 2's (which waits while phase 1 has changes)."""
    from iamrunbook.flows import center

    spec, inventory = rb.spec(), rb.inventory(with_credential_report=True)
    state = center.read_state(rb)
    grant = center.record_plan(rb, spec, inventory, state)
    lines = plan_diff(center.STEP, saved.plans[center.STEP], grant)
    retire = center.record_retire_plan(rb, spec, inventory, state, center.sign_ins(rb, state), after=grant)
    saved_retire = saved.plans.get(f"{center.STEP}/retire")
    if saved_retire is None:
        return [*lines, f"{center.STEP}: the reviewed run holds no {records.RETIRE_PLAN.name}"]
    return lines + plan_diff(f"{center.STEP}/retire", saved_retire, retire)
