"""The CIS account-level reads: a handful of calls per account, none per user (core/cis_account.py judges).

Each read answers its value or a `NotRead` saying why it could not: a refused or unknown call is a
finding's "not checked: …", never a failed run and never a PASS.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from iamrunbook.aws import clients as aws
from iamrunbook.core.cis_account import AccountFacts, NotRead

READ_ACTIONS = (
    *("iam:GetAccountSummary", "iam:GetAccountPasswordPolicy", "iam:ListVirtualMFADevices"),
    *("iam:ListServerCertificates", "access-analyzer:ListAnalyzers"),
)
WRITE_ACTIONS: tuple[str, ...] = ()
ROOT_DEVICE = ":mfa/root-account-mfa-device"


def _read(what: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except ClientError as exc:
        return NotRead(f"{what}: {aws.error_code(exc)}")
    except BotoCoreError as exc:
        return NotRead(f"{what}: {type(exc).__name__}")


def _password_policy(iam) -> dict | None:
    try:
        return iam.get_account_password_policy()["PasswordPolicy"]
    except ClientError as exc:
        if aws.error_code(exc) == "NoSuchEntity":
            return None  # no policy set: AWS's default applies
        raise


def _root_virtual_mfa(iam) -> list[str]:
    """Serial numbers of the root user's virtual MFA devices (a hardware device is not listed)."""
    pages = iam.get_paginator("list_virtual_mfa_devices").paginate(AssignmentStatus="Assigned")
    devices = [d for page in pages for d in page.get("VirtualMFADevices", [])]
    root = [d for d in devices if d["SerialNumber"].endswith(ROOT_DEVICE)]
    return [d["SerialNumber"] for d in root + [d for d in devices if d.get("User", {}).get("Arn", "").endswith(":root")
                                               and d not in root]]  # fmt: skip


def _server_certificates(iam) -> list[dict]:
    pages = iam.get_paginator("list_server_certificates").paginate()
    return [c for page in pages for c in page.get("ServerCertificateMetadataList", [])]


def _analyzers(session) -> list[dict]:
    client = aws.client(session, "accessanalyzer")
    return [a for page in client.get_paginator("list_analyzers").paginate() for a in page.get("analyzers", [])]


def read_account_facts(session, iam) -> AccountFacts:
    """GetAccountSummary, the password policy, the root's virtual MFA, server certificates, analyzers."""
    return AccountFacts(
        summary=_read("GetAccountSummary", lambda: iam.get_account_summary()["SummaryMap"]),
        password_policy=_read("GetAccountPasswordPolicy", lambda: _password_policy(iam)),
        root_virtual_mfa=_read("ListVirtualMFADevices", lambda: _root_virtual_mfa(iam)),
        server_certificates=_read("ListServerCertificates", lambda: _server_certificates(iam)),
        analyzers=_read("access-analyzer ListAnalyzers", lambda: _analyzers(session)),
        region=session.region_name or "",
    )
