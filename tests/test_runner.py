"""The runner: notebooks found and checked, parameters checked before any kernel, run folders and run.json.

The tests that execute notebooks start real kernels (about 2 s each) against the embedded AWS.
"""

from __future__ import annotations

import ast
import hashlib
import json
from pathlib import Path

import nbformat
import pytest
import yaml

from iamrunbook.base import exit_codes, records
from iamrunbook.base.errors import SpecError
from iamrunbook.base.shipped import shipped_dir
from iamrunbook.cli import runner
from iamrunbook.core.changes import Change
from iamrunbook.core.migration import MigrationPlan
from iamrunbook.core.params import PARAMETERS
from iamrunbook.core.plan import Plan
from iamrunbook.runs import manifest, outcome

NOTEBOOKS = shipped_dir("notebooks")
EXAMPLE = shipped_dir("parameters") / "example.yaml"


def example_params(**overrides) -> dict:
    params = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    params.update(overrides)
    return params


# --- the notebooks as committed ----------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebook_declares_every_parameter_once_and_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged parameters"
    assigned = [t.id for node in ast.parse(tagged[0].source).body for t in node.targets]
    assert assigned == list(PARAMETERS), "every parameter, in PARAMETERS order, nothing else"
    assert nb.cells[0].cell_type == "markdown"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.mark.parametrize("name", [n for n in runner.CHAIN if not n.startswith("02")] + ["05_offboard_user"])
