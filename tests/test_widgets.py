"""The interactive editor and confirm button, driven like an operator would, without a browser."""

from __future__ import annotations

import hashlib
import html
import json
import shutil
from pathlib import Path

import ipywidgets
import pytest

from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base.names import attachment_address, user_address
from iamrunbook.cli import runner
from iamrunbook.core.inventory import Inventory
from iamrunbook.core.plan import make_plan
from iamrunbook.core.spec import load_spec
from iamrunbook.core.terraform import dump_tfvars
from iamrunbook.flows.session import HEADLESS_ENV, RUN_DIR_ENV, start
from iamrunbook.sandbox import seed
from iamrunbook.ui.widgets import ConfirmButton, RoleMatrixEditor, confirm_button, save_spec

EXAMPLE = Path(__file__).resolve().parents[1] / "parameters" / "example.yaml"
BOB = "bob@example.com"
ALICE = "alice@example.com"
CAROL = "carol@example.com"


@pytest.fixture
def inventory(legacy_account, iam, sts) -> Inventory:
    return read_inventory(iam, sts)


@pytest.fixture
def example_spec():
    return load_spec(iam_users_file=EXAMPLE)


@pytest.fixture
def editor(example_spec, inventory, iam, sts, tmp_path):
    applied = []
    ed = RoleMatrixEditor(
        example_spec,
        inventory,
        tmp_path / "spec.yaml",
        lambda plan, result: applied.append((plan, result)),
        iam=iam,
        sts=sts,
    )
    ed.applied = applied
    return ed


def attached(iam, user: str) -> set[str]:
    pages = iam.get_paginator("list_attached_user_policies").paginate(UserName=user)
    return {p["PolicyName"] for page in pages for p in page["AttachedPolicies"]}


def user_names(iam) -> set[str]:
    return {u["UserName"] for page in iam.get_paginator("list_users").paginate() for u in page["Users"]}


def shown_html(widget) -> str:
    """Everything the editor shows as HTML, walking its widget tree the way the page renders it."""
    own = widget.value if isinstance(widget, ipywidgets.HTML) else ""
    return own + "".join(shown_html(child) for child in getattr(widget, "children", ()))


# --- preview ----------------------------------------------------------------------------------------


def test_editor_starts_with_the_spec_and_its_plan(editor, example_spec, inventory):
    assert editor.mapping == example_spec.to_mapping()
    assert set(editor.checkboxes) == {(u, k) for u in example_spec.users for k in example_spec.roles}
    assert editor.checkboxes[(BOB, "data_engineer")].value is True
    assert editor.checkboxes[(BOB, "admin")].value is False
    assert editor.descriptions[ALICE].value == "Alice - Platform Engineer"
    expected = make_plan(example_spec, inventory)
    assert editor.preview_text == expected.to_text()
    assert editor.summary_line == "Plan: 1 to import, 11 to add, 0 to change, 0 to destroy."
    assert "Plan: 1 to import, 11 to add" in editor.preview.value
    assert (
        "<table" in editor.preview.value and "aws_iam_user.users[&quot;bob@example.com&quot;]" in editor.preview.value
    )
    assert editor.errors == []
    assert not editor.apply_button.disabled and not editor.save_button.disabled


def test_ticking_a_role_updates_the_spec_and_the_plan_without_calling_aws(editor, aws):
    aws.clear_calls()
    admin_bob = attachment_address(BOB, "admin")
    assert admin_bob not in editor.preview_text

    editor.checkboxes[(BOB, "admin")].value = True
    assert editor.mapping[BOB]["roles"] == ["admin", "data_engineer"]  # role-key order, whatever the click order
    assert f"+ {admin_bob}: grant AdminRole" in editor.preview_text
    assert editor.summary_line == "Plan: 1 to import, 12 to add, 0 to change, 0 to destroy."

    editor.checkboxes[(ALICE, "infrastructure_admin")].value = False
    assert attachment_address(ALICE, "infrastructure_admin") not in editor.preview_text
    assert editor.mapping[ALICE]["roles"] == ["data_engineer"]
    assert editor.summary_line == "Plan: 1 to import, 11 to add, 0 to change, 0 to destroy."

    editor.descriptions[BOB].value = "Bob - Data Lead"
    assert editor.mapping[BOB]["description"] == "Bob - Data Lead"
    assert aws.calls == []  # every keystroke and click is planned from the inventory already read


