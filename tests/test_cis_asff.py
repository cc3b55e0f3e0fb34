"""The CIS findings as ASFF: valid by botocore's own Security Hub model, imported into the embedded Security
Hub in batches of 100 with nothing refused, read back with GetFindings; and `iamrunbook run 06_access_review
-p security_hub_import true` doing the same from a real notebook run."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import boto3
import pytest
from aws_env import pointed_at

from iamrunbook.aws import clients
from iamrunbook.aws.cis_reads import read_account_facts
from iamrunbook.aws.securityhub import BATCH, import_findings, problems
from iamrunbook.aws.sweep import read_inventory
from iamrunbook.base import records
from iamrunbook.base.errors import RunbookError
from iamrunbook.cli import cli, permissions
from iamrunbook.core import asff, cis, cis_account, cis_policies

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "parameters" / "example.yaml"
USERS = 16  # x 7 user checks, plus account and policy rows: more than one batch of 100


@pytest.fixture(scope="module")
def findings(embedded_aws):
    """Every finding of an account with USERS users, an admin role and a refused read (not checked)."""
    with pointed_at(embedded_aws):
        iam = embedded_aws.client("iam", internal=True)
        for n in range(USERS):
            iam.create_user(UserName=f"user-{n:02d}")
        everything = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        iam.put_user_policy(UserName="user-00", PolicyName="everything", PolicyDocument=json.dumps(everything))
        embedded_aws.inject_fault("iam:GetAccountPasswordPolicy", code="AccessDenied", status=403, times=None)
        session = boto3.Session(region_name="us-east-1")
        try:
            iam_client = clients.client(session, "iam")
            inv = read_inventory(iam_client, clients.client(session, "sts"), with_credential_report=True)
            facts = read_account_facts(session, iam_client)
        finally:
            embedded_aws.clear_faults()
    user_rows, policies = cis.findings(inv), cis_policies.policy_findings(inv)
    account_rows = cis_account.findings(cis_account.root_row(inv.credential_report), facts, inv.roles, policies)
    policy_rows = cis_policies.frame(policies).to_dict("records")
    found = asff.findings(user_rows, account_rows, policy_rows, inv.account_id)
    return found, len(user_rows) + len(account_rows) + len(policy_rows)


def test_one_valid_finding_per_check_and_resource(findings):
    found, rows = findings
    assert len(found) == rows > BATCH and problems(found) == []
    assert len({f["Id"] for f in found}) == len(found)
    by_id = {f["Id"]: f for f in found}
    admin = by_id["iamrunbook/123456789012/1.16/user/user-00"]
    assert (admin["Compliance"]["Status"], admin["Severity"]["Label"]) == ("FAILED", "HIGH")
    assert admin["Resources"][0] == {"Type": "AwsIamUser", "Id": "arn:aws:iam::123456789012:user/user-00",
                                     "Partition": "aws", "Region": "us-east-1"}  # fmt: skip
    assert admin["Remediation"]["Recommendation"]["Text"] == cis.CHECKS["no_admin"].fix
    refused = by_id["iamrunbook/123456789012/1.8/password policy"]
    assert refused["Compliance"]["Status"] == "NOT_AVAILABLE"  # not checked is never PASSED
    assert "AccessDenied" in refused["Compliance"]["StatusReasons"][0]["Description"]
    inline = by_id["iamrunbook/123456789012/1.16/user user-00/inline/everything"]
    assert inline["Resources"][0]["Type"] == "AwsIamUser" and inline["Compliance"]["Status"] == "FAILED"


@pytest.mark.parametrize(
    "breakage",
    [
        lambda f: f.pop("Title"),
        lambda f: f.update(Severity={"Label": 3}),
        lambda f: f.update(Resources="arn:aws:iam::123456789012:user/x"),
        lambda f: f["Compliance"].update(Status=["PASSED"]),
        lambda f: f.update(Unknown="field"),
    ],
)
def test_a_malformed_finding_fails_the_model_check_and_nothing_is_sent(aws, session, findings, breakage):
    bad = copy.deepcopy(findings[0][:3])
    breakage(bad[1])
    assert [p.split(":")[0] for p in problems(bad)] == [f"finding 1 ({bad[1].get('Id')})"]
    with pytest.raises(RunbookError, match="not imported, nothing sent"):
        import_findings(session, bad)
    assert [c for c in aws.calls if c.service == "securityhub"] == []


def _read_back(session) -> list[dict]:
    hub = clients.client(session, "securityhub")
    return [f for page in hub.get_paginator("get_findings").paginate() for f in page["Findings"]]


def test_imported_in_batches_of_100_with_none_refused_and_read_back(aws, session, findings):
    found, _ = findings
    clients.client(session, "securityhub").enable_security_hub()
    result = import_findings(session, found)
    assert result == {"imported": len(found), "failed": []}
    sent = [c for c in aws.calls if c.action == "BatchImportFindings"]
    assert len(sent) == math.ceil(len(found) / BATCH)
    assert sorted(f["Id"] for f in _read_back(session)) == sorted(f["Id"] for f in found)


def test_the_import_needs_its_action_only_when_asked(capsys):
    assert "securityhub:BatchImportFindings" not in permissions.required_actions(apply=True)
    assert "securityhub:BatchImportFindings" in permissions.required_actions(security_hub_import=True)
    scope = permissions.scope_for(account_id="123456789012", security_hub_import=True)
    statements = permissions.runner_policy(scope=scope)["Statement"]
    product = "arn:aws:securityhub:*:123456789012:product/123456789012/default"  # its own account's findings only
    assert {"Sid": "ImportCisFindings", "Effect": "Allow", "Action": ["securityhub:BatchImportFindings"],
            "Resource": [product]} in statements  # fmt: skip
    assert not any("securityhub:BatchImportFindings" in s["Action"] for s in permissions.runner_policy()["Statement"])
    assert cli.main(["permissions", "--security-hub-import"]) == 0
    printed = json.loads(capsys.readouterr().out)["Statement"]
    assert printed == permissions.runner_policy(scope=permissions.scope_for(security_hub_import=True))["Statement"]


@pytest.mark.e2e
def test_06_with_security_hub_import_sends_every_finding(aws, session, legacy_account, tmp_path, capsys):
    clients.client(session, "securityhub").enable_security_hub()
    out = tmp_path / "runs"
    code = cli.main(["run", "06_access_review", "-f", str(EXAMPLE), "-p", "security_hub_import", "true",
                     "--out", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    (run_dir,) = out.iterdir()
    written = json.loads((run_dir / records.CIS_ASFF.name).read_text(encoding="utf-8"))
    assert written and problems(written) == []
    assert sorted(f["Id"] for f in _read_back(session)) == sorted(f["Id"] for f in written)
    files = [p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file()]
    assert [f for f in files if records.declared(f) is None] == []
    assert {records.CIS_ACCOUNT.name, records.CIS_POLICIES.name, records.CIS_CHECKS.name} <= set(files)
    page = (run_dir / "06_access_review.html").read_text(encoding="utf-8")
    # top to bottom: the account items, the users, the policies
    assert page.index("hardware MFA is enabled") < page.index("MFA for every user") < page.index("No policy grants")
    assert "finding(s) imported, 0 refused" in page


def test_an_import_security_hub_refuses_says_why(aws, session, findings):
    aws.inject_fault("securityhub:BatchImportFindings", code="InvalidAccessException", status=401)
    with pytest.raises(RunbookError, match="refused the import after 0 finding.s.: InvalidAccessException"):
        import_findings(session, findings[0][:5])
