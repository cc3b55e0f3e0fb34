"""The editor's model, driven as plain Python: no widget, no browser, the embedded AWS behind it."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base.names import attachment_address, user_address
from iamrunbook.core.plan import make_plan
from iamrunbook.core.spec import load_spec
from iamrunbook.core.terraform import dump_tfvars
from iamrunbook.flows.editor import ERROR, PENDING, SpecDraft, TwoStep

EXAMPLE = Path(__file__).resolve().parents[1] / "parameters" / "example.yaml"
BOB = "bob@example.com"
CAROL = "carol@example.com"


@pytest.fixture
def inventory(legacy_account, iam, sts):
    return read_inventory(iam, sts)


@pytest.fixture
def spec_file(tmp_path):
    """The example parameters file with a comment inside iam_users and a setting after it."""
    path = tmp_path / "team.yaml"
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "  bob@example.com:\n", "  # Bob joined in May\n  bob@example.com:\n"
    )
    path.write_text(text + "max_deletions: 1  # keep me\n", encoding="utf-8")
    return path


@pytest.fixture
def draft(spec_file, inventory, iam, sts):
    recorded = []
    d = SpecDraft.from_spec(
        load_spec(iam_users_file=spec_file), inventory, iam=iam, sts=sts, on_apply=lambda *a: recorded.append(a)
    )
    d.recorded = recorded
    return d


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.e2e
def test_the_model_imports_no_widget_library():
    code = "import sys, iamrunbook.flows.editor; sys.exit('ipywidgets' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_edits_replan_from_the_inventory_already_read(draft, inventory, aws):
    aws.clear_calls()
    draft.set_role(BOB, "admin", True)
    draft.set_description(BOB, "Bob - Data Lead")
    assert draft.add_user(CAROL, roles=["data_engineer", "admin"]) is None
    draft.remove_user("alice@example.com")
    assert aws.calls == []  # typing never calls AWS

    assert draft.users[BOB] == {"description": "Bob - Data Lead", "roles": ["admin", "data_engineer"]}
    assert draft.users[CAROL]["roles"] == ["admin", "data_engineer"]  # role-key order, whatever was given
    assert list(draft.users) == ["your-username", BOB, CAROL]
    assert draft.plan == make_plan(load_spec(draft.users), inventory)
    assert f"+ {user_address(CAROL)}: create user, tagged" in draft.preview_text
    assert "alice" not in draft.preview_text
    draft.users[BOB]["roles"].clear()  # a copy: the draft is changed only through its methods
    assert draft.users[BOB]["roles"] == ["admin", "data_engineer"]


def test_each_problem_is_listed_once_on_the_row_it_belongs_to(inventory):
    roles = {"admin": "AdminRole", "ghost": "GhostRole"}
    d = SpecDraft({"bob": {"description": "Bob (lead)", "roles": ["ghost"]}, "eve": {}}, inventory, roles=roles)
    assert d.plan is None and d.spec is None
    assert d.errors == d.user_problems("bob") and len(d.errors) == 1
    assert d.errors[0].startswith("bob: description 'Bob (lead)'")
    assert d.user_problems("eve") == [] and d.spec_problems() == []
    assert d.preview_text == "No plan while the spec is invalid:\n" + d.errors[0]

    d.set_description("bob", "Bob - lead")  # valid now; GhostRole is missing from the account
    assert d.spec is not None and d.plan is None
    assert d.user_problems("bob") == [] and d.spec_problems() == d.errors
    assert len(d.errors) == len(set(d.errors)) == 1 and "GhostRole" in d.errors[0]


@pytest.mark.parametrize(
    ("name", "why"),
    [("bad name!", "invalid user name"), ("BOB@example.com", "already in the spec"), ("  ", "type a user name")],
)
def test_a_bad_new_user_is_refused_with_the_reason(draft, name, why):
    assert why in draft.add_user(name)
    assert list(draft.users) == ["your-username", "alice@example.com", BOB]


def test_a_spec_from_the_parameter_must_be_saved_before_apply(inventory, iam, sts, tmp_path, aws):
    users = load_spec(iam_users_file=EXAMPLE).to_mapping()
    d = SpecDraft(users, inventory, roles=load_spec(users).roles, base_dir=tmp_path, iam=iam, sts=sts)
    assert d.source_path is None and d.ready
    aws.clear_calls()
    assert d.arm() is False and d.level == ERROR
    assert "came from the iam_users parameter" in d.message and "iam_users_file" in d.message
    assert d.save() is None and "give a file to save it to" in d.message
    assert aws.calls == []

    saved = d.save("specs/team.tfvars")  # relative to where the run started, as iam_users_file is
    assert saved == tmp_path / "specs" / "team.tfvars" == d.source_path == d.saved_to
    assert f"Point scheduled runs at this file (iam_users_file: {saved})" in d.message
    assert d.saved_sha256 == sha256(saved)
    assert load_spec(iam_users_file=saved).to_mapping() == users
    assert d.arm() is True and d.level == PENDING


def test_confirm_saves_the_spec_first_then_applies_and_records_both(draft, spec_file, iam, aws):
    aws.clear_calls()
    before = spec_file.read_text(encoding="utf-8")
    assert draft.add_user(CAROL, roles=["data_engineer"]) is None
    assert draft.arm() is True
    assert spec_file.read_text(encoding="utf-8") == before  # Apply alone changes nothing, not even the file
    assert aws.mutating_calls() == []

    result = draft.confirm()
    assert result is not None and result.ok and draft.message == f"Applied: {len(result.done)} change(s) done."
    saved = spec_file.read_text(encoding="utf-8")
    assert load_spec(iam_users_file=spec_file).to_mapping() == draft.users
    assert "  # Bob joined in May\n" in saved and saved.endswith("max_deletions: 1  # keep me\n")
    assert saved.startswith(before.split("iam_users:")[0])
    [(plan, recorded)] = draft.recorded
    record = draft.apply_record(plan, recorded)
    assert record == {
        "ok": True,
        "error": None,
        "summary": plan.summary(),
        "changes": result.rows(),
        "spec_file": str(spec_file),
        "spec_sha256": sha256(spec_file),
    }
    assert attachment_address(CAROL, "data_engineer") in {r["address"] for r in record["changes"]}
    assert CAROL in {u["UserName"] for u in iam.list_users()["Users"]}
    assert draft.preview_text == "No changes. Your account matches the spec."
    assert draft.arm() is False and draft.message == "No changes: the account already matches the spec."


def test_a_spec_that_cannot_be_saved_is_not_applied(tmp_path, inventory, iam, sts, aws):
    flow = tmp_path / "flow.yaml"  # a flow mapping: no place to splice iam_users into
    flow.write_text("{iam_users: {bob: {description: Bob, roles: [admin]}}}\n", encoding="utf-8")
    d = SpecDraft.from_spec(load_spec(iam_users_file=flow), inventory, iam=iam, sts=sts)
    d.set_role("bob", "data_engineer", True)
    assert d.arm() is True
    aws.clear_calls()
    assert d.confirm() is None and d.level == ERROR
    assert d.message.startswith(f"Not applied: saving the spec to {flow} failed first")
    assert aws.mutating_calls() == [] and d.result is None and not d.armed


def test_an_edit_withdraws_the_pending_plan(draft, aws):
    assert draft.arm() is True and draft.pending == draft.plan
    draft.set_role(BOB, "admin", True)
    assert draft.pending is None and draft.message.startswith("The spec changed: press Apply again")
    aws.clear_calls()
    assert draft.confirm() is None and draft.message == "Press Apply first: it shows what would change."
    assert aws.calls == []


def test_a_failed_safety_check_refuses_before_confirm(draft, aws):
    draft.max_deletions = 0
    assert draft.arm() is True
    assert draft.confirm().ok
    draft.remove_user(BOB)
    aws.clear_calls()
    assert draft.arm() is False and draft.level == ERROR
    assert draft.message.startswith("Apply refused:") and "max_deletions=0" in draft.message
    assert aws.mutating_calls() == []


def test_two_step_runs_once_and_only_after_arm():
    runs = []
    step = TwoStep(lambda: runs.append(1) or "done", "Sure?")
    assert step.confirm() is None and runs == [] and not step.ran
    assert step.arm() and step.message == "Sure?" and step.level == PENDING
    step.cancel()
    assert not step.armed and step.message == "Cancelled: nothing was changed."
    assert step.arm() and step.confirm() == "done" and runs == [1] and step.message == "Done."
    assert not step.ready and step.arm() is False and step.confirm() is None and runs == [1]


def test_two_step_keeps_a_failure():
    def boom():
        raise RuntimeError("DeleteConflict: still attached")

    step = TwoStep(boom, "Sure?")
    step.arm()
    assert step.confirm() is None and isinstance(step.error, RuntimeError)
    assert step.message == "Failed: DeleteConflict: still attached" and step.level == ERROR and step.ran


@pytest.mark.parametrize("suffix", [".yaml", ".tfvars"])
def test_save_keeps_each_unchanged_users_comments_and_the_order(suffix, tmp_path, inventory):
    users = load_spec(iam_users_file=EXAMPLE).to_mapping()
    path = tmp_path / f"team{suffix}"
    if suffix == ".yaml":
        text = EXAMPLE.read_text(encoding="utf-8").replace("  bob@", "  # Bob joined in May\n  bob@")
    else:
        text = dump_tfvars(users).replace('  "bob@', '  # Bob joined in May\n  "bob@')
    path.write_text(text, encoding="utf-8")
    d = SpecDraft.from_spec(load_spec(iam_users_file=path), inventory)
    d.set_description("your-username", "Owner")
    d.remove_user("alice@example.com")
    d.add_user(CAROL, roles=["admin"])
    assert d.save() == path
    saved = path.read_text(encoding="utf-8")
    assert "  # Bob joined in May\n" in saved and "Alice" not in saved
    assert saved.index("your-username") < saved.index("# Bob joined") < saved.index(CAROL)
    assert load_spec(iam_users_file=path).to_mapping() == d.users


def test_a_role_for_n_hours_is_validated_planned_and_saved_like_any_edit(draft, spec_file, aws):
    from datetime import datetime, timezone

    from iamrunbook.core.temporary import until_for

    now = datetime.now(timezone.utc)
    aws.clear_calls()
    draft.grant_temporary(BOB, "admin", until_for("4h", now), "INC-1234 restore")
    assert aws.calls == [] and not draft.errors
    assert [t["role"] for t in draft.users[BOB]["temporary"]] == ["admin"]
    assert any(c.kind == "attach" and "INC-1234 restore" in c.reason for c in draft.plan.changes)
    draft.grant_temporary(BOB, "data_engineer", until_for("4h", now), "held already")
    assert any("already granted for good" in e for e in draft.errors) and draft.plan is None  # same validation
    draft.revoke_temporary(BOB, "data_engineer")
    assert draft.save() == spec_file
    assert "# Bob joined in May" in spec_file.read_text(encoding="utf-8")
    assert load_spec(iam_users_file=spec_file).users[BOB].temporary[0].reason == "INC-1234 restore"