def test_an_invalid_description_shows_inline_and_withholds_the_plan(editor):
    editor.descriptions[BOB].value = "Bob (promoted), Data"
    assert editor.plan is None
    assert len(editor.errors) == 1 and editor.errors[0].startswith(f"{BOB}: description 'Bob (promoted), Data'")
    assert "'('" in editor.errors[0] and "','" in editor.errors[0]
    assert editor.preview_text.startswith("No plan while the spec is invalid")
    assert "description" in editor.row_errors[BOB].value and editor.row_errors[ALICE].value == ""
    assert "iamrb-errors" in editor.row_errors[BOB].value
    assert shown_html(editor).count(html.escape(editor.errors[0])) == 1  # on its row, and nowhere else
    assert "No plan" in editor.preview.value
    assert editor.apply_button.disabled and editor.save_button.disabled
    assert editor.save() is None and "Not saved" in editor.status_text
    assert editor.request_apply() is None and editor.pending is None

    editor.descriptions[BOB].value = "Bob - promoted - Data"  # fixed as they type on
    assert editor.errors == [] and editor.plan is not None
    assert editor.row_errors[BOB].value == "" and editor.errors_html.value == ""
    assert not editor.apply_button.disabled


def test_a_too_long_description_is_reported_with_the_limit(editor):
    editor.descriptions[ALICE].value = "x" * 257
    assert editor.plan is None
    assert editor.errors == [f"{ALICE}: description '{'x' * 57}...' is 257 characters long; at most 256 allowed"]


def test_add_and_remove_users(editor, inventory):
    editor.new_user.value = "carol@example.com"
    assert not editor.add_button.disabled and editor.add_problem.value == ""
    editor.add_button.click()
    assert "carol@example.com" in editor.mapping and editor.new_user.value == ""
    assert editor.mapping["carol@example.com"] == {"description": "", "roles": []}
    assert f"+ {user_address('carol@example.com')}: create user, tagged" in editor.preview_text
    editor.checkboxes[("carol@example.com", "admin")].value = True
    editor.descriptions["carol@example.com"].value = "Carol - SRE"
    assert attachment_address("carol@example.com", "admin") in editor.preview_text
    assert len(editor.rows.children) == 4

    editor.remove_buttons[BOB].click()
    assert BOB not in editor.mapping and (BOB, "data_engineer") not in editor.checkboxes
    assert BOB not in editor.preview_text
    assert len(editor.rows.children) == 3
    assert editor.plan == make_plan(load_spec(editor.mapping), inventory)


def test_enter_in_the_new_user_field_adds_the_user(editor):
    editor.new_user.value = CAROL
    enter = {"method": "custom", "content": {"event": "submit"}}  # what the front end sends on Enter
    editor.new_user._handle_msg({"content": {"data": enter}, "buffers": []})
    assert CAROL in editor.mapping and editor.new_user.value == "" and len(editor.rows.children) == 4
    editor.new_user._handle_msg({"content": {"data": enter}, "buffers": []})  # Enter on an empty field
    assert len(editor.rows.children) == 4 and "type a user name first" in editor.add_problem.value


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("bad name!", "invalid user name"),
        ("BOB@example.com", "already in the spec"),
        ("x" * 65, "invalid user name"),
    ],
)
def test_a_bad_new_user_name_is_refused_as_typed(editor, name, why):
    editor.new_user.value = name
    assert editor.add_button.disabled
    assert why in editor.add_problem.value
    assert editor.add_user(name) is False
    assert name not in editor.mapping and len(editor.rows.children) == 3


def test_a_role_missing_from_the_account_is_an_inline_error(inventory, iam, sts):
    roles = {"admin": "AdminRole", "ghost": "GhostRole"}
    ed = RoleMatrixEditor({"bob": {"description": "", "roles": ["ghost"]}}, inventory, roles=roles, iam=iam, sts=sts)
    assert ed.plan is None and ed.spec is not None
    assert any("GhostRole" in e and "does not exist" in e for e in ed.errors)
    assert ed.apply_button.disabled
    assert ed.save_button.disabled  # no file to write to: the spec came as a mapping


