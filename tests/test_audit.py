"""The audit trail: run manifests chained by sha256, `iamrunbook audit verify` naming every alteration,
`iamrunbook audit list` as a table and as JSON."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from aws_env import pointed_at

from iamrunbook.cli import cli
from iamrunbook.runs import audit, manifest

pytestmark = pytest.mark.e2e  # every test here runs notebooks in kernels

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "parameters" / "example.yaml"


@pytest.fixture(scope="module")
def history(tmp_path_factory, embedded_aws):
    """Three runs in one out folder, made once: plan-only 03, an apply of 03 and 04, a plan-only 04."""
    from iamrunbook.sandbox import seed

    out = tmp_path_factory.mktemp("audit") / "runs"
    with pointed_at(embedded_aws):
        seed.seed_legacy_account(embedded_aws.client("iam", internal=True))
        assert cli.main(["run", "03_import_and_apply", "-f", str(EXAMPLE), "--out", str(out)]) == 2
        assert (
            cli.main(["run", "03_import_and_apply", "04_verify", "-f", str(EXAMPLE), "--apply", "--out", str(out)]) == 1
        )
        cli.main(["run", "04_verify", "-f", str(EXAMPLE), "--out", str(out)])
    return out


@pytest.fixture
def copy(history, tmp_path) -> Path:
    target = tmp_path / "runs"
    shutil.copytree(history, target)
    return target


def runs(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.is_dir())


def test_each_manifest_links_the_previous_one(history):
    first, second, third = runs(history)
    data = [json.loads((p / "run.json").read_text(encoding="utf-8")) for p in (first, second, third)]
    assert data[0]["previous_run"] is None
    assert data[1]["previous_run"] == {"id": first.name, "sha256": manifest.sha256(first / "run.json")}
    assert data[2]["previous_run"] == {"id": second.name, "sha256": manifest.sha256(second / "run.json")}
    assert [d["id"] for d in data] == [p.name for p in (first, second, third)]


def test_an_intact_history_verifies(history, capsys):
    assert audit.verify_local(history) == []
    assert cli.main(["audit", "verify", str(history)]) == 0
    assert "intact" in capsys.readouterr().out
    assert cli.main(["audit", "verify", str(runs(history)[1])]) == 0  # one run folder on its own


def test_a_flipped_byte_in_an_executed_notebook_is_named(copy, capsys):
    notebook = runs(copy)[1] / "03_import_and_apply.ipynb"
    data = bytearray(notebook.read_bytes())
    data[len(data) // 2] ^= 0x01
    notebook.write_bytes(bytes(data))
    assert cli.main(["audit", "verify", str(copy)]) == 1
    out = capsys.readouterr().out
    assert f"runs/{notebook.parent.name}/03_import_and_apply.ipynb: modified (sha256 " in out


def test_a_deleted_run_an_extra_file_and_an_edited_manifest_are_named(copy, capsys):
    first, second, third = runs(copy)
    shutil.rmtree(first)
    (third / "notes.txt").write_text("added later\n", encoding="utf-8")
    record = json.loads((second / "run.json").read_text(encoding="utf-8"))
    record["exit_code"] = 0  # someone makes a failed apply look clean
    (second / "run.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    findings = {f.line() for f in audit.verify_local(copy)}
    assert f"runs/{first.name}: missing run (named as previous by {second.name})" in findings
    assert f"runs/{third.name}/notes.txt: extra: not in run.json" in findings
    assert any(
        line.startswith(f"runs/{second.name}/run.json: modified: {third.name} recorded sha256") for line in findings
    )
    assert cli.main(["audit", "verify", str(copy)]) == 1
    assert len(capsys.readouterr().out.strip().splitlines()) == len(findings) + 1


def test_audit_list_as_a_table_and_as_json(history, capsys):
    assert cli.main(["audit", "list", str(history), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["mode"] for r in rows] == ["plan", "apply", "plan"]
    assert [r["exit_code"] for r in rows] == [2, 1, 2]
    assert rows[0]["plan"] == "<=1 +11 ~0 -0" and rows[0]["caller"] == "arn:aws:sts::123456789012:user/moto"
    assert cli.main(["audit", "list", str(history)]) == 0
    table = capsys.readouterr().out
    assert "approved_by" in table and runs(history)[0].name in table
