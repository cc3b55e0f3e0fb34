"""The CIS findings in the AWS Security Finding Format (ASFF): one finding per check and resource.

Security teams read findings in Security Hub; `cis_findings.asff.json` holds the same verdicts as the CSVs
(user, account and per-policy rows), and `security_hub_import` sends them (aws/securityhub.py, which also
checks every finding against botocore's own Security Hub model). Ids are stable per account, check and
resource, so a later import updates a finding instead of adding one.
"""

from __future__ import annotations

from datetime import datetime, timezone

from iamrunbook.core.cis import FAIL, NOT_CHECKED, PASS, WARN

SCHEMA_VERSION = "2018-10-08"
TYPE = "Software and Configuration Checks/Industry and Regulatory Standards/CIS AWS Foundations Benchmark"
#: the CIS v3.0 items whose failure gives an account away outright
HIGH = frozenset({"1.4", "1.5", "1.6", "1.16"})
_COMPLIANCE = {PASS: "PASSED", FAIL: "FAILED", WARN: "WARNING"}


def _compliance(status: str) -> str:
    return _COMPLIANCE.get(status, "NOT_AVAILABLE")  # UNKNOWN and "not checked: …"


def _severity(cis_id: str, status: str) -> str:
    if status == FAIL:
        return "HIGH" if cis_id in HIGH else "MEDIUM"
    return "LOW" if status == WARN else "INFORMATIONAL"


def _resource(kind: str, arn: str, partition: str, region: str) -> dict:
    return {"Type": kind, "Id": arn, "Partition": partition, "Region": region}


def _finding(row: dict, resource: dict, name: str, account: str, region: str, now: str) -> dict:
    cis_id = row["cis"].split()[0]
    partition = resource["Partition"]
    status = row["status"]
    text = row.get("finding") or ("passes" if status == PASS else status)
    finding = {
        "SchemaVersion": SCHEMA_VERSION,
        "Id": f"iamrunbook/{account}/{cis_id}/{name}"[:512],
        "ProductArn": f"arn:{partition}:securityhub:{region}:{account}:product/{account}/default",
        "GeneratorId": f"iamrunbook-cis-{cis_id}",
        "AwsAccountId": account,
        "Types": [TYPE],
        "CreatedAt": now,
        "UpdatedAt": now,
        "Severity": {"Label": _severity(cis_id, status)},
        "Title": f"{row['cis']} {row['check']}"[:256],
        "Description": f"{name}: {text}"[:1024],
        "Resources": [resource],
        "Compliance": {"Status": _compliance(status)},
        "RecordState": "ACTIVE",
    }
    if status.startswith(NOT_CHECKED) or status == "UNKNOWN":
        finding["Compliance"]["StatusReasons"] = [{"ReasonCode": "CONFIG_EVALUATIONS_EMPTY", "Description":
                                                   (row.get("finding") or status)[:2048]}]  # fmt: skip
    if row.get("fix"):
        finding["Remediation"] = {"Recommendation": {"Text": row["fix"][:512]}}
    return finding


def findings(user_rows: list[dict], account_rows: list[dict], policy_rows: list[dict], account: str,
             partition: str = "aws", region: str = "us-east-1", now: datetime | None = None) -> list[dict]:  # fmt: skip
    """Every row as one ASFF finding: users (AwsIamUser), account items (AwsAccount), policies (AwsIamPolicy,
    or the user, group or role that holds an inline one)."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    account_id = f"AWS::::Account:{account}"
    out = [_finding(r, _resource("AwsIamUser", f"arn:{partition}:iam::{account}:user/{r['user']}", partition,
                                 region), f"user/{r['user']}", account, region, stamp) for r in user_rows]  # fmt: skip
    out += [_finding(r, _resource("AwsAccount", account_id, partition, region), r["resource"], account, region,
                     stamp) for r in account_rows]  # fmt: skip
    for r in policy_rows:
        if r["kind"] == "inline":
            kind = {"user": "AwsIamUser", "group": "AwsIamGroup", "role": "AwsIamRole"}[r["attached_to"].split()[0]]
            resource, name = _resource(kind, r["arn"], partition, region), f"{r['attached_to']}/inline/{r['policy']}"
        else:
            resource, name = _resource("AwsIamPolicy", r["arn"], partition, region), f"policy/{r['policy']}"
        out.append(_finding(r, resource, name, account, region, stamp))
    return out