# --- save -------------------------------------------------------------------------------------------


def test_save_yaml_keeps_the_rest_of_the_parameters_file(tmp_path, inventory):
    path = tmp_path / "params.yaml"
    text = EXAMPLE.read_text(encoding="utf-8").replace("iam_users:", "aws_region: eu-west-1  # keep me\niam_users:")
    path.write_text(text + "max_deletions: 1\n", encoding="utf-8")
    ed = RoleMatrixEditor(load_spec(iam_users_file=path), inventory)
    assert ed.source_path == path

    ed.checkboxes[(BOB, "admin")].value = True
    ed.descriptions[ALICE].value = "Alice - Staff Engineer"
    ed.remove_buttons["your-username"].click()
    ed.new_user.value = "dave"
    ed.add_button.click()
    ed.save_button.click()

    assert ed.saved_to == path and "Saved 3 user(s)" in ed.status_text
    reloaded = load_spec(iam_users_file=path)
    assert reloaded.to_mapping() == ed.mapping
    assert list(reloaded.users) == [ALICE, BOB, "dave"]
    saved = path.read_text(encoding="utf-8")
    assert saved.startswith("# The example spec: run it with")  # comments outside iam_users stay
    assert "aws_region: eu-west-1  # keep me\n" in saved
    assert "roles:                      # role key -> IAM role name" in saved
    assert saved.endswith("max_deletions: 1\n")
    assert "    roles: [admin, data_engineer]\n" in saved  # the file's own style


def test_save_tfvars_round_trip_keeps_other_variables(tmp_path, inventory):
    path = tmp_path / "iam_users.auto.tfvars"
    path.write_text(
        '# team spec\nregion = "us-east-1"\n\n' + dump_tfvars(load_spec(iam_users_file=EXAMPLE).to_mapping())
        + 'tags = { team = "platform" }\n',
        encoding="utf-8",
    )  # fmt: skip
    ed = RoleMatrixEditor(load_spec(iam_users_file=path), inventory)
    ed.checkboxes[(BOB, "infrastructure_admin")].value = True
    ed.descriptions[BOB].value = "Bob - Data and Infra"
    ed.new_user.value = "erin@example.com"
    ed.add_button.click()
    ed.checkboxes[("erin@example.com", "data_engineer")].value = True
    assert ed.save() == path

    reloaded = load_spec(iam_users_file=path)
    assert reloaded.to_mapping() == ed.mapping
    assert reloaded.users[BOB].roles == ("data_engineer", "infrastructure_admin")
    saved = path.read_text(encoding="utf-8")
    assert saved.startswith('# team spec\nregion = "us-east-1"\n')
    assert saved.endswith('tags = { team = "platform" }\n')
    assert '  "erin@example.com" = {\n    description = ""\n    roles       = ["data_engineer"]\n  }' in saved


@pytest.mark.parametrize("name", ["fresh.yaml", "fresh.tfvars"])
def test_save_to_a_new_file(tmp_path, name):
    users = {"zoe": {"description": "Zoe", "roles": ["admin"]}}
    path = save_spec(tmp_path / "sub" / name, users, {"admin": "AdminRole"})
    spec = load_spec(iam_users_file=path, roles={"admin": "AdminRole"})
    assert spec.to_mapping() == users
    if name.endswith(".yaml"):
        assert "roles:\n  admin: AdminRole\n" in path.read_text(encoding="utf-8")
    assert not list(path.parent.glob(".*saving"))


def test_save_refuses_an_unknown_extension(tmp_path, example_spec, inventory):
    ed = RoleMatrixEditor(example_spec, inventory, tmp_path / "spec.json")
    assert ed.save() is None
    assert "unknown extension" in ed.status_text
    assert not (tmp_path / "spec.json").exists()


# --- apply ------------------------------------------------------------------------------------------


