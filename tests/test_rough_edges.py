"""Issue 25's rough edges, each with its test: what the CLI says once and whole, the review widget's message,
and where live run folders go."""

from __future__ import annotations

from pathlib import Path

from iamrunbook.base import records
from iamrunbook.core.changes import Change
from iamrunbook.core.migration import MigrationPlan
from iamrunbook.core.plan import Plan
from iamrunbook.runs import outcome

EXAMPLE = Path(__file__).resolve().parents[1] / "parameters" / "example.yaml"
ATTACH = 'aws_iam_user_policy_attachment.user_roles["bob/admin"]'


def test_a_plan_only_run_says_each_pending_change_once(tmp_path):
    records.write(tmp_path, records.PLAN, Plan((Change("attach", ATTACH, "grant AdminRole"),), "1", "c"))
    problems = [{"kind": "attach", "subject": ATTACH, "message": "bob lacks admin"},
                {"kind": "unexpected access", "subject": "b", "message": "b can assume AdminRole via x"}]  # fmt: skip
    records.write(tmp_path, records.VERIFICATION, records.VerificationRecord(False, problems, [], {}))
    details = "\n".join(outcome.assess(tmp_path).details)
    assert details.count(ATTACH) == 1 and "b can assume AdminRole via x" in details
    assert "verification: 2 problem(s) (1 of them the plan's changes above):" in details
    applied = "\n".join(outcome.assess(tmp_path, apply=True).details)  # applied: no plan lines, every problem
    assert ATTACH in applied and "(1 of them" not in applied


def test_a_refused_migration_is_named_whole(tmp_path):
    held = ("group ops (members: a, b)", "role deploy")
    plan = MigrationPlan("AssumeRolesPolicy", "arn:aws:iam::123456789012:policy/AssumeRolesPolicy", "1", "c",
                         unmanaged=held)  # fmt: skip
    records.write(tmp_path, records.LEGACY_PLAN, plan)
    (problem,) = outcome.assess(tmp_path).problems
    assert all(h in problem for h in held) and "legacy_detach_unmanaged: true" in problem and "\n" not in problem


def test_the_review_widget_drops_a_stale_not_saved_message(aws, iam, sts, session, tmp_path, capsys):
    from iamrunbook.aws.sweep import read_inventory
    from iamrunbook.core import review
    from iamrunbook.core.plan import make_plan
    from iamrunbook.core.spec import load_spec
    from iamrunbook.flows import review as review_view
    from iamrunbook.flows.apply import apply_plan
    from iamrunbook.flows.session import open_runbook
    from iamrunbook.sandbox.history import ago
    from iamrunbook.sandbox.seed import seed_roles
    from iamrunbook.ui.review import ReviewWidget

    seed_roles(iam)
    apply_plan(iam, make_plan(load_spec(iam_users_file=EXAMPLE), read_inventory(iam, sts)))
    for user in aws.iam_backend().users.values():
        user.create_date = ago(300)  # old users with grants nobody used: recommendations to decide
    rb = open_runbook({"iam_users_file": str(EXAMPLE)}, tmp_path / "run", session=session)
    rb.headless = False
    review_view.decisions(rb)
    assert "Decide keep or remove for each recommendation" in capsys.readouterr().out  # not the file's syntax
    view = ReviewWidget(review_view.ReviewDraft(review_view.Review.read(rb), {}, ""), rb)
    assert view.toggles
    view.save_button.click()
    assert "Not saved" in view.message.value and "reviewer" in view.message.value
    view.reviewer.value = "Dana"
    assert "reviewer" not in view.message.value and "Not saved" in view.message.value  # what is still missing
    for toggle in view.toggles:
        toggle.value = review.KEEP
    assert view.message.value == ""


