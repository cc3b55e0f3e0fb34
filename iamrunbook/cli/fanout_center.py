"""`run --accounts` under `grant_via: identity_center`: the Identity Center part runs once, in the management
account, after every member has made its own Assume<Role>Policy policies.

Each account's run decides its part itself (flows/center.part, from DescribeOrganization); the fan-out only
orders them. The management account's permission sets reference each member's policies, and AWS fails an
assignment into an account that lacks them, so the members run first and the management account's chain starts
once every member's has finished, whatever its outcome (an assignment into a member that failed fails in turn,
named in the management account's row). Its run targets every account of the fan-out
(`identity_center_accounts`) unless its parameters set them. A management account outside the fan-out, or one
the caller may not learn (no organizations:DescribeOrganization), gets no such order: a note says so.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from iamrunbook.aws.center_sweep import management_account
from iamrunbook.cli import runner
from iamrunbook.cli.accounts import Account

MODE = "identity_center"


def in_mode(params: Mapping[str, Any]) -> bool:
    return runner.kernel_params(params)["grant_via"] == MODE


def find_management(session, params: Mapping[str, dict]) -> str | None:
    """The organization's management account when any account runs in this mode (one DescribeOrganization by
    the fan-out's caller), else None."""
    return management_account(session) if any(in_mode(p) for p in params.values()) else None


def center_params(accounts: Sequence[Account], params: dict[str, dict],
                  management: str | None) -> tuple[dict[str, dict], list[str]]:  # fmt: skip
    """The management account's parameters with identity_center_accounts = every account of the fan-out (unless
    they set it), and a note when the management account is not in the fan-out."""
    if management is None or not any(in_mode(p) for p in params.values()):
        return params, []
    ids = [account.id for account in accounts]
    own = params.get(management)
    if own is None:
        return params, [f"the management account {management} is not in the fan-out: the members make only their "
                        "Assume*Policy policies; run the Identity Center part there (iamrunbook run -f) with "
                        f"identity_center_accounts: {ids}"]  # fmt: skip
    if in_mode(own) and own.get("identity_center_accounts") is None:
        params = {**params, management: {**own, "identity_center_accounts": ids}}
    return params, []


def in_order(tasks: Sequence, management: str | None, run: Callable[[list], list]) -> list:
    """The members' tasks first (`run` runs them at once), then the management account's."""
    first = [task for task in tasks if task.account.id != management]
    last = [task for task in tasks if task.account.id == management]
    return [*run(first), *run(last)]