def test_apply_without_confirm_changes_nothing(editor, aws, iam):
    aws.clear_calls()
    editor.checkboxes[(BOB, "admin")].value = True
    editor.apply_button.click()
    assert editor.pending is not None and editor.pending == editor.plan
    assert editor.confirm_button.layout.display is None and editor.cancel_button.layout.display is None
    assert "Plan: 1 to import, 12 to add, 0 to change, 0 to destroy." in editor.status_text
    assert "Nothing has changed yet" in editor.status_text
    assert aws.mutating_calls() == []
    assert {c.action for c in aws.calls} == {"GetCallerIdentity", "GetAccountAuthorizationDetails"}

    editor.cancel_button.click()
    assert editor.pending is None and editor.confirm_button.layout.display == "none"
    assert editor.status_text == "Cancelled: nothing was changed."
    editor.confirm_button.click()  # a stray Confirm after Cancel does nothing
    assert "Press Apply first" in editor.status_text
    assert aws.mutating_calls() == [] and editor.result is None and editor.applied == []
    assert user_names(iam) == {"your-username"}


def test_an_edit_after_apply_withdraws_the_pending_plan(editor, aws, iam):
    aws.clear_calls()
    editor.apply_button.click()
    assert editor.pending is not None
    editor.checkboxes[(BOB, "admin")].value = True
    assert editor.pending is None and "press Apply again" in editor.status_text
    editor.confirm_button.click()
    assert aws.mutating_calls() == [] and user_names(iam) == {"your-username"}


def test_apply_and_confirm_changes_the_account(editor, aws, iam):
    editor.checkboxes[(BOB, "admin")].value = True
    editor.apply_button.click()
    editor.confirm_button.click()

    result = editor.result
    assert result is not None and result.ok and editor.apply_error is None
    assert editor.status_text == "Applied: 13 change(s) done."
    assert len(result.done) == 13 and all(r["status"] == "done" for r in result.rows())
    assert "aws_iam_user_policy_attachment.user_roles[&quot;bob@example.com/admin&quot;]" in editor.result_html.value
    assert user_names(iam) == {"your-username", ALICE, BOB}
    assert attached(iam, BOB) == {"AssumeAdminRolePolicy", "AssumeDataEngineerRolePolicy"}
    assert attached(iam, ALICE) == {"AssumeDataEngineerRolePolicy", "AssumeInfrastructureAdminRolePolicy"}
    tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=BOB)["Tags"]}
    assert tags["Roles"] == "admin data_engineer" and tags["ManagedBy"] == "iamrunbook"
    assert len(aws.mutating_calls()) >= 13
    # The preview is replanned from a fresh read: nothing left to do, said in one sentence, no empty table.
    assert editor.preview_text == "No changes. Your account matches the spec."
    assert editor.preview.value == "<p class='iamrb-summary'><b>No changes. Your account matches the spec.</b></p>"
    [(plan, recorded)] = editor.applied
    assert recorded is result and plan.summary()["add"] == 12
    assert editor.confirm_button.layout.display == "none"

    editor.apply_button.click()  # nothing pending now
    assert editor.pending is None and "No changes" in editor.status_text


def test_confirm_refuses_a_plan_the_account_no_longer_gives(editor, aws, iam):
    editor.apply_button.click()
    reviewed = editor.pending
    iam.create_user(UserName=BOB)  # someone else acts in the meantime
    aws.clear_calls()

    editor.confirm_button.click()
    assert editor.result is None and aws.mutating_calls() == []
    assert "The account changed since you reviewed the plan" in editor.status_text
    assert editor.pending is not None and editor.pending != reviewed
    assert any(c.kind == "import_user" and c.user == BOB for c in editor.pending.changes)

    editor.confirm_button.click()  # the new plan, reviewed and confirmed
    assert editor.result is not None and editor.result.ok
    assert attached(iam, BOB) == {"AssumeDataEngineerRolePolicy"}


