"""The CIS IAM section as 01 and 06 show it: the account items first, then users, then policies.

Reads the account-level facts (a few calls per account: aws/cis_reads.py), judges every user, every
account item and every attached or inline policy (core), writes `cis_checks.csv`, `cis_account.csv`,
`cis_policies.csv` and `cis_findings.asff.json`, and with `security_hub_import: true` sends the findings to
Security Hub in the run's region.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from iamrunbook.base import records
from iamrunbook.base.display import table
from iamrunbook.core import asff, cis, cis_account, cis_policies
from iamrunbook.core.inventory import Inventory


@dataclass
class CisView:
    """What the notebook shows, top to bottom: account items, the per-user summary and failures, policies."""

    account: pd.DataFrame
    summary: pd.DataFrame
    failing: Any
    policies: Any
    findings: list[dict]


def checks(rb, inv: Inventory) -> CisView:
    """Every CIS IAM item, written to the run folder; imported into Security Hub when asked."""
    from iamrunbook.aws.cis_reads import read_account_facts

    facts = read_account_facts(rb.session, rb.iam)
    user_rows = cis.findings(inv)
    policies = cis_policies.policy_findings(inv)
    account_rows = cis_account.findings(cis_account.root_row(inv.credential_report), facts, inv.roles, policies)
    policy_frame = cis_policies.frame(policies)
    rb.write(records.CIS_CHECKS, cis.frame(user_rows))
    rb.write(records.CIS_ACCOUNT, cis_account.frame(account_rows))
    rb.write(records.CIS_POLICIES, policy_frame)
    found = asff.findings(user_rows, account_rows, policy_frame.to_dict("records"), inv.account_id,
                          inv.partition, facts.region or "us-east-1")  # fmt: skip
    rb.write(records.CIS_ASFF, found)
    if rb.params.get("security_hub_import"):
        import_to_security_hub(rb, found)
    shown = policy_frame[policy_frame["status"] != cis.PASS]
    return CisView(cis_account.frame(account_rows), cis.summary(user_rows), table(cis.failing(user_rows),
                   "Every user passes every check."), table(shown, "No policy grants full or near admin."),
                   found)  # fmt: skip


def import_to_security_hub(rb, found: list[dict]) -> dict:
    """BatchImportFindings, 100 at a time; a refused finding fails the step, naming each one."""
    from iamrunbook.aws.securityhub import import_findings
    from iamrunbook.base.errors import RunbookError

    result = import_findings(rb.session, found)
    print(f"Security Hub: {result['imported']} finding(s) imported, {len(result['failed'])} refused")
    if result["failed"]:
        raise RunbookError("Security Hub refused: " + "; ".join(f"{f.get('Id')}: {f.get('ErrorMessage')}"
                                                                for f in result["failed"][:10]))  # fmt: skip
    return result
