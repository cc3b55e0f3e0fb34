"""One contract between notebooks and runner (records.py), and the audit record in full: every file a run
leaves is declared, every address of the plan and the apply result reads whole in the HTML, the HTML
loads nothing from the network, headless progress is a quiet line, and kernels shut down without noise."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd
import pytest
from aws_env import pointed_at

from iamrunbook.base import records
from iamrunbook.base.errors import RunbookError
from iamrunbook.cli import runner

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "parameters" / "example.yaml"


def test_only_declared_records_are_written(tmp_path):
    with pytest.raises(RunbookError, match="notes.json is not a declared run-folder record"):
        records.write(tmp_path, "notes.json", {"a": 1})
    with pytest.raises(RunbookError, match=r"columns \['user'\] are not the record's"):
        records.write(tmp_path, records.INVENTORY_USERS, pd.DataFrame({"user": ["a"]}))
    with pytest.raises(RunbookError, match="x.json is not a file of record plan.json"):
        records.write(tmp_path, records.PLAN, "{}", name="x.json")
    path = records.write(tmp_path, records.IDENTITY, records.Identity("arn:aws:iam::1:user/a", "1"))
    assert json.loads(path.read_text()) == {"caller_arn": "arn:aws:iam::1:user/a", "account_id": "1"}
    assert records.read(tmp_path, records.IDENTITY) == records.Identity("arn:aws:iam::1:user/a", "1")
    assert records.read(tmp_path, records.VERIFICATION) is None  # missing: None, never a half-read dict
    assert not list(tmp_path.glob(".*.writing"))  # written atomically


@pytest.fixture(scope="module")
def audit_record(tmp_path_factory, embedded_aws):
    """The chain applied on the legacy account, then 05 offboarding a user: every notebook, every record."""
    from iamrunbook.sandbox import seed

    out = tmp_path_factory.mktemp("records") / "runs"
    with pointed_at(embedded_aws):
        iam = embedded_aws.client("iam", internal=True)
        seed.seed_legacy_account(iam)
        iam.create_user(UserName="leaver")
        applied = runner.run(params={"iam_users_file": str(EXAMPLE), "apply": True}, out=out)
        gone = runner.run(["05_offboard_user"], {"iam_users_file": str(EXAMPLE), "offboard_user": "leaver",
                                                 "apply": True}, out=out)  # fmt: skip
    assert applied.exit_code == 0 and gone.exit_code == 0, (applied.failure, gone.failure)
    return applied.run_dir, gone.run_dir


@pytest.mark.e2e
def test_every_file_a_run_leaves_is_declared(audit_record):
    for run_dir in audit_record:
        files = [p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()]
        assert files
        assert [f for f in files if records.declared(f) is None] == []


def _text(path: Path) -> str:
    """The HTML as a reader sees it: tags dropped, entities decoded."""
    body = re.sub(r"<(style|script)\b.*?</\1>", "", path.read_text(encoding="utf-8"), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", body))


@pytest.mark.e2e
def test_the_html_record_shows_every_address_whole(audit_record):
    run_dir = audit_record[0]
    text = _text(run_dir / "03_import_and_apply.html")
    plan = records.read(run_dir, records.PLAN)
    done = records.read(run_dir, records.APPLY_RESULT)
    addresses = [c.address for c in plan.changes] + [row["address"] for row in done.changes]
    assert addresses and all(a in text for a in addresses)
    verification = records.read(run_dir, records.VERIFICATION)
    text04 = _text(run_dir / "04_verify.html")
    assert all(arn in text04 for arn in verification.outputs["assume_role_policy_arns"].values())
    assert "..." not in text04.replace("... and", "") and "…" not in text04


@pytest.mark.e2e
def test_the_html_record_loads_nothing_and_shows_progress_quietly(audit_record):
    for run_dir in audit_record:
        for page in run_dir.glob("*.html"):
            body = page.read_text(encoding="utf-8")
            assert "<script src=" not in body and "cdn" not in body.lower(), page.name
            assert not re.search(r'<div[^>]*data-mime-type="application/vnd.jupyter.stderr"', body), page.name
    text = _text(audit_record[0] / "01_gather_user_info.html")
    assert re.search(r"inventory pages: 1 page, \d+\.\d s", text)


@pytest.mark.e2e
def test_kernels_shut_down_without_noise(aws, legacy_account, tmp_path, capfd):
    from iamrunbook.cli import cli

    assert cli.main(["run", "04_verify", "-f", str(EXAMPLE), "--out", str(tmp_path)]) in (0, 2)
    captured = capfd.readouterr()
    assert "KeyboardInterrupt" not in captured.err and "[IPKernelApp]" not in captured.err