def test_a_failed_apply_shows_what_was_and_was_not_done(editor, aws, iam):
    editor.apply_button.click()
    aws.inject_fault("AttachUserPolicy", at=2, code="AccessDenied", status=403)
    editor.confirm_button.click()
    result = editor.result
    assert result is not None and not result.ok and editor.apply_error is not None
    assert "Stopped at aws_iam_user_policy_attachment" in editor.status_text
    assert "AccessDenied" in editor.status_text
    statuses = [r["status"] for r in result.rows()]
    assert statuses.count("done") == 7 and statuses[7].startswith("FAILED") and statuses[8:] == ["not done"] * 4
    [(_, recorded)] = editor.applied
    assert recorded is result
    # The rerun converges: the preview shows exactly what is left.
    assert editor.summary_line == "Plan: 0 to import, 5 to add, 0 to change, 0 to destroy."
    editor.apply_button.click()
    editor.confirm_button.click()
    assert editor.result.ok and editor.preview_text == "No changes. Your account matches the spec."


def test_apply_is_refused_before_confirm_when_a_safety_check_fails(editor, aws, iam):
    editor.apply_button.click()
    editor.confirm_button.click()
    assert editor.result.ok
    editor.max_deletions = 0
    editor.remove_buttons[BOB].click()
    assert f"- {user_address(BOB)}" in editor.preview_text
    aws.clear_calls()
    editor.apply_button.click()
    assert editor.pending is None and editor.confirm_button.layout.display == "none"
    assert "Apply refused" in editor.status_text and "max_deletions=0" in editor.status_text
    assert aws.mutating_calls() == [] and BOB in user_names(iam)


def test_for_runbook_records_interactive_runs(aws, legacy_account, monkeypatch, tmp_path, iam):
    session = tmp_path / "session"
    monkeypatch.setenv(RUN_DIR_ENV, str(session))
    rb = start({"iam_users": load_spec(iam_users_file=EXAMPLE).to_mapping()})
    ed = RoleMatrixEditor.for_runbook(rb, rb.spec(), rb.inventory())
    assert ed.source_path is None and ed.max_deletions == 3  # the spec is in no file yet
    # Save offers a lasting place, beside the parameters files, never the run folder (issue 25)
    assert ed.save_as.value == str(Path(__file__).resolve().parents[1] / "parameters" / "iam_users.yaml")
    ed.save_as.value = str(session / "iam_users.yaml")
    assert ed.save() is None and "inside the run folder" in ed.status_text and ed.source_path is None
    ed.save_as.value = str(tmp_path / "iam_users.yaml")
    ed.descriptions[BOB].value = "Bob - Data Lead"
    assert ed.save() == tmp_path / "iam_users.yaml" and ed.source_path == tmp_path / "iam_users.yaml"
    assert load_spec(iam_users_file=tmp_path / "iam_users.yaml").to_mapping() == ed.mapping
    ed.apply_button.click()
    ed.confirm_button.click()
    (live,) = tmp_path.glob("*-03_import_and_apply-live")  # a run of its own in the chain (issue 25)
    record = json.loads((live / "apply_result.json").read_text(encoding="utf-8"))
    assert record["ok"] is True and len(record["changes"]) == 12
    assert json.loads((live / "plan.json").read_text(encoding="utf-8"))["summary"]["import"] == 1
    tags = {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=BOB)["Tags"]}
    assert tags["Description"] == "Bob - Data Lead"


@pytest.mark.e2e
def test_an_applied_edit_is_saved_first_so_the_next_scheduled_run_keeps_it(aws, iam, sts, monkeypatch, tmp_path):
    """Issue 17: an edit applied from the iam_users parameter and saved nowhere was deleted by the next
    scheduled run. Apply is refused until the spec is in a file; Confirm saves it there first."""
    seed.seed_roles(iam)
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path / "live"))
    given = load_spec(iam_users_file=EXAMPLE).to_mapping()
    rb = start({"iam_users": given})
    ed = RoleMatrixEditor.for_runbook(rb, rb.spec(), rb.inventory())
    ed.new_user.value = CAROL
    ed.add_button.click()
    ed.checkboxes[(CAROL, "data_engineer")].value = True
    aws.clear_calls()
    ed.apply_button.click()
    assert ed.pending is None and "Save it to a file first" in ed.status_text and aws.mutating_calls() == []

    team = tmp_path / "team.yaml"
    ed.save_as.value = str(team)
    ed.save_button.click()
    assert f"Point scheduled runs at this file (iam_users_file: {team})" in ed.status_text
    assert str(team) in ed.source_html.value
    ed.apply_button.click()
    ed.confirm_button.click()
    assert ed.result is not None and ed.result.ok
    (live,) = tmp_path.glob("*-03_import_and_apply-live")
    record = json.loads((live / "apply_result.json").read_text(encoding="utf-8"))
    assert {"ok", "error", "summary", "changes"} <= set(record) and record["ok"] is True
    assert record["spec_file"] == str(team)
    assert record["spec_sha256"] == hashlib.sha256(team.read_bytes()).hexdigest()

    # What the bug did: the parameters as given would delete carol, now tagged ManagedBy=iamrunbook.
    stale = make_plan(load_spec(given), read_inventory(iam, sts))
    assert [c.kind for c in stale.changes if c.user == CAROL] == ["delete_user"]
    monkeypatch.delenv(RUN_DIR_ENV)
    scheduled = runner.run(params={"iam_users_file": str(team)}, out=tmp_path / "runs")
    assert scheduled.exit_code == 0, scheduled.pending