def test_runbook_notebooks_start_from_globals(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    sources = [c.source for c in nb.cells if c.cell_type == "code"]
    assert any("rb = start(globals())" in s for s in sources)


def test_parameters_cell_defaults_are_the_example_spec():
    nb = nbformat.read(NOTEBOOKS / "03_import_and_apply.ipynb", as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    namespace: dict = {}
    exec(cell.source, namespace)  # noqa: S102 - our own committed cell
    example = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert namespace["iam_users"] == example["iam_users"]
    assert namespace["roles"] == example["roles"]
    assert namespace["apply"] is False and namespace["max_deletions"] == 3


# --- finding notebooks -------------------------------------------------------------------------------
def test_resolve_notebook_by_name_file_name_and_path(tmp_path):
    by_name = runner.resolve_notebook("04_verify")
    assert by_name == NOTEBOOKS / "04_verify.ipynb"
    assert runner.resolve_notebook("04_verify.ipynb") == by_name
    copy = tmp_path / "mine.ipynb"
    copy.write_bytes(by_name.read_bytes())
    assert runner.resolve_notebook(str(copy)) == copy.resolve()


def test_unknown_notebook_names_the_known_ones():
    with pytest.raises(SpecError) as exc:
        runner.resolve_notebook("06_everything")
    assert "06_everything" in str(exc.value) and "03_import_and_apply" in str(exc.value)


def test_notebooks_folder_can_be_overridden(tmp_path, monkeypatch):
    (tmp_path / "99_custom.ipynb").write_bytes((NOTEBOOKS / "04_verify.ipynb").read_bytes())
    monkeypatch.setenv(runner.NOTEBOOKS_ENV, str(tmp_path))
    assert runner.resolve_notebook("99_custom") == tmp_path / "99_custom.ipynb"
    with pytest.raises(SpecError):
        runner.resolve_notebook("04_verify")
    monkeypatch.setenv(runner.NOTEBOOKS_ENV, str(tmp_path / "missing"))
    with pytest.raises(SpecError, match=f"set {runner.NOTEBOOKS_ENV}"):
        runner.resolve_notebook("04_verify")


# --- parameters --------------------------------------------------------------------------------------
def test_gather_params_reads_p_values_as_yaml(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("max_deletions: 1\noffboard_user: carol\n", encoding="utf-8")
    params = runner.gather_params(
        path, [("max_deletions", "5"), ("offboard_user", "null"), ("roles", "{admin: AdminRole}")], apply=True
    )
    assert params == {"max_deletions": 5, "offboard_user": None, "roles": {"admin": "AdminRole"}, "apply": True}


def test_gather_params_lists_every_problem(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("colour: blue\napply: 'yes please'\n", encoding="utf-8")
    with pytest.raises(SpecError) as exc:
        runner.gather_params(path, [("max_deletions", "many")])
    text = str(exc.value)
    assert "unknown parameter 'colour'" in text
    assert "parameter apply: expected bool" in text
    assert "parameter max_deletions: expected int" in text


@pytest.mark.e2e
def test_run_checks_parameters_before_making_a_folder(tmp_path):
    with pytest.raises(SpecError, match="unknown parameter 'colour'"):
        runner.run(["04_verify"], {"colour": "blue"}, out=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_kernel_params_fill_defaults_so_notebook_examples_never_mix_in():
    full = runner.kernel_params({"iam_users_file": "users.tfvars"})
    assert set(full) == set(PARAMETERS)
    assert full["iam_users"] is None and full["iam_users_file"] == "users.tfvars"


# --- run folders -------------------------------------------------------------------------------------
def test_new_run_dir_never_reuses_a_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(manifest, "utc_stamp", lambda: "20250101T000000Z")
    first = runner.new_run_dir(tmp_path, "plan")
    second = runner.new_run_dir(tmp_path, "plan")
    assert first.name == "20250101T000000Z-plan"
    assert second.name == "20250101T000000Z-plan-2"
    assert first.is_dir() and second.is_dir()


def test_run_label():
    chain = [NOTEBOOKS / f"{n}.ipynb" for n in runner.CHAIN]
    assert runner.run_label(chain, apply=False) == "plan"
    assert runner.run_label(chain, apply=True) == "apply"
    assert runner.run_label([NOTEBOOKS / "05_offboard_user.ipynb"], apply=True) == "05_offboard_user-apply"


def test_pending_changes_and_exit_codes(tmp_path):
    """The runner reads the notebooks' records through records.py, typed: pending changes and problems."""
    ok = [runner.NotebookRun("03_import_and_apply", runner.SUCCEEDED)]
    assert outcome.pending_changes(tmp_path) == []
    migration = MigrationPlan("AssumeRolesPolicy", "arn:aws:iam::123456789012:policy/AssumeRolesPolicy", "1", "c")
    records.write(tmp_path, records.LEGACY_PLAN, migration)
    assert outcome.pending_changes(tmp_path) == []
    change = Change("attach", 'aws_iam_user_policy_attachment.user_roles["bob/admin"]', "grant AdminRole")
    records.write(tmp_path, records.PLAN, Plan((change,), "1", "c"))
    problems = [{"kind": "attach", "subject": "a", "message": "m"}, {"kind": "unexpected access", "subject": "b",
                                                                      "message": "b can assume AdminRole via x"}]
    records.write(tmp_path, records.VERIFICATION, records.VerificationRecord(False, problems, [], {}))
    pending = outcome.pending_changes(tmp_path)
    assert pending == ["plan: 1 change(s) pending", "verification: 2 problem(s)"]
    steps = tuple(Change("delete_policy_version", f"policy/x/v{i}", "r") for i in range(3))
    records.write(tmp_path, records.LEGACY_PLAN, MigrationPlan(**{**migration.__dict__, "steps": steps}))
    assert outcome.pending_changes(tmp_path)[0] == "legacy migration: 3 step(s) pending"
    assert outcome.pending_changes(tmp_path, apply=True) == ["verification: 2 problem(s)"]
    assert runner.decide_exit(ok, apply=False, pending=pending) == exit_codes.EXIT_PENDING
    assert runner.decide_exit(ok, apply=True, pending=pending) == exit_codes.EXIT_OK
    assert runner.decide_exit(ok, apply=False, pending=[]) == exit_codes.EXIT_OK
    failed = [*ok, runner.NotebookRun("04_verify", runner.FAILED)]
    assert runner.decide_exit(failed, apply=False, pending=[]) == exit_codes.EXIT_ERROR
    # a problem no apply fixes is an error in both modes: a job that applies on 2 must never loop on it
    records.write(tmp_path, records.VERIFICATION, records.VerificationRecord(False, problems, [], {}, problems[1:]))
    assessment = runner.assess(tmp_path)
    assert assessment.problems == ("no apply fixes: b can assume AdminRole via x",)
    for apply in (False, True):
        assert runner.decide_exit(ok, apply, assessment.pending, assessment.problems) == exit_codes.EXIT_ERROR


@pytest.mark.e2e
def test_an_interrupted_run_still_writes_its_record(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "execute_notebook", interrupt)
    with pytest.raises(KeyboardInterrupt):
        runner.run(["03_import_and_apply", "04_verify"], example_params(), out=tmp_path)
    (folder,) = tmp_path.iterdir()
    record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    assert [(n["name"], n["status"]) for n in record["notebooks"]] == [
        ("03_import_and_apply", "interrupted"),
        ("04_verify", "not run"),
    ]
    assert record["exit_code"] == 1


# --- real runs ---------------------------------------------------------------------------------------
def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.e2e
def test_plan_only_on_the_legacy_account_is_drift(aws, legacy_account, tmp_path):
    aws.clear_calls()
    result = runner.run(params=example_params(), out=tmp_path / "runs", params_file=EXAMPLE)

    assert result.exit_code == exit_codes.EXIT_PENDING
    assert aws.mutating_calls() == []
    folder = result.run_dir
    assert folder.parent == (tmp_path / "runs").resolve() and folder.name.endswith("-plan")
    for name in runner.CHAIN:
        assert (folder / f"{name}.ipynb").is_file() and (folder / f"{name}.html").is_file()
    for side in ("identity.json", "plan.json", "verification.json", "inventory_users.csv", "effective_access.csv"):
        assert (folder / side).is_file(), side

    record = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    assert record["parameters"] == example_params()
    assert record["parameters_file"] == str(EXAMPLE)
    assert record["mode"] == "plan" and record["exit_code"] == 2
    assert record["account_id"] == "123456789012"
    assert record["caller_arn"] == "arn:aws:sts::123456789012:user/moto"
    assert set(record["versions"]) >= {"iamrunbook", "boto3", "papermill"}
    assert record["started"] <= record["finished"]
    assert [(n["name"], n["status"]) for n in record["notebooks"]] == [(n, "succeeded") for n in runner.CHAIN]
    # planned on the account as 02 will leave it: your-username's grants are the migration's
    assert record["plan_summary"] == {"import": 1, "add": 5, "change": 0, "destroy": 0}
    assert record["legacy_plan_summary"] == {"import": 0, "add": 6, "change": 0, "destroy": 2}
    assert record["verification_ok"] is False
    assert [p.split(":")[0] for p in record["pending"]] == ["legacy migration", "plan", "verification"]
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {"run.json"}
    assert set(record["artifacts"]) == files
    assert "terraform/iam_users.auto.tfvars" in files
    for name, digest in record["artifacts"].items():
        assert _sha(folder / name) == digest, name


@pytest.mark.e2e
def test_apply_converges_and_the_next_plan_is_clean(aws, legacy_account, tmp_path):
    applied = runner.run(params=example_params(apply=True), out=tmp_path)
    assert applied.exit_code == exit_codes.EXIT_OK, applied.failure
    assert applied.run_dir.name.endswith("-apply")
    record = applied.record
    assert record["verification_ok"] is True and record["pending"] == []
    assert json.loads((applied.run_dir / "apply_result.json").read_text(encoding="utf-8"))["ok"] is True
    assert (applied.run_dir / "legacy_policy_backup.json").is_file()
    assert aws.iam_backend().get_user("alice@example.com")
    assert legacy_account["policy_arn"] not in aws.iam_backend().managed_policies

    aws.clear_calls()
    again = runner.run(params=example_params(), out=tmp_path)
    assert again.exit_code == exit_codes.EXIT_OK
    assert again.pending == ()
    assert again.record["plan_summary"] == {"import": 0, "add": 0, "change": 0, "destroy": 0}
    assert aws.mutating_calls() == []
    assert again.run_dir != applied.run_dir


@pytest.mark.e2e
def test_a_failed_cell_stops_the_chain_and_keeps_the_notebook(aws, legacy_account, tmp_path):
    params = example_params(
        roles={"admin": "AdminRole", "data_engineer": "DataEngineerRole", "infrastructure_admin": "GoneRole"}
    )
    aws.clear_calls()
    result = runner.run(["03_import_and_apply", "04_verify"], params, out=tmp_path)

    assert result.exit_code == exit_codes.EXIT_ERROR
    failure = result.failure
    assert failure.notebook == "03_import_and_apply" and failure.ename == "SpecError"
    assert "'GoneRole' does not exist" in failure.evalue
    assert failure.first_line == "plan = apply.record_plan(rb, spec, inventory)  # written to plan.json"
    assert [(n.name, n.status) for n in result.notebooks] == [
        ("03_import_and_apply", "failed"),
        ("04_verify", "not run"),
    ]
    executed = nbformat.read(result.run_dir / "03_import_and_apply.ipynb", as_version=4)
    errors = [o for c in executed.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert errors and errors[0].ename == "SpecError"
    assert not (result.run_dir / "04_verify.ipynb").exists()
    assert result.record["notebooks"][0]["failure"]["ename"] == "SpecError"
    assert aws.mutating_calls() == []
