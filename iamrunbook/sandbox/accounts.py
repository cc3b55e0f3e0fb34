"""moto's IAM state per account, each account built once with AWS's managed policies.

moto creates an account's backend on first use (a member account appears when Organizations creates it,
or when a request first acts in it) and, by default, without AWS-managed policies: an
`AdministratorAccess` attachment in a member account would fail. `Accounts.backend()` gives every
account the same set a real account has.
"""

from __future__ import annotations

import copy
import json
import threading
from datetime import datetime, timezone

from moto.core.config import default_user_config
from moto.iam.aws_managed_policies import aws_managed_policies_data
from moto.iam.models import AWSManagedPolicy, iam_backends

from iamrunbook.sandbox.calls import ACCOUNT_ID, REGION

_MOTO_CONFIG_LOCK = threading.Lock()
_AWS_POLICY_TEMPLATES: list[AWSManagedPolicy] = []


def _fresh_aws_managed_policies() -> list[AWSManagedPolicy]:
    """Unattached copies of moto's AWS-managed policies, parsed once per process."""
    with _MOTO_CONFIG_LOCK:
        if not _AWS_POLICY_TEMPLATES:
            parsed = json.loads(aws_managed_policies_data)
            _AWS_POLICY_TEMPLATES.extend(
                AWSManagedPolicy.from_data(name, ACCOUNT_ID, REGION, data) for name, data in parsed.items()
            )
    fresh = []
    for template in _AWS_POLICY_TEMPLATES:
        policy = copy.copy(template)
        policy.attachment_count = 0
        policy.tags = {}
        policy.versions = [copy.copy(version) for version in template.versions]
        fresh.append(policy)
    return fresh


def _build(account_id: str):
    """moto's backend for the account, built with moto's own policy loading held off.

    moto would rebuild its ~1,600 AWS-managed policies from JSON per account (0.2-1 s); fresh copies of
    one parsed set cost a few milliseconds. moto reads the setting from a process-wide config, so it is
    held off only while the backend is built: other moto users in this process are unaffected.
    """
    with _MOTO_CONFIG_LOCK:
        iam_config = default_user_config.setdefault("iam", {})
        before = iam_config.get("load_aws_managed_policies", False)
        iam_config["load_aws_managed_policies"] = False
        try:
            return iam_backends[account_id]["aws"]
        finally:
            iam_config["load_aws_managed_policies"] = before


class Accounts:
    """Which accounts have been set up since the last reset, and when (the credential report's root row)."""

    def __init__(self, load_aws_managed_policies: bool) -> None:
        self.load_aws_managed_policies = load_aws_managed_policies
        self._lock = threading.Lock()
        self._ready: dict[str, datetime] = {}

    def reset(self) -> None:
        with self._lock:
            self._ready.clear()

    def created(self, account_id: str) -> datetime:
        self.backend(account_id)
        return self._ready[account_id]

    def backend(self, account_id: str | None = None):
        """moto's IAM backend for `account_id` (default: the main account), with AWS-managed policies."""
        account_id = account_id or ACCOUNT_ID
        backend = _build(account_id)
        with self._lock:
            if account_id in self._ready:
                return backend
            if self.load_aws_managed_policies and not backend.aws_managed_policies:
                policies = _fresh_aws_managed_policies()
                backend.aws_managed_policies = policies
                backend.managed_policies.update((policy.arn, policy) for policy in policies)
            self._ready[account_id] = datetime.now(timezone.utc)
        return backend