def test_a_spec_file_keeps_its_source_through_for_runbook(aws, legacy_account, monkeypatch, tmp_path):
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path / "run"))
    spec_file = tmp_path / "team.yaml"
    shutil.copy(EXAMPLE, spec_file)
    rb = start({"iam_users": None, "iam_users_file": str(spec_file)})
    ed = RoleMatrixEditor.for_runbook(rb, rb.spec(), rb.inventory())
    assert ed.source_path == spec_file


# --- the generic confirm ----------------------------------------------------------------------------


def test_confirm_button_runs_only_after_the_second_click():
    runs = []
    cb = confirm_button("Delete legacy policy", lambda: runs.append(1) or "deleted")
    assert isinstance(cb, ConfirmButton) and cb.confirm.layout.display == "none"
    cb.confirm.click()  # not armed: nothing
    assert runs == [] and not cb.ran
    cb.button.click()
    assert cb.armed and runs == [] and cb.confirm.layout.display is None
    assert "Delete legacy policy: this changes the account" in cb.status_text
    cb.cancel.click()
    assert not cb.armed and runs == [] and cb.status_text == "Cancelled: nothing was changed."
    cb.button.click()
    cb.confirm.click()
    assert runs == [1] and cb.result == "deleted" and cb.status_text == "Done."
    assert cb.button.disabled
    cb.button.click()
    cb.confirm.click()
    assert runs == [1]  # one-shot


def test_confirm_button_shows_a_failure():
    def boom():
        raise RuntimeError("DeleteConflict: still attached")

    cb = confirm_button("Offboard bob", boom, prompt="Really offboard bob?")
    cb.button.click()
    assert cb.status_text == "Really offboard bob?"
    cb.confirm.click()
    assert isinstance(cb.error, RuntimeError)
    assert cb.status_text == "Failed: DeleteConflict: still attached"


# --- the notebooks in a live session ----------------------------------------------------------------

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def shows_widget(cell) -> bool:
    return any(WIDGET_VIEW in out.get("data", {}) for out in cell.get("outputs", []))


def run_live(notebook: str, tmp_path: Path, monkeypatch, extra: str | None = None):
    """Execute a notebook as a live session would (not headless) with `apply: true`. `extra` is a cell
    appended to a copy in tmp_path: the clicks an operator would make. The committed notebook is untouched."""
    import nbformat
    import papermill

    monkeypatch.delenv(HEADLESS_ENV, raising=False)
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path / "run"))
    source = NOTEBOOKS / f"{notebook}.ipynb"
    if extra is not None:
        nb = nbformat.read(source, as_version=4)
        nb.cells.append(nbformat.v4.new_code_cell(extra))
        source = tmp_path / f"{notebook}.clicks.ipynb"
        nbformat.write(nb, source)
    return papermill.execute_notebook(
        str(source),
        str(tmp_path / f"{notebook}.out.ipynb"),
        parameters={
            "iam_users": load_spec(iam_users_file=EXAMPLE).to_mapping(),
            "apply": True,
            "offboard_user": "carol",
        },
        kernel_name="python3",
        cwd=str(NOTEBOOKS),
        progress_bar=False,
    )