def test_live_runs_go_to_one_place_wherever_the_notebook_is(tmp_path, monkeypatch):
    from iamrunbook.runs.manifest import RUNS_ENV, runs_root

    monkeypatch.delenv(RUNS_ENV, raising=False)
    project = tmp_path / "project"
    (project / "work" / "my notebooks").mkdir(parents=True)
    (project / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert runs_root(project / "work" / "my notebooks") == project / "runs"  # not <notebook folder>/runs
    assert runs_root(tmp_path / "elsewhere" / "notebooks") == tmp_path / "elsewhere" / "runs"
    monkeypatch.setenv(RUNS_ENV, str(tmp_path / "audit"))
    assert runs_root(project / "work") == tmp_path / "audit"


def test_the_demo_says_how_to_open_the_notebooks_from_any_folder(tmp_path):
    import shlex

    from iamrunbook.base.shipped import shipped_dir
    from iamrunbook.sandbox.demo import open_notebooks_lines

    lines = open_notebooks_lines({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, tmp_path / "runs")
    assert lines[0] == "export AWS_ENDPOINT_URL=http://127.0.0.1:1"
    assert f"export IAMRUNBOOK_RUNS={tmp_path / 'runs'}" in lines
    command = shlex.split(lines[-1])
    assert Path(command[0]).is_absolute() and command[1:4] == ["-m", "jupyter", "lab"]
    assert Path(command[4]) == shipped_dir("notebooks").resolve()
    assert (Path(command[4]) / "03_import_and_apply.ipynb").is_file()


def test_02_says_which_steps_come_first_and_shows_its_whole_button_label():
    from iamrunbook.core.migration import Holder, _removal_steps
    from iamrunbook.ui.widgets import confirm_button

    policy = {"Arn": "arn:aws:iam::123456789012:policy/AssumeRolesPolicy", "PolicyVersionList": []}
    (detach, *_) = _removal_steps(policy, (Holder("user", "bob"),), {"bob"})
    assert "the earlier steps of this migration" in detach.reason and "above" not in detach.reason
    button = confirm_button("Migrate away from AssumeRolesPolicy", lambda: None).button
    assert button.description == "Migrate away from AssumeRolesPolicy" and button.layout.width == "auto"


def test_every_notebook_of_a_live_session_uses_the_spec_file_it_saved(aws, legacy_account, session, tmp_path):
    """Issue 25: 05 checked "still in the spec?" against its default example spec while 03 had saved another."""
    import pytest

    from iamrunbook.core.spec import load_spec
    from iamrunbook.flows import offboard
    from iamrunbook.flows.session import open_runbook
    from iamrunbook.ui.widgets import RoleMatrixEditor

    folder, team, given = tmp_path / "session", tmp_path / "team.yaml", load_spec(iam_users_file=EXAMPLE).to_mapping()
    records.write(folder, records.SESSION, {"session": "test", "kind": "interactive"})

    def live(**params):
        rb = open_runbook({"iam_users": given, **params}, folder, session=session)
        rb.headless = False
        return rb

    rb = live()
    editor = RoleMatrixEditor.for_runbook(rb, rb.spec(), rb.inventory())
    editor.new_user.value = "carol"
    editor.add_button.click()
    editor.save_as.value = str(team)
    editor.save_button.click()
    later = live(offboard_user="carol")
    assert later.spec().source == str(team) and "carol" in later.spec().users
    with pytest.raises(Exception, match="carol"):
        offboard.Offboarding.start(later)  # refused: carol is in the session's spec
    headless = open_runbook({"iam_users": given, "offboard_user": "carol"}, folder, session=session)
    assert "carol" not in headless.spec().users  # a scheduled run reads only its parameters


def test_the_editor_shows_what_no_apply_fixes_once(aws, iam, sts, tmp_path):
    """Issue 25: the editor said "No changes" while 04 reported access no apply removes."""
    import json

    from iamrunbook.aws.sweep import read_inventory
    from iamrunbook.core.plan import make_plan
    from iamrunbook.core.spec import load_spec
    from iamrunbook.flows.apply import apply_plan
    from iamrunbook.sandbox.seed import seed_roles
    from iamrunbook.ui.widgets import RoleMatrixEditor

    roles = seed_roles(iam)
    spec = load_spec(iam_users_file=EXAMPLE)
    apply_plan(iam, make_plan(spec, read_inventory(iam, sts)))
    iam.create_user(UserName="mallory")
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                   "Resource": roles["admin"]}]}  # fmt: skip
    iam.put_user_policy(UserName="mallory", PolicyName="own-way-in", PolicyDocument=json.dumps(doc))
    editor = RoleMatrixEditor(spec, read_inventory(iam, sts), tmp_path / "spec.yaml", iam=iam, sts=sts)
    editor.draft.check_access = True  # as RoleMatrixEditor.for_runbook sets it in a live session
    editor._edit(editor.draft.refresh)
    assert editor.draft.plan.is_empty
    shown = editor.errors_html.value
    assert shown.count("mallory") == 1 and "no apply fixes" in shown
    editor.checkboxes[("bob@example.com", "admin")].value = True  # an edit keeps it listed once
    assert editor.errors_html.value.count("mallory") == 1
