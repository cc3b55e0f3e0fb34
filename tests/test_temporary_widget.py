"""The live editor's temporary grants, through the widget model (no browser): "for N hours" or "until ..."
with a reason, revoke, the spec's validation with the session's max_temporary_days, and save-then-apply."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from test_plan import policy
from test_temporary import account, alice_user
from test_widgets import BOB, EXAMPLE, attached

from iamrunbook.base.names import DEFAULT_ROLES, temporary_policy_name
from iamrunbook.core.spec import load_spec
from iamrunbook.core.temporary import until_for
from iamrunbook.flows.session import RUN_DIR_ENV, start
from iamrunbook.ui.widgets import RoleMatrixEditor

REASON = "INC-1234 restore the warehouse"


@pytest.fixture
def editor() -> RoleMatrixEditor:
    inv = account([alice_user()], policies=[*map(policy, DEFAULT_ROLES)])
    ed = RoleMatrixEditor({"alice": {"description": "Alice", "roles": ["data_engineer"]}}, inv)
    now = datetime.now(timezone.utc).replace(second=0, microsecond=0)
    ed.temporary.clock = lambda: now
    ed.now = now
    assert ed.draft.plan.is_empty
    return ed


def fill(ed: RoleMatrixEditor, role: str = "admin", for_text: str = "4h", until: str = "", reason: str = REASON):
    view = ed.temporary
    view.user.value, view.role.value = "alice", role
    view.for_text.value, view.until.value, view.reason.value = for_text, until, reason
    return view


def test_grant_for_hours_adds_the_grant_the_plan_shows_it_and_revoke_takes_it_back(editor):
    view = fill(editor)
    view.grant_button.click()
    until = editor.now + timedelta(hours=4)
    assert editor.draft.users["alice"]["temporary"] == [
        {"role": "admin", "until": until.strftime("%Y-%m-%dT%H:%M:00Z"), "reason": REASON}
    ]
    name = temporary_policy_name("AdminRole", until)
    assert {(c.kind, c.target_name) for c in editor.draft.plan.changes} >= {("attach", "alice")}
    assert name in editor.preview.value and REASON in editor.preview.value  # the plan preview re-rendered
    assert view.message_text == (f"alice may assume admin until {until:%Y-%m-%d %H:%M} UTC ({REASON}). Press Apply "
                                 "to make it: the spec is saved to its file first.")  # fmt: skip
    view.revoke_button.click()
    assert "temporary" not in editor.draft.users["alice"] and editor.draft.plan.is_empty
    assert view.message_text == "Revoked alice's temporary admin. Press Apply to remove it from the account."


def test_grant_until_a_time_and_markup_in_the_reason_is_escaped(editor):
    until = (editor.now + timedelta(days=2)).strftime("%Y-%m-%dT%H:%MZ")
    view = fill(editor, for_text="", until=until, reason="INC-9 <b>bold</b> & co")
    view.grant_button.click()
    assert editor.draft.users["alice"]["temporary"][0]["until"] == until.replace("Z", ":00Z")
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in view.message.value and "<b>bold" not in view.message.value
    assert "<b>bold" not in editor.preview.value and "&lt;b&gt;bold" in editor.preview.value


@pytest.mark.parametrize(
    ("inputs", "problem"),
    [
        ({"reason": "  "}, "a reason is required"),
        ({"for_text": "3d"}, "more than max_temporary_days (2)"),
        ({"for_text": "", "until": "2026-12-31 18:00"}, "is not a UTC time; allowed: UTC ISO 8601 to the minute"),
        ({"for_text": "4 hours"}, "allowed: a whole number of minutes, hours or days"),
        ({"for_text": "4h", "until": "2026-12-31T18:00Z"}, "give either 'for'"),
        ({"role": "data_engineer"}, "'data_engineer' is already granted for good"),
    ],
)
def test_bad_input_changes_nothing_and_names_the_problem(editor, inputs, problem):
    editor.draft.max_temporary_days = 2  # as for_runbook sets it from the session's parameter
    before, plan = editor.draft.users, editor.preview.value
    view = fill(editor, **inputs)
    view.grant_button.click()
    assert problem in view.message_text and view.message_text.startswith("Not granted: ")
    assert editor.draft.users == before and editor.preview.value == plan and not editor.draft.errors


def test_an_unknown_role_or_a_missing_grant_is_refused_by_the_model_the_buttons_call(editor):
    until = until_for("4h", editor.now)
    assert editor.draft.grant_checked("alice", "root", until, REASON)[0].startswith(
        "alice: temporary grant 1: unknown role 'root'; valid roles: admin"
    )
    assert editor.draft.grant_checked("nobody", "admin", until, REASON)[0].startswith("'nobody' is not in the spec")
    view = fill(editor)
    view.revoke_button.click()
    assert view.message_text == "Not revoked: alice holds no temporary grant of 'admin' (temporary grants: none)"
    assert "temporary" not in editor.draft.users["alice"]


def test_for_runbook_checks_against_the_sessions_max_temporary_days(aws, legacy_account, monkeypatch, tmp_path):
    monkeypatch.setenv(RUN_DIR_ENV, str(tmp_path / "session"))
    rb = start({"iam_users": load_spec(iam_users_file=EXAMPLE).to_mapping(), "max_temporary_days": 60})
    ed = RoleMatrixEditor.for_runbook(rb, rb.spec(), rb.inventory())
    assert ed.draft.max_temporary_days == 60
    view = ed.temporary
    view.user.value, view.role.value, view.for_text.value, view.reason.value = BOB, "admin", "45d", REASON
    view.grant_button.click()  # past the default 30 days, within the session's 60
    assert ed.draft.users[BOB]["temporary"][0]["role"] == "admin" and not ed.draft.errors


def test_a_grant_is_saved_to_the_spec_file_before_it_is_applied(editor_on_aws, iam, tmp_path):
    ed = editor_on_aws
    view = ed.temporary
    view.user.value, view.role.value, view.for_text.value, view.reason.value = BOB, "admin", "4h", REASON
    view.grant_button.click()
    until = datetime.fromisoformat(ed.draft.users[BOB]["temporary"][0]["until"].replace("Z", "+00:00"))
    assert not (tmp_path / "spec.yaml").exists()  # an edit only: nothing saved or applied yet
    ed.apply_button.click()
    ed.confirm_button.click()
    assert ed.result is not None and ed.result.ok
    saved = load_spec(iam_users_file=tmp_path / "spec.yaml").users[BOB].temporary
    assert [(t.role, t.until, t.reason) for t in saved] == [("admin", until, REASON)]
    assert temporary_policy_name("AdminRole", until) in attached(iam, BOB)


@pytest.fixture
def editor_on_aws(legacy_account, iam, sts, tmp_path):
    from iamrunbook.aws.sweep import read_inventory

    return RoleMatrixEditor(load_spec(iam_users_file=EXAMPLE), read_inventory(iam, sts), tmp_path / "spec.yaml",
                            iam=iam, sts=sts)  # fmt: skip