@pytest.fixture
def carol(iam):
    """Someone to offboard: not in the spec, with a console password."""
    iam.create_user(UserName="carol")
    iam.create_login_profile(UserName="carol", Password="Not-a-real-secret-9!")
    return "carol"


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("notebook", "shown"),
    [
        ("02_delete_legacy_policy", "legacy.migrate(rb"),
        ("03_import_and_apply", "apply.apply_confirmed(rb"),
        ("05_offboard_user", "offboard.offboard(rb"),
    ],
)
def test_live_notebooks_wait_for_a_click_even_with_apply_true(
    notebook, shown, aws, legacy_account, carol, iam, monkeypatch, tmp_path
):
    """Not headless: the widget shows and decides; `apply: true` alone changes nothing."""
    aws.clear_calls()
    nb = run_live(notebook, tmp_path, monkeypatch)
    [cell] = [c for c in nb.cells if shown in c.source]
    assert shows_widget(cell)
    assert not any("Plan only" in out.get("text", "") for out in cell.outputs)
    assert aws.mutating_calls() == []
    assert user_names(iam) == {"your-username", "carol"}
    assert attached(iam, "your-username") == {"AssumeRolesPolicy"}


def outputs_text(cell) -> str:
    return "".join(out.get("text", "") for out in cell.outputs)


@pytest.mark.e2e
def test_live_notebook_03_applies_after_apply_and_confirm(aws, legacy_account, iam, monkeypatch, tmp_path):
    clicks = (
        "editor = rb.pending\n"
        f"editor.save_as.value = {str(tmp_path / 'team.yaml')!r}\n"
        "editor.checkboxes[('bob@example.com', 'admin')].value = True\n"
        "editor.save_button.click()\n"
        "editor.apply_button.click()\n"
        "print(editor.status_text)\n"
        "editor.confirm_button.click()\n"
        "print(editor.status_text)"
    )
    nb = run_live("03_import_and_apply", tmp_path, monkeypatch, clicks)
    assert "Nothing has changed yet" in outputs_text(nb.cells[-1])
    assert "Applied: 13 change(s) done." in outputs_text(nb.cells[-1])
    assert attached(iam, BOB) == {"AssumeAdminRolePolicy", "AssumeDataEngineerRolePolicy"}
    (live,) = tmp_path.glob("*-03_import_and_apply-live")
    assert json.loads((live / "apply_result.json").read_text(encoding="utf-8"))["ok"]


@pytest.mark.e2e
def test_live_notebook_02_migrates_after_confirm(aws, legacy_account, iam, monkeypatch, tmp_path):
    clicks = "rb.pending.button.click()\nrb.pending.confirm.click()\nprint(rb.pending.status_text)"
    nb = run_live("02_delete_legacy_policy", tmp_path, monkeypatch, clicks)
    assert outputs_text(nb.cells[-1]).strip() == "Done."
    policies = {p["PolicyName"] for page in iam.get_paginator("list_policies").paginate(Scope="Local")
                for p in page["Policies"]}  # fmt: skip
    assert "AssumeRolesPolicy" not in policies
    assert attached(iam, "your-username") == {
        "AssumeAdminRolePolicy",
        "AssumeDataEngineerRolePolicy",
        "AssumeInfrastructureAdminRolePolicy",
    }
    assert json.loads((tmp_path / "run" / "legacy_migration_result.json").read_text(encoding="utf-8"))["ok"]


@pytest.mark.e2e
def test_live_notebook_05_offboards_after_confirm(aws, legacy_account, carol, iam, monkeypatch, tmp_path):
    clicks = "rb.pending.button.click()\nrb.pending.confirm.click()\nprint(rb.pending.status_text)"
    nb = run_live("05_offboard_user", tmp_path, monkeypatch, clicks)
    assert outputs_text(nb.cells[-1]).strip() == "Done."
    assert user_names(iam) == {"your-username"}
    record = json.loads((tmp_path / "run" / "offboard.json").read_text(encoding="utf-8"))
    assert record["applied"] is True and record["user"] == "carol" and record["steps"]
