"""Issue 25: every change is a run in the chain, live or headless. A live Confirm in 02, 03 and 05 and a live
signature in 06 each leave a run folder like a headless run of that step (run.json with kind, caller,
approved_by; the plan and the result; the spec file with its sha256), linked into the same hash chain, which
`audit list` shows and `audit verify` checks. Driven through the widgets' models, in process: no browser."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from iamrunbook.base import records
from iamrunbook.core import review
from iamrunbook.flows import apply, legacy, offboard
from iamrunbook.flows import review as review_view
from iamrunbook.flows.session import open_runbook, operator
from iamrunbook.runs import audit, manifest
from iamrunbook.runs.live import LIVE_KIND
from iamrunbook.ui.review import ReviewWidget
from iamrunbook.ui.start import Widgets

EXAMPLE = Path(__file__).resolve().parents[1] / "parameters" / "example.yaml"
STEPS = ("02_delete_legacy_policy", "03_import_and_apply", "05_offboard_user", "06_access_review")


@pytest.fixture
def live_session(aws, legacy_account, iam, session, tmp_path, capsys):
    """One live session's four changes, as an operator clicks them: migrate, edit+apply, offboard, sign."""
    out, spec = tmp_path / "runs", tmp_path / "team.yaml"
    shutil.copy(EXAMPLE, spec)
    folder = out / "20260101T000000Z-interactive"
    records.write(folder, records.SESSION, {"session": "test", "kind": "interactive"})
    iam.create_user(UserName="carol")

    def runbook(**params):
        rb = open_runbook({"iam_users_file": str(spec), **params}, folder, session=session)
        rb.headless, rb.frontend = False, Widgets()  # as in Jupyter: the widgets decide, not `apply`
        return rb

    rb = runbook()
    m = legacy.Migration.read(rb)  # as 02's cells do
    m.delta(rb)
    legacy.migrate(rb, m, m.plan(rb), m.backup(rb))
    rb.pending.button.click()
    rb.pending.confirm.click()
    assert rb.pending.status_text == "Done."
    plan = apply.record_plan(rb, rb.spec(), rb.inventory())
    apply.apply_confirmed(rb, plan, rb.inventory())
    editor = rb.pending
    editor.checkboxes[("bob@example.com", "admin")].value = True
    editor.save_button.click()
    editor.apply_button.click()
    editor.confirm_button.click()
    assert editor.result is not None and editor.result.ok
    rb = runbook(offboard_user="carol")
    leaver = offboard.Offboarding.start(rb)
    leaver.take_record(rb)
    offboard.offboard(rb, leaver)
    capsys.readouterr()
    rb.pending.button.click()
    rb.pending.confirm.click()
    shown = capsys.readouterr().out  # the steps, shown under the button as they are done (issue 25)
    assert "action" in shown and "outcome" in shown and "\n0 " in shown, shown
    view = ReviewWidget(review_view.ReviewDraft(review_view.Review.read(rb), {}, "Dana"), rb)
    for toggle in view.toggles:
        toggle.value = review.KEEP
    view.save_button.click()
    assert "Signed by Dana" in view.message.value
    return out, spec, rb.caller_arn


def live_runs(out: Path) -> dict[str, Path]:
    return {step: folder for step in STEPS for folder in out.glob(f"*-{step}-live")}


def test_each_live_change_is_a_run_folder_like_a_headless_one(live_session):
    out, spec, caller = live_session
    found = live_runs(out)
    assert sorted(found) == sorted(STEPS)
    wanted = {STEPS[0]: {"legacy_migration_plan.json", "legacy_migration_result.json", "legacy_privilege_delta.csv",
                         "legacy_policy_backup.json"},
              STEPS[1]: {"plan.json", "apply_result.json"},
              STEPS[2]: {"offboard.json", "offboard_carol_credentials.json"},
              STEPS[3]: {"access_review.json", "reviewed_iam_users.yaml"}}  # fmt: skip
    for step, folder in found.items():
        data = json.loads((folder / "run.json").read_text(encoding="utf-8"))
        assert data["kind"] == LIVE_KIND and data["mode"] == "apply" and data["exit_code"] == 0
        assert data["caller_arn"] == caller and data["account_id"] == caller.split(":")[4]
        assert data["approved_by"] == ("Dana" if step == STEPS[3] else operator())
        assert wanted[step] | {"identity.json", f"spec/{spec.name}"} <= set(data["artifacts"])
        kept = folder / "spec" / spec.name  # the spec as it was then: 03's editor saved a change after 02
        assert data["live"]["spec_sha256"] == manifest.sha256(kept) == data["artifacts"][f"spec/{spec.name}"]
        assert (kept.read_bytes() == spec.read_bytes()) == (step != STEPS[0]), step
        (nb,) = data["notebooks"]
        assert nb["name"] == step and nb["output"] is None and nb["note"]  # no Jupyter server: the reason
    applied = json.loads((found[STEPS[1]] / "apply_result.json").read_text(encoding="utf-8"))
    assert applied["ok"] and applied["spec_file"] == str(spec)
    assert json.loads((found[STEPS[2]] / "offboard.json").read_text(encoding="utf-8"))["applied"] is True


def test_audit_lists_live_runs_and_verifies_the_chain_then_names_tampering(live_session):
    out, _, _ = live_session
    rows = audit.listing(out)
    assert [r["kind"] for r in rows] == [LIVE_KIND] * 4
    assert {r["run"].split("-", 1)[1].removesuffix("-live") for r in rows} == set(STEPS)
    assert rows[-1]["approved_by"] == "Dana" and rows[0]["approved_by"] == operator()
    assert audit.verify_local(out) == []
    offboarded = live_runs(out)[STEPS[2]] / "offboard.json"
    offboarded.write_text(offboarded.read_text(encoding="utf-8").replace("carol", "nobody"), encoding="utf-8")
    shutil.rmtree(live_runs(out)[STEPS[0]])
    found = {(f.kind, f.where.split("/", 1)[1]) for f in audit.verify_local(out)}
    assert ("modified", f"{offboarded.parent.name}/offboard.json") in found
    assert any(kind == "missing" and STEPS[0] in where for kind, where in found)
